#include "master/notifier.h"

#include <systemd/sd-daemon.h>
#include <time.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace herd {
namespace {

// The watchdog is fed from the event loop, never more often than this.
constexpr Milliseconds kMinWatchdogPeriod{1};

std::uint64_t monotonic_usec() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::uint64_t>(now.tv_sec) * 1000000 +
         static_cast<std::uint64_t>(now.tv_nsec) / 1000;
}

}  // namespace

Notifier::Notifier() : enabled_(std::getenv("NOTIFY_SOCKET") != nullptr) {}

void Notifier::start(event_base* base) {
  std::uint64_t timeout_usec = 0;
  int watchdog = sd_watchdog_enabled(/*unset_environment=*/1, &timeout_usec);
  if (!enabled_) return;
  spdlog::info("systemd notification socket {}", std::getenv("NOTIFY_SOCKET"));
  if (watchdog < 0) {
    spdlog::error("sd_watchdog_enabled() failed: {}; no watchdog keep-alive",
                  std::strerror(-watchdog));
    return;
  }
  if (watchdog == 0) return;
  // Half the timeout, as sd_watchdog_enabled(3) recommends: one late tick of
  // a busy loop is not yet a missed deadline.
  Milliseconds period = std::max(kMinWatchdogPeriod,
                                 Milliseconds{static_cast<Milliseconds::rep>(timeout_usec / 2000)});
  watchdog_event_.reset(event_new(base, -1, EV_PERSIST, on_watchdog, this));
  timeval interval = to_timeval(period);
  event_add(watchdog_event_.get(), &interval);
  spdlog::info("systemd watchdog: WATCHDOG=1 every {} ms (WATCHDOG_USEC={})", period.count(),
               timeout_usec);
  notify("WATCHDOG=1");
}

void Notifier::progress(const ServiceSnapshot& snapshot) {
  if (enabled_) send(policy_.progress(snapshot, Clock::now()));
}

void Notifier::reload_started(const ServiceSnapshot& snapshot) {
  if (enabled_) send(policy_.reload_started(snapshot, Clock::now(), monotonic_usec()));
}

void Notifier::reload_finished(const ServiceSnapshot& snapshot) {
  if (enabled_) send(policy_.reload_finished(snapshot, Clock::now()));
}

void Notifier::stopping(const ServiceSnapshot& snapshot) {
  if (enabled_) send(policy_.stopping(snapshot, Clock::now()));
}

void Notifier::on_watchdog(evutil_socket_t, short, void* arg) {
  static_cast<Notifier*>(arg)->notify("WATCHDOG=1");
}

void Notifier::send(const std::string& message) {
  if (message.empty() || !notify(message)) return;
  std::string one_line = message;
  std::replace(one_line.begin(), one_line.end(), '\n', ' ');
  spdlog::debug("sd_notify: {}", one_line);
}

// A failed notification is not fatal (systemd may be restarting); log the
// first one at warning level and the rest at debug, so a watchdog ticking
// into a gone socket does not flood the log.
bool Notifier::notify(const std::string& message) {
  int sent = sd_notify(/*unset_environment=*/0, message.c_str());
  if (sent >= 0) return true;
  std::string first_line = message.substr(0, message.find('\n'));
  if (failure_logged_) {
    spdlog::debug("sd_notify({}) failed: {}", first_line, std::strerror(-sent));
  } else {
    spdlog::warn("sd_notify({}) failed: {}", first_line, std::strerror(-sent));
    failure_logged_ = true;
  }
  return false;
}

}  // namespace herd
