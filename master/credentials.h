// Who the workers run as (--user, --group): the master may start as root to
// bind a privileged port and read what only root may, while every worker
// drops to an unprivileged user between fork and exec (setgroups, setgid,
// setuid, in that order: after setuid the others would be refused).
// Resolving a name reads /etc/passwd and /etc/group (NSS), which is not
// async-signal-safe, so it is done once at start, never in the child.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace herd {

struct Credentials {
  std::string user;  // as given, for logs
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups: the user's, from the group database
};

// Looks up `user` (a name or a numeric uid) and `group` (a name or a numeric
// gid; empty: the user's primary group). nullopt with `error` set when either
// is unknown, or when a numeric uid names no user and no group is given.
std::optional<Credentials> resolve_credentials(const std::string& user, const std::string& group,
                                               std::string& error);

// Becomes `credentials` for good: setgroups, setgid, setuid, then checks that
// neither root nor the old ids can be regained. Returns false with errno's
// story in `error` (a static string: safe after fork). Async-signal-safe.
bool become(const Credentials& credentials, const char*& error);

}  // namespace herd
