// The signals herdctl acts on (Ctrl-C in `events` and `top`, SIGWINCH and
// SIGTSTP in the live view), turned into bytes on a self-pipe: the handler
// writes the signal's number and does nothing else, the poll() loop reads the
// pipe and acts. One SignalPipe per process: the handler has one write end.
#pragma once

#include <string>
#include <vector>

#include "common/unique_fd.h"

namespace herd::ctl {

class SignalPipe {
 public:
  SignalPipe() = default;
  SignalPipe(const SignalPipe&) = delete;
  SignalPipe& operator=(const SignalPipe&) = delete;

  // Makes the pipe; false, with the reason in `error`, if it cannot (the
  // signals then keep their default action).
  bool open(std::string& error);
  // Routes `signal` to the pipe (after open()), or back to its default action.
  void catch_signal(int signal);
  static void default_signal(int signal);

  // Readable once a caught signal has arrived.
  int read_fd() const { return read_end_.get(); }
  // The signals that arrived since the last call, in order; empty if none.
  std::vector<int> take();

 private:
  UniqueFd read_end_;
  UniqueFd write_end_;
};

}  // namespace herd::ctl
