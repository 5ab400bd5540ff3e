// herdctl's command line: the subcommand and its arguments as the control
// request to send, the socket to send it to, and how to show the reply.
#pragma once

#include <optional>
#include <string>

#include "herdctl/client.h"
#include "herdctl/top_shell.h"
#include "proto/control.h"

namespace herd::ctl {

// How long a reply may take unless --timeout says otherwise.
inline constexpr double kDefaultTimeoutSeconds = 10;

// Everything the command line says.
struct Options {
  proto::ControlRequest request;
  std::string socket_path;  // resolved: never empty after parse_command_line()
  bool json_output = false;
  double timeout_seconds = kDefaultTimeoutSeconds;
  // `top` is not a request: it polls `status` and `stats` until told to stop.
  std::optional<TopOptions> top;
};

// Fills `options` from argv. Returns the exit status when herdctl should
// stop here (--help, --version, a usage error: the message printed), nullopt
// to go on.
std::optional<int> parse_command_line(int argc, char** argv, Options& options);

// --timeout's seconds as a bound; nullopt for 0, which waits forever.
std::optional<Milliseconds> to_timeout(double seconds);

}  // namespace herd::ctl
