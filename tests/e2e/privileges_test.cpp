// End-to-end: privilege separation. Started as root with --user nobody, the
// master keeps root (and a port below 1024) while every worker, the first
// ones and those a reload starts, runs as nobody with no capabilities; the
// control socket stays root's. Needs root; skipped otherwise.
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "tests/e2e/harness.h"

namespace herd::e2e {
namespace {

constexpr const char* kHerdctlPath = HERD_BIN_DIR "/herdctl";

// The lines of /proc/<pid>/status this test reads, by name.
std::map<std::string, std::string> process_status(pid_t pid) {
  std::map<std::string, std::string> fields;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    std::size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string value = line.substr(colon + 1);
    std::istringstream words(value);
    std::string joined;
    for (std::string word; words >> word;) {
      if (!joined.empty()) joined += ' ';
      joined += word;
    }
    fields[line.substr(0, colon)] = joined;
  }
  return fields;
}

std::string repeated(unsigned id) {
  std::string one = std::to_string(id);
  return one + " " + one + " " + one + " " + one;  // real, effective, saved, filesystem
}

// A port below 1024 that nothing on 127.0.0.1 uses now.
std::optional<std::uint16_t> free_privileged_port() {
  for (std::uint16_t port = 1023; port >= 900; --port) {
    UniqueFd probe(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int one = 1;
    ::setsockopt(probe.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(probe.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0) {
      return port;
    }
  }
  return std::nullopt;
}

struct Nobody {
  uid_t uid;
  gid_t gid;
  std::string groups;  // as /proc/<pid>/status writes them: "65534"
};

std::optional<Nobody> find_nobody() {
  passwd* entry = ::getpwnam("nobody");
  if (entry == nullptr) return std::nullopt;
  int count = 32;
  std::vector<gid_t> groups(count);
  if (::getgrouplist("nobody", entry->pw_gid, groups.data(), &count) < 0) return std::nullopt;
  std::set<gid_t> sorted(groups.begin(), groups.begin() + count);
  std::string text;
  for (gid_t gid : sorted) {
    if (!text.empty()) text += ' ';
    text += std::to_string(gid);
  }
  return Nobody{entry->pw_uid, entry->pw_gid, text};
}

std::set<pid_t> ready_worker_pids(const std::string& control) {
  std::set<pid_t> pids;
  std::optional<nlohmann::json> status = control_request(control, {{"cmd", "status"}});
  if (!status) return pids;
  for (const nlohmann::json& worker : (*status)["workers"]) {
    if (worker["state"] == "ready") pids.insert(worker["pid"].get<pid_t>());
  }
  return pids;
}

void expect_runs_as_nobody(pid_t pid, const Nobody& nobody) {
  std::map<std::string, std::string> status = process_status(pid);
  EXPECT_EQ(status["Uid"], repeated(nobody.uid)) << "worker " << pid;
  EXPECT_EQ(status["Gid"], repeated(nobody.gid)) << "worker " << pid;
  EXPECT_EQ(status["Groups"], nobody.groups) << "worker " << pid << ": root's groups kept";
  EXPECT_EQ(status["CapEff"], "0000000000000000") << "worker " << pid;
  EXPECT_EQ(status["CapPrm"], "0000000000000000") << "worker " << pid;
}

TEST(Privileges, WorkersRunAsTheGivenUserWhileTheMasterKeepsItsPrivilegedPort) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to start workers as another user";
  std::optional<Nobody> nobody = find_nobody();
  if (!nobody) GTEST_SKIP() << "no user 'nobody' here";
  std::optional<std::uint16_t> port = free_privileged_port();
  ASSERT_TRUE(port) << "no free port below 1024 on 127.0.0.1";

  TempDir dir;
  std::string control = dir.path() + "/control.sock";
  HerdProcess herd({"--host", "127.0.0.1", "--port", std::to_string(*port), "--workers", "2",
                    "--user", "nobody", "--control", control});
  ASSERT_TRUE(herd.wait_for_line(std::regex("workers run as user nobody")));
  ASSERT_TRUE(
      herd.wait_for_line(std::regex("listening on 127\\.0\\.0\\.1:" + std::to_string(*port))));
  ASSERT_EQ(herd.wait_for_lines(std::regex("Worker \\d+ ready"), 2).size(), 2u) << herd.output();

  HttpReadResult served = http_get(*port, "/");
  ASSERT_TRUE(served.ok()) << served.error;
  EXPECT_EQ(served.responses[0].status, 200u);
  EXPECT_EQ(process_status(herd.pid())["Uid"], repeated(0)) << "the master keeps root";
  std::set<pid_t> first = ready_worker_pids(control);
  ASSERT_EQ(first.size(), 2u);
  for (pid_t pid : first) expect_runs_as_nobody(pid, *nobody);

  // Workers a reload starts drop root the same way.
  std::optional<nlohmann::json> reload =
      control_request(control, {{"cmd", "reload"}, {"wait", true}}, Milliseconds{30000});
  ASSERT_TRUE(reload && (*reload)["ok"] == true) << (reload ? reload->dump() : "no reply");
  std::set<pid_t> second = ready_worker_pids(control);
  ASSERT_EQ(second.size(), 2u);
  for (pid_t pid : second) {
    EXPECT_EQ(first.count(pid), 0u);
    expect_runs_as_nobody(pid, *nobody);
  }

  // The control socket is root's alone: the workers' user cannot steer herd.
  struct stat socket_stat {};
  ASSERT_EQ(::stat(control.c_str(), &socket_stat), 0);
  EXPECT_EQ(socket_stat.st_uid, 0u);
  EXPECT_EQ(socket_stat.st_mode & 0777, 0600u);
  RunResult as_nobody =
      run_program({"runuser", "-u", "nobody", "--", kHerdctlPath, "-s", control, "ping"});
  EXPECT_EQ(as_nobody.exit_code, 2) << as_nobody;
  RunResult as_root = run_program({kHerdctlPath, "-s", control, "ping"});
  EXPECT_EQ(as_root.exit_code, 0) << as_root;
}

TEST(Privileges, UnknownUserOrGroupIsAUsageError) {
  RunResult unknown_user = run_program({kHerdPath, "--user", "no-such-user-here"});
  EXPECT_EQ(unknown_user.exit_code, 2) << unknown_user;
  EXPECT_NE(unknown_user.err.find("no user named 'no-such-user-here'"), std::string::npos)
      << unknown_user;
  RunResult unknown_group =
      run_program({kHerdPath, "--user", "nobody", "--group", "no-such-group"});
  EXPECT_EQ(unknown_group.exit_code, 2) << unknown_group;
  EXPECT_NE(unknown_group.err.find("no group named 'no-such-group'"), std::string::npos)
      << unknown_group;
  RunResult group_alone = run_program({kHerdPath, "--group", "nogroup"});
  EXPECT_EQ(group_alone.exit_code, 2) << group_alone;
  EXPECT_NE(group_alone.err.find("--group needs --user"), std::string::npos) << group_alone;
}

TEST(Privileges, WithoutRootAnotherUserIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run herd as nobody";
  RunResult refused =
      run_program({"runuser", "-u", "nobody", "--", kHerdPath, "--user", "root", "--port", "0"});
  EXPECT_EQ(refused.exit_code, 2) << refused;
  EXPECT_NE(refused.err.find("herd must start as root"), std::string::npos) << refused;
}

}  // namespace
}  // namespace herd::e2e
