#include "proto/control.h"

#include <array>
#include <string>
#include <utility>

namespace herd::proto {
namespace {

using nlohmann::json;

constexpr std::array<std::pair<ControlCommand, std::string_view>, 8> kCommandNames{{
    {ControlCommand::kPing, "ping"},
    {ControlCommand::kStatus, "status"},
    {ControlCommand::kStats, "stats"},
    {ControlCommand::kRestart, "restart"},
    {ControlCommand::kReload, "reload"},
    {ControlCommand::kScale, "scale"},
    {ControlCommand::kStop, "stop"},
    {ControlCommand::kEvents, "events"},
}};

// "ping, status, ..., events", for the errors that list them.
std::string command_list() {
  std::string list;
  for (const auto& [command, name] : kCommandNames) {
    if (!list.empty()) list += ", ";
    list += name;
  }
  return list;
}

std::optional<ControlCommand> command_named(std::string_view name) {
  for (const auto& [command, command_text] : kCommandNames) {
    if (command_text == name) return command;
  }
  return std::nullopt;
}

// An optional non-negative integer argument; sets `error` if it is there but
// of another kind.
std::optional<std::uint64_t> unsigned_argument(const json& request, const char* name,
                                               std::string& error) {
  auto it = request.find(name);
  if (it == request.end()) return std::nullopt;
  if (!it->is_number_unsigned()) {
    error = std::string("'") + name + "' must be a non-negative integer";
    return std::nullopt;
  }
  return it->get<std::uint64_t>();
}

// Reads the arguments `request.command` takes from `object`; the error when
// one is missing or wrong.
std::string read_arguments(const json& object, ControlRequest& request) {
  std::string error;
  switch (request.command) {
    case ControlCommand::kStats:
      request.id = unsigned_argument(object, "id", error);
      return error;
    case ControlCommand::kRestart:
      request.id = unsigned_argument(object, "id", error);
      if (error.empty() && !request.id) error = "restart needs 'id', the worker to replace";
      return error;
    case ControlCommand::kReload:
      if (auto wait = object.find("wait"); wait != object.end()) {
        if (!wait->is_boolean()) return "'wait' must be a boolean";
        request.wait = wait->get<bool>();
      }
      return error;
    case ControlCommand::kScale:
      request.workers = unsigned_argument(object, "workers", error);
      if (!error.empty() || !request.workers || *request.workers < 1 ||
          *request.workers > kMaxWorkers) {
        return "scale needs 'workers', an integer from 1 to " + std::to_string(kMaxWorkers);
      }
      return error;
    case ControlCommand::kPing:
    case ControlCommand::kStatus:
    case ControlCommand::kStop:
    case ControlCommand::kEvents:
      return error;
  }
  return error;
}

}  // namespace

std::string_view command_name(ControlCommand command) {
  for (const auto& [each, name] : kCommandNames) {
    if (each == command) return name;
  }
  return "ping";
}

json encode(const ControlRequest& request) {
  json message = {{"cmd", command_name(request.command)}};
  switch (request.command) {
    case ControlCommand::kStats:
      if (request.id) message["id"] = *request.id;
      break;
    case ControlCommand::kRestart:
      message["id"] = request.id.value_or(0);
      break;
    case ControlCommand::kReload:
      if (request.wait) message["wait"] = true;
      break;
    case ControlCommand::kScale:
      message["workers"] = request.workers.value_or(0);
      break;
    case ControlCommand::kPing:
    case ControlCommand::kStatus:
    case ControlCommand::kStop:
    case ControlCommand::kEvents:
      break;
  }
  return message;
}

DecodedControlRequest decode_control_request(std::string_view line) {
  json object = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (object.is_discarded()) return {std::nullopt, "request is not valid JSON"};
  if (!object.is_object()) return {std::nullopt, "request must be a JSON object"};
  auto cmd = object.find("cmd");
  if (cmd == object.end() || !cmd->is_string()) {
    return {std::nullopt, "request needs a string 'cmd' (" + command_list() + ")"};
  }
  const std::string& name = cmd->get_ref<const std::string&>();
  std::optional<ControlCommand> command = command_named(name);
  if (!command) {
    return {std::nullopt, "unknown command '" + name + "' (try " + command_list() + ")"};
  }
  ControlRequest request;
  request.command = *command;
  if (std::string error = read_arguments(object, request); !error.empty()) {
    return {std::nullopt, std::move(error)};
  }
  return {request, {}};
}

}  // namespace herd::proto
