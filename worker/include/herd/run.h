// run: makes the program serving an App a herd worker. The master starts it
// (herd --exec ./my-app) with the channel on HERD_CHANNEL_FD; run() adopts the
// connections the master hands over, serves them with the App, sends
// heartbeats with request stats, and drains when told to.
#pragma once

#include <chrono>
#include <cstddef>

#include "herd/app.h"

namespace herd {

struct RunOptions {
  // How long an idle keep-alive connection stays open.
  std::chrono::milliseconds keepalive_timeout{5000};
  // How long a client has to send a request's header and body, from its first
  // byte.
  std::chrono::milliseconds header_timeout{10000};
  std::size_t max_header_bytes = 16 * 1024;  // request line + headers; over it -> 431
  std::size_t max_body_bytes = 1024 * 1024;  // over it -> 413
  // Requests read ahead of their responses on one connection (pipelining);
  // past it the connection is not read until responses go out.
  std::size_t max_pipelined_requests = 16;
};

// Parses the worker's command line (--keepalive-timeout, --header-timeout,
// --max-body-bytes, --help; see --help), then serves `app` until drained.
// Returns the process exit code: 0 after a drain, 2 on a usage error or when
// not started by a herd master (with a message saying so on stderr).
int run(const App& app, int argc, char** argv);
// The same with options already parsed (a program with flags of its own).
int run(const App& app, const RunOptions& options);

}  // namespace herd
