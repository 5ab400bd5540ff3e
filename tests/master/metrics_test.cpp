#include "master/metrics.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "master/admin_server.h"

namespace herd {
namespace {

// The exposition's samples by their full series name ("name{labels}"), and
// the order of its families, read back line by line.
struct Parsed {
  std::map<std::string, double> samples;
  std::vector<std::string> families;  // from the TYPE lines, in order
  std::map<std::string, std::string> types;
};

Parsed parse(const std::string& text) {
  Parsed parsed;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream words(line.substr(7));
      std::string name, type;
      words >> name >> type;
      parsed.families.push_back(name);
      parsed.types[name] = type;
    } else if (!line.empty() && line[0] != '#') {
      std::size_t space = line.rfind(' ');
      parsed.samples[line.substr(0, space)] = std::stod(line.substr(space + 1));
    }
  }
  return parsed;
}

class MetricsTest : public ::testing::Test {
 protected:
  MetricsTest() : table_(2) {
    master_.version = "1.2.3";
    master_.started_at = now_ - std::chrono::seconds(90);
    master_.pending = 3;
    master_.connections_total = 1234;
    master_.reloads_total = 2;
    master_.hung_kills_total = 1;
  }

  WorkerRecord& add_ready(WorkerId id, std::size_t slot) {
    WorkerRecord& record = table_.add(id, slot, static_cast<pid_t>(1000 + id), now_, 0);
    record.state = WorkerState::kReady;
    return record;
  }

  Parsed render() { return parse(render_metrics(master_, table_, now_, 100)); }

  TimePoint now_ = Clock::now();
  MasterView master_;
  WorkerTable table_;
};

TEST_F(MetricsTest, MasterFiguresAreExposed) {
  add_ready(1, 0);
  Parsed parsed = render();

  EXPECT_EQ(parsed.samples.at(R"(herd_build_info{version="1.2.3"})"), 1);
  EXPECT_NEAR(parsed.samples.at("herd_uptime_seconds"), 90, 0.001);
  EXPECT_EQ(parsed.samples.at("herd_pending_connections"), 3);
  EXPECT_EQ(parsed.samples.at("herd_connections_accepted_total"), 1234);
  EXPECT_EQ(parsed.samples.at("herd_reloads_total"), 2);
  EXPECT_EQ(parsed.samples.at("herd_hung_kills_total"), 1);
  EXPECT_EQ(parsed.samples.at("herd_workers_target"), 2);
  EXPECT_EQ(parsed.samples.at(R"(herd_workers{state="ready"})"), 1);
  EXPECT_EQ(parsed.samples.at(R"(herd_workers{state="starting"})"), 0);
  EXPECT_EQ(parsed.samples.at("herd_stopping"), 0);
}

TEST_F(MetricsTest, EachWorkerIsLabelledBySlotAndId) {
  WorkerRecord& first = add_ready(4, 0);
  first.stats.responses.status_2xx = 10;
  first.stats.responses.status_5xx = 2;
  first.stats.active_connections = 7;
  first.full = true;
  first.connections_handed = 12;
  first.rss_kb = 2048;
  first.cpu_ticks = 250;
  WorkerRecord& second = add_ready(9, 1);
  second.state = WorkerState::kDraining;

  Parsed parsed = render();

  EXPECT_EQ(parsed.samples.at(R"(herd_worker_requests_total{slot="0",id="4",class="2xx"})"), 10);
  EXPECT_EQ(parsed.samples.at(R"(herd_worker_requests_total{slot="0",id="4",class="5xx"})"), 2);
  EXPECT_EQ(parsed.samples.at(R"(herd_worker_active_connections{slot="0",id="4"})"), 7);
  EXPECT_EQ(parsed.samples.at(R"(herd_worker_full{slot="0",id="4"})"), 1);
  EXPECT_EQ(parsed.samples.at(R"(herd_worker_full{slot="1",id="9"})"), 0);
  EXPECT_EQ(parsed.samples.at(R"(herd_worker_connections_handed_total{slot="0",id="4"})"), 12);
  EXPECT_EQ(parsed.samples.at(R"(herd_worker_resident_memory_bytes{slot="0",id="4"})"), 2097152);
  EXPECT_EQ(parsed.samples.at(R"(herd_worker_cpu_seconds_total{slot="0",id="4"})"), 2.5);
  EXPECT_EQ(parsed.samples.at(R"(herd_worker_state{slot="0",id="4",state="ready"})"), 1);
  EXPECT_EQ(parsed.samples.at(R"(herd_worker_state{slot="1",id="9",state="draining"})"), 1);
  EXPECT_EQ(parsed.samples.count(R"(herd_worker_state{slot="1",id="9",state="ready"})"), 0u);
}

TEST_F(MetricsTest, HistogramBucketsAreCumulativeAndEndWithTheCount) {
  WorkerRecord& worker = add_ready(1, 0);
  worker.stats.latency_us.record(50, 4);       // <= 100 us
  worker.stats.latency_us.record(3000, 2);     // <= 5 ms
  worker.stats.latency_us.record(20'000'000);  // beyond the last bound (10 s)
  worker.stats.requests = 7;

  Parsed parsed = render();
  const std::string series = "herd_worker_request_duration_seconds";
  const std::string labels = R"(slot="0",id="1")";
  EXPECT_EQ(parsed.samples.at(series + "_bucket{" + labels + R"(,le="0.0001"})"), 4);
  EXPECT_EQ(parsed.samples.at(series + "_bucket{" + labels + R"(,le="0.0025"})"), 4);
  EXPECT_EQ(parsed.samples.at(series + "_bucket{" + labels + R"(,le="0.005"})"), 6);
  EXPECT_EQ(parsed.samples.at(series + "_bucket{" + labels + R"(,le="10"})"), 6);
  EXPECT_EQ(parsed.samples.at(series + "_bucket{" + labels + R"(,le="+Inf"})"), 7);
  EXPECT_EQ(parsed.samples.at(series + "_count{" + labels + "}"), 7);
  EXPECT_NEAR(parsed.samples.at(series + "_sum{" + labels + "}"), 20.0062, 1e-9);

  double previous = 0;
  for (std::uint64_t bound : kLatencyBucketsUs) {
    std::ostringstream le;
    le << static_cast<double>(bound) / 1e6;
    double value = parsed.samples.at(series + "_bucket{" + labels + ",le=\"" + le.str() + "\"}");
    EXPECT_GE(value, previous) << "le=" << le.str();
    previous = value;
  }
}

TEST_F(MetricsTest, TotalsIncludeWorkersThatHaveExited) {
  WorkerRecord& gone = add_ready(1, 0);
  gone.stats.responses.status_2xx = 5;
  gone.stats.latency_us.record(100, 5);
  gone.stats.bytes_out = 500;
  ASSERT_TRUE(table_.remove_exited(gone.pid, now_, ExitStatus{0, std::nullopt}));
  WorkerRecord& alive = add_ready(2, 0);
  alive.stats.responses.status_2xx = 3;
  alive.stats.responses.status_4xx = 1;
  alive.stats.latency_us.record(100, 4);
  alive.stats.bytes_out = 300;

  Parsed parsed = render();

  EXPECT_EQ(parsed.samples.at(R"(herd_requests_total{class="2xx"})"), 8);
  EXPECT_EQ(parsed.samples.at(R"(herd_requests_total{class="4xx"})"), 1);
  EXPECT_EQ(parsed.samples.at("herd_request_duration_seconds_count"), 9);
  EXPECT_EQ(parsed.samples.at("herd_sent_bytes_total"), 800);
  EXPECT_EQ(parsed.samples.count(R"(herd_worker_requests_total{slot="0",id="1",class="2xx"})"), 0u)
      << "an exited worker keeps no series of its own";
}

TEST_F(MetricsTest, EveryFamilyIsDeclaredOnceBeforeItsSamples) {
  add_ready(1, 0);
  add_ready(2, 1);
  std::string text = render_metrics(master_, table_, now_, 100);

  std::set<std::string> declared;
  std::string current;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream words(line.substr(7));
      words >> current;
      EXPECT_TRUE(declared.insert(current).second) << current << " declared twice";
      continue;
    }
    if (line.empty() || line[0] == '#') continue;
    std::string name = line.substr(0, line.find_first_of("{ "));
    bool belongs = name == current || name == current + "_bucket" || name == current + "_sum" ||
                   name == current + "_count";
    EXPECT_TRUE(belongs) << name << " outside its family (current: " << current << ")";
  }
  for (const auto& [name, type] : parse(text).types) {
    if (type == "counter") {
      EXPECT_TRUE(name.ends_with("_total")) << name;
    }
  }
}

TEST_F(MetricsTest, StoppingIsExposed) {
  master_.stopping = true;
  EXPECT_EQ(render().samples.at("herd_stopping"), 1);
}

TEST(EscapeLabelValue, EscapesBackslashQuoteAndNewline) {
  EXPECT_EQ(escape_label_value(R"(a\b"c)"
                               "\n"),
            R"(a\\b\"c\n)");
  EXPECT_EQ(escape_label_value("plain 1.2.3"), "plain 1.2.3");
}

TEST(ParseAdminAddress, AcceptsNumericHostsAndLocalhost) {
  std::string error;
  std::optional<AdminAddress> v4 = parse_admin_address("127.0.0.1:9090", error);
  ASSERT_TRUE(v4) << error;
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 9090);

  std::optional<AdminAddress> v6 = parse_admin_address("[::1]:0", error);
  ASSERT_TRUE(v6) << error;
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 0);

  std::optional<AdminAddress> local = parse_admin_address("localhost:9100", error);
  ASSERT_TRUE(local) << error;
  EXPECT_EQ(local->host, "127.0.0.1");
}

TEST(ParseAdminAddress, RefusesAnythingElseWithAReason) {
  for (const char* text :
       {"9090", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1", "example.com:9090",
        "127.0.0.1:90/metrics", "user@127.0.0.1:90", "", ":9090", "127.0.0.1:9090?x=1"}) {
    std::string error;
    EXPECT_FALSE(parse_admin_address(text, error)) << text;
    EXPECT_FALSE(error.empty()) << text;
  }
}

}  // namespace
}  // namespace herd
