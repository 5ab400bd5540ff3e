// The master<->worker channel protocol: every message type, defined once.
//
// Framing: one JSON object per SOCK_SEQPACKET datagram (at most
// kMaxMessageBytes), always with a "type" string. Only `conn` carries a
// descriptor (exactly one, SCM_RIGHTS). Unknown fields are ignored so fields
// can grow; an unknown type, a missing or mistyped field, or an fd on any other
// message is a protocol violation. See proto/README.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/histogram.h"

namespace herd::proto {

inline constexpr int kProtocolVersion = 1;

// worker -> master
struct Hello {
  int proto = kProtocolVersion;
  std::int64_t pid = 0;
};
struct Ready {};
struct Ack {
  std::vector<std::uint64_t> seqs;
  bool accepted = true;
};
struct ResponseCounts {
  std::uint64_t status_2xx = 0;
  std::uint64_t status_3xx = 0;
  std::uint64_t status_4xx = 0;
  std::uint64_t status_5xx = 0;

  void add(const ResponseCounts& other);
  bool operator==(const ResponseCounts&) const = default;
};

// What a worker reports in each heartbeat. Everything but active_connections
// is cumulative over the worker's life, so a lost heartbeat loses nothing and
// the master can sum workers (and the dead ones' last reports) exactly.
struct WorkerStats {
  std::uint64_t connections = 0;  // adopted since start
  std::uint64_t active_connections = 0;
  std::uint64_t requests = 0;
  ResponseCounts responses;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  LatencyHistogram latency_us;  // per request, from its first byte read to its response queued

  // Adds `other`'s cumulative counters and histogram (not active_connections).
  void add_cumulative(const WorkerStats& other);
  bool operator==(const WorkerStats&) const = default;
};
struct Heartbeat {
  WorkerStats stats;
};
struct Pong {};
// The worker is at its --max-connections with none idle to close (`full`),
// or has room again; a full worker is handed nothing.
struct Capacity {
  bool full = false;
};

// master -> worker
struct Conn {
  std::uint64_t seq = 0;  // the master's id for this connection; echoed in `ack`
};
struct Drain {
  std::int64_t deadline_ms = 0;  // time left before the master SIGKILLs the worker
};
struct Ping {};

using WorkerMessage = std::variant<Hello, Ready, Ack, Heartbeat, Pong, Capacity>;
using MasterMessage = std::variant<Conn, Drain, Ping>;

// {"2xx":N,"3xx":N,"4xx":N,"5xx":N}, as in heartbeats and control replies.
nlohmann::json response_counts_json(const ResponseCounts& counts);

std::string encode(const WorkerMessage& message);
std::string encode(const MasterMessage& message);

// A decoded message or the reason it is not one ("unknown type 'x'",
// "field 'seqs' must be an array of integers").
template <typename Message>
struct Decoded {
  std::optional<Message> message;
  std::string error;
};

Decoded<WorkerMessage> decode_worker_message(std::string_view text);
Decoded<MasterMessage> decode_master_message(std::string_view text);

// The wire name of a message's type, for logs.
std::string_view type_name(const WorkerMessage& message);
std::string_view type_name(const MasterMessage& message);

}  // namespace herd::proto
