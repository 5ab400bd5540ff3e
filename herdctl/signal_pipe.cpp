#include "herdctl/signal_pipe.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <array>
#include <cerrno>

#include "common/errno_text.h"

namespace herd::ctl {
namespace {

// The handler's only state: where to write.
int signal_write_fd = -1;

extern "C" void on_signal(int signal) {
  int saved_errno = errno;
  char byte = static_cast<char>(signal);
  ssize_t ignored = ::write(signal_write_fd, &byte, 1);
  (void)ignored;
  errno = saved_errno;
}

void set_handler(int signal, void (*handler)(int)) {
  struct sigaction action {};
  action.sa_handler = handler;
  sigemptyset(&action.sa_mask);
  ::sigaction(signal, &action, nullptr);
}

}  // namespace

bool SignalPipe::open(std::string& error) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    error = "pipe2() failed: " + errno_text(errno);
    return false;
  }
  read_end_.reset(fds[0]);
  write_end_.reset(fds[1]);
  signal_write_fd = write_end_.get();
  return true;
}

void SignalPipe::catch_signal(int signal) {
  set_handler(signal, on_signal);
}

void SignalPipe::default_signal(int signal) {
  set_handler(signal, SIG_DFL);
}

std::vector<int> SignalPipe::take() {
  std::vector<int> signals;
  std::array<char, 64> bytes{};
  ssize_t count;
  while ((count = ::read(read_end_.get(), bytes.data(), bytes.size())) > 0) {
    signals.insert(signals.end(), bytes.begin(), bytes.begin() + count);
  }
  return signals;
}

}  // namespace herd::ctl
