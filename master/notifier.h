// Notifier: the master's side of systemd's Type=notify. Sends what
// NotifyPolicy decides with sd_notify(3), and the watchdog keep-alive
// (WATCHDOG=1) from a timer on the master's own event loop, so that a wedged
// loop stops feeding the watchdog and systemd kills it. Does nothing when
// NOTIFY_SOCKET is unset, i.e. when herd does not run under systemd.
#pragma once

#include <event2/event.h>

#include <string>

#include "common/event_loop.h"
#include "master/notify_policy.h"

namespace herd {

class Notifier {
 public:
  Notifier();

  // Starts the watchdog timer on `base`, at half of WATCHDOG_USEC, if
  // sd_watchdog_enabled() says systemd expects it from this process. Clears
  // WATCHDOG_USEC and WATCHDOG_PID, so the workers do not inherit them.
  void start(event_base* base);

  // Whether NOTIFY_SOCKET is set: callers can skip building snapshots.
  bool enabled() const { return enabled_; }

  // Each sends the notification the policy decides on, if any.
  void progress(const ServiceSnapshot& snapshot);
  void reload_started(const ServiceSnapshot& snapshot);
  void reload_finished(const ServiceSnapshot& snapshot);
  void stopping(const ServiceSnapshot& snapshot);

 private:
  static void on_watchdog(evutil_socket_t fd, short what, void* arg);

  // Sends a policy decision ("" is none) and logs it at debug level.
  void send(const std::string& message);
  // sd_notify(); false (logged) on failure.
  bool notify(const std::string& message);

  bool enabled_ = false;  // NOTIFY_SOCKET is set
  bool failure_logged_ = false;
  NotifyPolicy policy_;
  EventPtr watchdog_event_;
};

}  // namespace herd
