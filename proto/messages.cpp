#include "proto/messages.h"

#include <nlohmann/json.hpp>

#include <limits>

namespace herd::proto {
namespace {

using nlohmann::json;

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
// Spelled out for clang 14 (the fuzz build), which lacks C++20's aggregate
// deduction.
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

json to_json_object(const Hello& m) {
  return {{"type", "hello"}, {"proto", m.proto}, {"pid", m.pid}};
}
json to_json_object(const Ready&) {
  return {{"type", "ready"}};
}
json to_json_object(const Ack& m) {
  return {{"type", "ack"}, {"seqs", m.seqs}, {"accepted", m.accepted}};
}
json to_json_object(const Heartbeat& m) {
  const WorkerStats& stats = m.stats;
  return {{"type", "heartbeat"},
          {"stats",
           {{"connections", stats.connections},
            {"active_connections", stats.active_connections},
            {"requests", stats.requests},
            {"responses", response_counts_json(stats.responses)},
            {"bytes_in", stats.bytes_in},
            {"bytes_out", stats.bytes_out},
            {"latency_us", stats.latency_us.to_json()}}}};
}
json to_json_object(const Pong&) {
  return {{"type", "pong"}};
}
json to_json_object(const Capacity& m) {
  return {{"type", "capacity"}, {"full", m.full}};
}
json to_json_object(const Conn& m) {
  return {{"type", "conn"}, {"seq", m.seq}};
}
json to_json_object(const Drain& m) {
  return {{"type", "drain"}, {"deadline_ms", m.deadline_ms}};
}
json to_json_object(const Ping&) {
  return {{"type", "ping"}};
}

// Reads a required field of an exact JSON kind; throws FieldError otherwise.
struct FieldError {
  std::string message;
};

template <typename T>
T required(const json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end()) throw FieldError{std::string("missing field '") + name + "'"};
  if constexpr (std::is_same_v<T, bool>) {
    if (!it->is_boolean()) throw FieldError{std::string("field '") + name + "' must be a boolean"};
  } else if constexpr (std::is_integral_v<T>) {
    // nlohmann narrows silently on get<T>(), so check the range here.
    bool in_range = false;
    if (it->is_number_unsigned()) {
      in_range = it->template get<std::uint64_t>() <=
                 static_cast<std::uint64_t>(std::numeric_limits<T>::max());
    } else if (it->is_number_integer() && std::is_signed_v<T>) {
      auto value = it->template get<std::int64_t>();
      in_range = value >= static_cast<std::int64_t>(std::numeric_limits<T>::min()) &&
                 value <= static_cast<std::int64_t>(std::numeric_limits<T>::max());
    }
    if (!in_range) {
      throw FieldError{std::string("field '") + name + "' must be " +
                       (std::is_unsigned_v<T> ? "a non-negative integer" : "an integer") +
                       " in range"};
    }
  }
  return it->get<T>();
}

std::vector<std::uint64_t> required_seqs(const json& object) {
  auto it = object.find("seqs");
  if (it == object.end()) throw FieldError{"missing field 'seqs'"};
  if (!it->is_array()) throw FieldError{"field 'seqs' must be an array of integers"};
  std::vector<std::uint64_t> seqs;
  seqs.reserve(it->size());
  for (const json& seq : *it) {
    if (!seq.is_number_unsigned()) throw FieldError{"field 'seqs' must be an array of integers"};
    seqs.push_back(seq.get<std::uint64_t>());
  }
  return seqs;
}

const json& required_object(const json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end() || !it->is_object()) {
    throw FieldError{std::string("field '") + name + "' must be an object"};
  }
  return *it;
}

WorkerStats read_stats(const json& object) {
  const json& fields = required_object(object, "stats");
  WorkerStats stats;
  stats.connections = required<std::uint64_t>(fields, "connections");
  stats.active_connections = required<std::uint64_t>(fields, "active_connections");
  stats.requests = required<std::uint64_t>(fields, "requests");
  const json& responses = required_object(fields, "responses");
  stats.responses.status_2xx = required<std::uint64_t>(responses, "2xx");
  stats.responses.status_3xx = required<std::uint64_t>(responses, "3xx");
  stats.responses.status_4xx = required<std::uint64_t>(responses, "4xx");
  stats.responses.status_5xx = required<std::uint64_t>(responses, "5xx");
  stats.bytes_in = required<std::uint64_t>(fields, "bytes_in");
  stats.bytes_out = required<std::uint64_t>(fields, "bytes_out");
  std::string error;
  std::optional<LatencyHistogram> latency =
      LatencyHistogram::from_json(required_object(fields, "latency_us"), error);
  if (!latency) throw FieldError{"field 'latency_us': " + error};
  stats.latency_us = *latency;
  return stats;
}

// Parses the envelope shared by both directions: a JSON object with a string "type".
std::optional<json> parse_object(std::string_view text, std::string& error) {
  json object = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (object.is_discarded()) {
    error = "not valid JSON";
    return std::nullopt;
  }
  if (!object.is_object()) {
    error = "not a JSON object";
    return std::nullopt;
  }
  auto type = object.find("type");
  if (type == object.end() || !type->is_string()) {
    error = "missing string field 'type'";
    return std::nullopt;
  }
  return object;
}

}  // namespace

json response_counts_json(const ResponseCounts& counts) {
  return {{"2xx", counts.status_2xx},
          {"3xx", counts.status_3xx},
          {"4xx", counts.status_4xx},
          {"5xx", counts.status_5xx}};
}

void ResponseCounts::add(const ResponseCounts& other) {
  status_2xx += other.status_2xx;
  status_3xx += other.status_3xx;
  status_4xx += other.status_4xx;
  status_5xx += other.status_5xx;
}

void WorkerStats::add_cumulative(const WorkerStats& other) {
  connections += other.connections;
  requests += other.requests;
  responses.add(other.responses);
  bytes_in += other.bytes_in;
  bytes_out += other.bytes_out;
  latency_us.merge(other.latency_us);
}

std::string encode(const WorkerMessage& message) {
  return std::visit([](const auto& m) { return to_json_object(m).dump(); }, message);
}

std::string encode(const MasterMessage& message) {
  return std::visit([](const auto& m) { return to_json_object(m).dump(); }, message);
}

Decoded<WorkerMessage> decode_worker_message(std::string_view text) {
  Decoded<WorkerMessage> result;
  std::optional<json> object = parse_object(text, result.error);
  if (!object) return result;
  const std::string& type = (*object)["type"].get_ref<const std::string&>();
  try {
    if (type == "hello") {
      result.message =
          Hello{required<int>(*object, "proto"), required<std::int64_t>(*object, "pid")};
    } else if (type == "ready") {
      result.message = Ready{};
    } else if (type == "ack") {
      result.message = Ack{required_seqs(*object), required<bool>(*object, "accepted")};
    } else if (type == "heartbeat") {
      result.message = Heartbeat{read_stats(*object)};
    } else if (type == "pong") {
      result.message = Pong{};
    } else if (type == "capacity") {
      result.message = Capacity{required<bool>(*object, "full")};
    } else {
      result.error = "unknown message type '" + type + "'";
    }
  } catch (const FieldError& e) {
    result.error = type + ": " + e.message;
  } catch (const json::exception& e) {
    result.error = type + ": " + e.what();  // e.g. an integer out of range
  }
  return result;
}

Decoded<MasterMessage> decode_master_message(std::string_view text) {
  Decoded<MasterMessage> result;
  std::optional<json> object = parse_object(text, result.error);
  if (!object) return result;
  const std::string& type = (*object)["type"].get_ref<const std::string&>();
  try {
    if (type == "conn") {
      result.message = Conn{required<std::uint64_t>(*object, "seq")};
    } else if (type == "drain") {
      result.message = Drain{required<std::int64_t>(*object, "deadline_ms")};
    } else if (type == "ping") {
      result.message = Ping{};
    } else {
      result.error = "unknown message type '" + type + "'";
    }
  } catch (const FieldError& e) {
    result.error = type + ": " + e.message;
  } catch (const json::exception& e) {
    result.error = type + ": " + e.what();
  }
  return result;
}

std::string_view type_name(const WorkerMessage& message) {
  return std::visit(
      Overloaded{[](const Hello&) { return "hello"; }, [](const Ready&) { return "ready"; },
                 [](const Ack&) { return "ack"; }, [](const Heartbeat&) { return "heartbeat"; },
                 [](const Pong&) { return "pong"; }, [](const Capacity&) { return "capacity"; }},
      message);
}

std::string_view type_name(const MasterMessage& message) {
  return std::visit(
      Overloaded{[](const Conn&) { return "conn"; }, [](const Drain&) { return "drain"; },
                 [](const Ping&) { return "ping"; }},
      message);
}

}  // namespace herd::proto
