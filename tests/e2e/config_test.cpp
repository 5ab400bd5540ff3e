// End-to-end: herd's options from a --config file and from HERD_<NAME>
// environment variables, and which wins.
#include <sched.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "tests/e2e/harness.h"

namespace herd::e2e {
namespace {

const std::regex kWorkerReady(R"(Worker (\d+) ready)");
const std::regex kListening(R"(listening on 127\.0\.0\.1:(\d+))");

std::string write_file(const TempDir& dir, const std::string& name, const std::string& text) {
  std::string path = dir.path() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

// The master's workers_target, asked over its control socket.
std::optional<std::size_t> workers_target(const std::string& control) {
  std::optional<nlohmann::json> status = control_request(control, {{"cmd", "status"}});
  if (!status || !(*status)["master"]["workers_target"].is_number_unsigned()) return std::nullopt;
  return (*status)["master"]["workers_target"].get<std::size_t>();
}

TEST(Config, FileSetsOptionsAndTheCommandLineWins) {
  TempDir dir;
  std::string config = write_file(dir, "herd.toml",
                                  "# comments are fine\n"
                                  "workers = 3\n"
                                  "host = \"127.0.0.1\"\n"
                                  "port = 0\n"
                                  "log-level = \"debug\"\n");
  std::string control = dir.path() + "/control.sock";

  HerdProcess from_file({"--config", config, "--control", control});
  ASSERT_EQ(from_file.wait_for_lines(kWorkerReady, 3).size(), 3u) << from_file.output();
  EXPECT_TRUE(from_file.wait_for_line(kListening)) << "host from the file";
  EXPECT_TRUE(from_file.wait_for_line(std::regex(R"(\bdebug\b)"))) << "log-level from the file";
  EXPECT_EQ(workers_target(control), 3u);
  ASSERT_TRUE(from_file.send_signal(SIGTERM));
  ASSERT_TRUE(from_file.wait_exit(kStartTimeout));

  HerdProcess overridden({"--config", config, "--workers", "1", "--control", control});
  ASSERT_TRUE(overridden.wait_for_line(kWorkerReady)) << overridden.output();
  EXPECT_EQ(workers_target(control), 1u);
}

// Precedence (CLI11's): command line, then the --config file, then HERD_<NAME>.
TEST(Config, EnvironmentFillsWhatNeitherTheFileNorTheCommandLineSets) {
  TempDir dir;
  std::string config = write_file(dir, "herd.toml", "host = \"127.0.0.1\"\nport = 0\n");
  std::string with_workers = write_file(dir, "workers.toml", "workers = 3\n");
  std::string control = dir.path() + "/control.sock";

  HerdProcess from_env({"--config", config, "--control", control}, kHerdPath, {"HERD_WORKERS=2"});
  ASSERT_EQ(from_env.wait_for_lines(kWorkerReady, 2).size(), 2u) << from_env.output();
  EXPECT_EQ(workers_target(control), 2u);
  ASSERT_TRUE(from_env.send_signal(SIGTERM));
  ASSERT_TRUE(from_env.wait_exit(kStartTimeout));

  HerdProcess file_over_env(
      {"--config", with_workers, "--host", "127.0.0.1", "--port", "0", "--control", control},
      kHerdPath, {"HERD_WORKERS=2"});
  ASSERT_EQ(file_over_env.wait_for_lines(kWorkerReady, 3).size(), 3u) << file_over_env.output();
  EXPECT_EQ(workers_target(control), 3u);
  ASSERT_TRUE(file_over_env.send_signal(SIGTERM));
  ASSERT_TRUE(file_over_env.wait_exit(kStartTimeout));

  HerdProcess flag_over_env({"--config", config, "--workers", "1", "--control", control}, kHerdPath,
                            {"HERD_WORKERS=2"});
  ASSERT_TRUE(flag_over_env.wait_for_line(kWorkerReady)) << flag_over_env.output();
  EXPECT_EQ(workers_target(control), 1u);
}

TEST(Config, UnknownKeyIsAnErrorNamingIt) {
  TempDir dir;
  std::string config = write_file(dir, "herd.toml", "workers = 1\nwrokers = 2\n");

  HerdProcess herd({"--config", config, "--port", "0"});
  std::optional<int> status = herd.wait_exit(kStartTimeout);
  ASSERT_TRUE(status);
  EXPECT_EQ(describe_status(*status), describe_status(2 << 8));
  EXPECT_TRUE(herd.wait_for_line(std::regex("unknown option 'wrokers' in the --config file")))
      << herd.output();
}

TEST(Config, BadValuesAndMissingFilesAreUsageErrors) {
  TempDir dir;
  std::string bad_value = write_file(dir, "bad.toml", "workers = \"many\"\n");
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--config", bad_value, "--port", "0"},
        std::vector<std::string>{"--config", dir.path() + "/missing.toml", "--port", "0"}}) {
    HerdProcess herd(args);
    std::optional<int> status = herd.wait_exit(kStartTimeout);
    ASSERT_TRUE(status);
    EXPECT_EQ(describe_status(*status), describe_status(2 << 8)) << herd.output();
    EXPECT_TRUE(herd.wait_for_line(std::regex("workers|missing\\.toml"))) << herd.output();
  }
}

// The example in scripts/ stays valid as options change.
TEST(Config, TheExampleConfigRuns) {
  TempDir dir;
  std::string control = dir.path() + "/control.sock";
  HerdProcess herd({"--config", HERD_SOURCE_DIR "/scripts/herd.toml", "--host", "127.0.0.1",
                    "--port", "0", "--workers", "1", "--admin", "127.0.0.1:0", "--control",
                    control});
  ASSERT_TRUE(herd.wait_for_line(kWorkerReady)) << herd.output();
  EXPECT_TRUE(herd.wait_for_line(std::regex("admin endpoint on http://127\\.0\\.0\\.1:")));
  EXPECT_EQ(workers_target(control), 1u);
}

// --workers' default as `herd --help` shows it ("=N" after the type), run as
// `command`.
std::optional<std::size_t> default_workers(const std::vector<std::string>& command) {
  static const std::regex kWorkersDefault(R"(--workers [^=\n]*=(\d+))");
  RunResult result = run_program(command);
  std::smatch match;
  if (result.exit_code != 0 || !std::regex_search(result.out, match, kWorkersDefault)) {
    ADD_FAILURE() << result;
    return std::nullopt;
  }
  return std::stoul(match[1]);
}

std::size_t cpus_of_this_process() {
  cpu_set_t set;
  CPU_ZERO(&set);
  return ::sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
}

// A cgroup of the test's own with a CPU quota, removed when done: v1's cpu
// controller if the machine has it, else v2's.
class QuotaCgroup {
 public:
  // `cpus`: the quota in CPUs (0.5 is half a CPU's time per period).
  explicit QuotaCgroup(double cpus) {
    std::string name = "/herd-e2e-" + std::to_string(::getpid());
    for (const char* v1 : {"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"}) {
      if (std::filesystem::exists(std::string(v1) + "/cpu.cfs_quota_us")) {
        path_ = v1 + name;
        quota_file_ = "cpu.cfs_quota_us";
        quota_ = std::to_string(static_cast<long>(cpus * 100000));
        break;
      }
    }
    if (path_.empty() && std::filesystem::exists("/sys/fs/cgroup/cgroup.subtree_control")) {
      path_ = "/sys/fs/cgroup" + name;
      quota_file_ = "cpu.max";
      quota_ = std::to_string(static_cast<long>(cpus * 100000)) + " 100000";
    }
    if (path_.empty()) {
      error_ = "no cgroup cpu controller is mounted";
      return;
    }
    std::error_code code;
    if (!std::filesystem::create_directory(path_, code)) {
      error_ = "cannot create " + path_ + ": " + code.message();
      path_.clear();
      return;
    }
    std::ofstream(path_ + "/" + quota_file_) << quota_;
    std::ifstream written(path_ + "/" + quota_file_);
    std::string line;
    std::getline(written, line);
    if (line.rfind(quota_, 0) != 0) error_ = "cannot set " + quota_file_ + " in " + path_;
  }
  ~QuotaCgroup() {
    if (!path_.empty()) ::rmdir(path_.c_str());  // its one process has exited by now
  }
  QuotaCgroup(const QuotaCgroup&) = delete;
  QuotaCgroup& operator=(const QuotaCgroup&) = delete;

  const std::string& error() const { return error_; }
  // A shell command that moves itself into the cgroup, then runs `program`.
  std::vector<std::string> run_inside(const std::string& program) const {
    return {"/bin/sh", "-c", "echo $$ > '" + path_ + "/cgroup.procs' && exec \"$0\" --help",
            program};
  }

 private:
  std::string path_;
  std::string quota_file_;
  std::string quota_;
  std::string error_;
};

// Like nginx's `worker_processes auto` and Node's os.availableParallelism():
// the CPUs herd may run on, not the machine's.
TEST(DefaultWorkers, FollowTheCpuAffinity) {
  if (cpus_of_this_process() < 2) GTEST_SKIP() << "needs 2 CPUs to tell affinity from the count";
  EXPECT_EQ(default_workers({kHerdPath, "--help"}), cpus_of_this_process());
  EXPECT_EQ(default_workers({"taskset", "-c", "0", kHerdPath, "--help"}), 1u);
}

// A container's CPU limit is a cgroup CPU quota: half a CPU gets one worker.
TEST(DefaultWorkers, FollowACgroupCpuQuota) {
  if (cpus_of_this_process() < 2) GTEST_SKIP() << "needs 2 CPUs to tell the quota from the count";
  QuotaCgroup cgroup(0.5);
  if (!cgroup.error().empty()) GTEST_SKIP() << cgroup.error() << " (needs root)";
  EXPECT_EQ(default_workers(cgroup.run_inside(kHerdPath)), 1u);
}

}  // namespace
}  // namespace herd::e2e
