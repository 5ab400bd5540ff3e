// The terminal herdctl top draws on. While a Terminal is entered, the view
// has the alternate screen to itself with the cursor hidden, and keys arrive
// one at a time without echo (termios without ICANON and ECHO; ISIG stays, so
// Ctrl-C and Ctrl-Z still raise their signals). Leaving, or destroying it,
// gives the operator back the screen and the settings exactly as they were.
#pragma once

#include <termios.h>

#include <optional>
#include <string>
#include <vector>

#include "herdctl/top.h"

namespace herd::ctl {

class Terminal {
 public:
  // `input_fd` gives the keys when it is a terminal (else no key is read, and
  // its settings are left alone); `output_fd` is drawn on.
  Terminal(int input_fd, int output_fd) : input_fd_(input_fd), output_fd_(output_fd) {}
  ~Terminal() { leave(); }

  Terminal(const Terminal&) = delete;
  Terminal& operator=(const Terminal&) = delete;

  // Saves the settings, then switches to unbuffered keys and the alternate
  // screen. False, with `error`, when the settings cannot be changed; nothing
  // is left changed then.
  bool enter(std::string& error);
  // Restores what enter() changed; does nothing when not entered. Safe to
  // call twice (on a suspend, then in the destructor).
  void leave();

  // Whether keys can be read from the input fd (it is a terminal).
  bool reads_keys() const { return saved_settings_.has_value(); }

  // The output's size from TIOCGWINSZ, read anew each time (it changes on
  // SIGWINCH); 80x24 when the terminal does not say.
  ScreenSize size() const;

  // Replaces the screen's content with `lines` (no wider or more than the
  // screen): each line is cleared and rewritten in place and the rest of the
  // screen cleared, in one write, so the view does not flicker. False, with
  // `error`, if the write failed (the terminal has gone).
  bool draw(const std::vector<std::string>& lines, ScreenSize size, std::string& error);

 private:
  int input_fd_;
  int output_fd_;
  bool entered_ = false;
  std::optional<termios> saved_settings_;  // the input's, while entered
};

// Writes all of `bytes` to `fd`, retrying after EINTR. False, with `error`,
// on failure.
bool write_all(int fd, const std::string& bytes, std::string& error);

}  // namespace herd::ctl
