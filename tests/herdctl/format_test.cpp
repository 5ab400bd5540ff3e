#include "herdctl/format.h"

#include <gtest/gtest.h>

#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace herd::ctl {
namespace {

using nlohmann::json;

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream stream(text);
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  return lines;
}

proto::ControlRequest request_for(proto::ControlCommand command,
                                  std::optional<std::uint64_t> id = std::nullopt) {
  proto::ControlRequest request;
  request.command = command;
  request.id = id;
  return request;
}

// A worker object shaped like the master's (proto/README.md).
json sample_worker(std::uint64_t id, std::uint64_t slot, int pid) {
  return {
      {"id", id},
      {"slot", slot},
      {"pid", pid},
      {"state", "ready"},
      {"started_at", 1'764'055'801'123},
      {"uptime_ms", 302'000},
      {"restarts", 0},
      {"last_exit", nullptr},
      {"connections", 120},
      {"active_connections", 2},
      {"requests", 1234},
      {"rps", 12.5},
      {"responses", {{"2xx", 1200}, {"3xx", 0}, {"4xx", 34}, {"5xx", 0}}},
      {"latency_us", {{"p50", 120}, {"p90", 400}, {"p99", 850}, {"max", 2'500'000}}},
      {"bytes_in", 1536},
      {"bytes_out", 12'897'485},
      {"rss_kb", 12'595},
      {"cpu_pct", 3.5},
      {"last_heartbeat_ms", 120},
  };
}

json sample_status() {
  json second = sample_worker(7, 1, 4051);
  second["state"] = "starting";
  second["requests"] = 0;
  second["rps"] = 0.0;
  return {
      {"ok", true},
      {"master",
       {{"pid", 4043},
        {"version", "0.1.0"},
        {"uptime_ms", 7'380'000},
        {"listen", "0.0.0.0:3000"},
        {"schedule", "round-robin"},
        {"state", "running"},
        {"workers_target", 2},
        {"pending", 0},
        {"connections_total", 5678},
        {"restarts_total", 3}}},
      // Out of id order on purpose: the table sorts by id.
      {"workers", json::array({second, sample_worker(3, 0, 4045)})},
  };
}

// ---- human units ----------------------------------------------------------------

TEST(HerdctlFormatTest, DurationsUseTheTwoLargestUnits) {
  EXPECT_EQ(format_duration_ms(0), "0s");
  EXPECT_EQ(format_duration_ms(999), "0s");
  EXPECT_EQ(format_duration_ms(3'000), "3s");
  EXPECT_EQ(format_duration_ms(59'999), "59s");
  EXPECT_EQ(format_duration_ms(60'000), "1m 0s");
  EXPECT_EQ(format_duration_ms(302'000), "5m 2s");
  EXPECT_EQ(format_duration_ms(7'380'000), "2h 3m");
  EXPECT_EQ(format_duration_ms(100'800'000), "1d 4h");
  EXPECT_EQ(format_duration_ms(-5), "0s");
}

TEST(HerdctlFormatTest, BytesUseBinaryUnits) {
  EXPECT_EQ(format_bytes(0), "0 B");
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(1023), "1023 B");
  EXPECT_EQ(format_bytes(1024), "1.0 KiB");
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_bytes(12.3 * 1024 * 1024), "12.3 MiB");
  EXPECT_EQ(format_bytes(2.0 * 1024 * 1024 * 1024), "2.0 GiB");
}

TEST(HerdctlFormatTest, BytesNeverShow1024OfAUnit) {
  EXPECT_EQ(format_bytes(1024 * 1024 - 1), "1.0 MiB");
}

TEST(HerdctlFormatTest, LatencyPicksMicrosecondsMillisecondsOrSeconds) {
  EXPECT_EQ(format_latency_us(0), "0us");
  EXPECT_EQ(format_latency_us(850), "850us");
  EXPECT_EQ(format_latency_us(999), "999us");
  EXPECT_EQ(format_latency_us(999.6), "1.0ms");
  EXPECT_EQ(format_latency_us(1'200), "1.2ms");
  EXPECT_EQ(format_latency_us(123'400), "123.4ms");
  EXPECT_EQ(format_latency_us(2'500'000), "2.50s");
}

TEST(HerdctlFormatTest, PercentAndRateHaveOneDecimal) {
  EXPECT_EQ(format_percent(3.5), "3.5%");
  EXPECT_EQ(format_percent(0), "0.0%");
  EXPECT_EQ(format_rate(1234.5), "1234.5");
  EXPECT_EQ(format_rate(0), "0.0");
}

// ---- tables ---------------------------------------------------------------------

TEST(HerdctlFormatTest, TablePadsColumnsToTheWidestCell) {
  std::string table =
      render_table({{"name", Align::kLeft}, {"n", Align::kRight}}, {{"a", "1"}, {"longer", "100"}});

  EXPECT_EQ(table,
            "name      n\n"
            "a         1\n"
            "longer  100\n");
}

TEST(HerdctlFormatTest, TableLeavesNoTrailingBlanksAndPadsShortRows) {
  std::string table = render_table({{"a", Align::kLeft}, {"b", Align::kLeft}}, {{"xyz"}});

  EXPECT_EQ(table,
            "a    b\n"
            "xyz\n");
}

TEST(HerdctlFormatTest, DisplayWidthCountsCharactersNotBytes) {
  EXPECT_EQ(display_width(""), 0u);
  EXPECT_EQ(display_width("abc"), 3u);
  EXPECT_EQ(display_width("▁▂▃"), 3u);
  EXPECT_EQ(display_width("a█b"), 3u);
}

TEST(HerdctlFormatTest, TableAlignsCellsWithSparklines) {
  std::string table = render_table({{"name", Align::kLeft}, {"trend", Align::kLeft}, {"n"}},
                                   {{"a", "▁█", "1"}, {"b", "▁▂▃▄▅▆", "2"}});
  EXPECT_EQ(table,
            "name  trend   n\n"
            "a     ▁█      1\n"
            "b     ▁▂▃▄▅▆  2\n");
}

// ---- status ---------------------------------------------------------------------

TEST(HerdctlFormatTest, StatusStartsWithAMasterSummary) {
  std::vector<std::string> lines = split_lines(format_status(sample_status()));

  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0],
            "herd 0.1.0  pid 4043  running  listen 0.0.0.0:3000  up 2h 3m  workers 1/2 ready  "
            "pending 0  connections 5678  restarts 3");
}

TEST(HerdctlFormatTest, StatusTableHasAHeaderAndOneRowPerWorkerById) {
  std::vector<std::string> lines = split_lines(format_status(sample_status()));

  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[1],
            "id  slot   pid  state     uptime  restarts  requests   rps    p99       rss   cpu");
  EXPECT_EQ(lines[2],
            " 3     0  4045  ready      5m 2s         0      1234  12.5  850us  12.3 MiB  3.5%");
  EXPECT_EQ(lines[3],
            " 7     1  4051  starting   5m 2s         0         0   0.0      -  12.3 MiB  3.5%");
}

TEST(HerdctlFormatTest, StatusColumnsLineUp) {
  std::vector<std::string> lines = split_lines(format_status(sample_status()));

  ASSERT_EQ(lines.size(), 4u);
  // Right-aligned numbers end where their header ends.
  std::size_t pid_end = lines[1].find("pid") + 3;
  EXPECT_EQ(lines[2].substr(pid_end - 4, 4), "4045");
  EXPECT_EQ(lines[3].substr(pid_end - 4, 4), "4051");
  // Left-aligned text starts where its header starts.
  std::size_t state_start = lines[1].find("state");
  EXPECT_EQ(lines[2].substr(state_start, 5), "ready");
  EXPECT_EQ(lines[3].substr(state_start, 8), "starting");
}

TEST(HerdctlFormatTest, StatusShowsMissingAndNullFieldsAsDashes) {
  json reply = {{"ok", true},
                {"master", {{"pid", 1}, {"version", nullptr}}},
                {"workers", json::array({{{"id", 1},
                                          {"state", "ready"},
                                          {"rss_kb", nullptr},
                                          {"latency_us", nullptr},
                                          {"cpu_pct", "high"}}})}};

  std::vector<std::string> lines = split_lines(format_status(reply));

  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0],
            "herd -  pid 1  -  listen -  up -  workers 1/- ready  pending -  connections -  "
            "restarts -");
  EXPECT_EQ(lines[2], " 1     -    -  ready       -         -         -    -    -    -    -");
}

TEST(HerdctlFormatTest, UnsampledRssAndLatencyOfNoRequestsAreDashes) {
  json worker = sample_worker(3, 0, 4045);
  worker["rss_kb"] = 0;
  worker["requests"] = 0;
  worker["latency_us"] = {{"p50", 0}, {"p90", 0}, {"p99", 0}, {"max", 0}};
  json reply = {{"ok", true}, {"master", json::object()}, {"workers", json::array({worker})}};

  std::vector<std::string> lines = split_lines(format_status(reply));

  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[2], " 3     0  4045  ready   5m 2s         0         0  12.5    -    -  3.5%");
}

TEST(HerdctlFormatTest, StatusMarksAFullWorker) {
  json reply = sample_status();
  reply["workers"][1]["full"] = true;  // id 3, the first row
  reply["workers"][0]["full"] = false;

  std::vector<std::string> lines = split_lines(format_status(reply));

  ASSERT_EQ(lines.size(), 4u);
  std::size_t state_start = lines[1].find("state");
  EXPECT_EQ(lines[2].substr(state_start, 11), "ready,full ");
  EXPECT_EQ(lines[3].substr(state_start, 9), "starting ");
}

TEST(HerdctlFormatTest, StatusWithoutWorkersSaysSo) {
  json reply = sample_status();
  reply["workers"] = json::array();

  std::vector<std::string> lines = split_lines(format_status(reply));

  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1], "no workers");
}

TEST(HerdctlFormatTest, StatusSurvivesAReplyOfTheWrongShape) {
  EXPECT_NO_THROW(format_status(json::array({1, 2})));
  EXPECT_NO_THROW(format_status({{"master", 3}, {"workers", "none"}}));
  EXPECT_NO_THROW(format_status({{"workers", json::array({1, nullptr, "x"})}}));
}

// ---- stats ----------------------------------------------------------------------

json sample_stats() {
  return {
      {"ok", true},
      {"workers", json::array({sample_worker(3, 0, 4045), sample_worker(4, 1, 4046)})},
      {"total",
       {{"requests", 3000},
        {"responses", {{"2xx", 2900}, {"3xx", 0}, {"4xx", 100}, {"5xx", 0}}},
        {"latency_us", {{"p50", 130}, {"p90", 450}, {"p99", 1'200}, {"max", 2'500'000}}},
        {"bytes_in", 4096},
        {"bytes_out", 30 * 1024 * 1024},
        {"rps", 25.0}}},
  };
}

TEST(HerdctlFormatTest, StatsHasResponsesBytesLatencyAndATotalRow) {
  std::vector<std::string> lines = split_lines(format_stats(sample_stats(), false));

  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0],
            "   id  slot   pid  state  requests   rps   2xx  3xx  4xx  5xx       in       out  "
            "  p50    p90    p99    max");
  EXPECT_EQ(lines[1],
            "    3     0  4045  ready      1234  12.5  1200    0   34    0  1.5 KiB  12.3 MiB  "
            "120us  400us  850us  2.50s");
  EXPECT_EQ(lines[3],
            "total                         3000  25.0  2900    0  100    0  4.0 KiB  30.0 MiB  "
            "130us  450us  1.2ms  2.50s");
}

TEST(HerdctlFormatTest, StatsWithoutTotalStillShowsATotalRow) {
  json reply = sample_stats();
  reply.erase("total");

  std::vector<std::string> lines = split_lines(format_stats(reply, false));

  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[3].substr(0, 5), "total");
  EXPECT_NE(lines[3].find('-'), std::string::npos);
}

TEST(HerdctlFormatTest, StatsForOneWorkerIsAKeyValueView) {
  json worker = sample_worker(3, 0, 4045);
  worker["last_exit"] = {{"code", nullptr}, {"signal", 9}};
  json reply = {{"ok", true}, {"workers", json::array({worker})}, {"total", json::object()}};

  std::string text = format_stats(reply, true);

  EXPECT_NE(text.find("id:                  3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("state:               ready\n"), std::string::npos) << text;
  EXPECT_NE(text.find("uptime:              5m 2s\n"), std::string::npos) << text;
  EXPECT_NE(text.find("last exit:           signal SIGKILL\n"), std::string::npos) << text;
  EXPECT_NE(text.find("active connections:  2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("responses:           2xx 1200  3xx 0  4xx 34  5xx 0\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("latency:             p50 120us  p90 400us  p99 850us  max 2.50s\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("bytes out:           12.3 MiB\n"), std::string::npos) << text;
  EXPECT_NE(text.find("rss:                 12.3 MiB\n"), std::string::npos) << text;
  EXPECT_NE(text.find("last heartbeat:      120ms ago\n"), std::string::npos) << text;
}

TEST(HerdctlFormatTest, WorkerDetailShowsStartTimeAndExitCode) {
  json worker = sample_worker(3, 0, 4045);
  worker["last_exit"] = {{"code", 1}, {"signal", nullptr}};

  std::string text = format_worker_detail(worker, TimeZone::kUtc);

  EXPECT_NE(text.find("started at:          2025-11-25 07:30:01.123\n"), std::string::npos) << text;
  EXPECT_NE(text.find("last exit:           code 1\n"), std::string::npos) << text;
}

TEST(HerdctlFormatTest, WorkerDetailShowsNoLastExitAsDash) {
  std::string text = format_worker_detail(sample_worker(3, 0, 4045));

  EXPECT_NE(text.find("last exit:           -\n"), std::string::npos) << text;
}

TEST(HerdctlFormatTest, WorkerDetailListsItsLastLinesAndThoseOfTheLastExit) {
  json worker = sample_worker(3, 0, 4045);
  worker["last_lines"] = json::parse(R"([
    {"time":1764055801123,"stream":"stdout","line":"listening"},
    {"time":1764055802000,"stream":"stderr","line":"tab\there, escape \u001b[31m, csi \u009b2J","cut":true}])");
  worker["last_exit"] = json::parse(R"({"code":null,"signal":11,"id":2,"pid":4000,
    "exited_at":1764055800000,"last_lines":[
    {"time":1764055799999,"stream":"stderr","line":"Segmentation fault"}]})");

  std::string text = format_worker_detail(worker, TimeZone::kUtc);

  EXPECT_NE(text.find("last exit:           signal SIGSEGV\n"), std::string::npos) << text;
  EXPECT_NE(
      text.find(
          "\nlast lines:\n"
          "  2025-11-25 07:30:01.123  stdout  listening\n"
          "  2025-11-25 07:30:02.000  stderr  tab\there, escape \\x1b[31m, csi \\u009b2J [cut]\n"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("\nlast lines of worker 2 (pid 4000, signal SIGSEGV):\n"
                      "  2025-11-25 07:29:59.999  stderr  Segmentation fault\n"),
            std::string::npos)
      << text;
}

TEST(HerdctlFormatTest, WorkerDetailSaysWhenThereAreNoLines) {
  json worker = sample_worker(3, 0, 4045);
  worker["last_lines"] = json::array();

  std::string text = format_worker_detail(worker, TimeZone::kUtc);

  EXPECT_NE(text.find("\nlast lines: none\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("last lines of"), std::string::npos) << text;
}

TEST(HerdctlFormatTest, DetailOfAnExitedWorkerSaysHowAndWhenItEnded) {
  json worker = {{"id", 2},
                 {"slot", 0},
                 {"pid", 4000},
                 {"state", "exited"},
                 {"started_at", 1764055700000},
                 {"exited_at", 1764055800000},
                 {"uptime_ms", 100000},
                 {"exit", {{"code", 3}, {"signal", nullptr}}},
                 {"last_lines", json::array()}};
  json reply = {{"ok", true}, {"workers", json::array({worker})}, {"total", json::object()}};

  std::string text = format_stats(reply, true);

  EXPECT_NE(text.find("state:               exited\n"), std::string::npos) << text;
  EXPECT_NE(text.find("exited:              code 3 at "), std::string::npos) << text;
  EXPECT_NE(text.find("uptime:              1m 40s\n"), std::string::npos) << text;
  EXPECT_NE(text.find("last lines: none\n"), std::string::npos) << text;
}

TEST(HerdctlFormatTest, WorkerDetailSurvivesLinesOfTheWrongShape) {
  json worker = sample_worker(3, 0, 4045);
  worker["last_lines"] = json::parse(R"([42, {"line": 7}, {"stream": null}])");
  worker["last_exit"] = {{"code", 1}, {"signal", nullptr}, {"last_lines", "nope"}};

  std::string text = format_worker_detail(worker, TimeZone::kUtc);

  EXPECT_NE(text.find("last lines:\n  -  -  \n"), std::string::npos) << text;
  EXPECT_NE(text.find("last lines of worker - (pid -, code 1): none\n"), std::string::npos) << text;
}

// ---- one-line replies -----------------------------------------------------------

TEST(HerdctlFormatTest, PingSaysWhoIsAlive) {
  EXPECT_EQ(format_ping({{"ok", true}, {"pid", 4043}, {"version", "0.1.0"}}),
            "herd 0.1.0 (pid 4043) is alive\n");
}

TEST(HerdctlFormatTest, ActionsSayWhatHappens) {
  EXPECT_EQ(format_action(proto::ControlCommand::kRestart, {{"ok", true}, {"restarting", 3}}),
            "restarting worker 3: its replacement takes over once ready\n");
  EXPECT_EQ(format_action(proto::ControlCommand::kReload, {{"ok", true}, {"reloading", {1, 2}}}),
            "reloading 2 workers one slot at a time (ids 1, 2)\n");
  EXPECT_EQ(
      format_action(proto::ControlCommand::kReload, {{"ok", true}, {"reloading", json::array()}}),
      "nothing to reload\n");
  EXPECT_EQ(format_action(proto::ControlCommand::kReload, {{"ok", true}, {"reloaded", {1}}}),
            "reloaded 1 worker (replaced ids 1)\n");
  EXPECT_EQ(format_action(proto::ControlCommand::kScale,
                          {{"ok", true}, {"workers_target", 3}, {"previous", 2}}),
            "scaling from 2 to 3 workers\n");
  EXPECT_EQ(format_action(proto::ControlCommand::kScale,
                          {{"ok", true}, {"workers_target", 2}, {"previous", 2}}),
            "already at 2 workers\n");
  EXPECT_EQ(format_action(proto::ControlCommand::kStop, {{"ok", true}, {"stopping", true}}),
            "herd is stopping: workers finish their requests, then the master exits\n");
}

TEST(HerdctlFormatTest, FormatReplyPicksTheDetailedStatsForAnId) {
  json reply = {{"ok", true},
                {"workers", json::array({sample_worker(3, 0, 4045)})},
                {"total", json::object()}};

  EXPECT_NE(
      format_reply(request_for(proto::ControlCommand::kStats, 3), reply).find("last heartbeat:"),
      std::string::npos);
  EXPECT_NE(format_reply(request_for(proto::ControlCommand::kStats), reply).find("total"),
            std::string::npos);
}

TEST(HerdctlFormatTest, ReplyErrorIsTheMastersMessage) {
  EXPECT_EQ(reply_error({{"ok", false}, {"error", "no worker with id 99"}}),
            "no worker with id 99");
  EXPECT_NE(reply_error({{"ok", false}}).find("without saying why"), std::string::npos);
  EXPECT_NE(reply_error(json(42)).find("unexpected reply"), std::string::npos);
}

// ---- events ---------------------------------------------------------------------

TEST(HerdctlFormatTest, EventLineHasTimeNameAndIdentity) {
  json event = {
      {"event", "spawn"}, {"time", 1'764'055'801'123}, {"id", 4}, {"slot", 0}, {"pid", 4050}};

  EXPECT_EQ(format_event(event, TimeZone::kUtc),
            "2025-11-25 07:30:01.123  spawn   id=4 slot=0 pid=4050\n");
}

TEST(HerdctlFormatTest, ExitEventNamesTheSignalAndSkipsNulls) {
  json event = {{"event", "exit"}, {"time", 1'764'055'801'000}, {"id", 4},    {"slot", 0},
                {"pid", 4050},     {"code", nullptr},           {"signal", 9}};

  EXPECT_EQ(format_event(event, TimeZone::kUtc),
            "2025-11-25 07:30:01.000  exit    id=4 slot=0 pid=4050 signal=SIGKILL\n");
}

TEST(HerdctlFormatTest, EventShowsExtraFieldsAfterTheKnownOnes) {
  json event = {{"event", "reload"},
                {"time", 1'764'055'801'000},
                {"phase", "progress"},
                {"replaced", {1, 2}},
                {"note", "two words"}};

  EXPECT_EQ(format_event(event, TimeZone::kUtc),
            "2025-11-25 07:30:01.000  reload  phase=progress note=\"two words\" replaced=[1,2]\n");
}

TEST(HerdctlFormatTest, EventWithoutFieldsOrTimeStillPrints) {
  EXPECT_EQ(format_event({{"event", "stop"}, {"time", 1'764'055'801'000}}, TimeZone::kUtc),
            "2025-11-25 07:30:01.000  stop\n");
  EXPECT_EQ(format_event({{"event", "restart"}, {"id", 3}}, TimeZone::kUtc), "-  restart id=3\n");
  EXPECT_NO_THROW(format_event(json("not an object")));
}

}  // namespace
}  // namespace herd::ctl
