#include "proto/messages.h"

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace herd::proto {
namespace {

// Decodes `text` and returns the message, failing the test if it was rejected.
template <typename Expected>
Expected decode_worker_as(const std::string& text) {
  Decoded<WorkerMessage> decoded = decode_worker_message(text);
  EXPECT_TRUE(decoded.message.has_value()) << text << ": " << decoded.error;
  EXPECT_TRUE(decoded.error.empty()) << decoded.error;
  if (!decoded.message) return Expected{};
  const Expected* message = std::get_if<Expected>(&*decoded.message);
  EXPECT_NE(message, nullptr) << text << " decoded as " << type_name(*decoded.message);
  return message == nullptr ? Expected{} : *message;
}

template <typename Expected>
Expected decode_master_as(const std::string& text) {
  Decoded<MasterMessage> decoded = decode_master_message(text);
  EXPECT_TRUE(decoded.message.has_value()) << text << ": " << decoded.error;
  EXPECT_TRUE(decoded.error.empty()) << decoded.error;
  if (!decoded.message) return Expected{};
  const Expected* message = std::get_if<Expected>(&*decoded.message);
  EXPECT_NE(message, nullptr) << text << " decoded as " << type_name(*decoded.message);
  return message == nullptr ? Expected{} : *message;
}

// Expects `decoded` to be a rejection whose error mentions `mention`.
template <typename Message>
void expect_rejected(const Decoded<Message>& decoded, const std::string& mention) {
  EXPECT_FALSE(decoded.message.has_value()) << "accepted, expected an error mentioning " << mention;
  EXPECT_NE(decoded.error.find(mention), std::string::npos)
      << "error '" << decoded.error << "' does not mention " << mention;
}

// ---- Round trips, worker -> master ----

TEST(MessagesTest, HelloRoundTrips) {
  Hello hello = decode_worker_as<Hello>(encode(WorkerMessage{Hello{kProtocolVersion, 4242}}));

  EXPECT_EQ(hello.proto, kProtocolVersion);
  EXPECT_EQ(hello.pid, 4242);
}

TEST(MessagesTest, ReadyRoundTrips) {
  decode_worker_as<Ready>(encode(WorkerMessage{Ready{}}));
}

TEST(MessagesTest, AckRoundTripsSeqsInOrderAndAcceptedFlag) {
  Ack ack = decode_worker_as<Ack>(encode(WorkerMessage{Ack{{7, 3, 12}, false}}));

  EXPECT_EQ(ack.seqs, (std::vector<std::uint64_t>{7, 3, 12}));
  EXPECT_FALSE(ack.accepted);
}

TEST(MessagesTest, AckRoundTripsEmptySeqsAndLargestSeq) {
  const std::uint64_t largest = std::numeric_limits<std::uint64_t>::max();
  Ack ack = decode_worker_as<Ack>(encode(WorkerMessage{Ack{{0, largest}, true}}));

  EXPECT_EQ(ack.seqs, (std::vector<std::uint64_t>{0, largest}));
  EXPECT_TRUE(ack.accepted);
  EXPECT_TRUE(decode_worker_as<Ack>(encode(WorkerMessage{Ack{{}, true}})).seqs.empty());
}

TEST(MessagesTest, HeartbeatRoundTripsEveryCounter) {
  WorkerStats stats;
  stats.connections = 10;
  stats.active_connections = 2;
  stats.requests = 99;
  stats.responses = ResponseCounts{90, 1, 7, 1};
  stats.bytes_in = 12345;
  stats.bytes_out = 67890;
  stats.latency_us.record(3);
  stats.latency_us.record(1500, 4);
  stats.latency_us.record(70'000'000);

  Heartbeat heartbeat = decode_worker_as<Heartbeat>(encode(WorkerMessage{Heartbeat{stats}}));

  EXPECT_EQ(heartbeat.stats, stats);
}

TEST(MessagesTest, HeartbeatWithAMalformedHistogramIsRejected) {
  const char* bad_histograms[] = {
      R"("nope")",
      R"({"buckets":[[99999,1]],"max":1})",
      R"({"buckets":[[1]],"max":1})",
      R"({"buckets":[],"max":-1})",
  };
  for (const char* histogram : bad_histograms) {
    std::string text =
        std::string(R"({"type":"heartbeat","stats":{"connections":1,"active_connections":0,)") +
        R"("requests":1,"responses":{"2xx":1,"3xx":0,"4xx":0,"5xx":0},"bytes_in":1,)" +
        R"("bytes_out":1,"latency_us":)" + histogram + "}}";
    EXPECT_FALSE(decode_worker_message(text).message.has_value()) << histogram;
  }
}

TEST(MessagesTest, PongRoundTrips) {
  decode_worker_as<Pong>(encode(WorkerMessage{Pong{}}));
}

TEST(MessagesTest, CapacityRoundTripsFull) {
  EXPECT_TRUE(decode_worker_as<Capacity>(encode(WorkerMessage{Capacity{true}})).full);
  EXPECT_FALSE(decode_worker_as<Capacity>(encode(WorkerMessage{Capacity{false}})).full);
}

TEST(MessagesTest, RejectsCapacityWithoutABooleanFull) {
  expect_rejected(decode_worker_message(R"({"type":"capacity"})"), "full");
  expect_rejected(decode_worker_message(R"({"type":"capacity","full":1})"), "full");
}

// ---- Round trips, master -> worker ----

TEST(MessagesTest, ConnRoundTripsSeq) {
  EXPECT_EQ(decode_master_as<Conn>(encode(MasterMessage{Conn{31337}})).seq, 31337u);
  const std::uint64_t largest = std::numeric_limits<std::uint64_t>::max();
  EXPECT_EQ(decode_master_as<Conn>(encode(MasterMessage{Conn{largest}})).seq, largest);
}

TEST(MessagesTest, DrainRoundTripsDeadline) {
  EXPECT_EQ(decode_master_as<Drain>(encode(MasterMessage{Drain{30000}})).deadline_ms, 30000);
}

TEST(MessagesTest, PingRoundTrips) {
  decode_master_as<Ping>(encode(MasterMessage{Ping{}}));
}

// ---- Wire format ----

TEST(MessagesTest, EncodesOneJsonObjectWithTypeAndNamedFields) {
  nlohmann::json conn = nlohmann::json::parse(encode(MasterMessage{Conn{5}}));
  EXPECT_EQ(conn, (nlohmann::json{{"type", "conn"}, {"seq", 5}}));

  nlohmann::json ack = nlohmann::json::parse(encode(WorkerMessage{Ack{{1, 2}, true}}));
  EXPECT_EQ(ack, (nlohmann::json{{"type", "ack"}, {"seqs", {1, 2}}, {"accepted", true}}));
}

TEST(MessagesTest, DecodesHandWrittenMessages) {
  Hello hello = decode_worker_as<Hello>(R"({"type":"hello","proto":1,"pid":77})");
  EXPECT_EQ(hello.pid, 77);
  EXPECT_EQ(decode_master_as<Drain>(R"({"type":"drain","deadline_ms":0})").deadline_ms, 0);
}

TEST(MessagesTest, IgnoresUnknownExtraFields) {
  Conn conn = decode_master_as<Conn>(R"({"type":"conn","seq":9,"future":{"nested":[1,2]}})");
  EXPECT_EQ(conn.seq, 9u);

  Ack ack = decode_worker_as<Ack>(R"({"accepted":true,"trace":"abc","seqs":[4],"type":"ack"})");
  EXPECT_EQ(ack.seqs, (std::vector<std::uint64_t>{4}));

  decode_worker_as<Ready>(R"({"type":"ready","proto":"anything"})");
}

// ---- Malformed envelopes ----

TEST(MessagesTest, RejectsTextThatIsNotJson) {
  expect_rejected(decode_worker_message(R"({"type":"ready")"), "JSON");
  expect_rejected(decode_master_message("ping"), "JSON");
  expect_rejected(decode_master_message(""), "JSON");
}

TEST(MessagesTest, RejectsTrailingGarbageAfterObject) {
  expect_rejected(decode_master_message(R"({"type":"ping"} {"type":"ping"})"), "JSON");
}

TEST(MessagesTest, RejectsJsonThatIsNotAnObject) {
  expect_rejected(decode_worker_message(R"(["type","ready"])"), "object");
  expect_rejected(decode_worker_message(R"("ready")"), "object");
  expect_rejected(decode_master_message("42"), "object");
  expect_rejected(decode_master_message("null"), "object");
}

TEST(MessagesTest, RejectsObjectWithoutType) {
  expect_rejected(decode_worker_message(R"({"seqs":[1],"accepted":true})"), "type");
  expect_rejected(decode_master_message("{}"), "type");
}

TEST(MessagesTest, RejectsNonStringType) {
  expect_rejected(decode_worker_message(R"({"type":1})"), "type");
  expect_rejected(decode_master_message(R"({"type":null})"), "type");
  expect_rejected(decode_master_message(R"({"type":["conn"],"seq":1})"), "type");
}

TEST(MessagesTest, RejectsUnknownTypeNamingIt) {
  expect_rejected(decode_worker_message(R"({"type":"bogus"})"), "'bogus'");
  expect_rejected(decode_master_message(R"({"type":"Ping"})"), "'Ping'");
}

TEST(MessagesTest, RejectsMessageOfTheOtherDirection) {
  expect_rejected(decode_worker_message(encode(MasterMessage{Conn{1}})), "'conn'");
  expect_rejected(decode_worker_message(encode(MasterMessage{Ping{}})), "'ping'");
  expect_rejected(decode_master_message(encode(WorkerMessage{Ack{{1}, true}})), "'ack'");
  expect_rejected(decode_master_message(encode(WorkerMessage{Pong{}})), "'pong'");
}

// ---- Missing fields ----

TEST(MessagesTest, RejectsHelloMissingPid) {
  expect_rejected(decode_worker_message(R"({"type":"hello","proto":1})"), "pid");
}

TEST(MessagesTest, RejectsHelloMissingProto) {
  expect_rejected(decode_worker_message(R"({"type":"hello","pid":1})"), "proto");
}

TEST(MessagesTest, RejectsAckMissingSeqs) {
  expect_rejected(decode_worker_message(R"({"type":"ack","accepted":true})"), "seqs");
}

TEST(MessagesTest, RejectsAckMissingAccepted) {
  expect_rejected(decode_worker_message(R"({"type":"ack","seqs":[1]})"), "accepted");
}

TEST(MessagesTest, RejectsHeartbeatMissingStatsOrCounter) {
  expect_rejected(decode_worker_message(R"({"type":"heartbeat"})"), "stats");
  expect_rejected(decode_worker_message(
                      R"({"type":"heartbeat","stats":{"connections":1,"active_connections":0}})"),
                  "requests");
}

TEST(MessagesTest, RejectsConnMissingSeq) {
  expect_rejected(decode_master_message(R"({"type":"conn"})"), "seq");
}

TEST(MessagesTest, RejectsDrainMissingDeadline) {
  expect_rejected(decode_master_message(R"({"type":"drain"})"), "deadline_ms");
}

// ---- Mistyped fields ----

TEST(MessagesTest, RejectsSeqsThatIsNotAnArray) {
  expect_rejected(decode_worker_message(R"({"type":"ack","seqs":5,"accepted":true})"), "seqs");
  expect_rejected(decode_worker_message(R"({"type":"ack","seqs":{"0":5},"accepted":true})"),
                  "seqs");
}

TEST(MessagesTest, RejectsSeqsWithNonIntegerElement) {
  expect_rejected(decode_worker_message(R"({"type":"ack","seqs":[1,"2"],"accepted":true})"),
                  "seqs");
  expect_rejected(decode_worker_message(R"({"type":"ack","seqs":[1.5],"accepted":true})"), "seqs");
  expect_rejected(decode_worker_message(R"({"type":"ack","seqs":[[1]],"accepted":true})"), "seqs");
}

TEST(MessagesTest, RejectsNegativeSeq) {
  expect_rejected(decode_worker_message(R"({"type":"ack","seqs":[3,-1],"accepted":true})"), "seqs");
  expect_rejected(decode_master_message(R"({"type":"conn","seq":-1})"), "seq");
}

TEST(MessagesTest, RejectsAcceptedThatIsNotBoolean) {
  expect_rejected(decode_worker_message(R"({"type":"ack","seqs":[1],"accepted":1})"), "accepted");
  expect_rejected(decode_worker_message(R"({"type":"ack","seqs":[1],"accepted":"true"})"),
                  "accepted");
}

TEST(MessagesTest, RejectsNonIntegerSeq) {
  expect_rejected(decode_master_message(R"({"type":"conn","seq":"1"})"), "seq");
  expect_rejected(decode_master_message(R"({"type":"conn","seq":1.0})"), "seq");
  expect_rejected(decode_master_message(R"({"type":"conn","seq":true})"), "seq");
}

TEST(MessagesTest, RejectsMistypedHelloFields) {
  expect_rejected(decode_worker_message(R"({"type":"hello","proto":"1","pid":1})"), "proto");
  expect_rejected(decode_worker_message(R"({"type":"hello","proto":1,"pid":1.5})"), "pid");
}

TEST(MessagesTest, RejectsStatsThatIsNotAnObjectOrHasNegativeCounter) {
  expect_rejected(decode_worker_message(R"({"type":"heartbeat","stats":[1,0,3]})"), "stats");
  expect_rejected(
      decode_worker_message(
          R"({"type":"heartbeat","stats":{"connections":1,"active_connections":-1,"requests":3}})"),
      "active_connections");
}

TEST(MessagesTest, RejectsNonIntegerDeadline) {
  expect_rejected(decode_master_message(R"({"type":"drain","deadline_ms":"soon"})"), "deadline_ms");
}

// ---- Integers out of range ----

TEST(MessagesTest, RejectsSeqBeyondUint64) {
  expect_rejected(decode_master_message(R"({"type":"conn","seq":18446744073709551616})"), "seq");
  expect_rejected(
      decode_worker_message(R"({"type":"ack","seqs":[18446744073709551616],"accepted":true})"),
      "seqs");
}

TEST(MessagesTest, RejectsHugeNumberWithoutCrashing) {
  std::string huge = R"({"type":"conn","seq":1)" + std::string(400, '0') + "}";

  Decoded<MasterMessage> decoded = decode_master_message(huge);

  EXPECT_FALSE(decoded.message.has_value());
  EXPECT_FALSE(decoded.error.empty());
}

TEST(MessagesTest, RejectsProtoBeyondIntRange) {
  // 2^32 would wrap to 0 if narrowed silently.
  expect_rejected(decode_worker_message(R"({"type":"hello","proto":4294967296,"pid":1})"), "proto");
}

TEST(MessagesTest, RejectsPidBeyondInt64) {
  // 2^63 would wrap to a negative pid if narrowed silently.
  expect_rejected(decode_worker_message(R"({"type":"hello","proto":1,"pid":9223372036854775808})"),
                  "pid");
}

TEST(MessagesTest, RejectsDeadlineBeyondInt64) {
  // 2^64-1 would wrap to -1 if narrowed silently.
  expect_rejected(decode_master_message(R"({"type":"drain","deadline_ms":18446744073709551615})"),
                  "deadline_ms");
}

// ---- type_name ----

TEST(MessagesTest, TypeNameIsTheWireNameOfEveryWorkerMessage) {
  EXPECT_EQ(type_name(WorkerMessage{Hello{}}), "hello");
  EXPECT_EQ(type_name(WorkerMessage{Ready{}}), "ready");
  EXPECT_EQ(type_name(WorkerMessage{Ack{}}), "ack");
  EXPECT_EQ(type_name(WorkerMessage{Heartbeat{}}), "heartbeat");
  EXPECT_EQ(type_name(WorkerMessage{Pong{}}), "pong");
  EXPECT_EQ(type_name(WorkerMessage{Capacity{}}), "capacity");
}

TEST(MessagesTest, TypeNameIsTheWireNameOfEveryMasterMessage) {
  EXPECT_EQ(type_name(MasterMessage{Conn{}}), "conn");
  EXPECT_EQ(type_name(MasterMessage{Drain{}}), "drain");
  EXPECT_EQ(type_name(MasterMessage{Ping{}}), "ping");
}

TEST(MessagesTest, TypeNameMatchesEncodedType) {
  for (const WorkerMessage& message :
       {WorkerMessage{Hello{}}, WorkerMessage{Ready{}}, WorkerMessage{Ack{}},
        WorkerMessage{Heartbeat{}}, WorkerMessage{Pong{}}, WorkerMessage{Capacity{}}}) {
    EXPECT_EQ(nlohmann::json::parse(encode(message))["type"], std::string(type_name(message)));
  }
  for (const MasterMessage& message :
       {MasterMessage{Conn{}}, MasterMessage{Drain{}}, MasterMessage{Ping{}}}) {
    EXPECT_EQ(nlohmann::json::parse(encode(message))["type"], std::string(type_name(message)));
  }
}

}  // namespace
}  // namespace herd::proto
