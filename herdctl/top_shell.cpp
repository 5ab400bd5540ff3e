#include "herdctl/top_shell.h"

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <exception>
#include <iostream>
#include <optional>
#include <utility>
#include <vector>

#include "common/errno_text.h"
#include "herdctl/exit_status.h"
#include "herdctl/format.h"
#include "herdctl/signal_pipe.h"
#include "herdctl/terminal.h"
#include "herdctl/top.h"

namespace herd::ctl {
namespace {

using nlohmann::json;
namespace reply = proto::reply;

// A master that is up accepts at once; only a full listen backlog makes
// connect() wait, and the view must not freeze on it for long.
constexpr Milliseconds kConnectTimeout{1000};

// One run of `herdctl top`: the loop and what it keeps between polls.
class TopScreen {
 public:
  explicit TopScreen(const TopOptions& options)
      : options_(options), live_(::isatty(STDOUT_FILENO) == 1) {}

  int run();

 private:
  bool install_signal_pipe(std::string& error);
  void wait_and_dispatch();
  void start_poll();
  bool send_requests(std::string& error);
  void read_replies();
  void finish_poll(std::optional<std::string> error);
  void handle_signals();
  void read_keys();
  void suspend();
  void draw();
  void stop(int exit_status, std::string message = {});

  const TopOptions& options_;
  const bool live_;  // stdout is a terminal: the live view, else plain frames
  Terminal terminal_{STDIN_FILENO, STDOUT_FILENO};
  SignalPipe signals_;

  std::optional<ControlClient> client_;  // kept open between polls
  bool polling_ = false;                 // the requests are out, the replies not all in
  std::vector<json> replies_;            // status, then stats
  std::optional<Clock::time_point> reply_deadline_;
  Clock::time_point next_poll_;

  TopHistory history_;
  std::optional<std::string> connection_error_;  // why the last poll got no answer
  std::uint64_t frames_ = 0;                     // polls drawn

  bool done_ = false;
  int exit_status_ = kExitOk;
  std::string exit_message_;
};

int TopScreen::run() {
  std::string error;
  if (!install_signal_pipe(error)) {
    std::cerr << "herdctl: " << error << std::endl;
    return kExitNoAnswer;
  }
  if (live_) {
    if (!terminal_.enter(error)) {
      std::cerr << "herdctl: cannot set up the terminal: " << error << std::endl;
      return kExitNoAnswer;
    }
    draw();  // "waiting for the master" until the first answer
  }
  next_poll_ = Clock::now();
  try {
    while (!done_) wait_and_dispatch();
  } catch (const std::exception& exception) {
    // Unwinding to here restores the terminal before the message is printed.
    stop(kExitNoAnswer, std::string("top failed: ") + exception.what());
  }
  terminal_.leave();
  if (!exit_message_.empty()) std::cerr << "herdctl: " << exit_message_ << std::endl;
  return exit_status_;
}

// The signals top acts on. In the live view it also catches SIGWINCH (redraw
// at the new size) and SIGTSTP (give the terminal back before stopping).
bool TopScreen::install_signal_pipe(std::string& error) {
  if (!signals_.open(error)) return false;
  for (int signal : {SIGINT, SIGTERM, SIGHUP}) signals_.catch_signal(signal);
  if (live_) {
    signals_.catch_signal(SIGWINCH);
    signals_.catch_signal(SIGTSTP);
  }
  return true;
}

// One turn of the loop: polls the master when it is time, then waits for a
// signal, a key, the replies or the next deadline, whichever comes first.
void TopScreen::wait_and_dispatch() {
  if (!polling_ && Clock::now() >= next_poll_) start_poll();
  if (done_) return;

  std::array<pollfd, 3> fds{};
  nfds_t count = 0;
  fds[count++] = {signals_.read_fd(), POLLIN, 0};
  std::optional<nfds_t> keys_index;
  if (live_ && terminal_.reads_keys()) {
    keys_index = count;
    fds[count++] = {STDIN_FILENO, POLLIN, 0};
  }
  std::optional<nfds_t> socket_index;
  if (polling_) {
    socket_index = count;
    fds[count++] = {client_->fd(), POLLIN, 0};
  }
  std::optional<Clock::time_point> wake_at = polling_ ? reply_deadline_ : next_poll_;
  int ready = ::poll(fds.data(), count, poll_timeout(wake_at));
  if (ready < 0) {
    // A signal: the pipe has it, the next turn reads it.
    if (errno == EINTR) return;
    stop(kExitNoAnswer, "poll() failed: " + errno_text(errno));
    return;
  }
  if (fds[0].revents != 0) handle_signals();
  if (!done_ && keys_index && fds[*keys_index].revents != 0) read_keys();
  if (!done_ && socket_index && fds[*socket_index].revents != 0) read_replies();
  if (!done_ && polling_ && reply_deadline_ && Clock::now() >= *reply_deadline_) {
    finish_poll(
        "no reply from the master at " + options_.socket_path + " within " +
        std::to_string(std::chrono::ceil<std::chrono::seconds>(*options_.reply_timeout).count()) +
        " s");
  }
}

// Sends this interval's requests; a failure is this poll's answer.
void TopScreen::start_poll() {
  Clock::time_point now = Clock::now();
  // On the interval's beat, unless a slow reply or a suspend put us behind.
  next_poll_ += options_.interval;
  if (next_poll_ <= now) next_poll_ = now + options_.interval;

  std::string error;
  if (!send_requests(error)) {
    finish_poll(std::move(error));
    return;
  }
  polling_ = true;
  replies_.clear();
  reply_deadline_.reset();
  if (options_.reply_timeout) reply_deadline_ = now + *options_.reply_timeout;
}

// `status` then `stats`, pipelined on the kept connection. The master drops a
// client silent for 30 s, so a kept connection may be gone: one fresh try then.
bool TopScreen::send_requests(std::string& error) {
  auto send_both = [this] {
    return client_->send_line(R"({"cmd":"status"})") && client_->send_line(R"({"cmd":"stats"})");
  };
  if (client_ && send_both()) return true;
  client_.emplace(options_.socket_path, kConnectTimeout);
  if (!client_->connected()) {
    bool not_running = client_->error_number() == ENOENT || client_->error_number() == ECONNREFUSED;
    error = "cannot connect to " + options_.socket_path + ": " + client_->error() +
            (not_running ? " (is herd running? use -s or -p)" : "");
    client_.reset();
    return false;
  }
  if (send_both()) return true;
  error = "cannot send to " + options_.socket_path + ": " + client_->error();
  client_.reset();
  return false;
}

// Takes the reply lines that have arrived; the poll is over once both have.
void TopScreen::read_replies() {
  for (;;) {
    ReadResult result = client_->read_line(Milliseconds{0});
    switch (result.outcome) {
      case ReadOutcome::kTimeout:
        return;  // the rest is still on its way
      case ReadOutcome::kLine:
        replies_.push_back(json::parse(result.line, nullptr, /*allow_exceptions=*/false));
        if (replies_.size() == 2) {
          finish_poll(std::nullopt);
          return;
        }
        break;
      case ReadOutcome::kClosed:
        finish_poll("the master at " + options_.socket_path + " closed the connection");
        return;
      case ReadOutcome::kInterrupted:  // no interrupt fd is given
      case ReadOutcome::kError:
        finish_poll("reading from " + options_.socket_path + ": " + result.error);
        return;
    }
  }
}

// Records the poll's outcome, a sample or why there is none, and draws it.
void TopScreen::finish_poll(std::optional<std::string> error) {
  polling_ = false;
  if (!error) {
    for (const json& reply : replies_) {
      bool answered =
          reply.is_object() && reply.contains(reply::kOk) && reply[reply::kOk].is_boolean();
      if (!answered) {
        error = "unexpected reply from the master: " + reply.dump();
      } else if (!reply[reply::kOk].get<bool>()) {
        error = "the master refused: " + reply_error(reply);
      }
      if (error) break;
    }
  }
  if (error) {
    connection_error_ = std::move(error);
    client_.reset();  // made anew at the next poll
  } else {
    connection_error_.reset();
    history_.add({std::move(replies_[0]), std::move(replies_[1])});
  }
  replies_.clear();
  ++frames_;
  draw();
  if (!done_ && options_.iterations != 0 && frames_ >= options_.iterations) {
    if (connection_error_) {
      stop(kExitNoAnswer, *connection_error_);
    } else {
      stop(kExitOk);
    }
  }
}

void TopScreen::handle_signals() {
  for (int signal : signals_.take()) {
    if (done_) return;
    switch (signal) {
      case SIGINT:
      case SIGTERM:
      case SIGHUP:
        stop(kExitOk);
        break;
      case SIGWINCH:
        draw();
        break;
      case SIGTSTP:
        suspend();
        break;
      default:
        break;
    }
  }
}

void TopScreen::read_keys() {
  std::array<char, 64> keys{};
  ssize_t count = ::read(STDIN_FILENO, keys.data(), keys.size());
  if (count < 0) {
    if (errno == EINTR || errno == EAGAIN) return;
    stop(kExitNoAnswer, "reading the keyboard: " + errno_text(errno));
    return;
  }
  // End of input: the terminal has gone, and nobody is watching.
  if (count == 0) {
    stop(kExitOk);
    return;
  }
  // Only a lower-case q: function keys send escape sequences ending in 'Q'.
  if (std::find(keys.begin(), keys.begin() + count, 'q') != keys.begin() + count) stop(kExitOk);
}

// Ctrl-Z: gives the shell its screen and settings back, stops as SIGTSTP
// would have, and takes the terminal again once continued.
void TopScreen::suspend() {
  terminal_.leave();
  SignalPipe::default_signal(SIGTSTP);
  ::raise(SIGTSTP);  // returns once continued (at once if the shell has no job control)
  signals_.catch_signal(SIGTSTP);
  std::string error;
  if (!terminal_.enter(error)) {
    stop(kExitNoAnswer, "cannot set up the terminal again: " + error);
    return;
  }
  draw();
}

void TopScreen::draw() {
  TopView view;
  view.mode = live_ ? TopMode::kLive : TopMode::kPlain;
  view.socket_path = options_.socket_path;
  view.interval_ms = static_cast<std::uint64_t>(options_.interval.count());
  view.connection_error = connection_error_;
  std::string error;
  if (live_) {
    ScreenSize size = terminal_.size();
    if (!terminal_.draw(render_top(history_.samples(), view, size), size, error)) {
      stop(kExitNoAnswer, "cannot draw on the terminal: " + error);
    }
    return;
  }
  // Plain frames are separated by a blank line, and have none inside.
  std::string text = frames_ > 1 ? "\n" : "";
  for (const std::string& line : render_top(history_.samples(), view, kUnlimited)) {
    text += line + "\n";
  }
  if (!write_all(STDOUT_FILENO, text, error)) stop(kExitNoAnswer, "cannot write: " + error);
}

void TopScreen::stop(int exit_status, std::string message) {
  done_ = true;
  exit_status_ = exit_status;
  exit_message_ = std::move(message);
}

}  // namespace

int run_top(const TopOptions& options) {
  TopScreen screen(options);
  return screen.run();
}

}  // namespace herd::ctl
