// The text of an errno value, for the one log line or message that reports a
// failed system call: "sendmsg() to worker 3 failed: Broken pipe".
#pragma once

#include <cstring>
#include <string>

namespace herd {

inline std::string errno_text(int error_number) {
  return std::strerror(error_number);
}

}  // namespace herd
