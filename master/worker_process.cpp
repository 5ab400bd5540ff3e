#include "master/worker_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <string_view>

#include "common/fd_passing.h"

extern char** environ;

namespace herd {
namespace {

// Everything the child needs is built before fork(): after it, only
// async-signal-safe calls are allowed.
std::vector<std::string> build_environment(const WorkerCommand& command, WorkerId id,
                                           std::size_t slot) {
  std::vector<std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    // The master's own settings, and systemd's notify socket: only the
    // master speaks for the service (NotifyAccess=main).
    std::string_view variable(*entry);
    if (variable.starts_with(proto::kWorkerEnvPrefix) || variable.starts_with("NOTIFY_SOCKET=")) {
      continue;
    }
    env.emplace_back(variable);
  }
  proto::WorkerEnv worker_env = command.env;
  worker_env.channel_fd = kWorkerChannelFd;
  if (command.listen_fd >= 0) worker_env.listen_fd = kWorkerListenFd;
  worker_env.worker_id = id;
  worker_env.slot = slot;
  std::vector<std::string> entries = proto::to_environment(worker_env);
  env.insert(env.end(), entries.begin(), entries.end());
  return env;
}

// A pipe for one of the worker's output streams. Both ends are
// close-on-exec (the child moves its end into place with dup2), so no other
// worker holds it and the master sees end of file when this one exits. Only
// the master's end is non-blocking.
bool make_output_pipe(UniqueFd& read_end, UniqueFd& write_end, std::string& error) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    error = std::string("pipe2() failed: ") + std::strerror(errno);
    return false;
  }
  read_end.reset(fds[0]);
  write_end.reset(fds[1]);
  if (::fcntl(read_end.get(), F_SETFL, O_NONBLOCK) != 0) {
    error = std::string("fcntl(O_NONBLOCK) on a pipe failed: ") + std::strerror(errno);
    return false;
  }
  return true;
}

std::vector<char*> as_argv(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (std::string& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

// Descriptors the child moves into place, as the master created them.
struct ChildFds {
  int channel;
  int listen;  // -1 without --schedule none
  int stdout_pipe;
  int stderr_pipe;
};

// Writes "herd: <what>: errno <n>" on stderr in one write(), with
// async-signal-safe calls only (std::to_chars neither allocates nor locks).
void tell_failure(std::string_view what, int error) {
  char line[160];
  std::string_view prefix = "herd: ";
  std::string_view middle = ": errno ";
  what = what.substr(0, 120);
  char* end = std::copy(prefix.begin(), prefix.end(), line);
  end = std::copy(what.begin(), what.end(), end);
  end = std::copy(middle.begin(), middle.end(), end);
  end = std::to_chars(end, line + sizeof(line) - 1, error).ptr;
  *end++ = '\n';
  ssize_t ignored = ::write(STDERR_FILENO, line, static_cast<std::size_t>(end - line));
  (void)ignored;
}

[[noreturn]] void exec_child(ChildFds fds, pid_t master, const Credentials* credentials,
                             char* const* argv, char* const* envp) {
  // Out of the way first: the listening socket and the pipes may sit on the
  // descriptors they and the channel are bound for (1 to 4).
  for (int* fd : {&fds.listen, &fds.stdout_pipe, &fds.stderr_pipe}) {
    if (*fd >= 0 && (*fd = ::fcntl(*fd, F_DUPFD_CLOEXEC, 10)) < 0) ::_exit(127);
  }
  if (fds.channel == kWorkerChannelFd) {
    ::fcntl(fds.channel, F_SETFD, 0);  // dup2 onto itself would keep FD_CLOEXEC
  } else if (::dup2(fds.channel, kWorkerChannelFd) < 0) {
    ::_exit(127);
  }
  if (fds.listen >= 0 && ::dup2(fds.listen, kWorkerListenFd) < 0) ::_exit(127);
  // From here on a failure can be told on the worker's own stderr, which the
  // master logs.
  if (::dup2(fds.stdout_pipe, STDOUT_FILENO) < 0 || ::dup2(fds.stderr_pipe, STDERR_FILENO) < 0) {
    ::_exit(127);
  }

  // --user/--group: drop root before anything of the worker's runs.
  if (credentials != nullptr) {
    const char* failure = nullptr;
    if (!become(*credentials, failure)) {
      tell_failure(failure, errno);
      ::_exit(126);
    }
  }
  // Hear about the master's death even without reading the channel (SIGTERM,
  // so the worker can drain); if it is already gone, do not start at all.
  // After the change of user, which clears it.
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != master) ::_exit(127);

  // The master's handlers (libevent's, which write to the master's own
  // signal pipe) and its ignored SIGPIPE must not reach the worker. Signals
  // are blocked across fork(), so none can run a master handler here.
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  for (int signal = 1; signal < NSIG; ++signal) ::sigaction(signal, &default_action, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);

  ::execve(argv[0], argv, envp);
  const char message[] = "herd: exec of worker program failed\n";
  ssize_t ignored = ::write(STDERR_FILENO, message, sizeof(message) - 1);
  (void)ignored;
  ::_exit(127);
}

}  // namespace

SpawnedWorker spawn_worker(const WorkerCommand& command, WorkerId id, std::size_t slot) {
  SpawnedWorker result;
  UniqueFd master_end;
  UniqueFd worker_end;
  // Both channel ends are O_NONBLOCK; the worker's event loop wants that too.
  if (!make_channel_pair(master_end, worker_end)) {
    result.error = std::string("socketpair() failed: ") + std::strerror(errno);
    return result;
  }

  UniqueFd stdout_write;
  UniqueFd stderr_write;
  if (!make_output_pipe(result.stdout_pipe, stdout_write, result.error) ||
      !make_output_pipe(result.stderr_pipe, stderr_write, result.error)) {
    return result;
  }

  std::vector<std::string> argv_strings{command.program};
  argv_strings.insert(argv_strings.end(), command.args.begin(), command.args.end());
  std::vector<std::string> env_strings = build_environment(command, id, slot);
  std::vector<char*> argv = as_argv(argv_strings);
  std::vector<char*> envp = as_argv(env_strings);
  pid_t master = ::getpid();

  sigset_t all;
  sigset_t previous;
  sigfillset(&all);
  ::sigprocmask(SIG_SETMASK, &all, &previous);
  pid_t pid = ::fork();
  if (pid == 0) {
    exec_child({worker_end.get(), command.listen_fd, stdout_write.get(), stderr_write.get()},
               master, command.credentials ? &*command.credentials : nullptr, argv.data(),
               envp.data());
  }
  int fork_errno = errno;
  ::sigprocmask(SIG_SETMASK, &previous, nullptr);
  if (pid < 0) {
    result.error = std::string("fork() failed: ") + std::strerror(fork_errno);
    return result;
  }

  result.pid = pid;
  result.channel = std::move(master_end);
  return result;
}

}  // namespace herd
