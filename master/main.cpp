// herd: the master. Reads its options, sets up logging and the descriptor
// limit, and runs the Master.
#include <sys/resource.h>

#include <cerrno>
#include <iostream>
#include <optional>
#include <string>

#include "common/errno_text.h"
#include "common/log.h"
#include "master/master.h"
#include "master/options.h"

namespace {

// Descriptors a worker keeps for itself (channel, epoll, logs, the
// application's files) when --max-connections is derived from the limit.
constexpr rlim_t kReservedDescriptors = 64;

// Raises the soft limit on open descriptors to the hard one, for the master
// and (inherited) its workers: every client connection is a descriptor, and
// the usual soft limit of 1024 is far below what a server needs, while the
// hard limit is what the administrator allowed. Go does the same at start.
// Returns the limit now in force, or 0 if it cannot be read.
rlim_t raise_descriptor_limit(std::string& note) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    note = "getrlimit(RLIMIT_NOFILE) failed: " + herd::errno_text(errno);
    return 0;
  }
  if (limit.rlim_cur >= limit.rlim_max) return limit.rlim_cur;
  rlim_t soft = limit.rlim_cur;
  limit.rlim_cur = limit.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    note = "setrlimit(RLIMIT_NOFILE) failed: " + herd::errno_text(errno);
    return soft;
  }
  note = "raised the open-descriptor limit from " + std::to_string(soft) + " to " +
         std::to_string(limit.rlim_max);
  return limit.rlim_max;
}

// Raises the descriptor limit and fits --max-connections to it: 0 becomes
// what a worker's descriptors allow, more than that gets a warning. The
// workers inherit the limit (raised before they are forked).
void fit_connections_to_descriptors(herd::MasterConfig& config) {
  std::string note;
  rlim_t descriptors = raise_descriptor_limit(note);
  if (!note.empty()) {
    spdlog::info("{}", note);
  } else {
    spdlog::debug("open-descriptor limit {}", descriptors);
  }
  rlim_t known = descriptors > 0 ? descriptors : 1024;  // 0: getrlimit failed
  std::size_t usable = known > kReservedDescriptors ? known - kReservedDescriptors : 1;
  if (config.max_connections == 0) {
    config.max_connections = usable;
  } else if (config.max_connections > usable) {
    spdlog::warn(
        "--max-connections {} is more than a worker's {} open descriptors allow; a "
        "worker out of descriptors refuses connections until one closes",
        config.max_connections, known);
  }
  config.worker.env.max_connections = config.max_connections;
}

}  // namespace

int main(int argc, char** argv) {
  herd::Options options;
  if (std::optional<int> exit_status = herd::parse_options(argc, argv, options)) {
    return *exit_status;
  }
  herd::MasterConfig& config = options.config;
  std::string log_error;
  if (!herd::setup_logging("master", config.log_level, config.log_format, options.log_file,
                           log_error)) {
    std::cerr << log_error << " (--log-file)\n";
    return 2;
  }
  fit_connections_to_descriptors(config);
  if (const auto& credentials = config.worker.credentials) {
    spdlog::info("workers run as user {} (uid {}, gid {})", credentials->user, credentials->uid,
                 credentials->gid);
  }
  if (config.inherited_listener && options.listen_address_given) {
    spdlog::warn("--host and --port are ignored: listening on the socket systemd passed");
  }
  herd::Master master(std::move(config));
  return master.run();
}
