#include "master/control_handlers.h"

#include <cmath>
#include <optional>

namespace herd {
namespace {

using nlohmann::json;
using proto::ControlCommand;
using proto::ControlRequest;
namespace reply = proto::reply;

double round_to(double value, int decimals) {
  double scale = std::pow(10.0, decimals);
  return std::round(value * scale) / scale;
}

std::int64_t elapsed_ms(TimePoint since, TimePoint now) {
  return std::chrono::duration_cast<Milliseconds>(now - since).count();
}

json exit_json(const std::optional<ExitStatus>& status) {
  if (!status) return nullptr;
  return {{reply::kCode, status->code ? json(*status->code) : json(nullptr)},
          {reply::kSignal, status->signal ? json(*status->signal) : json(nullptr)}};
}

struct Context {
  const MasterView& master;
  const WorkerTable& workers;
  TimePoint now;
};

json master_json(const Context& context) {
  const MasterView& master = context.master;
  return {{reply::kPid, master.pid},
          {reply::kVersion, master.version},
          {reply::kUptimeMs, elapsed_ms(master.started_at, context.now)},
          {reply::kListen, master.listen},
          {reply::kSchedule, master.schedule},
          {reply::kState, master.stopping ? "stopping" : "running"},
          {reply::kWorkersTarget, context.workers.target()},
          {reply::kPending, master.pending},
          {reply::kMaxConnections, master.max_connections},
          {reply::kConnectionsTotal, master.connections_total},
          {reply::kRestartsTotal, context.workers.restarts_total()}};
}

json lines_json(const OutputRing& output) {
  json lines = json::array();
  for (const KeptLine& line : output.lines()) {
    lines.push_back({{reply::kTime, line.unix_ms},
                     {reply::kStream, to_string(line.stream)},
                     {reply::kLine, line.text}});
    if (line.cut) lines.back()[reply::kCut] = true;
  }
  return lines;
}

// A worker's fields plus its `last_lines`; its `last_exit` also names the
// worker it is about and gives that worker's last lines.
json worker_detail_json(const WorkerRecord& worker, const WorkerTable& table, TimePoint now) {
  json object = worker_json(worker, table, now);
  object[reply::kLastLines] = lines_json(worker.output);
  if (const ExitedWorker* previous = table.last_exited(worker.slot)) {
    json& last_exit = object[reply::kLastExit];
    last_exit[reply::kId] = previous->record.id;
    last_exit[reply::kPid] = previous->record.pid;
    last_exit[reply::kExitedAt] = previous->exited_at_ms;
    last_exit[reply::kLastLines] = lines_json(previous->record.output);
  }
  return object;
}

// A worker that has exited, as its slot keeps it: its counters as of its
// last heartbeat, how it ended and its last lines.
json exited_worker_json(const ExitedWorker& exited) {
  const WorkerRecord& worker = exited.record;
  const proto::WorkerStats& stats = worker.stats;
  return {{reply::kId, worker.id},
          {reply::kSlot, worker.slot},
          {reply::kPid, worker.pid},
          {reply::kState, to_string(WorkerState::kExited)},
          {reply::kStartedAt, worker.started_at_ms},
          {reply::kExitedAt, exited.exited_at_ms},
          {reply::kUptimeMs, elapsed_ms(worker.spawned_at, exited.exited_at)},
          {reply::kExit, exit_json(exited.status)},
          {reply::kConnections, worker.connections_handed},
          {reply::kRequests, stats.requests},
          {reply::kResponses, proto::response_counts_json(stats.responses)},
          {reply::kLatencyUs, latency_json(stats.latency_us)},
          {reply::kBytesIn, stats.bytes_in},
          {reply::kBytesOut, stats.bytes_out},
          {reply::kLastHeartbeatMs, elapsed_ms(worker.last_heartbeat, exited.exited_at)},
          {reply::kLastLines, lines_json(worker.output)}};
}

ControlDecision ping(const Context& context) {
  return {{{reply::kOk, true},
           {reply::kPid, context.master.pid},
           {reply::kVersion, context.master.version}}};
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
    slots.push_back({{reply::kSlot, slot.slot},
                     {reply::kState, state},
                     {reply::kWorker, slot.worker ? json(*slot.worker) : json(nullptr)},
                     {reply::kRestarts, slot.restarts},
                     {reply::kLastExit, exit_json(slot.last_exit)},
                     {reply::kNextAttemptMs, next_attempt}});
  }
  return slots;
}

ControlDecision status(const Context& context) {
  json workers = json::array();
  for (const auto& [id, record] : context.workers.workers()) {
    workers.push_back(worker_json(record, context.workers, context.now));
  }
  return {{{reply::kOk, true},
           {reply::kMaster, master_json(context)},
           {reply::kWorkers, std::move(workers)},
           {reply::kSlots, slots_json(context)}}};
}

}  // namespace

nlohmann::json status_reply(const MasterView& master, const WorkerTable& workers, TimePoint now) {
  return status(Context{master, workers, now}).reply;
}

namespace {

ControlDecision stats(const ControlRequest& request, const Context& context) {
  const std::optional<std::uint64_t>& id = request.id;
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
  json totals = {{reply::kRequests, total.requests},
                 {reply::kResponses, proto::response_counts_json(total.responses)},
                 {reply::kLatencyUs, latency_json(total.latency_us)},
                 {reply::kBytesIn, total.bytes_in},
                 {reply::kBytesOut, total.bytes_out},
                 {reply::kRps, round_to(rps, 1)}};
  return {{{reply::kOk, true},
           {reply::kWorkers, std::move(workers)},
           {reply::kTotal, std::move(totals)}}};
}

ControlDecision restart(const ControlRequest& request, const Context& context) {
  const std::optional<std::uint64_t>& id = request.id;  // decoding made sure of it
  const WorkerRecord* record = context.workers.find(*id);
  if (record == nullptr) return {error_reply("no worker with id " + std::to_string(*id))};
  if (context.workers.is_successor(*id)) {
    return {
        error_reply("worker " + std::to_string(*id) + " is itself a replacement still starting")};
  }
  if (!context.workers.is_current(*id) || record->state == WorkerState::kDraining) {
    return {error_reply("worker " + std::to_string(*id) + " is already on its way out")};
  }
  ControlDecision decision{{{reply::kOk, true}, {reply::kRestarting, *id}},
                           ControlAction::kRestart};
  decision.workers.push_back(*id);
  return decision;
}

ControlDecision reload(const ControlRequest& request, const Context& context) {
  if (context.master.reloading) {
    return {error_reply("a reload is already in progress; wait for it to finish")};
  }
  ControlDecision decision;
  decision.action = ControlAction::kReload;
  decision.workers = context.workers.serving_workers();
  if (!request.wait) decision.reply = {{reply::kOk, true}, {reply::kReloading, decision.workers}};
  return decision;
}

ControlDecision scale(const ControlRequest& request, const Context& context) {
  std::uint64_t target = *request.workers;  // 1 to kMaxWorkers: decoding made sure of it
  ControlDecision decision{{{reply::kOk, true},
                            {reply::kWorkersTarget, target},
                            {reply::kPrevious, context.workers.target()}},
                           ControlAction::kScale};
  decision.target = static_cast<std::size_t>(target);
  return decision;
}

}  // namespace

json error_reply(const std::string& message) {
  return {{reply::kOk, false}, {reply::kError, message}};
}

json latency_json(const LatencyHistogram& histogram) {
  if (histogram.count() == 0) {
    return {{reply::kP50, nullptr},
            {reply::kP90, nullptr},
            {reply::kP99, nullptr},
            {reply::kMax, nullptr}};
  }
  return {{reply::kP50, histogram.percentile(0.50)},
          {reply::kP90, histogram.percentile(0.90)},
          {reply::kP99, histogram.percentile(0.99)},
          {reply::kMax, histogram.max()}};
}

json worker_json(const WorkerRecord& worker, const WorkerTable& table, TimePoint now) {
  const proto::WorkerStats& stats = worker.stats;
  return {{reply::kId, worker.id},
          {reply::kSlot, worker.slot},
          {reply::kPid, worker.pid},
          {reply::kState, to_string(worker.state)},
          {reply::kStartedAt, worker.started_at_ms},
          {reply::kUptimeMs, elapsed_ms(worker.spawned_at, now)},
          {reply::kRestarts, table.restarts(worker.slot)},
          {reply::kLastExit, exit_json(table.last_exit(worker.slot))},
          {reply::kConnections, worker.connections_handed},
          {reply::kActiveConnections, stats.active_connections},
          {reply::kFull, worker.full},
          {reply::kRequests, stats.requests},
          {reply::kRps, round_to(worker.request_rate.rate(), 1)},
          {reply::kResponses, proto::response_counts_json(stats.responses)},
          {reply::kLatencyUs, latency_json(stats.latency_us)},
          {reply::kBytesIn, stats.bytes_in},
          {reply::kBytesOut, stats.bytes_out},
          {reply::kRssKb, worker.rss_kb != 0 ? json(worker.rss_kb) : json(nullptr)},
          {reply::kCpuPct, round_to(worker.cpu_pct, 1)},
          {reply::kLastHeartbeatMs, elapsed_ms(worker.last_heartbeat, now)}};
}

ControlDecision handle_control_request(std::string_view line, const MasterView& master,
                                       const WorkerTable& workers, TimePoint now) {
  proto::DecodedControlRequest decoded = proto::decode_control_request(line);
  if (!decoded.request) return {error_reply(decoded.error)};
  const ControlRequest& request = *decoded.request;
  Context context{master, workers, now};

  switch (request.command) {
    case ControlCommand::kPing:
      return ping(context);
    case ControlCommand::kStatus:
      return status(context);
    case ControlCommand::kStats:
      return stats(request, context);
    case ControlCommand::kEvents:
      return {{{reply::kOk, true}, {reply::kEvents, true}}, ControlAction::kSubscribe};
    case ControlCommand::kRestart:
    case ControlCommand::kReload:
    case ControlCommand::kScale:
    case ControlCommand::kStop:
      break;
  }
  // The commands that change the workers.
  if (master.stopping) return {error_reply("the master is stopping")};
  switch (request.command) {
    case ControlCommand::kRestart:
      return restart(request, context);
    case ControlCommand::kReload:
      return reload(request, context);
    case ControlCommand::kScale:
      return scale(request, context);
    default:
      return {{{reply::kOk, true}, {reply::kStopping, true}}, ControlAction::kStop};
  }
}

}  // namespace herd
