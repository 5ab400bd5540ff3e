// Master: the herd process. Supervises the workers: reap the dead, kill the
// unresponsive, keep the worker count, replace and reload, stop gracefully;
// and answers the control socket. The connection path (accept, hand-off,
// acks) is the Broker's, which reads the channels and passes each worker's
// messages here. This file is the I/O shell; the decisions live in
// WorkerTable, ReplacementPlan and the control handlers.
#pragma once

#include <spdlog/common.h>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/event_loop.h"
#include "common/fd_passing.h"
#include "common/log.h"
#include "common/unique_fd.h"
#include "master/admin_server.h"
#include "master/broker.h"
#include "master/control_handlers.h"
#include "master/control_server.h"
#include "master/notifier.h"
#include "master/output_capture.h"
#include "master/replacement_plan.h"
#include "master/worker_process.h"
#include "master/worker_table.h"

namespace herd {

struct MasterConfig {
  std::string host = "0.0.0.0";
  std::uint16_t port = 3000;
  // Socket activation (LISTEN_FDS): listen on this instead of host:port.
  UniqueFd inherited_listener;
  std::size_t workers = 1;
  WorkerCommand worker;
  std::size_t handoff_window = 16;
  // Connections each worker holds at most (HERD_MAX_CONNECTIONS); main()
  // turns 0 into the open-descriptor limit less a reserve.
  std::size_t max_connections = 0;
  // kRoundRobin: the master accepts and hands connections out (Node's
  // SCHED_RR). kNone: the workers accept from the shared listening socket
  // themselves (Node's SCHED_NONE); the master only supervises.
  Schedule schedule = Schedule::kRoundRobin;
  Milliseconds heartbeat_interval{1000};
  Milliseconds heartbeat_timeout{10000};
  Milliseconds kill_timeout{10000};
  // A graceful stop first turns /readyz to 503 and keeps serving this long,
  // so a load balancer polling it takes the host out before the drain.
  Milliseconds shutdown_delay{0};
  std::string control_path;           // empty: default_control_path(bound port)
  std::optional<AdminAddress> admin;  // --admin: the HTTP endpoint, off when empty
  int backlog = 4096;
  RespawnBackoff backoff;             // `young` is --min-uptime
  Milliseconds queue_timeout{30000};  // longest a connection waits for a worker
  std::uint64_t max_requests = 0;     // recycle a worker after this many (0 = never)
  std::uint64_t max_requests_jitter = 0;
  std::uint64_t max_rss_kb = 0;  // recycle a worker above this RSS (0 = never)
  spdlog::level::level_enum log_level = spdlog::level::info;
  LogFormat log_format = LogFormat::kText;
};

class Master final : private BrokerHost {
 public:
  explicit Master(MasterConfig config);
  ~Master();
  Master(const Master&) = delete;
  Master& operator=(const Master&) = delete;

  // Listens, starts the workers and runs until a graceful stop completes.
  // Returns the process exit code.
  int run();

 private:
  static void on_signal(evutil_socket_t signal, short what, void* arg);
  static void on_tick(evutil_socket_t fd, short what, void* arg);
  static void on_shutdown_delay_over(evutil_socket_t fd, short what, void* arg);

  bool open_listener();
  void install_signal_handlers();

  // Supervision, in the order one pass runs it.
  void supervise();
  void handle_signals();
  void reopen_log();
  void reap_workers();
  void murder_unresponsive_workers();
  void manage_workers();
  void advance_replacements();
  void finish_stop_when_idle();

  std::optional<WorkerId> spawn_worker_into(std::size_t slot);
  void drain_worker(WorkerRecord& worker);
  void begin_stop();
  void drain_for_stop();
  void force_stop();
  void scale_to(std::size_t target);
  bool start_reload(const std::vector<WorkerId>& workers);
  void report_replacements(const ReplacementPlan::Outcome& outcome);
  ServiceSnapshot service_snapshot() const;

  // The control socket and the admin endpoint.
  bool open_control_socket(std::uint16_t port);
  bool open_admin_endpoint();
  std::optional<std::string> unready_reason() const;
  MasterView view() const;
  void handle_control_line(ControlServer::ClientId client, std::string_view line);
  void emit(const std::string& event, nlohmann::json fields = nlohmann::json::object());
  nlohmann::json worker_event_fields(const WorkerRecord& worker) const;
  void sample_resources(WorkerRecord& worker);

  // What the broker reports (BrokerHost).
  void handle_message(WorkerId id, const proto::WorkerMessage& message) override;
  void protocol_violation(WorkerId id, const std::string& reason) override;
  void channel_closed(WorkerId id) override;
  void handed(WorkerId id, std::size_t count) override;
  std::int64_t worker_pid(WorkerId id) const override;

  void handle_ready(WorkerRecord& worker);
  void handle_capacity(WorkerRecord& worker, const proto::Capacity& capacity);
  void replace_worker(WorkerRecord& worker, const std::string& reason);
  void update_eligibility(const WorkerRecord& worker);
  void recycle_if_over_limits(WorkerRecord& worker);

  MasterConfig config_;
  EventBasePtr base_;
  std::string listen_address_;  // "host:port" as bound
  std::unique_ptr<ControlServer> control_;
  std::unique_ptr<AdminServer> admin_;
  UniqueFd listen_fd_;
  EventPtr tick_event_;
  EventPtr shutdown_delay_event_;
  std::vector<EventPtr> signal_events_;
  Notifier notifier_;  // systemd's Type=notify; a no-op without NOTIFY_SOCKET

  // Per worker: its record here, its channel in the broker, its output
  // pipes in output_; spawn_worker_into() adds to all three, the reap
  // removes from all three.
  WorkerTable workers_;
  SocketSender sender_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<OutputCapture> output_;  // the workers' stdout and stderr
  std::uint64_t reloads_total_ = 0;
  std::uint64_t hung_kills_total_ = 0;

  // Intent recorded by signal callbacks, acted on by supervise().
  bool child_exited_ = false;
  unsigned stop_requests_ = 0;
  bool reload_requested_ = false;
  bool reopen_log_requested_ = false;  // SIGUSR1

  // A graceful stop has two phases. Announced: /readyz answers 503 and
  // nothing else changes, for --shutdown-delay. Stopping: the listener is
  // closed and every worker drains. stopping_ implies stop_announced_.
  bool stop_announced_ = false;
  bool stopping_ = false;
  TimePoint started_at_;
  std::mt19937_64 random_;  // for --max-requests-jitter

  // Restarts, reloads and recycling: one worker replaced at a time, by a
  // successor that must be ready before the old worker is drained.
  ReplacementPlan replacements_;
  std::vector<ControlServer::ClientId> reload_waiters_;  // `reload` with wait
};

}  // namespace herd
