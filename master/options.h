// herd's options: the command line, the --config file and HERD_<NAME>
// variables, checked and turned into the master's config (milliseconds into
// durations, names into enums, --user into credentials, systemd's socket in
// place of --host/--port).
#pragma once

#include <optional>
#include <string>

#include "master/master.h"

namespace herd {

struct Options {
  MasterConfig config;
  std::string log_file;               // --log-file; empty: stderr
  bool listen_address_given = false;  // --host or --port (ignored under socket activation)
};

// Fills `options` from argv. Returns the exit status when herd should stop
// here: 0 after --help or --version, 2 after a usage error (the message on
// stderr); nullopt to go on.
std::optional<int> parse_options(int argc, char** argv, Options& options);

}  // namespace herd
