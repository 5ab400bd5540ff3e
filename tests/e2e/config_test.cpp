// End-to-end: herd's options from a --config file and from HERD_<NAME>
// environment variables, and which wins.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace herd::e2e
