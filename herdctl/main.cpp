// herdctl: the operator's command line for a running herd master. Parses the
// command line, sends one request over the control socket, prints the reply
// (as a table, or raw with --json); `events` keeps printing until interrupted,
// and `reload --wait` prints the reload's progress from a second connection
// subscribed to the events; `top` is a live view (herdctl_top_shell).
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <utility>

#include "common/errno_text.h"
#include "herdctl/client.h"
#include "herdctl/command_line.h"
#include "herdctl/exit_status.h"
#include "herdctl/format.h"
#include "herdctl/reload_progress.h"
#include "herdctl/signal_pipe.h"
#include "herdctl/top_shell.h"
#include "proto/control.h"

namespace herd::ctl {
namespace {

using Command = proto::ControlCommand;
using nlohmann::json;
namespace reply = proto::reply;

// The master sends a reload's last event before its reply, but on another
// connection: how long to wait for that event once the reply is in.
constexpr Milliseconds kLastEventGrace{1000};

void print_error(const std::string& message) {
  std::cerr << "herdctl: " << message << std::endl;
}

std::string seconds_text(double seconds) {
  std::string text = std::to_string(seconds);
  text.erase(text.find_last_not_of('0') + 1);
  if (!text.empty() && text.back() == '.') text.pop_back();
  return text + " s";
}

// Turns a read that produced no line into its one-line message. Returns the
// exit status for it.
int report_no_reply(const ReadResult& result, const std::string& path, double timeout_seconds) {
  switch (result.outcome) {
    case ReadOutcome::kTimeout:
      print_error("no reply from the master at " + path + " within " +
                  seconds_text(timeout_seconds) + " (use --timeout to wait longer)");
      break;
    case ReadOutcome::kClosed:
      print_error("the master at " + path + " closed the connection without replying");
      break;
    case ReadOutcome::kError:
      print_error("reading from " + path + ": " + result.error);
      break;
    case ReadOutcome::kInterrupted:
      return kExitOk;
    case ReadOutcome::kLine:
      break;
  }
  return kExitNoAnswer;
}

// Prints events as they arrive until the master closes or a signal arrives.
int stream_events(ControlClient& client, int interrupt_fd, bool json_output) {
  bool stopped = false;
  for (;;) {
    ReadResult result = client.read_line(std::nullopt, interrupt_fd);
    switch (result.outcome) {
      case ReadOutcome::kLine: {
        json event = json::parse(result.line, nullptr, /*allow_exceptions=*/false);
        if (event.is_object() && event.contains("event") && event["event"] == "stop") {
          stopped = true;
        }
        if (json_output || event.is_discarded()) {
          std::cout << result.line << std::endl;
        } else {
          std::cout << format_event(event) << std::flush;
        }
        break;
      }
      case ReadOutcome::kClosed:
        if (!stopped) print_error("the master closed the events stream");
        return kExitOk;
      case ReadOutcome::kInterrupted:
        return kExitOk;
      case ReadOutcome::kTimeout:  // not with an unbounded wait
      case ReadOutcome::kError:
        print_error("reading the events stream: " + result.error);
        return kExitNoAnswer;
    }
  }
}

// The reply `line` as JSON, when it is a reply at all ({"ok":bool,...});
// nullopt, with the complaint printed, otherwise.
std::optional<json> parse_reply(const std::string& line) {
  json reply = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!reply.is_object() || !reply.contains(reply::kOk) || !reply[reply::kOk].is_boolean()) {
    print_error("unexpected reply from the master: " + line);
    return std::nullopt;
  }
  return reply;
}

// Prints the reply to anything but `events`: the line itself with --json, the
// error on stderr, the human text otherwise. Returns the exit status.
int print_reply(const Options& options, const std::string& line, const json& reply) {
  if (options.json_output) std::cout << line << std::endl;
  if (!reply[reply::kOk].get<bool>()) {
    print_error(reply_error(reply));
    return kExitRefused;
  }
  if (!options.json_output) {
    std::cout << format_reply(options.request, reply) << std::flush;
  }
  return kExitOk;
}

// A second connection to the master, subscribed to its events, for
// reload --wait to show the reload's progress. On failure (the reason on
// stderr) nullopt: reload --wait then waits for its reply without progress.
std::optional<ControlClient> subscribe_to_events(const std::string& path, Milliseconds timeout) {
  std::optional<ControlClient> events(std::in_place, path, timeout);
  proto::ControlRequest subscribe;
  subscribe.command = Command::kEvents;
  std::string failure;
  if (!events->connected()) {
    failure = "cannot connect: " + events->error();
  } else if (!events->send_line(proto::encode(subscribe).dump())) {
    failure = "cannot send: " + events->error();
  } else {
    ReadResult result = events->read_line(timeout);
    json ack = result.outcome == ReadOutcome::kLine
                   ? json::parse(result.line, nullptr, /*allow_exceptions=*/false)
                   : json();
    auto is_true = [&ack](const char* key) {
      return ack.is_object() && ack.contains(key) && ack[key] == true;
    };
    if (result.outcome != ReadOutcome::kLine) {
      failure = "no answer to the events request";
    } else if (!is_true(reply::kOk) || !is_true(reply::kEvents)) {
      failure = ack.is_object() && ack.contains(reply::kError) ? reply_error(ack)
                                                               : "unexpected answer " + result.line;
    }
  }
  if (failure.empty()) return events;
  print_error("not showing the reload's progress (events: " + failure +
              "); waiting for it to finish");
  return std::nullopt;
}

// Waits for the reply to reload --wait on `client`, printing the reload's
// events from `events` (when subscribed) as they arrive; one poll() covers
// both connections and the whole wait ends at `deadline`. The reply is what
// counts; if its connection closes first (the master drops a connection that
// has sent nothing for 30 s, one waiting for a long reload too), the reload's
// last event says how it ended. Returns the exit status.
int wait_for_reload(ControlClient& client, ControlClient* events, const Options& options,
                    std::optional<Clock::time_point> deadline) {
  ReloadProgress progress;
  auto show = [&](const std::string& line) {
    json event = json::parse(line, nullptr, /*allow_exceptions=*/false);
    std::optional<std::string> text = progress.observe(event);
    if (!text) return;
    if (options.json_output) {
      std::cout << line << std::endl;
    } else {
      std::cout << *text << std::flush;
    }
  };
  // Shows every event that has arrived; false once the stream has ended.
  auto read_events = [&] {
    for (;;) {
      ReadResult result = events->read_line(Milliseconds{0});
      if (result.outcome == ReadOutcome::kTimeout) return true;
      if (result.outcome != ReadOutcome::kLine) return false;
      show(result.line);
    }
  };

  std::optional<std::string> reply_line;
  bool reply_accepted = false;  // ok:true: the reload ran, so its events came first
  std::optional<Clock::time_point> reply_time;
  std::optional<Clock::time_point> last_event_deadline;
  std::optional<ReadResult> reply_lost;  // the connection ended without a reply
  for (;;) {
    std::optional<Clock::time_point> wait_until = deadline;
    if (reply_line || reply_lost) {
      // Still to come: this reload's last event, if any.
      if (events == nullptr || progress.finished()) break;
      if (reply_lost && !progress.started()) break;
      // A refused reload never started: take only the events already here.
      if (reply_line) {
        wait_until = progress.started() || reply_accepted ? last_event_deadline : reply_time;
      }
    }

    std::array<pollfd, 2> fds{};
    nfds_t count = 0;
    if (events != nullptr) fds[count++] = {events->fd(), POLLIN, 0};
    bool reading_reply = !reply_line && !reply_lost;
    if (reading_reply) fds[count++] = {client.fd(), POLLIN, 0};
    int ready = ::poll(fds.data(), count, poll_timeout(wait_until));
    if (ready < 0) {
      if (errno == EINTR) continue;
      print_error("poll() failed: " + errno_text(errno));
      return kExitNoAnswer;
    }
    if (ready == 0) {
      if (reply_line) break;  // the last event is not coming; the reply says it all
      return report_no_reply({ReadOutcome::kTimeout, {}, {}}, options.socket_path,
                             options.timeout_seconds);
    }
    // Events first: whatever arrived with the reply was sent before it.
    if (events != nullptr && fds[0].revents != 0 && !read_events()) events = nullptr;
    if (reading_reply && fds[count - 1].revents != 0) {
      ReadResult result = client.read_line(Milliseconds{0});
      if (result.outcome == ReadOutcome::kLine) {
        reply_line = result.line;
        json reply = json::parse(result.line, nullptr, /*allow_exceptions=*/false);
        reply_accepted =
            reply.is_object() && reply.contains(reply::kOk) && reply[reply::kOk] == true;
        reply_time = Clock::now();
        last_event_deadline = *reply_time + kLastEventGrace;
        if (deadline) last_event_deadline = std::min(*last_event_deadline, *deadline);
      } else if (result.outcome != ReadOutcome::kTimeout) {
        reply_lost = result;
      }
    }
  }

  if (reply_line) {
    std::optional<json> reply = parse_reply(*reply_line);
    return reply ? print_reply(options, *reply_line, *reply) : kExitNoAnswer;
  }
  // The master closed the waiting connection, but the events told the end.
  if (progress.failed()) {
    print_error(progress.error());
    return kExitRefused;
  }
  if (progress.finished()) return kExitOk;
  return report_no_reply(*reply_lost, options.socket_path, options.timeout_seconds);
}

// reload --wait: subscribes to the events on a second connection first, so
// the first reload `start` event seen is this reload's, then sends the
// request on `client` and waits. Returns the exit status.
int reload_and_wait(ControlClient& client, const Options& options, Milliseconds connect_timeout) {
  std::optional<Clock::time_point> deadline;
  if (std::optional<Milliseconds> timeout = to_timeout(options.timeout_seconds)) {
    deadline = Clock::now() + *timeout;
  }
  Milliseconds subscribe_timeout = connect_timeout;
  if (deadline) {
    // At least 1 ms: a zero SO_SNDTIMEO would mean no bound at all.
    subscribe_timeout = std::clamp(std::chrono::ceil<Milliseconds>(*deadline - Clock::now()),
                                   Milliseconds{1}, connect_timeout);
  }
  std::optional<ControlClient> events = subscribe_to_events(options.socket_path, subscribe_timeout);

  if (!client.send_line(proto::encode(options.request).dump())) {
    print_error("cannot send to " + options.socket_path + ": " + client.error());
    return kExitNoAnswer;
  }
  return wait_for_reload(client, events ? &*events : nullptr, options, deadline);
}

// Connects, sends the request, prints the reply (or the stream of events).
// Returns the exit status.
int run_command(const Options& options) {
  const proto::ControlRequest& request = options.request;
  const std::string& path = options.socket_path;
  // The connection and the request's write get the default bound even when
  // the reply may take forever.
  Milliseconds connect_timeout{static_cast<std::int64_t>(kDefaultTimeoutSeconds * 1000)};

  ControlClient client(path, connect_timeout);
  if (!client.connected()) {
    bool not_running = client.error_number() == ENOENT || client.error_number() == ECONNREFUSED;
    print_error("cannot connect to " + path + ": " + client.error() +
                (not_running ? " (is herd running? use -s or -p)" : ""));
    return kExitNoAnswer;
  }

  if (request.command == Command::kReload && request.wait) {
    return reload_and_wait(client, options, connect_timeout);
  }

  // Ctrl-C ends the events stream with exit status 0. Without the pipe the
  // signals keep their default action, which ends it too.
  SignalPipe interrupt;
  std::string pipe_error;
  if (request.command == Command::kEvents && interrupt.open(pipe_error)) {
    for (int signal : {SIGINT, SIGTERM}) interrupt.catch_signal(signal);
  }

  if (!client.send_line(proto::encode(request).dump())) {
    print_error("cannot send to " + path + ": " + client.error());
    return kExitNoAnswer;
  }
  ReadResult result = client.read_line(to_timeout(options.timeout_seconds), interrupt.read_fd());
  if (result.outcome != ReadOutcome::kLine) {
    return report_no_reply(result, path, options.timeout_seconds);
  }
  std::optional<json> reply = parse_reply(result.line);
  if (!reply) return kExitNoAnswer;
  // With --json the events stream shows the events only, not its
  // {"ok":true,"events":true} acknowledgement, so every line is an event.
  if (request.command != Command::kEvents || !(*reply)[reply::kOk].get<bool>()) {
    return print_reply(options, result.line, *reply);
  }
  // Says the subscription holds: until the first event the screen is blank.
  if (!options.json_output) std::cerr << "watching events of " << path << " (Ctrl-C to stop)\n";
  return stream_events(client, interrupt.read_fd(), options.json_output);
}

}  // namespace
}  // namespace herd::ctl

int main(int argc, char** argv) {
  herd::ctl::Options options;
  if (std::optional<int> exit_status = herd::ctl::parse_command_line(argc, argv, options)) {
    return *exit_status;
  }
  if (options.top) {
    options.top->socket_path = options.socket_path;
    return herd::ctl::run_top(*options.top);
  }
  return herd::ctl::run_command(options);
}
