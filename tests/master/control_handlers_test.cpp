#include "master/control_handlers.h"

#include <csignal>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace herd {

// So that a failed EXPECT_EQ on an action names it.
static void PrintTo(ControlAction action, std::ostream* out) {
  switch (action) {
    case ControlAction::kNone:
      *out << "kNone";
      return;
    case ControlAction::kRestart:
      *out << "kRestart";
      return;
    case ControlAction::kReload:
      *out << "kReload";
      return;
    case ControlAction::kScale:
      *out << "kScale";
      return;
    case ControlAction::kStop:
      *out << "kStop";
      return;
    case ControlAction::kSubscribe:
      *out << "kSubscribe";
      return;
  }
  *out << "ControlAction(" << static_cast<int>(action) << ")";
}

namespace {

using nlohmann::json;
using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Fixed, arbitrary monotonic times: the handlers never read the clock themselves.
const TimePoint kStart = TimePoint{} + hours(1);
const TimePoint kNow = kStart + seconds(90);
constexpr std::int64_t kUnixMs = 1'700'000'000'000;
constexpr pid_t kMasterPid = 4242;

MasterView running_master() {
  MasterView master;
  master.pid = kMasterPid;
  master.version = "0.1.0";
  master.started_at = kStart;
  master.listen = "127.0.0.1:3000";
  master.pending = 2;
  master.max_connections = 1000;
  master.connections_total = 77;
  return master;
}

MasterView stopping_master() {
  MasterView master = running_master();
  master.stopping = true;
  return master;
}

// Adds a worker spawned at `at` into `slot` and returns its record.
WorkerRecord& spawn(WorkerTable& table, std::size_t slot, pid_t pid, TimePoint at = kStart) {
  return table.add(table.allocate_id(), slot, pid, at, kUnixMs);
}

// A table with `count` ready workers, ids 1..count in slots 0..count-1, pids 101...
WorkerTable ready_table(std::size_t count) {
  WorkerTable table(count);
  for (std::size_t slot = 0; slot < count; ++slot) {
    spawn(table, slot, static_cast<pid_t>(101 + slot)).state = WorkerState::kReady;
  }
  return table;
}

ControlDecision handle(std::string_view line, const WorkerTable& table,
                       const MasterView& master = running_master()) {
  return handle_control_request(line, master, table, kNow);
}

std::set<std::string> keys_of(const json& object) {
  std::set<std::string> keys;
  for (const auto& [key, value] : object.items()) keys.insert(key);
  return keys;
}

// The decision must be an error reply whose message contains `fragment`, and no action.
void expect_error(const ControlDecision& decision, std::string_view fragment) {
  EXPECT_EQ(decision.action, ControlAction::kNone);
  EXPECT_TRUE(decision.workers.empty());
  ASSERT_TRUE(decision.reply.is_object()) << decision.reply.dump();
  EXPECT_EQ(decision.reply.value("ok", true), false) << decision.reply.dump();
  ASSERT_TRUE(decision.reply.contains("error")) << decision.reply.dump();
  ASSERT_TRUE(decision.reply["error"].is_string()) << decision.reply.dump();
  EXPECT_NE(decision.reply["error"].get<std::string>().find(fragment), std::string::npos)
      << decision.reply.dump();
}

// --- ping --------------------------------------------------------------------

TEST(ControlHandlersTest, PingRepliesWithPidAndVersion) {
  WorkerTable table = ready_table(1);

  ControlDecision decision = handle(R"({"cmd":"ping"})", table);

  EXPECT_EQ(decision.reply, json::parse(R"({"ok":true,"pid":4242,"version":"0.1.0"})"));
  EXPECT_EQ(decision.action, ControlAction::kNone);
}

// --- status ------------------------------------------------------------------

TEST(ControlHandlersTest, StatusHasTheDocumentedMasterFields) {
  WorkerTable table = ready_table(2);

  json reply = handle(R"({"cmd":"status"})", table).reply;

  ASSERT_TRUE(reply["master"].is_object()) << reply.dump();
  EXPECT_EQ(keys_of(reply["master"]),
            (std::set<std::string>{"pid", "version", "uptime_ms", "listen", "schedule", "state",
                                   "workers_target", "pending", "max_connections",
                                   "connections_total", "restarts_total"}));
  EXPECT_EQ(keys_of(reply), (std::set<std::string>{"ok", "master", "workers", "slots"}));
}

TEST(ControlHandlersTest, StatusDescribesTheMaster) {
  WorkerTable table(3);
  pid_t crashed = 100;
  spawn(table, 0, crashed);
  table.remove_exited(crashed, kStart + seconds(5), ExitStatus{1, std::nullopt});
  spawn(table, 0, 101, kStart + seconds(5));

  json reply = handle(R"({"cmd":"status"})", table).reply;

  EXPECT_EQ(reply["ok"], true);
  EXPECT_EQ(reply["master"], json::parse(R"({
    "pid": 4242, "version": "0.1.0", "uptime_ms": 90000, "listen": "127.0.0.1:3000",
    "schedule": "round-robin", "state": "running", "workers_target": 3, "pending": 2,
    "max_connections": 1000, "connections_total": 77, "restarts_total": 1})"));
}

TEST(ControlHandlersTest, StatusListsEveryWorkerWithEveryDocumentedField) {
  WorkerTable table = ready_table(3);

  json reply = handle(R"({"cmd":"status"})", table).reply;

  ASSERT_TRUE(reply["workers"].is_array()) << reply.dump();
  ASSERT_EQ(reply["workers"].size(), 3u);
  for (const json& worker : reply["workers"]) {
    EXPECT_EQ(keys_of(worker),
              (std::set<std::string>{
                  "id",        "slot",      "pid",       "state",       "started_at",
                  "uptime_ms", "restarts",  "last_exit", "connections", "active_connections",
                  "full",      "requests",  "rps",       "responses",   "latency_us",
                  "bytes_in",  "bytes_out", "rss_kb",    "cpu_pct",     "last_heartbeat_ms"}));
    EXPECT_EQ(keys_of(worker["responses"]), (std::set<std::string>{"2xx", "3xx", "4xx", "5xx"}));
    EXPECT_EQ(keys_of(worker["latency_us"]), (std::set<std::string>{"p50", "p90", "p99", "max"}));
  }
  EXPECT_EQ(reply["workers"][0]["id"], 1);
  EXPECT_EQ(reply["workers"][1]["id"], 2);
  EXPECT_EQ(reply["workers"][2]["id"], 3);
}

TEST(ControlHandlersTest, StatusReportsEachWorkersFields) {
  WorkerTable table(2);
  spawn(table, 1, 100);
  table.remove_exited(100, kStart + seconds(10), ExitStatus{std::nullopt, SIGKILL});
  WorkerRecord& worker = spawn(table, 1, 200, kStart + seconds(10));
  worker.state = WorkerState::kReady;
  worker.last_heartbeat = kNow - Milliseconds{1500};
  worker.connections_handed = 12;
  worker.stats.active_connections = 3;
  worker.full = true;
  worker.stats.requests = 40;
  worker.stats.responses = {30, 5, 4, 1};
  worker.stats.bytes_in = 4000;
  worker.stats.bytes_out = 9000;
  worker.stats.latency_us.record(20, 40);
  worker.request_rate.add(kNow - seconds(2), 0);
  worker.request_rate.add(kNow, 25);
  worker.rss_kb = 20480;
  worker.cpu_pct = 12.345;

  json reply = handle(R"({"cmd":"status"})", table).reply;

  ASSERT_EQ(reply["workers"].size(), 1u) << reply.dump();
  EXPECT_EQ(reply["workers"][0], json::parse(R"({
    "id": 2, "slot": 1, "pid": 200, "state": "ready", "started_at": 1700000000000,
    "uptime_ms": 80000, "restarts": 1, "last_exit": {"code": null, "signal": 9},
    "connections": 12, "active_connections": 3, "full": true, "requests": 40, "rps": 12.5,
    "responses": {"2xx": 30, "3xx": 5, "4xx": 4, "5xx": 1},
    "latency_us": {"p50": 20, "p90": 20, "p99": 20, "max": 20},
    "bytes_in": 4000, "bytes_out": 9000, "rss_kb": 20480, "cpu_pct": 12.3,
    "last_heartbeat_ms": 1500})"));
}

TEST(ControlHandlersTest, StatusOfAFirstWorkerHasNoLastExit) {
  WorkerTable table = ready_table(1);

  json reply = handle(R"({"cmd":"status"})", table).reply;

  ASSERT_EQ(reply["workers"].size(), 1u) << reply.dump();
  EXPECT_TRUE(reply["workers"][0]["last_exit"].is_null());
  EXPECT_EQ(reply["workers"][0]["restarts"], 0);
}

TEST(ControlHandlersTest, StatusWithNoWorkersHasAnEmptyList) {
  WorkerTable table(2);

  json reply = handle(R"({"cmd":"status"})", table).reply;

  EXPECT_EQ(reply["ok"], true);
  EXPECT_EQ(reply["workers"], json::array());
}

// --- stats -------------------------------------------------------------------

// Two live workers (ids 2 and 3) and one that exited (id 1), each with its own
// counters and latencies: 1000 fast requests on worker 2, 50 medium on worker
// 3, 50 slow on the exited worker.
WorkerTable table_with_history() {
  WorkerTable table(2);
  WorkerRecord& exited = spawn(table, 1, 100);
  exited.stats.requests = 50;
  exited.stats.responses = {40, 0, 0, 10};
  exited.stats.bytes_in = 500;
  exited.stats.bytes_out = 7000;
  exited.stats.latency_us.record(2'000'000, 50);
  table.remove_exited(100, kStart + seconds(30), ExitStatus{0, std::nullopt});

  WorkerRecord& fast = spawn(table, 0, 200);
  fast.stats.requests = 1000;
  fast.stats.responses = {990, 5, 5, 0};
  fast.stats.bytes_in = 100'000;
  fast.stats.bytes_out = 2'000'000;
  fast.stats.active_connections = 4;
  fast.stats.latency_us.record(20, 1000);
  fast.request_rate.add(kNow - seconds(4), 0);
  fast.request_rate.add(kNow, 40);  // 10 per second

  WorkerRecord& medium = spawn(table, 1, 300, kStart + seconds(30));
  medium.stats.requests = 50;
  medium.stats.responses = {45, 1, 3, 1};
  medium.stats.bytes_in = 6000;
  medium.stats.bytes_out = 80'000;
  medium.stats.latency_us.record(50'000, 50);
  medium.request_rate.add(kNow - seconds(2), 10);
  medium.request_rate.add(kNow, 15);  // 2.5 per second
  return table;
}

TEST(ControlHandlersTest, StatsTotalsSumLiveAndExitedWorkers) {
  WorkerTable table = table_with_history();

  json reply = handle(R"({"cmd":"stats"})", table).reply;

  ASSERT_EQ(reply["ok"], true) << reply.dump();
  const json& total = reply["total"];
  EXPECT_EQ(total["requests"], 1100);
  EXPECT_EQ(total["responses"], json::parse(R"({"2xx":1075,"3xx":6,"4xx":8,"5xx":11})"));
  EXPECT_EQ(total["bytes_in"], 106'500);
  EXPECT_EQ(total["bytes_out"], 2'087'000);
  EXPECT_EQ(keys_of(total), (std::set<std::string>{"requests", "responses", "latency_us",
                                                   "bytes_in", "bytes_out", "rps"}));
}

TEST(ControlHandlersTest, StatsTotalsIncludeTheRetiredStatsOfTheTable) {
  WorkerTable table = table_with_history();
  const proto::WorkerStats& retired = table.retired_stats();
  ASSERT_EQ(retired.requests, 50u);

  json reply = handle(R"({"cmd":"stats"})", table).reply;

  std::uint64_t live = 0;
  for (const json& worker : reply["workers"]) live += worker["requests"].get<std::uint64_t>();
  EXPECT_EQ(live, 1050u);
  EXPECT_EQ(reply["total"]["requests"], live + retired.requests);
}

TEST(ControlHandlersTest, StatsListsOnlyLiveWorkers) {
  WorkerTable table = table_with_history();

  json reply = handle(R"({"cmd":"stats"})", table).reply;

  ASSERT_EQ(reply["workers"].size(), 2u) << reply.dump();
  EXPECT_EQ(reply["workers"][0]["id"], 2);
  EXPECT_EQ(reply["workers"][1]["id"], 3);
}

TEST(ControlHandlersTest, StatsTotalPercentilesComeFromTheMergedHistogram) {
  WorkerTable table = table_with_history();
  LatencyHistogram merged = table.retired_stats().latency_us;
  for (const auto& [id, record] : table.workers()) merged.merge(record.stats.latency_us);

  json reply = handle(R"({"cmd":"stats"})", table).reply;

  const json& latency = reply["total"]["latency_us"];
  EXPECT_EQ(latency, latency_json(merged));
  // 1000 fast, 50 medium, 50 slow: the 99th percentile is among the exited worker's slow ones.
  EXPECT_EQ(latency["p50"], 20);
  EXPECT_EQ(latency["p90"], 20);
  EXPECT_EQ(latency["p99"], 2'000'000);
  EXPECT_EQ(latency["max"], 2'000'000);
}

TEST(ControlHandlersTest, StatsTotalRateSumsTheLiveWorkers) {
  WorkerTable table = table_with_history();

  json reply = handle(R"({"cmd":"stats"})", table).reply;

  EXPECT_EQ(reply["total"]["rps"], 12.5);
  EXPECT_EQ(reply["workers"][0]["rps"], 10.0);
  EXPECT_EQ(reply["workers"][1]["rps"], 2.5);
}

TEST(ControlHandlersTest, StatsWithIdCoversOnlyThatWorker) {
  WorkerTable table = table_with_history();

  json reply = handle(R"({"cmd":"stats","id":3})", table).reply;

  ASSERT_EQ(reply["ok"], true) << reply.dump();
  ASSERT_EQ(reply["workers"].size(), 1u);
  EXPECT_EQ(reply["workers"][0]["id"], 3);
  EXPECT_EQ(reply["total"], json::parse(R"({
    "requests": 50, "responses": {"2xx": 45, "3xx": 1, "4xx": 3, "5xx": 1},
    "latency_us": {"p50": 50000, "p90": 50000, "p99": 50000, "max": 50000},
    "bytes_in": 6000, "bytes_out": 80000, "rps": 2.5})"));
}

TEST(ControlHandlersTest, StatsWithUnknownIdIsAnError) {
  WorkerTable table = table_with_history();

  expect_error(handle(R"({"cmd":"stats","id":99})", table), "no worker with id 99");
}

KeptLine line_at(std::int64_t unix_ms, OutputStream stream, std::string text) {
  return KeptLine{unix_ms, stream, std::move(text), false};
}

TEST(ControlHandlersTest, StatsWithTheIdOfAnExitedWorkerAnswersFromItsSlot) {
  WorkerTable table(1);
  WorkerRecord& dying = spawn(table, 0, 100);
  dying.stats.requests = 7;
  dying.connections_handed = 8;
  dying.last_heartbeat = kStart + seconds(20);
  table.keep_output(1, line_at(kUnixMs + 1, OutputStream::kStdout, "starting"));
  table.keep_output(1, line_at(kUnixMs + 2, OutputStream::kStderr, "fatal: out of cheese"));
  table.remove_exited(100, kStart + seconds(30), ExitStatus{std::nullopt, SIGSEGV});
  spawn(table, 0, 200, kStart + seconds(30));

  json reply = handle(R"({"cmd":"stats","id":1})", table).reply;

  ASSERT_EQ(reply["ok"], true) << reply.dump();
  ASSERT_EQ(reply["workers"].size(), 1u) << reply.dump();
  json worker = reply["workers"][0];
  EXPECT_EQ(worker["id"], 1);
  EXPECT_EQ(worker["slot"], 0);
  EXPECT_EQ(worker["pid"], 100);
  EXPECT_EQ(worker["state"], "exited");
  EXPECT_EQ(worker["started_at"], kUnixMs);
  EXPECT_EQ(worker["exited_at"], kUnixMs + 30000);
  EXPECT_EQ(worker["uptime_ms"], 30000);
  EXPECT_EQ(worker["last_heartbeat_ms"], 10000) << "silent for this long before it died";
  EXPECT_EQ(worker["exit"], json::parse(R"({"code":null,"signal":11})"));
  EXPECT_EQ(worker["requests"], 7);
  EXPECT_EQ(worker["connections"], 8);
  EXPECT_EQ(worker["last_lines"], json::parse(R"([
    {"time":1700000000001,"stream":"stdout","line":"starting"},
    {"time":1700000000002,"stream":"stderr","line":"fatal: out of cheese"}])"));
  EXPECT_EQ(reply["total"]["requests"], 7);
}

TEST(ControlHandlersTest, StatsWithIdShowsTheWorkersLastLinesAndItsSlotsLastExit) {
  WorkerTable table(1);
  spawn(table, 0, 100);
  table.keep_output(1, line_at(kUnixMs + 1, OutputStream::kStderr, "panic"));
  table.remove_exited(100, kStart + seconds(30), ExitStatus{2, std::nullopt});
  spawn(table, 0, 200, kStart + seconds(30)).state = WorkerState::kReady;
  KeptLine cut = line_at(kUnixMs + 40000, OutputStream::kStdout, "partial");
  cut.cut = true;
  table.keep_output(2, cut);

  json reply = handle(R"({"cmd":"stats","id":2})", table).reply;

  ASSERT_EQ(reply["ok"], true) << reply.dump();
  json worker = reply["workers"][0];
  EXPECT_EQ(worker["state"], "ready");
  EXPECT_EQ(worker["last_lines"], json::parse(R"([
    {"time":1700000040000,"stream":"stdout","line":"partial","cut":true}])"));
  EXPECT_EQ(worker["last_exit"], json::parse(R"({"code":2,"signal":null,"id":1,"pid":100,
    "exited_at":1700000030000,"last_lines":[
    {"time":1700000000001,"stream":"stderr","line":"panic"}]})"));
}

TEST(ControlHandlersTest, StatusAndStatsWithoutIdCarryNoLines) {
  WorkerTable table(1);
  spawn(table, 0, 100);
  table.keep_output(1, line_at(kUnixMs, OutputStream::kStderr, "panic"));
  table.remove_exited(100, kStart + seconds(30), ExitStatus{2, std::nullopt});
  spawn(table, 0, 200, kStart + seconds(30));
  table.keep_output(2, line_at(kUnixMs, OutputStream::kStderr, "hello"));

  for (const char* request : {R"({"cmd":"status"})", R"({"cmd":"stats"})"}) {
    json reply = handle(request, table).reply;
    ASSERT_EQ(reply["workers"].size(), 1u) << reply.dump();
    EXPECT_FALSE(reply["workers"][0].contains("last_lines")) << reply.dump();
    EXPECT_EQ(reply["workers"][0]["last_exit"], json::parse(R"({"code":2,"signal":null})"));
  }
}

TEST(ControlHandlersTest, StatsWithTheIdOfAnOlderExitedWorkerIsAnError) {
  WorkerTable table = table_with_history();
  spawn(table, 1, 400);
  table.remove_exited(300, kStart + seconds(60), ExitStatus{0, std::nullopt});  // now slot 1's

  expect_error(handle(R"({"cmd":"stats","id":1})", table), "no worker with id 1");
}

TEST(ControlHandlersTest, StatsWithAMistypedIdIsAnError) {
  WorkerTable table = table_with_history();

  expect_error(handle(R"({"cmd":"stats","id":"3"})", table), "'id' must be a non-negative integer");
  expect_error(handle(R"({"cmd":"stats","id":-3})", table), "'id' must be a non-negative integer");
}

// --- restart -----------------------------------------------------------------

TEST(ControlHandlersTest, RestartReplacesTheGivenWorker) {
  WorkerTable table = ready_table(3);

  ControlDecision decision = handle(R"({"cmd":"restart","id":2})", table);

  EXPECT_EQ(decision.action, ControlAction::kRestart);
  EXPECT_EQ(decision.workers, (std::vector<WorkerId>{2}));
  EXPECT_EQ(decision.reply, json::parse(R"({"ok":true,"restarting":2})"));
}

TEST(ControlHandlersTest, RestartNeedsAnId) {
  WorkerTable table = ready_table(2);

  expect_error(handle(R"({"cmd":"restart"})", table), "restart needs 'id'");
}

TEST(ControlHandlersTest, RestartRejectsAStringId) {
  WorkerTable table = ready_table(2);

  expect_error(handle(R"({"cmd":"restart","id":"1"})", table),
               "'id' must be a non-negative integer");
}

TEST(ControlHandlersTest, RestartRejectsANegativeId) {
  WorkerTable table = ready_table(2);

  expect_error(handle(R"({"cmd":"restart","id":-1})", table),
               "'id' must be a non-negative integer");
}

TEST(ControlHandlersTest, RestartRejectsAFractionalId) {
  WorkerTable table = ready_table(2);

  expect_error(handle(R"({"cmd":"restart","id":1.5})", table),
               "'id' must be a non-negative integer");
  expect_error(handle(R"({"cmd":"restart","id":1.0})", table),
               "'id' must be a non-negative integer");
}

TEST(ControlHandlersTest, RestartOfAnUnknownWorkerIsAnError) {
  WorkerTable table = ready_table(2);

  expect_error(handle(R"({"cmd":"restart","id":7})", table), "no worker with id 7");
}

TEST(ControlHandlersTest, RestartOfASuccessorIsAnError) {
  WorkerTable table = ready_table(2);
  WorkerId successor = spawn(table, 0, 300).id;  // slot 0 is taken: a replacement
  ASSERT_TRUE(table.is_successor(successor));

  expect_error(handle(R"({"cmd":"restart","id":)" + std::to_string(successor) + "}", table),
               "is itself a replacement");
}

TEST(ControlHandlersTest, RestartOfADrainingWorkerIsAnError) {
  WorkerTable table = ready_table(2);
  table.find(1)->state = WorkerState::kDraining;

  expect_error(handle(R"({"cmd":"restart","id":1})", table), "already on its way out");
}

TEST(ControlHandlersTest, RestartOfAReplacedWorkerIsAnError) {
  WorkerTable table = ready_table(1);
  WorkerId successor = spawn(table, 0, 300).id;
  ASSERT_EQ(table.promote(successor), std::optional<WorkerId>{1});

  expect_error(handle(R"({"cmd":"restart","id":1})", table), "already on its way out");
}

// --- reload ------------------------------------------------------------------

TEST(ControlHandlersTest, ReloadReplacesEachSlotsServingWorker) {
  WorkerTable table(3);
  spawn(table, 2, 101).state = WorkerState::kReady;  // id 1
  spawn(table, 0, 102).state = WorkerState::kReady;  // id 2
  spawn(table, 1, 103).state = WorkerState::kReady;  // id 3

  ControlDecision decision = handle(R"({"cmd":"reload"})", table);

  EXPECT_EQ(decision.action, ControlAction::kReload);
  EXPECT_EQ(decision.workers, (std::vector<WorkerId>{2, 3, 1}));  // slot order
  EXPECT_EQ(decision.reply, json::parse(R"({"ok":true,"reloading":[2,3,1]})"));
}

TEST(ControlHandlersTest, ReloadLeavesOutSuccessorsAndDrainingWorkers) {
  WorkerTable table = ready_table(3);
  spawn(table, 0, 300);  // id 4, the successor in slot 0
  table.find(3)->state = WorkerState::kDraining;

  ControlDecision decision = handle(R"({"cmd":"reload"})", table);

  EXPECT_EQ(decision.action, ControlAction::kReload);
  EXPECT_EQ(decision.workers, (std::vector<WorkerId>{1, 2}));
}

TEST(ControlHandlersTest, ReloadWithWaitDefersTheReply) {
  WorkerTable table = ready_table(2);

  ControlDecision decision = handle(R"({"cmd":"reload","wait":true})", table);

  EXPECT_TRUE(decision.reply.is_null()) << decision.reply.dump();
  EXPECT_EQ(decision.action, ControlAction::kReload);
  EXPECT_EQ(decision.workers, (std::vector<WorkerId>{1, 2}));
}

TEST(ControlHandlersTest, ReloadWithWaitFalseRepliesAtOnce) {
  WorkerTable table = ready_table(2);

  ControlDecision decision = handle(R"({"cmd":"reload","wait":false})", table);

  EXPECT_EQ(decision.reply, json::parse(R"({"ok":true,"reloading":[1,2]})"));
  EXPECT_EQ(decision.action, ControlAction::kReload);
}

TEST(ControlHandlersTest, ReloadRejectsANonBooleanWait) {
  WorkerTable table = ready_table(2);

  expect_error(handle(R"({"cmd":"reload","wait":"yes"})", table), "'wait' must be a boolean");
  expect_error(handle(R"({"cmd":"reload","wait":1})", table), "'wait' must be a boolean");
}

// --- scale -------------------------------------------------------------------

TEST(ControlHandlersTest, ScaleSetsTheTargetAndReportsThePrevious) {
  WorkerTable table = ready_table(2);

  ControlDecision decision = handle(R"({"cmd":"scale","workers":3})", table);

  EXPECT_EQ(decision.action, ControlAction::kScale);
  EXPECT_EQ(decision.target, 3u);
  EXPECT_EQ(decision.reply, json::parse(R"({"ok":true,"workers_target":3,"previous":2})"));
}

TEST(ControlHandlersTest, ScaleAcceptsTheLimits) {
  WorkerTable table = ready_table(2);

  EXPECT_EQ(handle(R"({"cmd":"scale","workers":1})", table).target, 1u);
  EXPECT_EQ(handle(R"({"cmd":"scale","workers":1024})", table).target, proto::kMaxWorkers);
}

TEST(ControlHandlersTest, ScaleToZeroIsAnError) {
  WorkerTable table = ready_table(2);

  expect_error(handle(R"({"cmd":"scale","workers":0})", table), "from 1 to 1024");
}

TEST(ControlHandlersTest, ScaleAboveTheMaximumIsAnError) {
  WorkerTable table = ready_table(2);

  expect_error(handle(R"({"cmd":"scale","workers":1025})", table), "from 1 to 1024");
}

TEST(ControlHandlersTest, ScaleToAStringIsAnError) {
  WorkerTable table = ready_table(2);

  expect_error(handle(R"({"cmd":"scale","workers":"3"})", table), "from 1 to 1024");
}

TEST(ControlHandlersTest, ScaleNeedsWorkers) {
  WorkerTable table = ready_table(2);

  expect_error(handle(R"({"cmd":"scale"})", table), "scale needs 'workers'");
}

// --- stop and events ---------------------------------------------------------

TEST(ControlHandlersTest, StopAsksTheMasterToStop) {
  WorkerTable table = ready_table(2);

  ControlDecision decision = handle(R"({"cmd":"stop"})", table);

  EXPECT_EQ(decision.action, ControlAction::kStop);
  EXPECT_EQ(decision.reply, json::parse(R"({"ok":true,"stopping":true})"));
}

TEST(ControlHandlersTest, EventsSubscribes) {
  WorkerTable table = ready_table(2);

  ControlDecision decision = handle(R"({"cmd":"events"})", table);

  EXPECT_EQ(decision.action, ControlAction::kSubscribe);
  EXPECT_EQ(decision.reply, json::parse(R"({"ok":true,"events":true})"));
}

// --- a stopping master -------------------------------------------------------

TEST(ControlHandlersTest, StoppingMasterRefusesCommandsThatChangeWorkers) {
  WorkerTable table = ready_table(2);

  for (std::string_view line :
       {R"({"cmd":"restart","id":1})", R"({"cmd":"reload"})", R"({"cmd":"reload","wait":true})",
        R"({"cmd":"scale","workers":3})", R"({"cmd":"stop"})"}) {
    SCOPED_TRACE(line);
    expect_error(handle(line, table, stopping_master()), "the master is stopping");
  }
}

TEST(ControlHandlersTest, StoppingMasterStillAnswersQueries) {
  WorkerTable table = ready_table(2);

  EXPECT_EQ(handle(R"({"cmd":"ping"})", table, stopping_master()).reply["ok"], true);
  EXPECT_EQ(handle(R"({"cmd":"stats"})", table, stopping_master()).reply["ok"], true);
  json status = handle(R"({"cmd":"status"})", table, stopping_master()).reply;
  EXPECT_EQ(status["ok"], true);
  EXPECT_EQ(status["master"]["state"], "stopping");
}

// --- malformed requests ------------------------------------------------------

TEST(ControlHandlersTest, LineThatIsNotJsonIsAnError) {
  WorkerTable table = ready_table(1);

  for (std::string_view line :
       {"ping", "", "{\"cmd\":", "{'cmd':'ping'}", "{\"cmd\":\"ping\"} x"}) {
    SCOPED_TRACE(line);
    expect_error(handle(line, table), "not valid JSON");
  }
}

TEST(ControlHandlersTest, JsonArrayIsAnError) {
  WorkerTable table = ready_table(1);

  expect_error(handle(R"([{"cmd":"ping"}])", table), "must be a JSON object");
}

TEST(ControlHandlersTest, JsonScalarIsAnError) {
  WorkerTable table = ready_table(1);

  expect_error(handle("42", table), "must be a JSON object");
  expect_error(handle(R"("ping")", table), "must be a JSON object");
  expect_error(handle("null", table), "must be a JSON object");
}

TEST(ControlHandlersTest, RequestWithoutCmdIsAnError) {
  WorkerTable table = ready_table(1);

  expect_error(handle(R"({"command":"ping"})", table), "needs a string 'cmd'");
}

TEST(ControlHandlersTest, NonStringCmdIsAnError) {
  WorkerTable table = ready_table(1);

  expect_error(handle(R"({"cmd":1})", table), "needs a string 'cmd'");
  expect_error(handle(R"({"cmd":["ping"]})", table), "needs a string 'cmd'");
  expect_error(handle(R"({"cmd":null})", table), "needs a string 'cmd'");
}

TEST(ControlHandlersTest, UnknownCommandIsAnErrorListingTheCommands) {
  WorkerTable table = ready_table(1);

  ControlDecision decision = handle(R"({"cmd":"nope"})", table);

  expect_error(decision, "unknown command 'nope'");
  for (const char* command :
       {"ping", "status", "stats", "restart", "reload", "scale", "stop", "events"}) {
    expect_error(decision, command);
  }
}

TEST(ControlHandlersTest, CommandNamesAreCaseSensitive) {
  WorkerTable table = ready_table(1);

  expect_error(handle(R"({"cmd":"PING"})", table), "unknown command 'PING'");
}

TEST(ControlHandlersTest, InvalidUtf8InAStringGetsAnErrorReply) {
  WorkerTable table = ready_table(1);

  for (std::string_view line :
       {std::string_view("{\"cmd\":\"\xff\xfe\"}"), std::string_view("{\"cmd\":\"caf\xe9\"}"),
        std::string_view("{\"cmd\":\"ping\",\"x\":\"\xc3\x28\"}"),
        std::string_view("{\"cmd\":\"\xed\xa0\x80\"}"),  // a surrogate
        std::string_view(R"({"cmd":"\ud800"})")}) {
    SCOPED_TRACE(json(std::string(line)).dump(-1, ' ', true, json::error_handler_t::replace));
    ControlDecision decision;
    EXPECT_NO_THROW(decision = handle(line, table));
    ASSERT_TRUE(decision.reply.is_object());
    EXPECT_EQ(decision.reply.value("ok", true), false);
    EXPECT_EQ(decision.action, ControlAction::kNone);
    EXPECT_NO_THROW(decision.reply.dump(-1, ' ', false, json::error_handler_t::replace));
    EXPECT_NO_THROW(decision.reply.dump());  // nothing invalid is echoed back
  }
}

TEST(ControlHandlersTest, UnknownCommandWithNonAsciiNameIsEchoedAsValidJson) {
  WorkerTable table = ready_table(1);

  ControlDecision decision = handle("{\"cmd\":\"caf\xc3\xa9\"}", table);

  expect_error(decision, "unknown command 'caf\xc3\xa9'");
  std::string text;
  ASSERT_NO_THROW(text = decision.reply.dump());
  EXPECT_EQ(json::parse(text), decision.reply);
}

TEST(ControlHandlersTest, DeeplyNestedArrayIsAnErrorNotACrash) {
  WorkerTable table = ready_table(1);
  const std::size_t depth = 100'000;
  std::string line = std::string(depth, '[') + std::string(depth, ']');

  expect_error(handle(line, table), "must be a JSON object");
}

TEST(ControlHandlersTest, UnterminatedDeepNestingIsAnErrorNotACrash) {
  WorkerTable table = ready_table(1);
  std::string line = std::string(100'000, '[');

  expect_error(handle(line, table), "not valid JSON");
}

TEST(ControlHandlersTest, DeeplyNestedArgumentIsIgnored) {
  WorkerTable table = ready_table(1);
  const std::size_t depth = 100'000;
  std::string line =
      R"({"cmd":"ping","extra":)" + std::string(depth, '[') + std::string(depth, ']') + "}";

  ControlDecision decision = handle(line, table);

  EXPECT_EQ(decision.reply, json::parse(R"({"ok":true,"pid":4242,"version":"0.1.0"})"));
}

TEST(ControlHandlersTest, UnknownArgumentsAreIgnored) {
  WorkerTable table = ready_table(1);

  ControlDecision decision = handle(R"({"cmd":"restart","id":1,"force":true})", table);

  EXPECT_EQ(decision.action, ControlAction::kRestart);
}

}  // namespace
}  // namespace herd

namespace herd {
namespace {

TEST(ControlHandlersTest, ReloadIsRefusedWhileAnotherReloadRuns) {
  WorkerTable table = ready_table(2);
  MasterView master = running_master();
  master.reloading = true;

  expect_error(handle(R"({"cmd":"reload"})", table, master), "already in progress");
}

TEST(ControlHandlersTest, StatusShowsASlotInBackoffWithItsNextAttempt) {
  WorkerTable table(2, RespawnBackoff{seconds(5), milliseconds(100), seconds(30)});
  spawn(table, 0, 101).state = WorkerState::kReady;
  // Slot 1's workers die young three times: the third respawn waits 200 ms.
  TimePoint at = kNow - milliseconds(50);
  for (pid_t pid = 201; pid <= 203; ++pid) {
    spawn(table, 1, pid, at);
    ASSERT_TRUE(table.remove_exited(pid, at, ExitStatus{1, std::nullopt}));
  }

  json slots = handle(R"({"cmd":"status"})", table).reply["slots"];

  ASSERT_EQ(slots.size(), 2u) << slots.dump();
  EXPECT_EQ(slots[0]["state"], "running");
  EXPECT_EQ(slots[0]["next_attempt_ms"], nullptr);
  EXPECT_EQ(slots[1]["state"], "backoff");
  EXPECT_EQ(slots[1]["worker"], nullptr);
  EXPECT_EQ(slots[1]["restarts"], 3);
  EXPECT_EQ(slots[1]["last_exit"]["code"], 1);
  EXPECT_EQ(slots[1]["next_attempt_ms"], 150) << "200 ms backoff, 50 ms of it gone";
}

}  // namespace
}  // namespace herd
