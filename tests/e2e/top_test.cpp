// End-to-end: `herdctl top` against the real herd master on 127.0.0.1. The
// live view runs in a detached tmux session on a private tmux server and is
// read back with `tmux capture-pane`; the plain mode runs with stdout piped.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tests/e2e/harness.h"

namespace herd::e2e {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kHerdctlPath = HERD_BIN_DIR "/herdctl";
// The view refreshes every second; this covers a first frame under ASan on a
// loaded machine, and the master's rps window filling.
constexpr Milliseconds kScreenTimeout{20000};

// ---- reading output ---------------------------------------------------------

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream stream(text);
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  return lines;
}

std::vector<std::string> words(const std::string& line) {
  std::vector<std::string> found;
  std::istringstream stream(line);
  for (std::string word; stream >> word;) found.push_back(word);
  return found;
}

// The screen's line that is the row of worker `pid` in state `state`: its
// second word is the pid, the third its state (id, pid, state, ...).
bool has_worker_row(const std::vector<std::string>& lines, pid_t pid, const std::string& state) {
  return std::any_of(lines.begin(), lines.end(), [&](const std::string& line) {
    std::vector<std::string> found = words(line);
    return found.size() >= 3 && found[1] == std::to_string(pid) && found[2] == state;
  });
}

// The line that starts with "total", or "".
std::string total_row(const std::vector<std::string>& lines) {
  for (const std::string& line : lines) {
    std::vector<std::string> found = words(line);
    if (!found.empty() && found.front() == "total") return line;
  }
  return "";
}

// How many samples a row's sparkline shows, and how many of them had traffic
// (a block above the lowest one).
struct SparklineCount {
  std::size_t samples = 0;
  std::size_t busy = 0;
};

SparklineCount count_sparkline(const std::string& row) {
  static const std::vector<std::string> kBlocks{"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  SparklineCount count;
  for (std::size_t level = 0; level < kBlocks.size(); ++level) {
    for (std::size_t at = row.find(kBlocks[level]); at != std::string::npos;
         at = row.find(kBlocks[level], at + 1)) {
      ++count.samples;
      if (level > 0) ++count.busy;
    }
  }
  return count;
}

// The workers' pids from their "Worker <pid> ready" lines.
std::vector<pid_t> ready_pids(const Cluster& cluster) {
  std::vector<pid_t> pids;
  for (const LineMatch& match : cluster.ready) pids.push_back(std::stoi(match[1]));
  return pids;
}

bool tmux_installed() {
  return run_program({"tmux", "-V"}, std::nullopt, Milliseconds{5000}).exit_code == 0;
}

// ---- a private tmux server --------------------------------------------------

// A tmux server of its own (-L herd-top-test-<pid>-<n>), so the test never
// touches anyone else's sessions; killed (kill-server) on destruction, which
// ends whatever still runs in it, and its socket file removed.
class TmuxServer {
 public:
  TmuxServer() : name_("herd-top-test-" + std::to_string(::getpid()) + "-" + next_number()) {
    // A config of its own: the operator's ~/.tmux.conf does not apply, the
    // shell is sh, and no status line takes a row from the pane.
    config_ = dir_.path() + "/tmux.conf";
    std::ofstream(config_) << "set -g history-limit 50000\n"
                              "set -g default-shell /bin/sh\n"
                              "set -g status off\n";
  }
  ~TmuxServer() {
    if (!started_) return;
    std::string socket = pane_variable("socket_path");
    tmux({"kill-server"});
    // kill-server leaves the socket file in /tmp/tmux-<uid>; this server's
    // own (named after it) is removed.
    if (socket.size() > name_.size() &&
        socket.compare(socket.size() - name_.size() - 1, std::string::npos, "/" + name_) == 0) {
      ::unlink(socket.c_str());
    }
  }
  TmuxServer(const TmuxServer&) = delete;
  TmuxServer& operator=(const TmuxServer&) = delete;

  // Runs `command` (a shell command line) in a detached width x height session.
  RunResult start(const std::string& command, int width = 120, int height = 30) {
    started_ = true;
    return tmux({"new-session", "-d", "-s", "top", "-x", std::to_string(width), "-y",
                 std::to_string(height), command});
  }

  // The visible screen of the session's pane, one entry per row.
  std::vector<std::string> screen() {
    return split_lines(tmux({"capture-pane", "-p", "-t", "top"}).out);
  }

  // A pane variable such as #{alternate_on}; "" if tmux cannot say.
  std::string pane_variable(const std::string& name) {
    std::string out = tmux({"display-message", "-p", "-t", "top", "#{" + name + "}"}).out;
    if (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  }

  // The pid of the shell the pane runs.
  std::optional<pid_t> pane_pid() {
    std::string pid = pane_variable("pane_pid");
    if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) {
      return std::nullopt;
    }
    return static_cast<pid_t>(std::stoi(pid));
  }

  RunResult send_keys(const std::string& keys) { return tmux({"send-keys", "-t", "top", keys}); }

  RunResult tmux(const std::vector<std::string>& args) {
    std::vector<std::string> command{"tmux", "-u", "-L", name_, "-f", config_};
    command.insert(command.end(), args.begin(), args.end());
    return run_program(command, std::nullopt, Milliseconds{10000});
  }

 private:
  static std::string next_number() {
    static std::atomic<int> counter{0};
    return std::to_string(counter++);
  }

  TempDir dir_;
  std::string name_;
  std::string config_;
  bool started_ = false;
};

// The child of `parent` (the pane's shell) that runs `program`, from /proc.
std::optional<pid_t> child_running(pid_t parent, const std::string& program) {
  std::ifstream children("/proc/" + std::to_string(parent) + "/task/" + std::to_string(parent) +
                         "/children");
  for (pid_t child; children >> child;) {
    std::ifstream command_line("/proc/" + std::to_string(child) + "/cmdline");
    std::string argv0;
    std::getline(command_line, argv0, '\0');
    if (argv0 == program) return child;
  }
  return std::nullopt;
}

std::string join(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) text += line + "\n";
  return text;
}

// ---- the live view ----------------------------------------------------------

// How the operator ends the view.
enum class Quit { kQKey, kCtrlC, kSigterm };

std::string quit_text(Quit quit) {
  switch (quit) {
    case Quit::kQKey:
      return "QKey";
    case Quit::kCtrlC:
      return "CtrlC";
    case Quit::kSigterm:
      return "Sigterm";
  }
  return "Unknown";
}

void PrintTo(Quit quit, std::ostream* stream) {
  *stream << quit_text(quit);
}

std::string quit_name(const testing::TestParamInfo<Quit>& info) {
  return quit_text(info.param);
}

// The shell line the pane runs: herdctl top, then whether it exited 0 and the
// terminal's settings are those it found (stty -g before and after). The
// shell ignores Ctrl-C's SIGINT through a trap (which its child does not
// inherit), so it lives to report herdctl's exit.
std::string top_command_line(const std::string& socket) {
  return std::string("trap : INT; before=$(stty -g); ") + kHerdctlPath + " -s " + socket +
         " top; status=$?; if [ \"$(stty -g)\" = \"$before\" ]; then tty=same; else "
         "tty=changed; fi; echo \"exit=$status tty=$tty\"; sleep 120";
}

class TopLiveView : public testing::TestWithParam<Quit> {};

TEST_P(TopLiveView, ShowsEveryWorkerAndTheTotalThenRestoresTheTerminal) {
  if (!tmux_installed()) GTEST_SKIP() << "tmux is not installed (scripts/setup.sh installs it)";
  std::optional<Cluster> cluster = start_cluster(2, {"--heartbeat-interval", "200"});
  ASSERT_TRUE(cluster);
  std::vector<pid_t> pids = ready_pids(*cluster);

  TmuxServer tmux;
  RunResult started = tmux.start(top_command_line(control_path(*cluster)));
  ASSERT_EQ(started.exit_code, 0) << started;

  RequestLoop load(cluster->port);
  ASSERT_TRUE(load.wait_for_requests(50, kScreenTimeout));
  // Both workers' rows, and a total whose sparkline has grown with each
  // refresh to five samples, the last ones with traffic.
  std::vector<std::string> screen;
  bool shown = wait_until(
      [&] {
        screen = tmux.screen();
        SparklineCount total = count_sparkline(total_row(screen));
        return has_worker_row(screen, pids[0], "ready") &&
               has_worker_row(screen, pids[1], "ready") && total.samples >= 5 && total.busy >= 3;
      },
      kScreenTimeout);
  load.stop();
  ASSERT_TRUE(shown) << "the screen:\n" << join(screen);
  EXPECT_TRUE(load.failures().empty());
  EXPECT_EQ(tmux.pane_variable("alternate_on"), "1");
  EXPECT_EQ(tmux.pane_variable("cursor_flag"), "0");
  // For the README's screenshot.
  std::cout << "[ screen   ] herdctl -s " << control_path(*cluster) << " top\n"
            << join(screen) << std::flush;

  switch (GetParam()) {
    case Quit::kQKey:
      ASSERT_EQ(tmux.send_keys("q").exit_code, 0);
      break;
    case Quit::kCtrlC:
      ASSERT_EQ(tmux.send_keys("C-c").exit_code, 0);
      break;
    case Quit::kSigterm: {
      std::optional<pid_t> shell = tmux.pane_pid();
      ASSERT_TRUE(shell);
      std::optional<pid_t> herdctl = child_running(*shell, kHerdctlPath);
      ASSERT_TRUE(herdctl) << "no herdctl under the pane's shell " << *shell;
      ASSERT_EQ(::kill(*herdctl, SIGTERM), 0);
      break;
    }
  }

  bool exited = wait_until(
      [&] {
        screen = tmux.screen();
        return std::any_of(screen.begin(), screen.end(),
                           [](const std::string& line) { return line.rfind("exit=", 0) == 0; });
      },
      kScreenTimeout);
  ASSERT_TRUE(exited) << "the screen:\n" << join(screen);
  std::string report = *std::find_if(screen.begin(), screen.end(), [](const std::string& line) {
    return line.rfind("exit=", 0) == 0;
  });
  EXPECT_EQ(report, "exit=0 tty=same") << "the screen:\n" << join(screen);
  // The shell's screen is back, without the view on it, and so is the cursor.
  EXPECT_EQ(total_row(screen), "") << join(screen);
  EXPECT_FALSE(has_worker_row(screen, pids[0], "ready")) << join(screen);
  EXPECT_EQ(tmux.pane_variable("alternate_on"), "0");
  EXPECT_EQ(tmux.pane_variable("cursor_flag"), "1");
}

INSTANTIATE_TEST_SUITE_P(Quit, TopLiveView,
                         testing::Values(Quit::kQKey, Quit::kCtrlC, Quit::kSigterm), quit_name);

TEST(TopLostMaster, IsShownUntilTheNextOneAnswers) {
  if (!tmux_installed()) GTEST_SKIP() << "tmux is not installed (scripts/setup.sh installs it)";
  TempDir dir;
  std::string socket = dir.path() + "/control.sock";
  static const std::regex ready(R"(Worker (\d+) ready)");
  auto start_master = [&socket] {
    return std::make_unique<HerdProcess>(std::vector<std::string>{
        "--host", "127.0.0.1", "--port", "0", "--workers", "1", "--control", socket});
  };
  std::unique_ptr<HerdProcess> first = start_master();
  std::optional<LineMatch> first_ready = first->wait_for_line(ready, kStartTimeout);
  ASSERT_TRUE(first_ready) << first->output();
  pid_t first_worker = std::stoi((*first_ready)[1]);

  TmuxServer tmux;
  RunResult started = tmux.start(top_command_line(socket));
  ASSERT_EQ(started.exit_code, 0) << started;
  std::vector<std::string> screen;
  ASSERT_TRUE(wait_until(
      [&] {
        screen = tmux.screen();
        return has_worker_row(screen, first_worker, "ready");
      },
      kScreenTimeout))
      << join(screen);

  // The master goes away at once, leaving its socket file behind.
  first->send_signal(SIGKILL);
  ASSERT_TRUE(first->wait_exit(kStartTimeout));
  ASSERT_TRUE(wait_until(
      [&] {
        screen = tmux.screen();
        return !screen.empty() &&
               screen[0].rfind("NOT CONNECTED: cannot connect to " + socket, 0) == 0;
      },
      kScreenTimeout))
      << join(screen);

  // A new master on the same socket: top finds it on its own.
  std::unique_ptr<HerdProcess> second = start_master();
  std::optional<LineMatch> second_ready = second->wait_for_line(ready, kStartTimeout);
  ASSERT_TRUE(second_ready) << second->output();
  pid_t second_worker = std::stoi((*second_ready)[1]);
  ASSERT_TRUE(wait_until(
      [&] {
        screen = tmux.screen();
        return has_worker_row(screen, second_worker, "ready") && !screen.empty() &&
               screen[0].rfind("herd ", 0) == 0;
      },
      kScreenTimeout))
      << join(screen);
  EXPECT_FALSE(has_worker_row(screen, first_worker, "ready")) << join(screen);

  ASSERT_EQ(tmux.send_keys("q").exit_code, 0);
  ASSERT_TRUE(wait_until(
      [&] {
        screen = tmux.screen();
        return std::find(screen.begin(), screen.end(), "exit=0 tty=same") != screen.end();
      },
      kScreenTimeout))
      << join(screen);
}

// ---- plain frames -----------------------------------------------------------

TEST(TopPlainFrames, PipedStdoutGetsOnePlainFrame) {
  std::optional<Cluster> cluster = start_cluster(2);
  ASSERT_TRUE(cluster);
  RunResult result =
      run_program({kHerdctlPath, "-s", control_path(*cluster), "top", "--iterations", "1"});
  ASSERT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(result.out.find('\x1b'), std::string::npos) << result;
  std::vector<std::string> lines = split_lines(result.out);
  ASSERT_FALSE(lines.empty()) << result;
  EXPECT_EQ(lines.front().rfind("herd ", 0), 0u) << result;
  for (pid_t pid : ready_pids(*cluster)) EXPECT_TRUE(has_worker_row(lines, pid, "ready")) << result;
  EXPECT_EQ(words(lines.back()).front(), "total") << result;
  // One frame: no blank line, so no second frame, and no keys to press.
  EXPECT_EQ(std::count(lines.begin(), lines.end(), ""), 0) << result;
  EXPECT_EQ(result.out.find("q quit"), std::string::npos) << result;
  EXPECT_EQ(result.err, "");
}

TEST(TopPlainFrames, FramesAreSeparatedByABlankLine) {
  std::optional<Cluster> cluster = start_cluster(1);
  ASSERT_TRUE(cluster);
  RunResult result = run_program({kHerdctlPath, "-s", control_path(*cluster), "top", "--iterations",
                                  "3", "--interval", "100"});
  ASSERT_EQ(result.exit_code, 0) << result;
  std::vector<std::string> lines = split_lines(result.out);
  ASSERT_EQ(std::count(lines.begin(), lines.end(), ""), 2) << result;
  std::vector<std::string> frame;
  std::size_t frames = 0;
  lines.push_back("");
  for (const std::string& line : lines) {
    if (!line.empty()) {
      frame.push_back(line);
      continue;
    }
    ++frames;
    EXPECT_EQ(frame.front().rfind("herd ", 0), 0u) << result;
    EXPECT_EQ(words(frame.back()).front(), "total") << result;
    frame.clear();
  }
  EXPECT_EQ(frames, 3u);
}

TEST(TopPlainFrames, MasterThatCannotBeReachedIsSaidAndExits2) {
  TempDir dir;
  std::string socket = dir.path() + "/nobody.sock";
  RunResult result = run_program({kHerdctlPath, "-s", socket, "top", "--iterations", "1"});
  EXPECT_EQ(result.exit_code, 2) << result;
  EXPECT_EQ(result.out.rfind("NOT CONNECTED: cannot connect to " + socket, 0), 0u) << result;
  EXPECT_EQ(result.err.rfind("herdctl: cannot connect to " + socket, 0), 0u) << result;
}

TEST(TopPlainFrames, BadOptionsAreRefusedWithExit2) {
  TempDir dir;
  std::string socket = dir.path() + "/nobody.sock";
  for (std::vector<std::string> args : {std::vector<std::string>{"--interval", "10"},
                                        {"--interval", "soon"},
                                        {"--iterations", "-1"},
                                        {"--json"}}) {
    std::vector<std::string> command{kHerdctlPath, "-s", socket, "top"};
    command.insert(command.end(), args.begin(), args.end());
    RunResult result = run_program(command);
    EXPECT_EQ(result.exit_code, 2) << args[0] << "\n" << result;
    EXPECT_EQ(result.out, "") << result;
    EXPECT_EQ(result.err.rfind("herdctl: ", 0), 0u) << result;
  }
}

}  // namespace
}  // namespace herd::e2e
