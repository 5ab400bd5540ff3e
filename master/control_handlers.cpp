#include "master/control_handlers.h"

#include <cmath>
#include <optional>

namespace herd {
namespace {

using nlohmann::json;

constexpr const char* kCommandList = "ping, status, stats, restart, reload, scale, stop, events";

double round_to(double value, int decimals) {
  double scale = std::pow(10.0, decimals);
  return std::round(value * scale) / scale;
}

std::int64_t elapsed_ms(TimePoint since, TimePoint now) {
  return std::chrono::duration_cast<Milliseconds>(now - since).count();
}

json exit_json(const std::optional<ExitStatus>& status) {
  if (!status) return nullptr;
  return {{"code", status->code ? json(*status->code) : json(nullptr)},
          {"signal", status->signal ? json(*status->signal) : json(nullptr)}};
}

// Reads an optional non-negative integer argument; sets `error` if present
// but of the wrong kind.
std::optional<std::uint64_t> unsigned_argument(const json& request, const char* name,
                                               std::string& error) {
  auto it = request.find(name);
  if (it == request.end()) return std::nullopt;
  if (!it->is_number_unsigned()) {
    error = std::string("'") + name + "' must be a non-negative integer";
    return std::nullopt;
  }
  return it->get<std::uint64_t>();
}

struct Context {
  const MasterView& master;
  const WorkerTable& workers;
  TimePoint now;
};

json master_json(const Context& context) {
  const MasterView& master = context.master;
  return {{"pid", master.pid},
          {"version", master.version},
          {"uptime_ms", elapsed_ms(master.started_at, context.now)},
          {"listen", master.listen},
          {"schedule", master.schedule},
          {"state", master.stopping ? "stopping" : "running"},
          {"workers_target", context.workers.target()},
          {"pending", master.pending},
          {"max_connections", master.max_connections},
          {"connections_total", master.connections_total},
          {"restarts_total", context.workers.restarts_total()}};
}

json lines_json(const OutputRing& output) {
  json lines = json::array();
  for (const KeptLine& line : output.lines()) {
    lines.push_back(
        {{"time", line.unix_ms}, {"stream", to_string(line.stream)}, {"line", line.text}});
    if (line.cut) lines.back()["cut"] = true;
  }
  return lines;
}

// A worker's fields plus its `last_lines`; its `last_exit` also names the
// worker it is about and gives that worker's last lines.
json worker_detail_json(const WorkerRecord& worker, const WorkerTable& table, TimePoint now) {
  json object = worker_json(worker, table, now);
  object["last_lines"] = lines_json(worker.output);
  if (const ExitedWorker* previous = table.last_exited(worker.slot)) {
    json& last_exit = object["last_exit"];
    last_exit["id"] = previous->record.id;
    last_exit["pid"] = previous->record.pid;
    last_exit["exited_at"] = previous->exited_at_ms;
    last_exit["last_lines"] = lines_json(previous->record.output);
  }
  return object;
}

// A worker that has exited, as its slot keeps it: its counters as of its
// last heartbeat, how it ended and its last lines.
json exited_worker_json(const ExitedWorker& exited) {
  const WorkerRecord& worker = exited.record;
  const proto::WorkerStats& stats = worker.stats;
  return {{"id", worker.id},
          {"slot", worker.slot},
          {"pid", worker.pid},
          {"state", to_string(WorkerState::kExited)},
          {"started_at", worker.started_at_ms},
          {"exited_at", exited.exited_at_ms},
          {"uptime_ms", elapsed_ms(worker.spawned_at, exited.exited_at)},
          {"exit", exit_json(exited.status)},
          {"connections", worker.connections_handed},
          {"requests", stats.requests},
          {"responses", proto::response_counts_json(stats.responses)},
          {"latency_us", latency_json(stats.latency_us)},
          {"bytes_in", stats.bytes_in},
          {"bytes_out", stats.bytes_out},
          {"last_heartbeat_ms", elapsed_ms(worker.last_heartbeat, exited.exited_at)},
          {"last_lines", lines_json(worker.output)}};
}

ControlDecision ping(const Context& context) {
  return {{{"ok", true}, {"pid", context.master.pid}, {"version", context.master.version}}};
}

json slots_json(const Context& context) {
  json slots = json::array();
  for (const SlotView& slot : context.workers.slots()) {
    std::string state = "starting";
    json next_attempt = nullptr;
    if (slot.worker) {
      const WorkerRecord* worker = context.workers.find(*slot.worker);
      if (worker != nullptr && worker->state == WorkerState::kReady) state = "running";
    } else if (!slot.successor && slot.respawn_at && *slot.respawn_at > context.now) {
      state = "backoff";
      next_attempt = elapsed_ms(context.now, *slot.respawn_at);
    }
    slots.push_back({{"slot", slot.slot},
                     {"state", state},
                     {"worker", slot.worker ? json(*slot.worker) : json(nullptr)},
                     {"restarts", slot.restarts},
                     {"last_exit", exit_json(slot.last_exit)},
                     {"next_attempt_ms", next_attempt}});
  }
  return slots;
}

ControlDecision status(const Context& context) {
  json workers = json::array();
  for (const auto& [id, record] : context.workers.workers()) {
    workers.push_back(worker_json(record, context.workers, context.now));
  }
  return {{{"ok", true},
           {"master", master_json(context)},
           {"workers", std::move(workers)},
           {"slots", slots_json(context)}}};
}

}  // namespace

nlohmann::json status_reply(const MasterView& master, const WorkerTable& workers, TimePoint now) {
  return status(Context{master, workers, now}).reply;
}

namespace {

ControlDecision stats(const json& request, const Context& context) {
  std::string error;
  std::optional<std::uint64_t> id = unsigned_argument(request, "id", error);
  if (!error.empty()) return {error_reply(error)};

  json workers = json::array();
  proto::WorkerStats total;
  double rps = 0;
  if (id) {
    // One worker in detail: with its last lines, and those of its slot's
    // last worker to exit; or a worker that has exited, while its slot keeps it.
    if (const WorkerRecord* record = context.workers.find(*id)) {
      workers.push_back(worker_detail_json(*record, context.workers, context.now));
      total = record->stats;
      rps = record->request_rate.rate();
    } else if (const ExitedWorker* exited = context.workers.find_exited(*id)) {
      workers.push_back(exited_worker_json(*exited));
      total = exited->record.stats;
    } else {
      return {error_reply("no worker with id " + std::to_string(*id) +
                          " (known: the running workers and the last to exit from each slot)")};
    }
  } else {
    // Workers that have exited still count: totals never go down.
    total = context.workers.retired_stats();
    for (const auto& [worker_id, record] : context.workers.workers()) {
      workers.push_back(worker_json(record, context.workers, context.now));
      total.add_cumulative(record.stats);
      rps += record.request_rate.rate();
    }
  }
  json totals = {{"requests", total.requests},
                 {"responses", proto::response_counts_json(total.responses)},
                 {"latency_us", latency_json(total.latency_us)},
                 {"bytes_in", total.bytes_in},
                 {"bytes_out", total.bytes_out},
                 {"rps", round_to(rps, 1)}};
  return {{{"ok", true}, {"workers", std::move(workers)}, {"total", std::move(totals)}}};
}

ControlDecision restart(const json& request, const Context& context) {
  std::string error;
  std::optional<std::uint64_t> id = unsigned_argument(request, "id", error);
  if (!error.empty()) return {error_reply(error)};
  if (!id) return {error_reply("restart needs 'id', the worker to replace")};
  const WorkerRecord* record = context.workers.find(*id);
  if (record == nullptr) return {error_reply("no worker with id " + std::to_string(*id))};
  if (context.workers.is_successor(*id)) {
    return {
        error_reply("worker " + std::to_string(*id) + " is itself a replacement still starting")};
  }
  if (!context.workers.is_current(*id) || record->state == WorkerState::kDraining) {
    return {error_reply("worker " + std::to_string(*id) + " is already on its way out")};
  }
  ControlDecision decision{{{"ok", true}, {"restarting", *id}}, ControlAction::kRestart};
  decision.workers.push_back(*id);
  return decision;
}

ControlDecision reload(const json& request, const Context& context) {
  auto wait = request.find("wait");
  if (wait != request.end() && !wait->is_boolean())
    return {error_reply("'wait' must be a boolean")};
  if (context.master.reloading) {
    return {error_reply("a reload is already in progress; wait for it to finish")};
  }
  ControlDecision decision;
  decision.action = ControlAction::kReload;
  decision.workers = context.workers.serving_workers();
  bool waiting = wait != request.end() && wait->get<bool>();
  if (!waiting) decision.reply = {{"ok", true}, {"reloading", decision.workers}};
  return decision;
}

ControlDecision scale(const json& request, const Context& context) {
  std::string error;
  std::optional<std::uint64_t> target = unsigned_argument(request, "workers", error);
  if (!error.empty() || !target || *target < 1 || *target > kMaxWorkers) {
    return {
        error_reply("scale needs 'workers', an integer from 1 to " + std::to_string(kMaxWorkers))};
  }
  ControlDecision decision{
      {{"ok", true}, {"workers_target", *target}, {"previous", context.workers.target()}},
      ControlAction::kScale};
  decision.target = static_cast<std::size_t>(*target);
  return decision;
}

}  // namespace

json error_reply(const std::string& message) {
  return {{"ok", false}, {"error", message}};
}

json latency_json(const LatencyHistogram& histogram) {
  if (histogram.count() == 0) {
    return {{"p50", nullptr}, {"p90", nullptr}, {"p99", nullptr}, {"max", nullptr}};
  }
  return {{"p50", histogram.percentile(0.50)},
          {"p90", histogram.percentile(0.90)},
          {"p99", histogram.percentile(0.99)},
          {"max", histogram.max()}};
}

json worker_json(const WorkerRecord& worker, const WorkerTable& table, TimePoint now) {
  const proto::WorkerStats& stats = worker.stats;
  return {{"id", worker.id},
          {"slot", worker.slot},
          {"pid", worker.pid},
          {"state", to_string(worker.state)},
          {"started_at", worker.started_at_ms},
          {"uptime_ms", elapsed_ms(worker.spawned_at, now)},
          {"restarts", table.restarts(worker.slot)},
          {"last_exit", exit_json(table.last_exit(worker.slot))},
          {"connections", worker.connections_handed},
          {"active_connections", stats.active_connections},
          {"full", worker.full},
          {"requests", stats.requests},
          {"rps", round_to(worker.request_rate.rate(), 1)},
          {"responses", proto::response_counts_json(stats.responses)},
          {"latency_us", latency_json(stats.latency_us)},
          {"bytes_in", stats.bytes_in},
          {"bytes_out", stats.bytes_out},
          {"rss_kb", worker.rss_kb != 0 ? json(worker.rss_kb) : json(nullptr)},
          {"cpu_pct", round_to(worker.cpu_pct, 1)},
          {"last_heartbeat_ms", elapsed_ms(worker.last_heartbeat, now)}};
}

ControlDecision handle_control_request(std::string_view line, const MasterView& master,
                                       const WorkerTable& workers, TimePoint now) {
  json request = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (request.is_discarded()) return {error_reply("request is not valid JSON")};
  if (!request.is_object()) return {error_reply("request must be a JSON object")};
  auto cmd = request.find("cmd");
  if (cmd == request.end() || !cmd->is_string()) {
    return {error_reply(std::string("request needs a string 'cmd' (") + kCommandList + ")")};
  }
  const std::string& name = cmd->get_ref<const std::string&>();
  Context context{master, workers, now};

  if (name == "ping") return ping(context);
  if (name == "status") return status(context);
  if (name == "stats") return stats(request, context);
  if (name == "events") {
    return {{{"ok", true}, {"events", true}}, ControlAction::kSubscribe};
  }
  bool changes_workers = name == "restart" || name == "reload" || name == "scale" || name == "stop";
  if (changes_workers && master.stopping) return {error_reply("the master is stopping")};
  if (name == "restart") return restart(request, context);
  if (name == "reload") return reload(request, context);
  if (name == "scale") return scale(request, context);
  if (name == "stop") return {{{"ok", true}, {"stopping", true}}, ControlAction::kStop};
  return {error_reply("unknown command '" + name + "' (try " + kCommandList + ")")};
}

}  // namespace herd
