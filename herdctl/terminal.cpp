#include "herdctl/terminal.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace herd::ctl {
namespace {

// xterm's private modes, which every terminal emulator in use follows:
// 1049 switches to the alternate screen (saving the cursor and clearing it),
// 25 shows the cursor.
constexpr const char* kEnterScreen = "\x1b[?1049h\x1b[?25l";
constexpr const char* kLeaveScreen = "\x1b[?25h\x1b[?1049l";

std::string move_to_row(std::size_t row) {
  return "\x1b[" + std::to_string(row) + ";1H";
}

}  // namespace

bool write_all(int fd, const std::string& bytes, std::string& error) {
  std::size_t written = 0;
  while (written < bytes.size()) {
    ssize_t count = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (count < 0) {
      if (errno == EINTR) continue;
      error = std::string("write() failed: ") + std::strerror(errno);
      return false;
    }
    written += static_cast<std::size_t>(count);
  }
  return true;
}

bool Terminal::enter(std::string& error) {
  if (entered_) return true;
  if (::isatty(input_fd_) == 1) {
    termios settings{};
    if (::tcgetattr(input_fd_, &settings) != 0) {
      error = std::string("tcgetattr() failed: ") + std::strerror(errno);
      return false;
    }
    termios keys = settings;
    keys.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
    // poll() says when a key is there; read() then returns it at once.
    keys.c_cc[VMIN] = 1;
    keys.c_cc[VTIME] = 0;
    if (::tcsetattr(input_fd_, TCSANOW, &keys) != 0) {
      error = std::string("tcsetattr() failed: ") + std::strerror(errno);
      return false;
    }
    saved_settings_ = settings;
  }
  entered_ = true;
  if (!write_all(output_fd_, kEnterScreen, error)) {
    leave();
    return false;
  }
  return true;
}

void Terminal::leave() {
  if (!entered_) return;
  entered_ = false;
  // Best effort: a terminal that has gone cannot be restored, and the
  // settings below must be restored whatever this write did.
  std::string ignored;
  write_all(output_fd_, kLeaveScreen, ignored);
  if (saved_settings_) {
    // TCSADRAIN: the leave sequence reaches the terminal before echo is back.
    ::tcsetattr(input_fd_, TCSADRAIN, &*saved_settings_);
    saved_settings_.reset();
  }
}

ScreenSize Terminal::size() const {
  winsize window{};
  if (::ioctl(output_fd_, TIOCGWINSZ, &window) != 0 || window.ws_col == 0 || window.ws_row == 0) {
    return ScreenSize{};
  }
  return {window.ws_col, window.ws_row};
}

bool Terminal::draw(const std::vector<std::string>& lines, ScreenSize size, std::string& error) {
  // Each line is cleared before it is written, not after: a line as wide as
  // the screen leaves the cursor on its last character, which an erase there
  // would wipe.
  std::string frame;
  for (std::size_t index = 0; index < lines.size(); ++index) {
    frame += move_to_row(index + 1) + "\x1b[2K" + lines[index];
  }
  if (lines.size() < size.height) frame += move_to_row(lines.size() + 1) + "\x1b[J";
  return write_all(output_fd_, frame, error);
}

}  // namespace herd::ctl
