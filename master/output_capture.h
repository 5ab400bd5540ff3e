// OutputCapture: reads every worker's stdout and stderr pipe on the master's
// libevent loop, logs each line tagged with the worker's id, slot, pid and
// stream, and hands it on (the master keeps the last ones in the worker's
// record). The I/O shell around master/worker_output.h.
//
// A pipe is read until end of file, which may come after the worker is
// reaped (a child it left behind may still hold the pipe); drain() reads what
// a reaped worker left before its record is retired.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <utility>

#include "common/event_loop.h"
#include "common/log.h"
#include "common/unique_fd.h"
#include "master/worker_output.h"

namespace herd {

class OutputCapture {
 public:
  // Called for every line after it is logged; `line.text` is valid UTF-8.
  using LineHandler = std::function<void(WorkerId, OutputStream, const OutputLine& line)>;

  OutputCapture(event_base* base, LogFormat format, LineHandler on_line);
  ~OutputCapture();
  OutputCapture(const OutputCapture&) = delete;
  OutputCapture& operator=(const OutputCapture&) = delete;

  // Starts reading the read ends of a new worker's stdout and stderr.
  void watch(WorkerId worker, std::size_t slot, pid_t pid, UniqueFd stdout_pipe,
             UniqueFd stderr_pipe);
  // Reads what the worker's pipes hold now, without waiting: for a worker
  // that has exited, everything it wrote.
  void drain(WorkerId worker);

 private:
  struct Pipe {
    OutputCapture* owner;
    OutputTag tag;
    UniqueFd fd;
    EventPtr read_event;
    LineSplitter splitter;
  };
  using Key = std::pair<WorkerId, OutputStream>;

  static void on_readable(evutil_socket_t fd, short what, void* arg);
  void add(const OutputTag& tag, UniqueFd fd);
  // Reads up to `budget` bytes; closes the pipe at end of file or on error.
  void read(Pipe& pipe, std::size_t budget);
  void emit(const OutputTag& tag, OutputLine line);
  void close(Pipe& pipe);

  event_base* base_;
  LogFormat format_;
  LineHandler on_line_;
  std::map<Key, std::unique_ptr<Pipe>> pipes_;
};

}  // namespace herd
