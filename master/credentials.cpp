#include "master/credentials.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace herd {
namespace {

std::optional<unsigned long> parse_id(const std::string& text) {
  unsigned long value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// Calls `lookup(buffer, size)`, a getpwnam_r-style call, with a buffer that
// doubles while it answers ERANGE (up to 1 MiB). Returns its status.
template <typename Lookup>
int with_growing_buffer(std::vector<char>& buffer, Lookup lookup) {
  int status = ERANGE;
  for (buffer.resize(1024); status == ERANGE && buffer.size() <= (1u << 20);) {
    status = lookup(buffer.data(), buffer.size());
    if (status == ERANGE) buffer.resize(buffer.size() * 2);
  }
  return status;
}

std::optional<passwd> find_user(const std::string& user, std::vector<char>& buffer) {
  std::optional<unsigned long> uid = parse_id(user);
  passwd entry{};
  passwd* found = nullptr;
  int status = with_growing_buffer(buffer, [&](char* data, std::size_t size) {
    return uid ? ::getpwuid_r(static_cast<uid_t>(*uid), &entry, data, size, &found)
               : ::getpwnam_r(user.c_str(), &entry, data, size, &found);
  });
  if (status != 0 || found == nullptr) return std::nullopt;
  return entry;
}

std::optional<gid_t> find_group(const std::string& group) {
  if (std::optional<unsigned long> gid = parse_id(group)) return static_cast<gid_t>(*gid);
  std::vector<char> buffer;
  ::group entry{};
  ::group* found = nullptr;
  int status = with_growing_buffer(buffer, [&](char* data, std::size_t size) {
    return ::getgrnam_r(group.c_str(), &entry, data, size, &found);
  });
  if (status != 0 || found == nullptr) return std::nullopt;
  return found->gr_gid;
}

}  // namespace

std::optional<Credentials> resolve_credentials(const std::string& user, const std::string& group,
                                               std::string& error) {
  Credentials credentials;
  credentials.user = user;
  std::vector<char> buffer;
  std::optional<passwd> entry = find_user(user, buffer);
  if (!entry && !parse_id(user)) {
    error = "--user: no user named '" + user + "'";
    return std::nullopt;
  }
  if (!entry && group.empty()) {
    error = "--user " + user + " is not in the user database: give its --group too";
    return std::nullopt;
  }
  credentials.uid = entry ? entry->pw_uid : static_cast<uid_t>(*parse_id(user));
  credentials.gid = entry ? entry->pw_gid : 0;
  if (!group.empty()) {
    std::optional<gid_t> gid = find_group(group);
    if (!gid) {
      error = "--group: no group named '" + group + "'";
      return std::nullopt;
    }
    credentials.gid = *gid;
  }
  // The user's supplementary groups, as a login would have them; none for a
  // uid without a name. Never root's: those are what is being dropped.
  credentials.groups = {credentials.gid};
  if (entry) {
    int count = 64;
    std::vector<gid_t> groups(count);
    while (::getgrouplist(entry->pw_name, credentials.gid, groups.data(), &count) < 0) {
      groups.resize(static_cast<std::size_t>(count) + 64);
      count = static_cast<int>(groups.size());
    }
    groups.resize(static_cast<std::size_t>(count));
    credentials.groups = groups;
  }
  return credentials;
}

bool become(const Credentials& credentials, const char*& error) {
  if (::setgroups(credentials.groups.size(), credentials.groups.data()) != 0) {
    error = "setgroups() failed";
    return false;
  }
  if (::setgid(credentials.gid) != 0) {
    error = "setgid() failed";
    return false;
  }
  if (::setuid(credentials.uid) != 0) {
    error = "setuid() failed";
    return false;
  }
  // For good: the real, effective and saved ids all changed, so neither root
  // nor the old group can come back.
  if (::getuid() != credentials.uid || ::geteuid() != credentials.uid ||
      ::getgid() != credentials.gid || ::getegid() != credentials.gid) {
    error = "the ids did not change";
    return false;
  }
  if (credentials.uid != 0 && (::setuid(0) == 0 || ::seteuid(0) == 0)) {
    error = "root could be regained after setuid()";
    return false;
  }
  return true;
}

}  // namespace herd
