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
// The counters a worker reports; they only grow over the worker's life.
struct WorkerStats {
  std::uint64_t connections = 0;  // adopted since start
  std::uint64_t active_connections = 0;
  std::uint64_t requests = 0;
};
struct Heartbeat {
  WorkerStats stats;
};
struct Pong {};

// master -> worker
struct Conn {
  std::uint64_t seq = 0;  // the master's id for this connection; echoed in `ack`
};
struct Drain {
  std::int64_t deadline_ms = 0;  // time left before the master SIGKILLs the worker
};
struct Ping {};

using WorkerMessage = std::variant<Hello, Ready, Ack, Heartbeat, Pong>;
using MasterMessage = std::variant<Conn, Drain, Ping>;

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
