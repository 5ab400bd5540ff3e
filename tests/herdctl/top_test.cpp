#include "herdctl/top.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "herdctl/format.h"

namespace herd::ctl {
namespace {

using nlohmann::json;

constexpr ScreenSize kWide{120, 30};

// A worker object shaped like the master's (proto/README.md).
json worker(std::uint64_t id, int pid, double rps) {
  return {
      {"id", id},
      {"slot", id - 1},
      {"pid", pid},
      {"state", "ready"},
      {"uptime_ms", 5000},
      {"restarts", 0},
      {"active_connections", 2},
      {"requests", 1234},
      {"rps", rps},
      {"latency_us", {{"p50", 120}, {"p90", 400}, {"p99", 850}, {"max", 2500}}},
      {"rss_kb", 12'595},
      {"cpu_pct", 3.5},
  };
}

// The replies of one poll: `status` of master `master_pid` and `stats` with
// `workers` and a total.
TopSample sample(const std::vector<json>& workers, double total_rps = 0, int master_pid = 4043) {
  json master = {{"pid", master_pid},   {"version", "0.1.0"},
                 {"uptime_ms", 65'000}, {"listen", "127.0.0.1:3000"},
                 {"state", "running"},  {"workers_target", workers.size()},
                 {"pending", 0},        {"connections_total", 99},
                 {"restarts_total", 3}};
  json total = {{"requests", 5000},
                {"latency_us", {{"p50", 100}, {"p90", 300}, {"p99", 900}, {"max", 4000}}},
                {"rps", total_rps}};
  return {{{"ok", true}, {"master", master}, {"workers", workers}, {"slots", json::array()}},
          {{"ok", true}, {"workers", workers}, {"total", total}}};
}

TopView live_view() {
  TopView view;
  view.socket_path = "/tmp/herd-3000.sock";
  return view;
}

std::vector<std::string> words(const std::string& line) {
  std::vector<std::string> found;
  std::istringstream stream(line);
  for (std::string word; stream >> word;) found.push_back(word);
  return found;
}

// The line that starts (after padding) with `first_word`; "" if none does.
std::string row_of(const std::vector<std::string>& lines, const std::string& first_word) {
  for (const std::string& line : lines) {
    std::vector<std::string> found = words(line);
    if (!found.empty() && found.front() == first_word) return line;
  }
  return "";
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// ---- sparkline --------------------------------------------------------------

TEST(HerdctlTopTest, SparklineScalesEachValueToTheMax) {
  EXPECT_EQ(sparkline({0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0}, 7.0), "▁▂▃▄▅▆▇█");
  EXPECT_EQ(sparkline({350.0, 700.0}, 700.0), "▅█");  // 3.5 rounds up
}

TEST(HerdctlTopTest, SparklineShowsAnyTrafficAboveIdle) {
  EXPECT_EQ(sparkline({0.0, 0.1}, 1000.0), "▁▂");
}

TEST(HerdctlTopTest, SparklineLeavesMissingSamplesBlank) {
  EXPECT_EQ(sparkline({std::nullopt, 4.0, std::nullopt}, 4.0), " █ ");
}

TEST(HerdctlTopTest, SparklineOfAnIdleWorkerIsFlat) {
  EXPECT_EQ(sparkline({0.0, 0.0, 0.0}, 0.0), "▁▁▁");
}

TEST(HerdctlTopTest, SparklineClampsValuesAboveTheScale) {
  EXPECT_EQ(sparkline({10.0, -1.0}, 5.0), "█▁");
}

// ---- history ----------------------------------------------------------------

TEST(HerdctlTopTest, HistoryKeepsTheLastSamplesOldestFirst) {
  TopHistory history;
  for (int index = 0; index < 25; ++index) history.add(sample({worker(1, 100, index)}, index));
  ASSERT_EQ(history.samples().size(), kTopHistory);
  EXPECT_EQ(history.samples().front().stats["total"]["rps"], 5.0);
  EXPECT_EQ(history.samples().back().stats["total"]["rps"], 24.0);
}

TEST(HerdctlTopTest, HistoryStartsOverWhenTheMasterChanges) {
  TopHistory history;
  history.add(sample({worker(1, 100, 5)}, 5, /*master_pid=*/4043));
  history.add(sample({worker(1, 100, 5)}, 5, /*master_pid=*/4043));
  history.add(sample({worker(1, 200, 9)}, 9, /*master_pid=*/5000));
  ASSERT_EQ(history.samples().size(), 1u);
  EXPECT_EQ(history.samples().front().status["master"]["pid"], 5000);
}

// ---- the table --------------------------------------------------------------

TEST(HerdctlTopTest, OpensWithTheMasterSummaryAndTitlesEachColumn) {
  std::deque<TopSample> samples{sample({worker(1, 4045, 12.5)}, 12.5)};
  std::vector<std::string> lines = render_top(samples, live_view(), kWide);
  ASSERT_GE(lines.size(), 4u);
  EXPECT_EQ(lines[0],
            "herd 0.1.0  pid 4043  running  listen 127.0.0.1:3000  up 1m 5s  workers 1/1 ready  "
            "pending 0  connections 99");
  EXPECT_EQ(words(lines[1]), (std::vector<std::string>{"id", "pid", "state", "restarts", "active",
                                                       "rss", "cpu", "p99", "rps", "last", "20s"}));
}

TEST(HerdctlTopTest, WorkerRowShowsItsFields) {
  std::deque<TopSample> samples{sample({worker(1, 4045, 12.5)}, 12.5)};
  std::string row = row_of(render_top(samples, live_view(), kWide), "1");
  // id pid state restarts active rss cpu p99 rps, then the sparkline.
  EXPECT_EQ(words(row), (std::vector<std::string>{"1", "4045", "ready", "0", "2", "12.3", "MiB",
                                                  "3.5%", "850us", "12.5", "█"}));
}

TEST(HerdctlTopTest, ColumnsLineUpAcrossRows) {
  json busy = worker(12, 40451, 1234.5);
  busy["state"] = "draining";
  std::deque<TopSample> samples{sample({worker(1, 7, 1.0), busy}, 1235.5)};
  std::vector<std::string> lines = render_top(samples, live_view(), kWide);
  std::string title = lines[1];
  std::string first = row_of(lines, "1");
  std::string second = row_of(lines, "12");
  // Right-aligned numbers end under their title; left-aligned text starts there.
  EXPECT_EQ(first.find("7  ") + 1, title.find("pid  ") + 3);
  EXPECT_EQ(second.find("40451") + 5, title.find("pid  ") + 3);
  EXPECT_EQ(first.find("ready"), title.find("state"));
  EXPECT_EQ(second.find("draining"), title.find("state"));
  EXPECT_EQ(second.find("1234.5") + 6, title.find("rps") + 3);
}

TEST(HerdctlTopTest, RowsAreInIdOrder) {
  std::deque<TopSample> samples{sample({worker(9, 900, 1), worker(2, 200, 1)}, 2)};
  std::vector<std::string> lines = render_top(samples, live_view(), kWide);
  ASSERT_GE(lines.size(), 5u);
  EXPECT_EQ(words(lines[2]).front(), "2");
  EXPECT_EQ(words(lines[3]).front(), "9");
  EXPECT_EQ(words(lines[4]).front(), "total");
}

TEST(HerdctlTopTest, TotalRowSumsTheWorkersAndTakesTheMastersTotals) {
  json second = worker(2, 4046, 7.5);
  second["active_connections"] = 5;
  second["rss_kb"] = 1024 * 20 - 12'595;  // 20 MiB together with the first
  second["cpu_pct"] = 1.0;
  std::deque<TopSample> samples{sample({worker(1, 4045, 12.5), second}, 20.0)};
  std::string total = row_of(render_top(samples, live_view(), kWide), "total");
  // restarts from the master (restarts_total), active/rss/cpu summed over the
  // workers, p99 and rps from the stats total.
  EXPECT_EQ(words(total), (std::vector<std::string>{"total", "3", "7", "20.0", "MiB", "4.5%",
                                                    "900us", "20.0", "█"}));
}

TEST(HerdctlTopTest, MissingAndNullFieldsAreDashes) {
  json bare = {{"id", 1}, {"pid", 4045}, {"rss_kb", nullptr}, {"latency_us", nullptr}};
  TopSample only{{{"ok", true}}, {{"ok", true}, {"workers", json::array({bare})}}};
  std::vector<std::string> lines = render_top({only}, live_view(), kWide);
  EXPECT_EQ(words(row_of(lines, "1")),
            (std::vector<std::string>{"1", "4045", "-", "-", "-", "-", "-", "-", "-"}));
  EXPECT_EQ(words(row_of(lines, "total")),
            (std::vector<std::string>{"total", "-", "-", "-", "-", "-", "-"}));
}

TEST(HerdctlTopTest, EmptyClusterShowsAZeroTotalAndSaysSo) {
  std::deque<TopSample> samples{sample({}, 0)};
  std::vector<std::string> lines = render_top(samples, live_view(), kWide);
  ASSERT_GE(lines.size(), 4u);
  EXPECT_EQ(words(lines[1]).front(), "id");
  EXPECT_EQ(words(lines[2]).front(), "total");
  EXPECT_NE(std::find(lines.begin(), lines.end(), "no workers"), lines.end());
}

TEST(HerdctlTopTest, SlotsInBackoffAreListedUnderTheTable) {
  TopSample crashing = sample({}, 0);
  crashing.status["slots"] = json::array({{{"slot", 0},
                                           {"state", "backoff"},
                                           {"restarts", 4},
                                           {"next_attempt_ms", 3000},
                                           {"last_exit", {{"code", 1}, {"signal", nullptr}}}}});
  std::vector<std::string> lines = render_top({crashing}, live_view(), kWide);
  EXPECT_NE(std::find(lines.begin(), lines.end(),
                      "slot 0: crash loop, next start in 3s (4 restarts, last exit code 1)"),
            lines.end());
}

// ---- sparklines in the table ------------------------------------------------

TEST(HerdctlTopTest, WorkerSparklinesShareOneScaleAndEndWithTheNewestSample) {
  std::deque<TopSample> samples;
  samples.push_back(sample({worker(1, 100, 0), worker(2, 200, 70)}, 70));
  samples.push_back(sample({worker(1, 100, 20), worker(2, 200, 70)}, 70));
  samples.push_back(sample({worker(1, 100, 35), worker(2, 200, 70)}, 140));
  std::vector<std::string> lines = render_top(samples, live_view(), kWide);
  // 20 columns wide, the three samples at its right end; worker 1's peak is
  // half of worker 2's, so half a sparkline high.
  EXPECT_TRUE(ends_with(row_of(lines, "1"), std::string(17, ' ') + "▁▃▅")) << row_of(lines, "1");
  EXPECT_TRUE(ends_with(row_of(lines, "2"), std::string(17, ' ') + "███")) << row_of(lines, "2");
  // The total on its own scale: 70, 70 and 140 of 140.
  EXPECT_TRUE(ends_with(row_of(lines, "total"), "▅▅█")) << row_of(lines, "total");
}

TEST(HerdctlTopTest, SparklineShowsTheLastTwentySamples) {
  TopHistory history;
  for (int index = 0; index < 30; ++index) history.add(sample({worker(1, 100, index % 2)}, 1));
  std::string row = row_of(render_top(history.samples(), live_view(), kWide), "1");
  std::string expected;
  for (std::size_t index = 0; index < kTopHistory / 2; ++index) expected += "▁█";
  EXPECT_TRUE(ends_with(row, "  " + expected)) << row;
}

TEST(HerdctlTopTest, ReplacementWorkerStartsItsSparklineAndTheOldOneHasNoRow) {
  std::deque<TopSample> samples;
  samples.push_back(sample({worker(1, 100, 10), worker(2, 200, 10)}, 20));
  samples.push_back(sample({worker(1, 100, 10), worker(2, 200, 10)}, 20));
  // Worker 1 has been restarted: worker 3 took its slot.
  json successor = worker(3, 300, 10);
  successor["slot"] = 0;
  successor["restarts"] = 1;
  samples.push_back(sample({worker(2, 200, 10), successor}, 20));
  std::vector<std::string> lines = render_top(samples, live_view(), kWide);
  EXPECT_EQ(row_of(lines, "1"), "");
  for (const std::string& line : lines) EXPECT_EQ(line.find(" 100 "), std::string::npos) << line;
  EXPECT_TRUE(ends_with(row_of(lines, "2"), "███")) << row_of(lines, "2");
  EXPECT_TRUE(ends_with(row_of(lines, "3"), "   █")) << row_of(lines, "3");
  EXPECT_EQ(words(row_of(lines, "3"))[3], "1");  // its restarts
}

TEST(HerdctlTopTest, WorkerThatAppearsBetweenSamplesGetsARow) {
  std::deque<TopSample> samples;
  samples.push_back(sample({worker(1, 100, 10)}, 10));
  samples.push_back(sample({worker(1, 100, 10), worker(2, 200, 10)}, 20));
  std::vector<std::string> lines = render_top(samples, live_view(), kWide);
  EXPECT_TRUE(ends_with(row_of(lines, "1"), "██"));
  EXPECT_TRUE(ends_with(row_of(lines, "2"), "  █"));
}

// ---- the screen's size ------------------------------------------------------

TEST(HerdctlTopTest, SparklineNarrowsToTheRoomLeft) {
  std::deque<TopSample> samples{sample({worker(1, 4045, 12.5)}, 12.5)};
  std::vector<std::string> wide = render_top(samples, live_view(), {200, 30});
  std::size_t others = wide[1].find("last");  // every column but the sparkline
  std::vector<std::string> lines = render_top(samples, live_view(), {others + 8, 30});
  EXPECT_TRUE(ends_with(lines[1], "last 8s")) << lines[1];
  EXPECT_TRUE(ends_with(row_of(lines, "1"), std::string(7, ' ') + "█")) << row_of(lines, "1");
}

TEST(HerdctlTopTest, NoSparklineWhenTheScreenHasNoRoomForIt) {
  std::deque<TopSample> samples{sample({worker(1, 4045, 12.5)}, 12.5)};
  std::size_t others = render_top(samples, live_view(), {200, 30})[1].find("last");
  std::vector<std::string> lines = render_top(samples, live_view(), {others + 3, 30});
  EXPECT_EQ(lines[1].find("last"), std::string::npos) << lines[1];
  EXPECT_TRUE(ends_with(lines[1], "rps")) << lines[1];
}

TEST(HerdctlTopTest, LinesAreCutToTheScreenWidth) {
  std::deque<TopSample> samples;
  for (int index = 0; index < 5; ++index)
    samples.push_back(sample({worker(1, 4045, index)}, index));
  std::vector<std::string> full = render_top(samples, live_view(), {200, 30});
  for (std::size_t width : {std::size_t{30}, std::size_t{70}, full[2].size() - 4}) {
    std::vector<std::string> lines = render_top(samples, live_view(), {width, 30});
    ASSERT_EQ(lines.size(), full.size());
    for (std::size_t index = 0; index < lines.size(); ++index) {
      EXPECT_LE(display_width(lines[index]), width) << lines[index];
      // A prefix of the uncut line, cut between characters, not inside one.
      if (index != 1 && index != 2 && index != 3) {
        EXPECT_EQ(full[index].compare(0, lines[index].size(), lines[index]), 0) << lines[index];
      }
      EXPECT_TRUE(lines[index].empty() ||
                  (static_cast<unsigned char>(lines[index].back()) & 0xC0) != 0xC0)
          << lines[index];
    }
  }
}

TEST(HerdctlTopTest, EveryWidthGetsWholeCharactersThatFit) {
  std::deque<TopSample> samples;
  for (int index = 0; index < 25; ++index)
    samples.push_back(sample({worker(1, 4045, index)}, index));
  samples.back().stats["workers"][0]["state"] = "überfällig";  // not ASCII
  for (std::size_t width = 1; width <= 130; ++width) {
    for (const std::string& line : render_top(samples, live_view(), {width, 30})) {
      EXPECT_LE(display_width(line), width) << line;
      // Never a character's first byte without the rest of it.
      std::size_t last_start = line.size();
      while (last_start > 0 && (static_cast<unsigned char>(line[last_start - 1]) & 0xC0) == 0x80) {
        --last_start;
      }
      if (last_start > 0) {
        unsigned char lead = static_cast<unsigned char>(line[last_start - 1]);
        std::size_t length = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
        EXPECT_EQ(line.size() - (last_start - 1), length) << "width " << width << ": " << line;
      }
    }
  }
}

TEST(HerdctlTopTest, WorkersThatDoNotFitAreCountedAndTheTotalStays) {
  std::vector<json> workers;
  for (std::uint64_t id = 1; id <= 10; ++id) workers.push_back(worker(id, 1000 + id, 1));
  std::deque<TopSample> samples{sample(workers, 10)};
  std::vector<std::string> lines = render_top(samples, live_view(), {120, 8});
  // Summary, titles, workers 1 to 4, "(6 more workers)", total.
  ASSERT_EQ(lines.size(), 8u);
  EXPECT_EQ(words(lines[2]).front(), "1");
  EXPECT_EQ(words(lines[5]).front(), "4");
  EXPECT_EQ(lines[6], "(6 more workers)");
  EXPECT_EQ(words(lines[7]).front(), "total");
}

TEST(HerdctlTopTest, LiveViewEndsWithTheKeysWhenThereIsRoom) {
  std::deque<TopSample> samples{sample({worker(1, 4045, 1)}, 1)};
  std::vector<std::string> lines = render_top(samples, live_view(), kWide);
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_EQ(lines[4], "");
  EXPECT_EQ(lines[5], "q quit   refresh 1s   /tmp/herd-3000.sock");
  // No room for them: the table comes first.
  EXPECT_EQ(render_top(samples, live_view(), {120, 5}).size(), 4u);
}

TEST(HerdctlTopTest, NeverMoreLinesThanTheScreenHas) {
  std::deque<TopSample> samples{sample({worker(1, 4045, 1), worker(2, 4046, 1)}, 1)};
  TopView view = live_view();
  view.connection_error = "cannot connect";
  for (std::size_t height = 0; height < 10; ++height) {
    EXPECT_LE(render_top(samples, view, {120, height}).size(), height);
  }
}

// ---- states of the view -----------------------------------------------------

TEST(HerdctlTopTest, BeforeTheFirstAnswerItSaysWhatItIsWaitingFor) {
  std::vector<std::string> lines = render_top({}, live_view(), kWide);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0], "waiting for the master at /tmp/herd-3000.sock");
}

TEST(HerdctlTopTest, LostMasterIsSaidFirstAndTheLastAnswerStaysBelow) {
  std::deque<TopSample> samples{sample({worker(1, 4045, 1)}, 1)};
  TopView view = live_view();
  view.connection_error = "cannot connect to /tmp/herd-3000.sock: Connection refused";
  std::vector<std::string> lines = render_top(samples, view, kWide);
  ASSERT_GE(lines.size(), 3u);
  EXPECT_EQ(lines[0], "NOT CONNECTED: cannot connect to /tmp/herd-3000.sock: Connection refused");
  EXPECT_EQ(lines[1], "retrying every 1s; below is the master's last answer");
  EXPECT_NE(row_of(lines, "1").find("4045"), std::string::npos);
}

TEST(HerdctlTopTest, MasterNeverReachedIsSaidWithoutATable) {
  TopView view = live_view();
  view.interval_ms = 500;
  view.connection_error = "cannot connect";
  std::vector<std::string> lines = render_top({}, view, kWide);
  ASSERT_GE(lines.size(), 2u);
  EXPECT_EQ(lines[0], "NOT CONNECTED: cannot connect");
  EXPECT_EQ(lines[1], "retrying every 500ms");
  EXPECT_EQ(row_of(lines, "total"), "");
}

TEST(HerdctlTopTest, PlainFrameOfALostMasterDoesNotPromiseARetry) {
  TopView view = live_view();
  view.mode = TopMode::kPlain;
  view.connection_error = "cannot connect";
  EXPECT_EQ(render_top({}, view, kUnlimited),
            std::vector<std::string>{"NOT CONNECTED: cannot connect"});
  std::deque<TopSample> samples{sample({worker(1, 4045, 1)}, 1)};
  std::vector<std::string> lines = render_top(samples, view, kUnlimited);
  ASSERT_GE(lines.size(), 2u);
  EXPECT_EQ(lines[1], "below is the master's last answer");
}

TEST(HerdctlTopTest, PlainFrameHasNoKeysAndNoBlankLine) {
  std::vector<json> workers;
  for (std::uint64_t id = 1; id <= 50; ++id) workers.push_back(worker(id, 1000 + id, 1));
  std::deque<TopSample> samples{sample(workers, 50)};
  TopView view = live_view();
  view.mode = TopMode::kPlain;
  std::vector<std::string> lines = render_top(samples, view, kUnlimited);
  // Summary, titles, 50 workers, total: nothing cut in a pipe.
  ASSERT_EQ(lines.size(), 53u);
  for (const std::string& line : lines) EXPECT_FALSE(line.empty());
  EXPECT_EQ(words(lines.back()).front(), "total");
}

}  // namespace
}  // namespace herd::ctl
