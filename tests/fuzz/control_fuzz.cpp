// libFuzzer target: one control-socket request line against a master with
// two workers (one ready with stats, one starting). Whatever comes in: no
// exception escapes, the reply is an object with a boolean "ok" (or null for
// `reload` with wait, whose reply comes later), and a failure carries an
// error string and no action.
#include <fuzzer/FuzzedDataProvider.h>

#include <string>

#include "master/control_handlers.h"
#include "master/worker_table.h"

namespace {

herd::WorkerTable& workers() {
  static herd::WorkerTable table = [] {
    herd::WorkerTable built(2);
    herd::TimePoint now{};
    herd::WorkerRecord& ready = built.add(built.allocate_id(), 0, 101, now, 1764000000000);
    ready.state = herd::WorkerState::kReady;
    ready.stats.requests = 42;
    built.add(built.allocate_id(), 1, 102, now, 1764000000000);
    return built;
  }();
  return table;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider input(data, size);
  herd::MasterView master;
  master.pid = 100;
  master.version = "0.1.0";
  master.listen = "127.0.0.1:3000";
  master.stopping = input.ConsumeBool();
  master.reloading = input.ConsumeBool();
  std::string line = input.ConsumeRemainingBytesAsString();

  herd::ControlDecision decision =
      herd::handle_control_request(line, master, workers(), herd::TimePoint{});
  if (decision.reply.is_null()) {
    if (decision.action != herd::ControlAction::kReload) __builtin_trap();
    return 0;
  }
  if (!decision.reply.is_object() || !decision.reply["ok"].is_boolean()) __builtin_trap();
  if (!decision.reply["ok"].get<bool>()) {
    if (!decision.reply["error"].is_string()) __builtin_trap();
    if (decision.action != herd::ControlAction::kNone) __builtin_trap();
  }
  // As the control server writes it: invalid UTF-8 echoed from the request is replaced.
  decision.reply.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return 0;
}
