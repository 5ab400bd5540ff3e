#include "herdctl/reload_progress.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace herd::ctl {
namespace {

using nlohmann::json;

json reload_event(const char* phase, json fields = json::object()) {
  fields["event"] = "reload";
  fields["phase"] = phase;
  fields["time"] = 1'764'055'801'000;
  return fields;
}

json worker_event(const char* name, std::uint64_t id, json fields = json::object()) {
  fields["event"] = name;
  fields["id"] = id;
  fields["time"] = 1'764'055'801'000;
  return fields;
}

json replacement_start(std::uint64_t id, std::uint64_t successor) {
  return {{"event", "restart"}, {"phase", "start"}, {"id", id}, {"successor", successor}};
}

// Every line `events` add to `progress`, concatenated.
std::string observe_all(ReloadProgress& progress, const std::vector<json>& events) {
  std::string text;
  for (const json& event : events) text += progress.observe(event).value_or("");
  return text;
}

TEST(ReloadProgressTest, WordsEachStepOfASuccessfulReload) {
  ReloadProgress progress;

  std::string text = observe_all(
      progress,
      {reload_event("start", {{"workers", {1, 2}}}), replacement_start(1, 3),
       worker_event("ready", 3),
       reload_event("progress", {{"replaced", 1}, {"by", 3}, {"remaining", 1}}),
       replacement_start(2, 4), worker_event("exit", 1, {{"code", 0}, {"signal", nullptr}}),
       reload_event("progress", {{"replaced", 2}, {"by", 4}, {"remaining", 0}}),
       reload_event("done", {{"replaced", {1, 2}}})});

  EXPECT_EQ(text,
            "replacing 2 workers: 1 2\n"
            "worker 1 -> 3 starting\n"
            "worker 1 -> 3 ready (1 left)\n"
            "worker 2 -> 4 starting\n"
            "worker 1 exited (code 0)\n"
            "worker 2 -> 4 ready (0 left)\n"
            "reload done: replaced 1 2\n");
  EXPECT_TRUE(progress.finished());
  EXPECT_FALSE(progress.failed());
}

TEST(ReloadProgressTest, SkipsWhatCameBeforeItsStart) {
  ReloadProgress progress;

  EXPECT_EQ(progress.observe(reload_event("progress", {{"replaced", 5}, {"by", 6}})), std::nullopt);
  EXPECT_EQ(progress.observe(reload_event("done", {{"replaced", {5}}})), std::nullopt);
  EXPECT_EQ(progress.observe(replacement_start(7, 8)), std::nullopt);
  EXPECT_EQ(progress.observe(worker_event("exit", 5, {{"code", 0}})), std::nullopt);
  EXPECT_FALSE(progress.started());
  EXPECT_FALSE(progress.finished());
}

TEST(ReloadProgressTest, ShowsOnlyTheWorkersItReplaces) {
  ReloadProgress progress;
  observe_all(progress, {reload_event("start", {{"workers", {1}}}), replacement_start(1, 3)});

  EXPECT_EQ(progress.observe(worker_event("exit", 7, {{"code", 0}})), std::nullopt);
  EXPECT_EQ(progress.observe(worker_event("spawn", 3, {{"slot", 0}, {"pid", 4050}})), std::nullopt);
  EXPECT_EQ(progress.observe(worker_event("hung", 3)), "worker 3 hung\n");
  EXPECT_EQ(progress.observe(worker_event("exit", 3, {{"code", nullptr}, {"signal", 9}})),
            "worker 3 exited (signal SIGKILL)\n");
}

TEST(ReloadProgressTest, KeepsTheErrorOfAFailedReload) {
  ReloadProgress progress;
  progress.observe(reload_event("start", {{"workers", {1}}}));

  EXPECT_EQ(progress.observe(reload_event("failed", {{"error", "cannot start a replacement"}})),
            "reload failed: cannot start a replacement\n");
  EXPECT_TRUE(progress.finished());
  EXPECT_TRUE(progress.failed());
  EXPECT_EQ(progress.error(), "cannot start a replacement");
}

TEST(ReloadProgressTest, FailedWithoutAnErrorStillSaysSo) {
  ReloadProgress progress;
  progress.observe(reload_event("start", {{"workers", {1}}}));

  EXPECT_EQ(progress.observe(reload_event("failed")),
            "reload failed: the master did not say why\n");
  EXPECT_TRUE(progress.failed());
}

TEST(ReloadProgressTest, CountsWhatIsLeftWhenTheMasterDoesNot) {
  ReloadProgress progress;
  progress.observe(reload_event("start", {{"workers", {1, 2, 3}}}));

  EXPECT_EQ(progress.observe(reload_event("progress", {{"replaced", 1}, {"by", 4}})),
            "worker 1 -> 4 ready (2 left)\n");
  EXPECT_EQ(progress.observe(reload_event("progress", {{"replaced", 2}, {"by", 5}})),
            "worker 2 -> 5 ready (1 left)\n");
}

TEST(ReloadProgressTest, IgnoresEverythingAfterItsEnd) {
  ReloadProgress progress;
  observe_all(progress, {reload_event("start", {{"workers", {1}}}), replacement_start(1, 2),
                         reload_event("done", {{"replaced", {1}}})});

  EXPECT_EQ(progress.observe(worker_event("exit", 1, {{"code", 0}})), std::nullopt);
  EXPECT_EQ(progress.observe(reload_event("start", {{"workers", {2}}})), std::nullopt);
  EXPECT_FALSE(progress.failed());
}

TEST(ReloadProgressTest, OfNoWorkersSaysSo) {
  ReloadProgress progress;

  EXPECT_EQ(progress.observe(reload_event("start", {{"workers", json::array()}})),
            "nothing to replace\n");
  EXPECT_EQ(progress.observe(reload_event("done", {{"replaced", json::array()}})),
            "reload done: nothing replaced\n");
}

TEST(ReloadProgressTest, SurvivesEventsOfTheWrongShape) {
  ReloadProgress progress;

  EXPECT_EQ(progress.observe(json("not an object")), std::nullopt);
  EXPECT_EQ(progress.observe(json::parse("{}")), std::nullopt);
  EXPECT_EQ(progress.observe(reload_event("start", {{"workers", "all"}})),
            "replacing the workers\n");
  EXPECT_EQ(progress.observe(reload_event("progress", {{"replaced", "x"}})),
            "worker - -> - ready (- left)\n");
  EXPECT_EQ(progress.observe(worker_event("exit", 3)), std::nullopt);
}

}  // namespace
}  // namespace herd::ctl
