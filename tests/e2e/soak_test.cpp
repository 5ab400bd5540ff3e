// End-to-end soak: the master under steady load while its workers are killed
// and reloaded, over and over. Afterwards the master holds exactly the
// descriptors it held before, and (outside AddressSanitizer, whose
// quarantine keeps freed memory resident on purpose) its resident memory has
// not grown. HERD_SOAK_SECONDS sets the length (default 20).
#include <dirent.h>
#include <signal.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/harness.h"

namespace herd::e2e {
namespace {

using Clock = std::chrono::steady_clock;

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kUnderAddressSanitizer = true;
#else
constexpr bool kUnderAddressSanitizer = false;
#endif

std::size_t open_descriptors(pid_t pid) {
  std::size_t count = 0;
  if (DIR* directory = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str())) {
    while (dirent* entry = ::readdir(directory)) {
      if (entry->d_name[0] != '.') ++count;
    }
    ::closedir(directory);
  }
  return count;
}

// The fewest descriptors `pid` holds over half a second: a control client or
// a connection not yet acked is open for a moment; a leak stays.
std::size_t resting_descriptors(pid_t pid) {
  std::size_t fewest = open_descriptors(pid);
  wait_until(
      [&] {
        fewest = std::min(fewest, open_descriptors(pid));
        return false;
      },
      Milliseconds{500});
  return fewest;
}

struct Settled {
  std::set<pid_t> ready;
  bool ok = false;
};

// Every slot has a ready worker, nothing is being replaced or queued, and no
// worker is on its way out: the master's steady state.
Settled wait_settled(const std::string& control, std::size_t workers) {
  Settled settled;
  settled.ok = wait_until(
      [&] {
        std::optional<nlohmann::json> status = control_request(control, {{"cmd", "status"}});
        if (!status || (*status)["master"]["pending"] != 0) return false;
        std::set<pid_t> ready;
        for (const nlohmann::json& worker : (*status)["workers"]) {
          if (worker["state"] != "ready") return false;
          ready.insert(worker["pid"].get<pid_t>());
        }
        settled.ready = ready;
        return ready.size() == workers;
      },
      Milliseconds{20000});
  return settled;
}

TEST(Soak, MasterDescriptorsAndMemoryStayFlatThroughKillsAndReloads) {
  constexpr std::size_t kWorkers = 2;
  const char* seconds_setting = std::getenv("HERD_SOAK_SECONDS");
  const Milliseconds duration{1000 * (seconds_setting ? std::atol(seconds_setting) : 20)};
  std::optional<Cluster> cluster =
      start_cluster(kWorkers, {"--heartbeat-interval", "100", "--min-uptime", "0"});
  ASSERT_TRUE(cluster);
  const std::string control = control_path(*cluster);
  const pid_t master = cluster->herd->pid();

  // Warm up: one of everything the soak does, so first-use allocations
  // (the events stream, a replacement plan, a dead worker's record) are in
  // the baseline.
  {
    RequestLoop warmup(cluster->port);
    ASSERT_TRUE(warmup.wait_for_requests(200, Milliseconds{20000}));
    ASSERT_TRUE(control_request(control, {{"cmd", "reload"}, {"wait", true}}, Milliseconds{30000}));
    Settled settled = wait_settled(control, kWorkers);
    ASSERT_TRUE(settled.ok);
    ::kill(*settled.ready.begin(), SIGKILL);
    ASSERT_TRUE(wait_settled(control, kWorkers).ok);
  }
  const std::size_t descriptors_before = resting_descriptors(master);
  const long rss_before = resident_kb(master).value_or(-1);

  RequestLoop load(cluster->port);
  std::mt19937 random(12345);
  std::size_t kills = 0, reloads = 0, queries = 0;
  Clock::time_point end = Clock::now() + duration;
  for (int round = 0; Clock::now() < end; ++round) {
    Settled settled = wait_settled(control, kWorkers);
    ASSERT_TRUE(settled.ok) << "the cluster did not settle in round " << round;
    if (round % 2 == 0) {
      auto victim = settled.ready.begin();
      std::advance(victim, random() % settled.ready.size());
      ::kill(*victim, SIGKILL);
      ++kills;
    } else {
      ASSERT_TRUE(
          control_request(control, {{"cmd", "reload"}, {"wait", true}}, Milliseconds{30000}));
      ++reloads;
    }
    for (const char* command : {"stats", "status"}) {
      if (control_request(control, {{"cmd", command}})) ++queries;
    }
  }
  load.stop();
  ASSERT_TRUE(wait_settled(control, kWorkers).ok);

  const std::size_t descriptors_after = resting_descriptors(master);
  const long rss_after = resident_kb(master).value_or(-1);
  std::cout << "[ soak     ] " << duration.count() / 1000 << " s: " << load.done() << " requests, "
            << kills << " workers killed, " << reloads << " reloads, " << queries
            << " control queries; master descriptors " << descriptors_before << " -> "
            << descriptors_after << ", RSS " << rss_before << " -> " << rss_after << " KiB\n";
  EXPECT_GT(kills, 2u);
  EXPECT_GT(reloads, 2u);
  EXPECT_GT(load.done(), 100u);
  EXPECT_LE(descriptors_after, descriptors_before) << "the master leaks descriptors";
  if (!kUnderAddressSanitizer) {
    EXPECT_LT(rss_after - rss_before, 1024) << "the master's memory grew by more than 1 MiB";
  }
}

}  // namespace
}  // namespace herd::e2e
