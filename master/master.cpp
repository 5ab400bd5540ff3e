#include "master/master.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>
#include <variant>

#include "common/errno_text.h"
#include "common/listen_socket.h"
#include "common/unix_socket.h"
#include "master/control_handlers.h"
#include "master/metrics.h"
#include "master/proc_stats.h"

namespace herd {
namespace {

// Supervision pass period; heartbeats and deadlines are checked at this grain.
constexpr Milliseconds kTickPeriod{100};

}  // namespace

Master::Master(MasterConfig config)
    : config_(std::move(config)),
      workers_(config_.workers, config_.backoff),
      random_(std::random_device{}()) {}

Master::~Master() = default;

int Master::run() {
  started_at_ = Clock::now();
  base_.reset(event_base_new());
  if (!base_) {
    spdlog::critical("event_base_new() failed");
    return 1;
  }
  ::signal(SIGPIPE, SIG_IGN);
  spdlog::info("Master {} is running", ::getpid());
  BrokerSettings broker_settings;
  broker_settings.handoff_window = config_.handoff_window;
  broker_settings.queue_timeout = config_.queue_timeout;
  BrokerHost& host = *this;  // a private base: converted here, where it is accessible
  broker_ = std::make_unique<Broker>(base_.get(), host, sender_, broker_settings);
  output_ = std::make_unique<OutputCapture>(
      base_.get(), config_.log_format,
      [this](WorkerId worker, OutputStream stream, const OutputLine& line) {
        workers_.keep_output(worker, {unix_time_ms(), stream, line.text, line.cut});
      });
  if (!open_listener()) return 1;
  install_signal_handlers();
  notifier_.start(base_.get());

  tick_event_.reset(event_new(base_.get(), -1, EV_PERSIST, on_tick, this));
  shutdown_delay_event_.reset(evtimer_new(base_.get(), on_shutdown_delay_over, this));
  timeval tick = to_timeval(kTickPeriod);
  event_add(tick_event_.get(), &tick);

  supervise();  // starts the workers
  event_base_dispatch(base_.get());

  broker_->stop();
  spdlog::info("Master {} stopped", ::getpid());
  return 0;
}

bool Master::open_listener() {
  bool inherited = config_.inherited_listener.valid();
  ListenResult listener = inherited
                              ? adopt_listen_socket(std::move(config_.inherited_listener))
                              : open_listen_socket(config_.host, config_.port, config_.backlog);
  if (!listener.fd) {
    spdlog::critical("cannot listen: {}", listener.error);
    return false;
  }
  listen_fd_ = std::move(listener.fd);
  listen_address_ = format_host_port(listener.host, listener.port);
  if (inherited) {
    spdlog::info("socket activation: using the listening socket inherited from systemd (fd {})",
                 listen_fd_.get());
  }
  if (!open_control_socket(listener.port) || !open_admin_endpoint()) return false;
  if (config_.schedule == Schedule::kNone) {
    // The workers accept; the master keeps the socket only to hand it on.
    config_.worker.listen_fd = listen_fd_.get();
    spdlog::info("listening on {} (schedule none: the workers accept)", listen_address_);
    return true;
  }
  broker_->start_accepting(listen_fd_.get());
  spdlog::info("listening on {}", listen_address_);
  return true;
}

void Master::install_signal_handlers() {
  for (int signal : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1}) {
    EventPtr event(evsignal_new(base_.get(), signal, on_signal, this));
    event_add(event.get(), nullptr);
    signal_events_.push_back(std::move(event));
  }
}

// ---- libevent callbacks ----------------------------------------------------

// Signal callbacks only record intent; supervise() acts on it.
void Master::on_signal(evutil_socket_t signal, short, void* arg) {
  auto* master = static_cast<Master*>(arg);
  switch (signal) {
    case SIGCHLD:
      master->child_exited_ = true;
      break;
    case SIGTERM:
    case SIGINT:
      ++master->stop_requests_;
      break;
    case SIGHUP:
      master->reload_requested_ = true;
      break;
    case SIGUSR1:
      master->reopen_log_requested_ = true;
      break;
  }
  master->supervise();
}

void Master::on_tick(evutil_socket_t, short, void* arg) {
  static_cast<Master*>(arg)->supervise();
}

void Master::on_shutdown_delay_over(evutil_socket_t, short, void* arg) {
  auto* master = static_cast<Master*>(arg);
  master->drain_for_stop();
  master->supervise();
}

// ---- supervision -----------------------------------------------------------

// One pass of the master's duties, in order: act on signals, reap the dead,
// kill the unresponsive, keep the worker count, move a restart or reload on,
// finish a stop once every worker is gone, and tell systemd how things stand.
void Master::supervise() {
  handle_signals();
  reap_workers();
  murder_unresponsive_workers();
  manage_workers();
  advance_replacements();
  broker_->expire_queued();
  finish_stop_when_idle();
  if (notifier_.enabled()) notifier_.progress(service_snapshot());
}

void Master::handle_signals() {
  if (stop_requests_ > 0 && !stop_announced_) {
    begin_stop();
  } else if (stop_requests_ > 1 && stop_announced_) {
    drain_for_stop();  // cuts a shutdown delay short; nothing once draining
    force_stop();
  }
  if (reload_requested_ && !stop_announced_) {
    reload_requested_ = false;
    spdlog::info("SIGHUP: rolling reload of {} workers", workers_.target());
    start_reload(workers_.serving_workers());
  }
  if (reopen_log_requested_) {
    reopen_log_requested_ = false;
    reopen_log();
  }
}

// SIGUSR1, as for nginx: after logrotate renamed the log file, go on in a new
// file at --log-file's path. If that fails, keep the old one.
void Master::reopen_log() {
  std::string path = log_file_path();
  if (path.empty()) {
    spdlog::info("SIGUSR1: logging to stderr, no log file to reopen");
    return;
  }
  std::string error;
  if (reopen_log_file(error)) {
    spdlog::info("SIGUSR1: reopened log file {}", path);
  } else {
    spdlog::error("SIGUSR1: {}; still writing to the file opened before", error);
  }
}

void Master::reap_workers() {
  if (!child_exited_) return;
  child_exited_ = false;
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid == 0) return;
    if (pid < 0) {
      if (errno == EINTR) continue;
      if (errno != ECHILD) spdlog::error("waitpid() failed: {}", errno_text(errno));
      return;
    }
    ExitStatus exit;
    if (WIFEXITED(status)) exit.code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) exit.signal = WTERMSIG(status);

    WorkerRecord* record = workers_.find_by_pid(pid);
    if (record == nullptr) continue;  // not a worker of ours
    WorkerId id = record->id;
    bool expected = stopping_ || record->state == WorkerState::kDraining;
    // Acks the worker sent before dying still count; read them before its
    // un-acked connections are re-dispatched. Its last lines go with its
    // record into its slot's last exit.
    broker_->read_remaining(id);
    broker_->close_channel(id);
    output_->drain(id);
    nlohmann::json fields = worker_event_fields(*workers_.find(id));
    std::size_t slot = workers_.find(id)->slot;
    TimePoint now = Clock::now();
    workers_.remove_exited(pid, now, exit);
    if (expected) {
      spdlog::info("Worker {} died ({})", pid, describe(exit));
    } else {
      spdlog::warn("Worker {} died ({})", pid, describe(exit));
    }
    if (slot < workers_.target() && !stopping_) {
      std::optional<TimePoint> respawn_at = workers_.slots()[slot].respawn_at;
      if (respawn_at && *respawn_at > now) {
        spdlog::warn("slot {} keeps dying within --min-uptime ({} ms): next start in {} ms", slot,
                     config_.backoff.young.count(),
                     std::chrono::duration_cast<Milliseconds>(*respawn_at - now).count());
      }
    }
    fields["code"] = exit.code ? nlohmann::json(*exit.code) : nlohmann::json(nullptr);
    fields["signal"] = exit.signal ? nlohmann::json(*exit.signal) : nlohmann::json(nullptr);
    emit("exit", std::move(fields));
    if (replacements_.successor() == id) {
      report_replacements(replacements_.fail(
          "the replacement for worker " + std::to_string(*replacements_.replacing()) + " exited (" +
          describe(exit) + ") before it was ready"));
    }
  }
}

void Master::murder_unresponsive_workers() {
  TimePoint now = Clock::now();
  for (WorkerId id : workers_.overdue(now, config_.heartbeat_timeout)) {
    WorkerRecord* worker = workers_.find(id);
    bool never_ready = worker->state == WorkerState::kStarting;
    spdlog::warn("Worker {} {} within {} ms; sending SIGTERM", worker->pid,
                 never_ready ? "did not become ready" : "missed its heartbeats",
                 config_.heartbeat_timeout.count());
    worker->state = WorkerState::kHung;
    worker->kill_at = now + config_.kill_timeout;
    ++hung_kills_total_;
    update_eligibility(*worker);
    emit("hung", worker_event_fields(*worker));
    if (::kill(worker->pid, SIGTERM) != 0) {
      spdlog::error("kill({}, SIGTERM) failed: {}", worker->pid, errno_text(errno));
    }
  }
  for (WorkerId id : workers_.past_kill_deadline(now)) {
    WorkerRecord* worker = workers_.find(id);
    spdlog::warn("Worker {} still running after {} ms; sending SIGKILL", worker->pid,
                 config_.kill_timeout.count());
    worker->kill_at.reset();  // SIGKILL cannot be caught: once is enough
    if (::kill(worker->pid, SIGKILL) != 0) {
      spdlog::error("kill({}, SIGKILL) failed: {}", worker->pid, errno_text(errno));
    }
  }
}

void Master::manage_workers() {
  if (stopping_) return;
  for (std::size_t slot : workers_.slots_due(Clock::now())) spawn_worker_into(slot);
}

// Recycling (--max-requests, --max-rss) goes through the same readiness-gated
// replacement as a restart.
void Master::recycle_if_over_limits(WorkerRecord& worker) {
  if (worker.recycling || worker.state != WorkerState::kReady || !workers_.is_current(worker.id)) {
    return;
  }
  std::string reason;
  if (worker.request_limit != 0 && worker.stats.requests >= worker.request_limit) {
    reason = "max-requests";
  } else if (config_.max_rss_kb != 0 && worker.rss_kb > config_.max_rss_kb) {
    reason = "max-rss";
  } else {
    return;
  }
  worker.recycling = true;
  spdlog::info("recycling worker {} (pid {}): {} ({} requests, {} KiB RSS)", worker.id, worker.pid,
               reason, worker.stats.requests, worker.rss_kb);
  nlohmann::json fields = worker_event_fields(worker);
  fields["reason"] = reason;
  fields["requests"] = worker.stats.requests;
  fields["rss_kb"] = worker.rss_kb;
  emit("recycle", std::move(fields));
  replacements_.restart(worker.id);
  advance_replacements();
}

void Master::finish_stop_when_idle() {
  if (stopping_ && workers_.empty()) event_base_loopbreak(base_.get());
}

std::optional<WorkerId> Master::spawn_worker_into(std::size_t slot) {
  WorkerId id = workers_.allocate_id();
  SpawnedWorker spawned = spawn_worker(config_.worker, id, slot);
  if (spawned.pid < 0) {
    spdlog::error("cannot start worker for slot {}: {}", slot, spawned.error);
    return std::nullopt;
  }
  WorkerRecord& record = workers_.add(id, slot, spawned.pid, Clock::now(), unix_time_ms());
  output_->watch(id, slot, spawned.pid, std::move(spawned.stdout_pipe),
                 std::move(spawned.stderr_pipe));
  if (config_.max_requests != 0) {
    // Jitter spreads recycling out so workers started together do not all
    // restart together.
    std::uint64_t jitter =
        config_.max_requests_jitter == 0 ? 0 : random_() % (config_.max_requests_jitter + 1);
    record.request_limit = config_.max_requests + jitter;
  }
  broker_->attach(id, std::move(spawned.channel));
  spdlog::debug("spawned worker pid {} (id {}, slot {})", spawned.pid, id, slot);
  emit("spawn", worker_event_fields(record));
  return id;
}

void Master::drain_worker(WorkerRecord& worker) {
  worker.state = WorkerState::kDraining;
  worker.kill_at = Clock::now() + config_.kill_timeout;
  update_eligibility(worker);
  if (!broker_->send(worker.id, proto::Drain{config_.kill_timeout.count()})) {
    ::kill(worker.pid, SIGTERM);
  }
}

// Starts the next queued replacement once the previous one is over: a
// successor is spawned into the old worker's slot, and handle_message()
// drains the old worker when the successor says ready.
void Master::advance_replacements() {
  if (stopping_) return;
  auto serving = [this](WorkerId id) {
    const WorkerRecord* worker = workers_.find(id);
    return worker != nullptr && workers_.is_current(id) && worker->state != WorkerState::kDraining;
  };
  if (std::optional<WorkerId> old_worker = replacements_.next(serving)) {
    WorkerRecord& worker = *workers_.find(*old_worker);
    std::optional<WorkerId> successor = spawn_worker_into(worker.slot);
    if (!successor) {
      return report_replacements(replacements_.fail("cannot start a replacement for worker " +
                                                    std::to_string(*old_worker)));
    }
    spdlog::info("replacing worker {} (pid {}) with worker {}", *old_worker, worker.pid,
                 *successor);
    replacements_.started(*old_worker, *successor);
    emit("restart", {{"phase", "start"}, {"id", *old_worker}, {"successor", *successor}});
  } else if (std::optional<ReplacementPlan::Outcome> outcome = replacements_.take_finished()) {
    report_replacements(*outcome);
  }
}

// Logs and announces the end of a run of replacements, and answers the
// `reload --wait` clients. After a failure the old workers keep serving.
void Master::report_replacements(const ReplacementPlan::Outcome& outcome) {
  const char* what = outcome.reload ? "reload" : "restart";
  if (outcome.reload) notifier_.reload_finished(service_snapshot());
  if (outcome.failure.empty()) {
    spdlog::info("{} done: replaced workers {}", what, nlohmann::json(outcome.replaced).dump());
    emit(what, {{"phase", "done"}, {"replaced", outcome.replaced}});
  } else {
    spdlog::error("{} stopped: {}; the old workers keep serving", what, outcome.failure);
    nlohmann::json fields = {{"phase", "failed"}, {"error", outcome.failure}};
    if (outcome.interrupted) fields["id"] = *outcome.interrupted;
    emit(what, std::move(fields));
  }
  nlohmann::json reply =
      outcome.failure.empty()
          ? nlohmann::json{{proto::reply::kOk, true}, {proto::reply::kReloaded, outcome.replaced}}
          : error_reply(outcome.failure);
  for (ControlServer::ClientId client : std::exchange(reload_waiters_, {})) {
    control_->send(client, reply);
  }
}

// Queues `workers` for replacement, one slot at a time; false if a reload
// is already running.
bool Master::start_reload(const std::vector<WorkerId>& workers) {
  if (!replacements_.start_reload(workers)) return false;
  ++reloads_total_;
  emit("reload", {{"phase", "start"}, {"workers", workers}});
  notifier_.reload_started(service_snapshot());
  advance_replacements();
  return true;
}

ServiceSnapshot Master::service_snapshot() const {
  return snapshot_of(workers_, broker_->queued(), replacements_.reloading(), stop_announced_);
}

void Master::scale_to(std::size_t target) {
  std::size_t previous = workers_.target();
  std::vector<WorkerId> removed = workers_.set_target(target);
  spdlog::info("scaling from {} to {} workers", previous, target);
  for (WorkerId id : removed) {
    if (WorkerRecord* worker = workers_.find(id)) drain_worker(*worker);
  }
  emit("scale", {{"workers_target", target}, {"previous", previous}});
  manage_workers();
}

// A graceful stop starts by saying so: /readyz answers 503 from here on. With
// --shutdown-delay the master goes on accepting and serving for that long, so
// a load balancer polling /readyz takes this host out while it still answers
// (closing the listener first would race the balancer's next check); then
// drain_for_stop().
void Master::begin_stop() {
  stop_announced_ = true;
  notifier_.stopping(service_snapshot());
  emit("stop", {{"shutdown_delay_ms", config_.shutdown_delay.count()}});
  if (config_.shutdown_delay.count() > 0) {
    spdlog::info(
        "Stopping: /readyz answers 503; still serving for {} ms (--shutdown-delay), "
        "then draining",
        config_.shutdown_delay.count());
    arm_timer(shutdown_delay_event_.get(), config_.shutdown_delay);
    return;
  }
  drain_for_stop();
}

// Closes the listener and the queue, and drains every worker.
void Master::drain_for_stop() {
  if (stopping_) return;
  stopping_ = true;
  event_del(shutdown_delay_event_.get());
  broker_->stop();
  listen_fd_.reset();
  config_.worker.listen_fd = -1;
  // Logged once the listener is closed, so whoever reads it may rely on that.
  spdlog::info("Shutting down: draining {} workers (SIGKILL after {} ms)",
               workers_.workers().size(), config_.kill_timeout.count());

  for (const auto& [id, record] : workers_.workers()) drain_worker(*workers_.find(id));
  if (replacements_.in_flight() || replacements_.reloading() || !reload_waiters_.empty()) {
    report_replacements(replacements_.fail("the master is stopping"));
  }
}

void Master::force_stop() {
  if (workers_.empty()) return;
  spdlog::warn("Second stop signal: killing {} workers now", workers_.workers().size());
  for (const auto& [id, record] : workers_.workers()) ::kill(record.pid, SIGKILL);
  stop_requests_ = 1;  // one forced kill per extra signal
}

// ---- what the broker reports -----------------------------------------------

void Master::handle_message(WorkerId id, const proto::WorkerMessage& message) {
  WorkerRecord* record = workers_.find(id);
  if (record == nullptr) return;  // reaped already; its channel goes with it
  WorkerRecord& worker = *record;
  if (!worker.said_hello && !std::holds_alternative<proto::Hello>(message)) {
    replace_worker(worker, "sent '" + std::string(proto::type_name(message)) + "' before 'hello'");
    return;
  }
  worker.last_heartbeat = Clock::now();

  if (const auto* hello = std::get_if<proto::Hello>(&message)) {
    if (worker.said_hello) return replace_worker(worker, "sent 'hello' twice");
    if (hello->proto != proto::kProtocolVersion) {
      return replace_worker(worker, "speaks protocol " + std::to_string(hello->proto) +
                                        ", the master speaks " +
                                        std::to_string(proto::kProtocolVersion));
    }
    worker.said_hello = true;
    spdlog::info("Worker {} started", worker.pid);
  } else if (std::holds_alternative<proto::Ready>(message)) {
    handle_ready(worker);
  } else if (const auto* ack = std::get_if<proto::Ack>(&message)) {
    if (std::optional<Seq> unknown = broker_->acknowledge(worker.id, *ack)) {
      replace_worker(
          worker, "acknowledged connection " + std::to_string(*unknown) + " it was never handed");
    }
  } else if (const auto* capacity = std::get_if<proto::Capacity>(&message)) {
    handle_capacity(worker, *capacity);
  } else if (const auto* heartbeat = std::get_if<proto::Heartbeat>(&message)) {
    worker.stats = heartbeat->stats;
    worker.request_rate.add(worker.last_heartbeat, worker.stats.requests);
    sample_resources(worker);
    recycle_if_over_limits(worker);
  }
}

// Ready first, drain second: a successor's ready drains the worker it
// replaces, so the slot is never without a ready worker.
void Master::handle_ready(WorkerRecord& worker) {
  if (worker.state != WorkerState::kStarting) return;
  worker.state = WorkerState::kReady;
  update_eligibility(worker);
  spdlog::info("Worker {} ready (id {}, slot {})", worker.pid, worker.id, worker.slot);
  emit("ready", worker_event_fields(worker));
  if (std::optional<WorkerId> old_worker = replacements_.successor_ready(worker.id)) {
    workers_.promote(worker.id);
    if (WorkerRecord* old_record = workers_.find(*old_worker)) drain_worker(*old_record);
    if (replacements_.reloading()) {
      emit("reload", {{"phase", "progress"},
                      {"replaced", *old_worker},
                      {"by", worker.id},
                      {"remaining", replacements_.queued()}});
    }
    advance_replacements();
  }
  broker_->dispatch();
}

// A full worker is skipped: what it refused, and what arrives until it has
// room, goes to the others or waits in the queue (--queue-timeout), rather
// than bouncing between the master and a worker that can take nothing.
void Master::handle_capacity(WorkerRecord& worker, const proto::Capacity& capacity) {
  if (worker.full == capacity.full) return;
  worker.full = capacity.full;
  spdlog::debug("Worker {} {} (--max-connections {})", worker.pid,
                worker.full ? "is full" : "has room again", config_.max_connections);
  update_eligibility(worker);
  if (!worker.full && !stopping_) broker_->dispatch();
}

void Master::protocol_violation(WorkerId id, const std::string& reason) {
  if (WorkerRecord* worker = workers_.find(id)) replace_worker(*worker, reason);
}

// A worker without a channel is useless, so unless it is already on its way
// out it gets a SIGKILL deadline.
void Master::channel_closed(WorkerId id) {
  WorkerRecord* worker = workers_.find(id);
  if (worker == nullptr) return;
  worker->channel_open = false;
  if (!worker->kill_at) worker->kill_at = Clock::now() + config_.kill_timeout;
}

void Master::handed(WorkerId id, std::size_t count) {
  if (WorkerRecord* worker = workers_.find(id)) worker->connections_handed += count;
}

std::int64_t Master::worker_pid(WorkerId id) const {
  const WorkerRecord* worker = workers_.find(id);
  return worker != nullptr ? worker->pid : -1;
}

// A protocol violation: the worker cannot be trusted with connections.
void Master::replace_worker(WorkerRecord& worker, const std::string& reason) {
  spdlog::error("Worker {} {}: protocol violation, replacing it", worker.pid, reason);
  ::kill(worker.pid, SIGKILL);
  broker_->close_channel(worker.id);
}

void Master::update_eligibility(const WorkerRecord& worker) {
  broker_->set_serving(worker.id, worker.state == WorkerState::kReady && !worker.full);
}

// ---- the control socket ----------------------------------------------------

bool Master::open_control_socket(std::uint16_t port) {
  std::string path =
      config_.control_path.empty() ? default_control_path(port) : config_.control_path;
  control_ = std::make_unique<ControlServer>(
      base_.get(), [this](ControlServer::ClientId client, std::string_view line) {
        handle_control_line(client, line);
      });
  std::string error;
  if (!control_->open(path, error)) {
    spdlog::critical("cannot open the control socket: {}", error);
    control_.reset();
    return false;
  }
  spdlog::info("control socket {}", path);
  return true;
}

bool Master::open_admin_endpoint() {
  if (!config_.admin) return true;
  AdminServer::Sources sources;
  sources.metrics = [this] {
    return render_metrics(view(), workers_, Clock::now(), clock_ticks_per_second());
  };
  sources.unready_reason = [this] { return unready_reason(); };
  sources.status = [this] { return status_reply(view(), workers_, Clock::now()); };
  admin_ = std::make_unique<AdminServer>(base_.get(), std::move(sources));
  std::string error;
  if (!admin_->open(*config_.admin, error)) {
    spdlog::critical("cannot open the admin endpoint (--admin): {}", error);
    admin_.reset();
    return false;
  }
  spdlog::info("admin endpoint on http://{} (/metrics, /healthz, /readyz, /status)",
               admin_->address());
  return true;
}

// /readyz: a load balancer should send traffic only while a worker is ready
// and the master is not stopping (it flips at the start of a graceful stop,
// before the drain, so the balancer stops sending first).
std::optional<std::string> Master::unready_reason() const {
  if (stop_announced_) return "stopping";
  for (const auto& [id, worker] : workers_.workers()) {
    if (worker.state == WorkerState::kReady) return std::nullopt;
  }
  return "no worker is ready";
}

MasterView Master::view() const {
  MasterView view;
  view.pid = ::getpid();
  view.version = HERD_VERSION;
  view.started_at = started_at_;
  view.listen = listen_address_;
  view.schedule = config_.schedule == Schedule::kNone ? "none" : "round-robin";
  view.stopping = stop_announced_;
  view.reloading = replacements_.reloading();
  view.pending = broker_->queued();
  view.max_connections = config_.max_connections;
  view.connections_total = broker_->connections_total();
  view.reloads_total = reloads_total_;
  view.hung_kills_total = hung_kills_total_;
  return view;
}

void Master::handle_control_line(ControlServer::ClientId client, std::string_view line) {
  ControlDecision decision = handle_control_request(line, view(), workers_, Clock::now());
  if (!decision.reply.is_null()) control_->send(client, decision.reply);

  switch (decision.action) {
    case ControlAction::kNone:
      break;
    case ControlAction::kSubscribe:
      control_->subscribe(client);
      break;
    case ControlAction::kRestart:
      replacements_.restart(decision.workers.front());
      advance_replacements();
      break;
    case ControlAction::kReload:
      if (decision.reply.is_null()) {
        reload_waiters_.push_back(client);
        control_->wait_without_timeout(client);  // a reload may take longer than the idle limit
      }
      start_reload(decision.workers);
      break;
    case ControlAction::kScale:
      scale_to(decision.target);
      break;
    case ControlAction::kStop:
      spdlog::info("stop requested on the control socket");
      ++stop_requests_;
      supervise();
      break;
  }
}

void Master::emit(const std::string& event, nlohmann::json fields) {
  if (!control_) return;
  fields["event"] = event;
  fields["time"] = unix_time_ms();
  control_->publish(fields);
}

nlohmann::json Master::worker_event_fields(const WorkerRecord& worker) const {
  return {{"id", worker.id}, {"slot", worker.slot}, {"pid", worker.pid}};
}

// RSS and CPU from /proc, once per heartbeat: cheap, and as fresh as the
// request counters they are shown beside.
void Master::sample_resources(WorkerRecord& worker) {
  std::optional<ProcSample> sample = read_proc_sample(worker.pid);
  if (!sample) return;
  TimePoint now = Clock::now();
  if (worker.cpu_ticks != 0 && sample->cpu_ticks >= worker.cpu_ticks) {
    worker.cpu_pct =
        cpu_percent(sample->cpu_ticks - worker.cpu_ticks,
                    std::chrono::duration_cast<Milliseconds>(now - worker.cpu_sampled_at),
                    clock_ticks_per_second());
  }
  worker.cpu_ticks = sample->cpu_ticks;
  worker.cpu_sampled_at = now;
  worker.rss_kb = sample->rss_kb;
}

}  // namespace herd
