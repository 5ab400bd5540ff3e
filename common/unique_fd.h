// UniqueFd: the one owner of a file descriptor. Move-only, closes on
// destruction, so a leak or a double close cannot be written by accident.
#pragma once

#include <utility>

namespace herd {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  ~UniqueFd() { reset(); }

  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return valid(); }

  // Gives up ownership; the caller now closes the fd.
  [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }

  // Closes the held fd (if any) and takes `fd`. close() is never retried on
  // EINTR: on Linux the fd is released even when close() reports EINTR.
  void reset(int fd = -1) noexcept;

 private:
  int fd_ = -1;
};

}  // namespace herd
