#include "proto/control.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace herd::proto {
namespace {

using nlohmann::json;

ControlRequest request_for(ControlCommand command, std::optional<std::uint64_t> id = std::nullopt) {
  ControlRequest request;
  request.command = command;
  request.id = id;
  return request;
}

std::string error_of(std::string_view line) {
  DecodedControlRequest decoded = decode_control_request(line);
  EXPECT_FALSE(decoded.request) << line;
  return decoded.error;
}

TEST(ControlProtocolTest, EncodesEachRequest) {
  ControlRequest scale = request_for(ControlCommand::kScale);
  scale.workers = 3;
  ControlRequest reload_wait = request_for(ControlCommand::kReload);
  reload_wait.wait = true;

  EXPECT_EQ(encode(request_for(ControlCommand::kPing)), json({{"cmd", "ping"}}));
  EXPECT_EQ(encode(request_for(ControlCommand::kStatus)), json({{"cmd", "status"}}));
  EXPECT_EQ(encode(request_for(ControlCommand::kStats)), json({{"cmd", "stats"}}));
  EXPECT_EQ(encode(request_for(ControlCommand::kStats, 3)), json({{"cmd", "stats"}, {"id", 3}}));
  EXPECT_EQ(encode(request_for(ControlCommand::kRestart, 4)),
            json({{"cmd", "restart"}, {"id", 4}}));
  EXPECT_EQ(encode(request_for(ControlCommand::kReload)), json({{"cmd", "reload"}}));
  EXPECT_EQ(encode(reload_wait), json({{"cmd", "reload"}, {"wait", true}}));
  EXPECT_EQ(encode(scale), json({{"cmd", "scale"}, {"workers", 3}}));
  EXPECT_EQ(encode(request_for(ControlCommand::kStop)), json({{"cmd", "stop"}}));
  EXPECT_EQ(encode(request_for(ControlCommand::kEvents)), json({{"cmd", "events"}}));
}

TEST(ControlProtocolTest, RequestIdsAreUnsignedIntegers) {
  json request = encode(request_for(ControlCommand::kRestart, 4));
  EXPECT_TRUE(request["id"].is_number_unsigned());
  EXPECT_EQ(request.dump(), R"({"cmd":"restart","id":4})");
}

// What herdctl sends, the master reads back unchanged.
TEST(ControlProtocolTest, EveryEncodedRequestDecodesToItself) {
  ControlRequest scale = request_for(ControlCommand::kScale);
  scale.workers = kMaxWorkers;
  ControlRequest reload_wait = request_for(ControlCommand::kReload);
  reload_wait.wait = true;
  for (const ControlRequest& request :
       {request_for(ControlCommand::kPing), request_for(ControlCommand::kStatus),
        request_for(ControlCommand::kStats), request_for(ControlCommand::kStats, 7),
        request_for(ControlCommand::kRestart, 4), request_for(ControlCommand::kReload), reload_wait,
        scale, request_for(ControlCommand::kStop), request_for(ControlCommand::kEvents)}) {
    std::string line = encode(request).dump();
    DecodedControlRequest decoded = decode_control_request(line);
    ASSERT_TRUE(decoded.request) << line << ": " << decoded.error;
    EXPECT_EQ(*decoded.request, request) << line;
  }
}

TEST(ControlProtocolTest, ArgumentsOfOtherCommandsAreIgnored) {
  DecodedControlRequest decoded = decode_control_request(R"({"cmd":"ping","id":"x","wait":3})");
  ASSERT_TRUE(decoded.request) << decoded.error;
  EXPECT_EQ(*decoded.request, request_for(ControlCommand::kPing));
}

TEST(ControlProtocolTest, LinesThatAreNoRequestSayWhy) {
  EXPECT_EQ(error_of("{"), "request is not valid JSON");
  EXPECT_EQ(error_of("[1]"), "request must be a JSON object");
  EXPECT_EQ(error_of(R"({"cmd":1})"),
            "request needs a string 'cmd' (ping, status, stats, restart, reload, scale, stop, "
            "events)");
  EXPECT_EQ(error_of(R"({"cmd":"nope"})"),
            "unknown command 'nope' (try ping, status, stats, restart, reload, scale, stop, "
            "events)");
}

TEST(ControlProtocolTest, BadArgumentsSayWhich) {
  EXPECT_EQ(error_of(R"({"cmd":"stats","id":-1})"), "'id' must be a non-negative integer");
  EXPECT_EQ(error_of(R"({"cmd":"restart"})"), "restart needs 'id', the worker to replace");
  EXPECT_EQ(error_of(R"({"cmd":"restart","id":"3"})"), "'id' must be a non-negative integer");
  EXPECT_EQ(error_of(R"({"cmd":"reload","wait":"yes"})"), "'wait' must be a boolean");
  for (const char* line :
       {R"({"cmd":"scale"})", R"({"cmd":"scale","workers":0})", R"({"cmd":"scale","workers":1025})",
        R"({"cmd":"scale","workers":2.5})"}) {
    EXPECT_EQ(error_of(line), "scale needs 'workers', an integer from 1 to 1024") << line;
  }
}

TEST(ControlProtocolTest, CommandNamesAreTheWireNames) {
  EXPECT_EQ(command_name(ControlCommand::kPing), "ping");
  EXPECT_EQ(command_name(ControlCommand::kEvents), "events");
}

}  // namespace
}  // namespace herd::proto
