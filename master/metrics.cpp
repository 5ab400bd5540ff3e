#include "master/metrics.h"

#include <spdlog/fmt/fmt.h>

#include <array>
#include <chrono>
#include <functional>
#include <iterator>
#include <utility>
#include <vector>

namespace herd {
namespace {

using Labels = std::vector<std::pair<std::string_view, std::string>>;

// Writes one metric family at a time: its HELP and TYPE lines, then its
// samples, so every family's lines stay together as the format requires.
class Exposition {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(std::back_inserter(text_), "# HELP {} {}\n# TYPE {} {}\n", name, help, name,
                   type);
  }

  void sample(std::string_view name, const Labels& labels, double value) {
    text_ += name;
    if (!labels.empty()) {
      text_ += '{';
      for (std::size_t i = 0; i < labels.size(); ++i) {
        if (i > 0) text_ += ',';
        fmt::format_to(std::back_inserter(text_), "{}=\"{}\"", labels[i].first,
                       escape_label_value(labels[i].second));
      }
      text_ += '}';
    }
    // {} is the shortest text that reads back as the same double.
    fmt::format_to(std::back_inserter(text_), " {}\n", value);
  }

  // _bucket (cumulative, ending with +Inf), _sum and _count of a latency
  // histogram, in seconds.
  void histogram(std::string_view name, const Labels& labels, const LatencyHistogram& latency) {
    std::string bucket = std::string(name) + "_bucket";
    for (std::uint64_t bound : kLatencyBucketsUs) {
      Labels with_le = labels;
      with_le.emplace_back("le", fmt::format("{}", static_cast<double>(bound) / 1e6));
      sample(bucket, with_le, static_cast<double>(latency.count_up_to(bound)));
    }
    Labels with_inf = labels;
    with_inf.emplace_back("le", "+Inf");
    sample(bucket, with_inf, static_cast<double>(latency.count()));
    sample(std::string(name) + "_sum", labels, static_cast<double>(latency.sum()) / 1e6);
    sample(std::string(name) + "_count", labels, static_cast<double>(latency.count()));
  }

  std::string take() { return std::move(text_); }

 private:
  std::string text_;
};

double seconds_between(TimePoint from, TimePoint to) {
  return std::chrono::duration<double>(to - from).count();
}

constexpr std::array<std::pair<const char*, std::uint64_t proto::ResponseCounts::*>, 4>
    kStatusClasses = {{{"2xx", &proto::ResponseCounts::status_2xx},
                       {"3xx", &proto::ResponseCounts::status_3xx},
                       {"4xx", &proto::ResponseCounts::status_4xx},
                       {"5xx", &proto::ResponseCounts::status_5xx}}};

constexpr std::array<WorkerState, 4> kLiveStates = {WorkerState::kStarting, WorkerState::kReady,
                                                    WorkerState::kDraining, WorkerState::kHung};

}  // namespace

std::string escape_label_value(std::string_view value) {
  std::string escaped;
  escaped.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      escaped += "\\\\";
    } else if (c == '"') {
      escaped += "\\\"";
    } else if (c == '\n') {
      escaped += "\\n";
    } else {
      escaped += c;
    }
  }
  return escaped;
}

std::string render_metrics(const MasterView& master, const WorkerTable& workers, TimePoint now,
                           long ticks_per_second) {
  Exposition out;

  // ---- the master
  out.family("herd_build_info", "gauge", "herd's version, as a label; always 1.");
  out.sample("herd_build_info", {{"version", master.version}}, 1);
  out.family("herd_uptime_seconds", "gauge", "Seconds since the master started.");
  out.sample("herd_uptime_seconds", {}, seconds_between(master.started_at, now));
  out.family("herd_stopping", "gauge", "1 once a graceful stop has begun.");
  out.sample("herd_stopping", {}, master.stopping ? 1 : 0);
  out.family("herd_workers_target", "gauge", "Worker slots the master keeps filled.");
  out.sample("herd_workers_target", {}, static_cast<double>(workers.target()));
  out.family("herd_workers", "gauge", "Workers in each state.");
  for (WorkerState state : kLiveStates) {
    std::size_t count = 0;
    for (const auto& [id, record] : workers.workers()) count += record.state == state ? 1 : 0;
    out.sample("herd_workers", {{"state", std::string(to_string(state))}},
               static_cast<double>(count));
  }
  out.family("herd_pending_connections", "gauge",
             "Connections accepted by the master and waiting for a worker.");
  out.sample("herd_pending_connections", {}, static_cast<double>(master.pending));
  out.family("herd_connections_accepted_total", "counter",
             "Connections the master accepted (0 with --schedule none: the workers accept).");
  out.sample("herd_connections_accepted_total", {}, static_cast<double>(master.connections_total));
  out.family("herd_reloads_total", "counter", "Rolling reloads started.");
  out.sample("herd_reloads_total", {}, static_cast<double>(master.reloads_total));
  out.family("herd_hung_kills_total", "counter",
             "Workers stopped because they missed heartbeats or never became ready.");
  out.sample("herd_hung_kills_total", {}, static_cast<double>(master.hung_kills_total));
  out.family("herd_restarts_total", "counter", "Workers started to replace another, all slots.");
  out.sample("herd_restarts_total", {}, static_cast<double>(workers.restarts_total()));

  // ---- every worker the master has had, exited ones included
  proto::WorkerStats total = workers.retired_stats();
  for (const auto& [id, record] : workers.workers()) total.add_cumulative(record.stats);
  out.family("herd_requests_total", "counter",
             "Requests answered by all workers, exited ones included, by status class.");
  for (const auto& [name, field] : kStatusClasses) {
    out.sample("herd_requests_total", {{"class", name}},
               static_cast<double>(total.responses.*field));
  }
  out.family("herd_request_duration_seconds", "histogram",
             "Request latency over all workers, from the first byte read to the response queued.");
  out.histogram("herd_request_duration_seconds", {}, total.latency_us);
  out.family("herd_received_bytes_total", "counter", "Bytes read from clients by all workers.");
  out.sample("herd_received_bytes_total", {}, static_cast<double>(total.bytes_in));
  out.family("herd_sent_bytes_total", "counter", "Bytes written to clients by all workers.");
  out.sample("herd_sent_bytes_total", {}, static_cast<double>(total.bytes_out));

  // ---- each live worker, labelled by slot and id
  auto each_worker = [&](const std::function<void(const WorkerRecord&, const Labels&)>& emit) {
    for (const auto& [id, record] : workers.workers()) {
      emit(record, {{"slot", std::to_string(record.slot)}, {"id", std::to_string(id)}});
    }
  };
  out.family("herd_worker_state", "gauge", "1 for the worker's current state.");
  each_worker([&](const WorkerRecord& record, const Labels& labels) {
    Labels with_state = labels;
    with_state.emplace_back("state", std::string(to_string(record.state)));
    out.sample("herd_worker_state", with_state, 1);
  });
  out.family("herd_worker_requests_total", "counter",
             "Requests the worker answered, by status class (as of its last heartbeat).");
  each_worker([&](const WorkerRecord& record, const Labels& labels) {
    for (const auto& [name, field] : kStatusClasses) {
      Labels with_class = labels;
      with_class.emplace_back("class", name);
      out.sample("herd_worker_requests_total", with_class,
                 static_cast<double>(record.stats.responses.*field));
    }
  });
  out.family("herd_worker_request_duration_seconds", "histogram",
             "The worker's request latency, from the first byte read to the response queued.");
  each_worker([&](const WorkerRecord& record, const Labels& labels) {
    out.histogram("herd_worker_request_duration_seconds", labels, record.stats.latency_us);
  });
  out.family("herd_worker_active_connections", "gauge", "Client connections the worker has open.");
  each_worker([&](const WorkerRecord& record, const Labels& labels) {
    out.sample("herd_worker_active_connections", labels,
               static_cast<double>(record.stats.active_connections));
  });
  out.family("herd_worker_full", "gauge",
             "1 while the worker is at --max-connections with none idle: it is handed nothing.");
  each_worker([&](const WorkerRecord& record, const Labels& labels) {
    out.sample("herd_worker_full", labels, record.full ? 1 : 0);
  });
  out.family("herd_worker_connections_handed_total", "counter",
             "Connections the master handed the worker.");
  each_worker([&](const WorkerRecord& record, const Labels& labels) {
    out.sample("herd_worker_connections_handed_total", labels,
               static_cast<double>(record.connections_handed));
  });
  out.family("herd_worker_restarts", "gauge", "Workers the slot had before this one.");
  each_worker([&](const WorkerRecord& record, const Labels& labels) {
    out.sample("herd_worker_restarts", labels, static_cast<double>(workers.restarts(record.slot)));
  });
  out.family("herd_worker_resident_memory_bytes", "gauge", "The worker's RSS, from /proc.");
  each_worker([&](const WorkerRecord& record, const Labels& labels) {
    out.sample("herd_worker_resident_memory_bytes", labels,
               static_cast<double>(record.rss_kb) * 1024);
  });
  out.family("herd_worker_cpu_seconds_total", "counter",
             "The worker's user + system CPU time, from /proc (sampled at each heartbeat).");
  each_worker([&](const WorkerRecord& record, const Labels& labels) {
    out.sample("herd_worker_cpu_seconds_total", labels,
               ticks_per_second > 0
                   ? static_cast<double>(record.cpu_ticks) / static_cast<double>(ticks_per_second)
                   : 0);
  });
  return out.take();
}

}  // namespace herd
