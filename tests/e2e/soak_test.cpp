// End-to-end soak: the master under steady load while its workers are killed
// and reloaded, over and over. Afterwards the master holds exactly the
// descriptors it held before, and (outside AddressSanitizer, whose
// quarantine keeps freed memory resident on purpose) its resident memory has
// not grown. HERD_SOAK_SECONDS sets the length (default 20).
#include <dirent.h>
#include <signal.h>
#include <unistd.h>

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

// "fd -> target" for each descriptor of `pid`, for a failure message.
std::string describe_descriptors(pid_t pid) {
  std::string text;
  std::string directory = "/proc/" + std::to_string(pid) + "/fd";
  if (DIR* listing = ::opendir(directory.c_str())) {
    while (dirent* entry = ::readdir(listing)) {
      if (entry->d_name[0] == '.') continue;
      char target[256] = {};
      ssize_t length =
          ::readlink((directory + "/" + entry->d_name).c_str(), target, sizeof(target) - 1);
      text += std::string(entry->d_name) + " -> " + (length > 0 ? target : "?") + "\n";
    }
    ::closedir(listing);
  }
  return text;
}

// The count of descriptors `pid` holds once ten reads in a row agree
// (bounded by 5 s): a control client or a connection not yet
// acked is open for a moment; the steady count is what a leak changes.
std::size_t steady_descriptors(pid_t pid) {
  std::size_t count = open_descriptors(pid);
  int same = 0;
  wait_until(
      [&] {
        std::size_t now = open_descriptors(pid);
        same = now == count ? same + 1 : 0;
        count = now;
        return same >= 10;
      },
      Milliseconds{5000});
  return count;
}

struct Settled {
  std::set<pid_t> ready;
  bool ok = false;
};

// Every slot has a ready worker and nothing is being replaced or queued.
// `Exits::kAwaited`: no worker is on its way out either, the master's steady
// state. Between rounds the old workers of a reload may still be draining: one
// that was handed a connection whose request a killed worker had already read
// waits for it until the keep-alive timeout, as it must.
enum class Exits { kAwaited, kNotAwaited };

Settled wait_settled(const std::string& control, std::size_t workers,
                     Exits exits = Exits::kAwaited) {
  Settled settled;
  settled.ok = wait_until(
      [&] {
        std::optional<nlohmann::json> status = control_request(control, {{"cmd", "status"}});
        if (!status || (*status)["master"]["pending"] != 0) return false;
        std::set<pid_t> ready;
        for (const nlohmann::json& worker : (*status)["workers"]) {
          if (worker["state"] == "ready") {
            ready.insert(worker["pid"].get<pid_t>());
          } else if (worker["state"] != "draining" || exits == Exits::kAwaited) {
            return false;
          }
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
  const std::size_t descriptors_before = steady_descriptors(master);
  const std::string descriptors_before_text = describe_descriptors(master);
  const long rss_before = resident_kb(master).value_or(-1);

  RequestLoop load(cluster->port);
  std::mt19937 random(12345);
  std::size_t kills = 0, reloads = 0, queries = 0;
  Clock::time_point end = Clock::now() + duration;
  for (int round = 0; Clock::now() < end; ++round) {
    // Some load between two disruptions; a request a killed worker took
    // with it holds the loop up to its client timeout, hence the bound.
    load.wait_for_requests(load.done() + 20, Milliseconds{10000});
    Settled settled = wait_settled(control, kWorkers, Exits::kNotAwaited);
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

  // Bounded wait for the count to come back: a descriptor that is only late
  // to close (a slow ASan run) gets there, a leaked one never does.
  std::size_t descriptors_after = open_descriptors(master);
  wait_until(
      [&] {
        descriptors_after = open_descriptors(master);
        return descriptors_after <= descriptors_before;
      },
      Milliseconds{5000});
  const long rss_after = resident_kb(master).value_or(-1);
  std::cout << "[ soak     ] " << duration.count() / 1000 << " s: " << load.done() << " requests, "
            << kills << " workers killed, " << reloads << " reloads, " << queries
            << " control queries; master descriptors " << descriptors_before << " -> "
            << descriptors_after << ", RSS " << rss_before << " -> " << rss_after << " KiB\n";
  EXPECT_GT(kills, 2u);
  EXPECT_GT(reloads, 2u);
  EXPECT_GT(load.done(), 100u);
  EXPECT_LE(descriptors_after, descriptors_before) << "the master leaks descriptors; before:\n"
                                                   << descriptors_before_text << "after:\n"
                                                   << describe_descriptors(master);
  if (!kUnderAddressSanitizer) {
    EXPECT_LT(rss_after - rss_before, 1024) << "the master's memory grew by more than 1 MiB";
  }
}

}  // namespace
}  // namespace herd::e2e
