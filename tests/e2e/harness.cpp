#include "tests/e2e/harness.h"

#include "common/errno_text.h"
#include "common/unix_socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

extern char** environ;

namespace herd::e2e {
namespace {

using Clock = std::chrono::steady_clock;

constexpr Milliseconds kPollInterval{10};
// How long the destructor waits for the output pipe to close (every writer
// gone) before it stops reading anyway.
constexpr Milliseconds kOutputDrainTimeout{3000};

// Writes all of `bytes` to a socket with SO_SNDTIMEO set; "" or the error.
std::string send_all(int socket, std::string_view bytes, Milliseconds timeout) {
  while (!bytes.empty()) {
    ssize_t sent = ::send(socket, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK
                 ? "send() timed out after " + std::to_string(timeout.count()) + " ms"
                 : "send() failed: " + errno_text(errno);
    }
    bytes.remove_prefix(static_cast<std::size_t>(sent));
  }
  return "";
}

std::string to_lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

timeval to_timeval(Milliseconds duration) {
  timeval value{};
  value.tv_sec = static_cast<time_t>(duration.count() / 1000);
  value.tv_usec = static_cast<suseconds_t>((duration.count() % 1000) * 1000);
  return value;
}

// A connected stream socket whose connect(), sends and receives are each
// bounded by `timeout` (SO_SNDTIMEO bounds connect() too); invalid, with
// `error` set, on failure.
UniqueFd connect_bounded(const sockaddr* address, socklen_t length, const std::string& where,
                         Milliseconds timeout, std::string& error) {
  UniqueFd socket(::socket(address->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!socket) {
    error = "socket() failed: " + errno_text(errno);
    return {};
  }
  timeval bound = to_timeval(timeout);
  if (::setsockopt(socket.get(), SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof(bound)) != 0 ||
      ::setsockopt(socket.get(), SOL_SOCKET, SO_SNDTIMEO, &bound, sizeof(bound)) != 0) {
    error = "setsockopt() of the socket timeouts failed: " + errno_text(errno);
    return {};
  }
  if (::connect(socket.get(), address, length) != 0) {
    error = "connect() to " + where + " failed: " + errno_text(errno);
    return {};
  }
  return socket;
}

// The fields of /proc/<pid>/stat the harness needs.
struct ProcStat {
  char state = '?';
  unsigned long long start_time = 0;  // clock ticks after boot
};

std::optional<ProcStat> read_proc_stat(pid_t pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!file || !std::getline(file, text)) return std::nullopt;
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so
  // the fields start after the last ')'.
  std::size_t close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(text.substr(close + 1));
  ProcStat stat;
  fields >> stat.state;
  // Fields 4 to 21 (ppid .. itrealvalue) come between state and starttime.
  std::string skipped;
  for (int field = 4; field <= 21; ++field) fields >> skipped;
  fields >> stat.start_time;
  if (!fields) return std::nullopt;
  return stat;
}

// The test's environment minus HERD_*, changed by `changes` ("NAME=VALUE"
// sets, a bare "NAME" removes).
std::vector<std::string> child_environment(const std::vector<std::string>& changes) {
  auto name_of = [](std::string_view entry) { return entry.substr(0, entry.find('=')); };
  std::vector<std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    if (std::strncmp(*entry, "HERD_", 5) == 0) continue;
    bool changed = std::any_of(changes.begin(), changes.end(), [&](const std::string& change) {
      return name_of(change) == name_of(*entry);
    });
    if (!changed) env.emplace_back(*entry);
  }
  for (const std::string& change : changes) {
    if (change.find('=') != std::string::npos) env.push_back(change);
  }
  return env;
}

std::vector<char*> as_argv(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  pointers.reserve(strings.size() + 1);
  for (std::string& text : strings) pointers.push_back(text.data());
  pointers.push_back(nullptr);
  return pointers;
}

// Runs in the forked child: async-signal-safe calls only.
[[noreturn]] void exec_child(int out, int err, pid_t parent, char* const* argv, char* const* envp) {
  // If the test process dies, so does the child (and herd takes its workers).
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);

  int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null >= 0) ::dup2(null, STDIN_FILENO);
  // The pipes are O_CLOEXEC; the dup2() copies are not.
  ::dup2(out, STDOUT_FILENO);
  ::dup2(err, STDERR_FILENO);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);

  ::execvpe(argv[0], argv, envp);
  const char message[] = "e2e harness: execvpe() failed\n";
  ssize_t ignored = ::write(STDERR_FILENO, message, sizeof(message) - 1);
  (void)ignored;
  ::_exit(127);
}

// Forks and execs `args` (args[0] found on PATH unless it has a '/') with
// `env`, stdin from /dev/null and stdout and stderr onto `out` and `err`.
// Everything the child needs is built before fork(): the test process has
// threads, so the child may only make async-signal-safe calls. Returns the
// pid, or -1 with `error` set.
pid_t spawn_child(std::vector<std::string> args, std::vector<std::string> env, int out, int err,
                  std::string& error) {
  std::vector<char*> argv = as_argv(args);
  std::vector<char*> envp = as_argv(env);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    error = "fork() failed: " + errno_text(errno);
    return -1;
  }
  if (pid == 0) exec_child(out, err, parent, argv.data(), envp.data());
  return pid;
}

}  // namespace

bool pid_alive(pid_t pid) {
  if (pid <= 0) return false;
  if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
  std::optional<ProcStat> stat = read_proc_stat(pid);
  if (!stat) return ::kill(pid, 0) == 0 || errno != ESRCH;  // no /proc: trust kill()
  return stat->state != 'Z' && stat->state != 'X';
}

double elapsed_ms(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since)
      .count();
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

std::regex exact_worker_line(pid_t pid, const std::string& rest) {
  return std::regex("Worker " + std::to_string(pid) + " " + rest);
}

std::vector<std::string> RunResult::out_lines() const {
  std::vector<std::string> lines;
  std::istringstream stream(out);
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  return lines;
}

std::ostream& operator<<(std::ostream& stream, const RunResult& result) {
  return stream << "exit " << result.exit_code << "\n--- stdout ---\n"
                << result.out << "--- stderr ---\n"
                << result.err << (result.error.empty() ? "" : "--- error ---\n" + result.error);
}

RunResult run_program(const std::vector<std::string>& args,
                      const std::optional<std::vector<std::string>>& environment,
                      Milliseconds timeout) {
  RunResult result;
  std::array<int, 2> out_pipe{};
  std::array<int, 2> err_pipe{};
  if (::pipe2(out_pipe.data(), O_CLOEXEC) != 0) {
    result.error = "pipe2() failed: " + errno_text(errno);
    return result;
  }
  UniqueFd out_read(out_pipe[0]), out_write(out_pipe[1]);
  if (::pipe2(err_pipe.data(), O_CLOEXEC) != 0) {
    result.error = "pipe2() failed: " + errno_text(errno);
    return result;
  }
  UniqueFd err_read(err_pipe[0]), err_write(err_pipe[1]);

  std::vector<std::string> env_strings;
  if (environment) {
    env_strings = *environment;
  } else {
    for (char** entry = environ; *entry != nullptr; ++entry) env_strings.emplace_back(*entry);
  }
  pid_t pid =
      spawn_child(args, std::move(env_strings), out_write.get(), err_write.get(), result.error);
  if (pid < 0) return result;
  out_write.reset();
  err_write.reset();

  Clock::time_point deadline = Clock::now() + timeout;
  std::array<pollfd, 2> fds{{{out_read.get(), POLLIN, 0}, {err_read.get(), POLLIN, 0}}};
  std::array<std::string*, 2> sinks{&result.out, &result.err};
  while (fds[0].fd >= 0 || fds[1].fd >= 0) {
    auto left = std::chrono::duration_cast<Milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      ::kill(pid, SIGKILL);
      result.error = args[0] + " ran longer than " + std::to_string(timeout.count()) + " ms";
      break;
    }
    if (::poll(fds.data(), fds.size(), static_cast<int>(left)) < 0 && errno != EINTR) break;
    for (std::size_t index = 0; index < fds.size(); ++index) {
      if (fds[index].fd < 0 || fds[index].revents == 0) continue;
      char buffer[4096];
      ssize_t count = ::read(fds[index].fd, buffer, sizeof(buffer));
      if (count > 0) {
        sinks[index]->append(buffer, static_cast<std::size_t>(count));
      } else if (count == 0 || errno != EINTR) {
        fds[index].fd = -1;  // EOF; the UniqueFd still owns it
      }
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

bool wait_until(const std::function<bool()>& predicate, Milliseconds timeout) {
  Clock::time_point deadline = Clock::now() + timeout;
  while (!predicate()) {
    if (Clock::now() >= deadline) return predicate();
    std::this_thread::sleep_for(kPollInterval);
  }
  return true;
}

std::optional<long> resident_kb(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return std::nullopt;
}

std::optional<CpuUse> cpu_use_over(const std::vector<pid_t>& pids, Milliseconds window) {
  std::vector<std::optional<Milliseconds>> before;
  for (pid_t pid : pids) before.push_back(process_cpu_time(pid));
  auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(window);
  CpuUse use;
  use.window_ms = elapsed_ms(start);
  for (std::size_t i = 0; i < pids.size(); ++i) {
    std::optional<Milliseconds> after = process_cpu_time(pids[i]);
    if (!before[i] || !after) return std::nullopt;
    use.cpu_ms += static_cast<double>((*after - *before[i]).count());
  }
  return use;
}

std::optional<Milliseconds> process_cpu_time(pid_t pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!file || !std::getline(file, text)) return std::nullopt;
  std::size_t close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(text.substr(close + 1));
  // Fields 3 to 13 (state .. cmajflt) come before utime (14) and stime (15).
  std::string skipped;
  for (int field = 3; field <= 13; ++field) fields >> skipped;
  unsigned long long user_ticks = 0;
  unsigned long long system_ticks = 0;
  fields >> user_ticks >> system_ticks;
  if (!fields) return std::nullopt;
  static const long ticks_per_second = ::sysconf(_SC_CLK_TCK);
  if (ticks_per_second <= 0) return std::nullopt;
  return Milliseconds{static_cast<Milliseconds::rep>(
      (user_ticks + system_ticks) * 1000 / static_cast<unsigned long long>(ticks_per_second))};
}

// ---- HerdProcess ------------------------------------------------------------

HerdProcess::HerdProcess(std::vector<std::string> args, std::string program,
                         const std::vector<std::string>& env)
    : program_(std::move(program)) {
  int output_pipe[2];
  int wake_pipe[2];
  if (::pipe2(output_pipe, O_CLOEXEC) != 0) {
    start_error_ = "pipe2() failed: " + errno_text(errno);
    return;
  }
  UniqueFd output_write(output_pipe[1]);
  output_.reset(output_pipe[0]);
  if (::pipe2(wake_pipe, O_CLOEXEC) != 0) {
    start_error_ = "pipe2() failed: " + errno_text(errno);
    return;
  }
  wake_read_.reset(wake_pipe[0]);
  wake_write_.reset(wake_pipe[1]);

  std::vector<std::string> argv_strings{program_};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  pid_t pid = spawn_child(std::move(argv_strings), child_environment(env), output_write.get(),
                          output_write.get(), start_error_);
  if (pid < 0) return;
  pid_ = pid;
  if (std::optional<ProcStat> stat = read_proc_stat(pid_)) start_time_ = stat->start_time;
  // output_write closes here: from now on only the child (and the workers it
  // starts) hold the pipe, so EOF means every one of them is gone.
  reader_ = std::thread([this] { read_output(); });
}

HerdProcess::~HerdProcess() {
  if (pid_ > 0 && !exit_status_) {
    ::kill(pid_, SIGKILL);
    if (!wait_exit(kStartTimeout)) {
      std::cerr << "e2e harness: " << program_ << " (pid " << pid_
                << ") survived SIGKILL; not reaped\n";
    }
  }
  kill_leftovers();
  stop_reader();
  if (::testing::Test::HasFailure() && pid_ > 0) {
    std::cerr << "---- output of " << program_ << " (pid " << pid_ << ") ----\n"
              << output() << "\n---- end of output ----\n";
  }
}

std::vector<std::string> HerdProcess::lines() const {
  std::lock_guard lock(mutex_);
  return lines_;
}

std::size_t HerdProcess::line_count() const {
  std::lock_guard lock(mutex_);
  return lines_.size();
}

std::string HerdProcess::output() const {
  std::lock_guard lock(mutex_);
  std::string joined;
  for (const std::string& line : lines_) {
    if (!joined.empty()) joined += '\n';
    joined += line;
  }
  return joined;
}

std::optional<LineMatch> HerdProcess::wait_for_line(const std::regex& pattern, Milliseconds timeout,
                                                    std::size_t from) {
  std::vector<LineMatch> found = wait_for_lines(pattern, 1, timeout, from);
  if (found.empty()) return std::nullopt;
  return std::move(found.front());
}

// Scans each line once, as it arrives; sleeps on the condition variable in
// between, so a match is seen as soon as the reader thread stores it.
std::vector<LineMatch> HerdProcess::wait_for_lines(const std::regex& pattern, std::size_t count,
                                                   Milliseconds timeout, std::size_t from) {
  Clock::time_point deadline = Clock::now() + timeout;
  std::vector<LineMatch> found;
  std::size_t next = from;
  std::unique_lock lock(mutex_);
  for (;;) {
    for (; next < lines_.size() && found.size() < count; ++next) {
      std::smatch match;
      if (!std::regex_search(lines_[next], match, pattern)) continue;
      LineMatch line_match;
      line_match.index = next;
      line_match.line = lines_[next];
      for (const auto& group : match) line_match.groups.push_back(group.str());
      found.push_back(std::move(line_match));
    }
    if (found.size() >= count || output_closed_ || Clock::now() >= deadline) return found;
    changed_.wait_until(lock, deadline);
  }
}

std::vector<pid_t> HerdProcess::worker_pids() const {
  std::lock_guard lock(mutex_);
  return worker_pids_;
}

bool HerdProcess::send_signal(int signal) {
  // Once reaped, the pid may belong to someone else.
  if (pid_ <= 0 || exit_status_) return false;
  return ::kill(pid_, signal) == 0;
}

std::optional<int> HerdProcess::wait_exit(Milliseconds timeout) {
  if (exit_status_ || pid_ <= 0) return exit_status_;
  Clock::time_point deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t reaped = ::waitpid(pid_, &status, WNOHANG);
    if (reaped == pid_) {
      exit_status_ = status;
      return exit_status_;
    }
    if (reaped < 0 && errno != EINTR) {
      std::cerr << "e2e harness: waitpid(" << pid_ << ") failed: " << errno_text(errno) << "\n";
      return std::nullopt;
    }
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(Milliseconds{5});
  }
}

void HerdProcess::read_output() {
  std::string partial;
  char buffer[4096];
  for (;;) {
    pollfd fds[2] = {{output_.get(), POLLIN, 0}, {wake_read_.get(), POLLIN, 0}};
    int ready = ::poll(fds, 2, -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents != 0) break;  // the destructor stops us
    if (fds[0].revents == 0) continue;
    ssize_t received = ::read(output_.get(), buffer, sizeof(buffer));
    if (received < 0 && errno == EINTR) continue;
    if (received <= 0) break;  // EOF: every writer has exited
    partial.append(buffer, static_cast<std::size_t>(received));
    std::lock_guard lock(mutex_);
    std::size_t start = 0;
    for (std::size_t end; (end = partial.find('\n', start)) != std::string::npos; start = end + 1) {
      add_line(partial.substr(start, end - start));
    }
    partial.erase(0, start);
    changed_.notify_all();
  }
  std::lock_guard lock(mutex_);
  if (!partial.empty()) add_line(std::move(partial));
  output_closed_ = true;
  changed_.notify_all();
}

void HerdProcess::add_line(std::string line) {
  static const std::regex worker_started(R"(Worker (\d+) started)");
  std::smatch match;
  if (std::regex_search(line, match, worker_started)) {
    worker_pids_.push_back(static_cast<pid_t>(std::stol(match[1].str())));
  }
  lines_.push_back(std::move(line));
}

// SIGKILLs the workers this master announced that are still running. A pid
// is only trusted while its process is no older than the master: an older
// process with that pid is not one of ours.
void HerdProcess::kill_leftovers() {
  for (pid_t worker : worker_pids()) {
    if (!pid_alive(worker)) continue;
    std::optional<ProcStat> stat = read_proc_stat(worker);
    if (stat && start_time_ != 0 && stat->start_time < start_time_) continue;
    ::kill(worker, SIGKILL);
  }
}

void HerdProcess::stop_reader() {
  if (!reader_.joinable()) return;
  {
    // Collect what the last writers said, but never wait on a process that
    // escaped (it would hold the pipe open forever).
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, kOutputDrainTimeout, [this] { return output_closed_; });
  }
  char wake = 1;
  ssize_t ignored = ::write(wake_write_.get(), &wake, 1);
  (void)ignored;
  reader_.join();
}

// ---- start_cluster ----------------------------------------------------------

TempDir::TempDir() {
  std::string name = "/tmp/herd-e2e-XXXXXX";
  if (::mkdtemp(name.data()) != nullptr) path_ = name;
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::optional<Cluster> start_cluster(std::size_t workers,
                                     const std::vector<std::string>& extra_args) {
  std::vector<std::string> args{"--host", "127.0.0.1", "--port", "0"};
  args.insert(args.end(), {"--workers", std::to_string(workers), "--log-level", "debug"});

  Cluster cluster;
  if (cluster.dir.path().empty()) {
    ADD_FAILURE() << "mkdtemp() failed: " << errno_text(errno);
    return std::nullopt;
  }
  args.push_back("--control");
  args.push_back(cluster.dir.path() + "/control.sock");
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  cluster.herd = std::make_unique<HerdProcess>(args);
  HerdProcess& herd = *cluster.herd;
  if (herd.pid() < 0) {
    ADD_FAILURE() << "cannot start " << kHerdPath << ": " << herd.start_error();
    return std::nullopt;
  }

  static const std::regex listening(R"(listening on 127\.0\.0\.1:(\d+))");
  std::optional<LineMatch> listen_line = herd.wait_for_line(listening, kStartTimeout);
  if (!listen_line) {
    ADD_FAILURE() << "herd did not log 'listening on 127.0.0.1:<port>' within "
                  << kStartTimeout.count() << " ms";
    return std::nullopt;
  }
  cluster.port = static_cast<std::uint16_t>(std::stoul((*listen_line)[1]));

  static const std::regex ready(R"(Worker (\d+) ready(?: \(id (\d+), slot (\d+)\))?)");
  cluster.ready = herd.wait_for_lines(ready, workers, kStartTimeout);
  if (cluster.ready.size() < workers) {
    ADD_FAILURE() << "only " << cluster.ready.size() << " of " << workers
                  << " 'Worker <pid> ready' lines within " << kStartTimeout.count() << " ms";
    return std::nullopt;
  }
  return cluster;
}

std::optional<Cluster> start_master(std::size_t workers,
                                    const std::vector<std::string>& extra_args) {
  Cluster cluster;
  if (cluster.dir.path().empty()) {
    ADD_FAILURE() << "mkdtemp() failed: " << errno_text(errno);
    return std::nullopt;
  }
  std::vector<std::string> args{"--host",    "127.0.0.1",          "--port",
                                "0",         "--workers",          std::to_string(workers),
                                "--control", control_path(cluster)};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  cluster.herd = std::make_unique<HerdProcess>(args);
  if (cluster.herd->pid() < 0) {
    ADD_FAILURE() << "cannot start " << kHerdPath << ": " << cluster.herd->start_error();
    return std::nullopt;
  }
  static const std::regex listening(R"(listening on 127\.0\.0\.1:(\d+))");
  std::optional<LineMatch> listen_line = cluster.herd->wait_for_line(listening, kStartTimeout);
  if (!listen_line) {
    ADD_FAILURE() << "herd did not log 'listening on 127.0.0.1:<port>' within "
                  << kStartTimeout.count() << " ms";
    return std::nullopt;
  }
  cluster.port = static_cast<std::uint16_t>(std::stoul((*listen_line)[1]));
  return cluster;
}

std::string control_path(const Cluster& cluster) {
  return cluster.dir.path() + "/control.sock";
}

// ---- HTTP -------------------------------------------------------------------

std::string HttpResponse::header(std::string_view name) const {
  auto found = headers.find(to_lower(std::string(name)));
  return found == headers.end() ? std::string() : found->second;
}

HttpClient::HttpClient(std::uint16_t port, Milliseconds io_timeout) : io_timeout_(io_timeout) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socket_ = connect_bounded(reinterpret_cast<const sockaddr*>(&address), sizeof(address),
                            "127.0.0.1:" + std::to_string(port), io_timeout_, error_);
}

bool HttpClient::send(std::string_view bytes) {
  if (!socket_) {
    if (error_.empty()) error_ = "not connected";
    return false;
  }
  error_ = send_all(socket_.get(), bytes, io_timeout_);
  return error_.empty();
}

// Beast's parser takes the bytes it can use and leaves the rest: the caller
// keeps them and offers them again with whatever arrives next. A parser is
// used for one response only; pending_ carries bytes of the next one.
HttpReadResult HttpClient::read_responses(std::size_t count) {
  namespace http = boost::beast::http;
  using Parser = http::response_parser<http::string_body>;

  HttpReadResult result;
  if (!socket_) {
    result.error = error_.empty() ? "not connected" : error_;
    return result;
  }
  std::optional<Parser> parser;
  parser.emplace();
  parser->eager(true);

  auto take_response = [&] {
    auto message = parser->release();
    HttpResponse response;
    response.status = message.result_int();
    response.body = std::move(message.body());
    response.keep_alive = message.keep_alive();
    for (const auto& field : message) {
      auto name = field.name_string();
      auto value = field.value();
      response.headers[to_lower(std::string(name.data(), name.size()))] =
          std::string(value.data(), value.size());
    }
    result.responses.push_back(std::move(response));
    parser.emplace();
    parser->eager(true);
  };

  while (result.responses.size() < count) {
    // Parse what has arrived.
    while (!pending_.empty() && result.responses.size() < count) {
      boost::system::error_code error;
      std::size_t used = parser->put(boost::asio::buffer(pending_), error);
      pending_.erase(0, used);
      if (error == http::error::need_more) break;
      if (error) {
        result.error = "HTTP parse error in response " +
                       std::to_string(result.responses.size() + 1) + ": " + error.message();
        return result;
      }
      if (parser->is_done()) {
        take_response();
      } else if (used == 0) {
        break;
      }
    }
    if (result.responses.size() >= count) break;

    if (peer_closed_) {
      // A response delimited by the end of the connection is complete now.
      boost::system::error_code error;
      if (parser->got_some()) parser->put_eof(error);
      if (!error && parser->is_done()) {
        take_response();
        continue;
      }
      result.error = "the server closed the connection after " +
                     std::to_string(result.responses.size()) + " of " + std::to_string(count) +
                     " responses";
      break;
    }

    char buffer[16384];
    ssize_t received = ::recv(socket_.get(), buffer, sizeof(buffer), 0);
    if (received > 0) {
      pending_.append(buffer, static_cast<std::size_t>(received));
    } else if (received == 0 || errno == ECONNRESET) {
      peer_closed_ = true;
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      result.error = "timed out after " + std::to_string(io_timeout_.count()) +
                     " ms waiting for response " + std::to_string(result.responses.size() + 1) +
                     " of " + std::to_string(count);
      break;
    } else {
      result.error = "recv() failed: " + errno_text(errno);
      break;
    }
  }

  // Notice a close that has already happened, without waiting for one.
  result.server_closed = server_has_closed();
  return result;
}

bool HttpClient::wait_for_close(Milliseconds timeout) {
  if (!socket_) return false;
  Clock::time_point deadline = Clock::now() + timeout;
  while (!peer_closed_) {
    auto remaining = std::chrono::duration_cast<Milliseconds>(deadline - Clock::now()).count();
    if (remaining <= 0) return false;
    pollfd readable{socket_.get(), POLLIN, 0};
    int ready = ::poll(&readable, 1, static_cast<int>(remaining));
    if (ready < 0 && errno != EINTR) {
      error_ = "poll() failed: " + errno_text(errno);
      return false;
    }
    if (ready <= 0) continue;
    char buffer[4096];
    ssize_t received = ::recv(socket_.get(), buffer, sizeof(buffer), MSG_DONTWAIT);
    if (received > 0) {
      pending_.append(buffer, static_cast<std::size_t>(received));
    } else if (received == 0 || errno == ECONNRESET) {
      peer_closed_ = true;
    } else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
      error_ = "recv() failed: " + errno_text(errno);
      return false;
    }
  }
  return true;
}

bool HttpClient::server_has_closed() {
  if (!socket_) return true;
  while (!peer_closed_) {
    char buffer[4096];
    ssize_t received = ::recv(socket_.get(), buffer, sizeof(buffer), MSG_DONTWAIT);
    if (received > 0) {
      pending_.append(buffer, static_cast<std::size_t>(received));
    } else if (received == 0 || errno == ECONNRESET) {
      peer_closed_ = true;
    } else if (errno != EINTR) {
      break;
    }
  }
  return peer_closed_;
}

std::optional<int> HttpClient::tcp_state() const {
  if (!socket_) return std::nullopt;
  tcp_info info{};
  socklen_t length = sizeof(info);
  if (::getsockopt(socket_.get(), IPPROTO_TCP, TCP_INFO, &info, &length) != 0) return std::nullopt;
  return info.tcpi_state;
}

std::string get_request(std::string_view target) {
  std::string request = "GET ";
  request += target;
  request += " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  return request;
}

HttpReadResult http_exchange(std::uint16_t port, std::string_view request, std::size_t count) {
  HttpClient client(port);
  if (!client.send(request)) {
    HttpReadResult failed;
    failed.error = client.error();
    return failed;
  }
  return client.read_responses(count);
}

HttpReadResult http_get(std::uint16_t port, std::string_view target) {
  return http_exchange(port, get_request(target), 1);
}

// ---- the control socket -----------------------------------------------------

ControlClient::ControlClient(const std::string& path, Milliseconds io_timeout)
    : io_timeout_(io_timeout) {
  sockaddr_un address;
  if (!make_unix_address(path, address, error_)) return;
  socket_ = connect_bounded(reinterpret_cast<const sockaddr*>(&address), sizeof(address), path,
                            io_timeout_, error_);
}

bool ControlClient::send(std::string_view bytes) {
  if (!socket_) {
    if (error_.empty()) error_ = "not connected";
    return false;
  }
  error_ = send_all(socket_.get(), bytes, io_timeout_);
  return error_.empty();
}

bool ControlClient::send_line(std::string_view line) {
  std::string framed(line);
  framed += '\n';
  return send(framed);
}

bool ControlClient::receive_until(Clock::time_point deadline) {
  for (;;) {
    auto remaining = std::chrono::duration_cast<Milliseconds>(deadline - Clock::now()).count();
    if (remaining <= 0) {
      error_ = "timed out waiting for the master";
      return false;
    }
    pollfd readable{socket_.get(), POLLIN, 0};
    int ready = ::poll(&readable, 1, static_cast<int>(remaining));
    if (ready < 0) {
      if (errno == EINTR) continue;
      error_ = "poll() failed: " + errno_text(errno);
      return false;
    }
    if (ready == 0) continue;
    char buffer[16384];
    ssize_t received = ::recv(socket_.get(), buffer, sizeof(buffer), MSG_DONTWAIT);
    if (received > 0) {
      pending_.append(buffer, static_cast<std::size_t>(received));
      return true;
    }
    if (received == 0 || errno == ECONNRESET) {
      peer_closed_ = true;
      return true;
    }
    if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
      error_ = "recv() failed: " + errno_text(errno);
      return false;
    }
  }
}

std::optional<std::string> ControlClient::read_line(Milliseconds timeout) {
  if (!socket_) {
    if (error_.empty()) error_ = "not connected";
    return std::nullopt;
  }
  Clock::time_point deadline = Clock::now() + timeout;
  for (;;) {
    std::size_t end = pending_.find('\n');
    if (end != std::string::npos) {
      std::string line = pending_.substr(0, end);
      pending_.erase(0, end + 1);
      return line;
    }
    if (peer_closed_) {
      error_ = "the master closed the connection" +
               (pending_.empty() ? std::string() : " after a partial line: " + pending_);
      return std::nullopt;
    }
    if (!receive_until(deadline)) {
      error_ += " (" + std::to_string(timeout.count()) + " ms for a line)";
      return std::nullopt;
    }
  }
}

std::optional<nlohmann::json> ControlClient::read_json(Milliseconds timeout) {
  std::optional<std::string> line = read_line(timeout);
  if (!line) return std::nullopt;
  nlohmann::json parsed = nlohmann::json::parse(*line, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    error_ = "the master wrote a line that is not JSON: " + *line;
    return std::nullopt;
  }
  return parsed;
}

std::optional<nlohmann::json> ControlClient::request(const nlohmann::json& request,
                                                     Milliseconds timeout) {
  if (!send_line(request.dump())) return std::nullopt;
  return read_json(timeout);
}

bool ControlClient::wait_for_close(Milliseconds timeout) {
  if (!socket_) return false;
  Clock::time_point deadline = Clock::now() + timeout;
  while (!peer_closed_) {
    if (!receive_until(deadline)) return false;
  }
  return true;
}

std::optional<nlohmann::json> control_request(const std::string& path,
                                              const nlohmann::json& request, Milliseconds timeout,
                                              std::string* error) {
  ControlClient client(path);
  std::optional<nlohmann::json> reply = client.request(request, timeout);
  if (!reply && error != nullptr) *error = client.error();
  return reply;
}

bool is_ok(const nlohmann::json& reply) {
  return reply.is_object() && reply.value("ok", false) == true;
}

std::uint64_t number(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_number_unsigned() ? it->get<std::uint64_t>() : 0;
}

std::optional<nlohmann::json> status_of(const Cluster& cluster) {
  std::optional<nlohmann::json> reply = control_request(control_path(cluster), {{"cmd", "status"}});
  if (!reply || !is_ok(*reply) || !reply->contains("workers")) return std::nullopt;
  return reply;
}

void RequestLoop::run(std::uint16_t port) {
  auto deadline = std::chrono::steady_clock::now() + kMaxLoopDuration;
  while (!stop_ && done_ < kMaxLoopRequests && std::chrono::steady_clock::now() < deadline) {
    HttpReadResult result = http_get(port, "/");
    std::string where = "request " + std::to_string(done_) + ": ";
    if (!result.ok()) {
      failures_.push_back(where + result.error);
    } else if (result.responses[0].status != 200) {
      failures_.push_back(where + "status " + std::to_string(result.responses[0].status));
    }
    ++done_;
  }
}

}  // namespace herd::e2e
