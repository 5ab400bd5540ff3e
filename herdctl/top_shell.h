// herdctl top's I/O shell: polls the master over one kept-open control
// connection every interval, reads the keyboard and the signals, and draws
// what render_top() lays out, on the terminal's alternate screen, or as plain
// frames when stdout is not a terminal. One poll() waits for all of it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "herdctl/client.h"

namespace herd::ctl {

struct TopOptions {
  std::string socket_path;
  Milliseconds interval{1000};
  std::uint64_t iterations = 0;  // frames to draw before exiting; 0: until quit
  // How long a poll may wait for its replies before the master counts as
  // gone (the connection is then dropped and made anew); nullopt: forever.
  std::optional<Milliseconds> reply_timeout = Milliseconds{2000};
};

// Runs the view on stdin/stdout until `q`, SIGINT, SIGTERM or SIGHUP (exit
// status 0), or until `iterations` frames are drawn: 0 if the last poll was
// answered, 2 (with the reason on stderr) if not. A master that does not
// answer is shown on the screen and asked again every interval. 2 as well if
// the terminal cannot be set up or written to.
int run_top(const TopOptions& options);

}  // namespace herd::ctl
