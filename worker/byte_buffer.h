// ByteBuffer: a growable byte window for socket I/O. Bytes are appended at the
// end (read() straight into writable()) and consumed from the front, without
// zero-filling the space a read may use, as std::string::resize would on every
// read.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>

namespace herd {

class ByteBuffer {
 public:
  std::string_view readable() const { return {data_.get() + begin_, end_ - begin_}; }
  std::size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }

  // Room for at least `at_least` bytes after the readable ones: moves them to
  // the front or grows (doubling) as needed.
  char* writable(std::size_t at_least) {
    if (capacity_ - end_ >= at_least) return data_.get() + end_;
    std::size_t length = size();
    if (begin_ > 0 && capacity_ - length >= at_least) {
      std::memmove(data_.get(), data_.get() + begin_, length);
    } else {
      std::size_t capacity = capacity_ == 0 ? at_least : capacity_;
      while (capacity - length < at_least) capacity *= 2;
      auto grown = std::make_unique_for_overwrite<char[]>(capacity);
      if (length > 0) std::memcpy(grown.get(), data_.get() + begin_, length);
      data_ = std::move(grown);
      capacity_ = capacity;
    }
    begin_ = 0;
    end_ = length;
    return data_.get() + end_;
  }
  std::size_t writable_size() const { return capacity_ - end_; }
  void commit(std::size_t written) { end_ += written; }

  void append(std::string_view bytes) {
    std::memcpy(writable(bytes.size()), bytes.data(), bytes.size());
    commit(bytes.size());
  }
  void consume(std::size_t count) {
    begin_ += count;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  // Frees the memory once empty (an idle keep-alive connection need not hold it).
  void release_if_empty() {
    if (!empty()) return;
    data_.reset();
    capacity_ = begin_ = end_ = 0;
  }

 private:
  std::unique_ptr<char[]> data_;
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace herd
