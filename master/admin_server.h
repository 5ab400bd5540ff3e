// AdminServer: the master's optional HTTP endpoint (--admin HOST:PORT) for
// monitoring and load balancers, served by libevent's evhttp on the master's
// own loop. Read-only:
//   GET /metrics  Prometheus text exposition (master/metrics.h)
//   GET /healthz  200 while the master's loop runs
//   GET /readyz   200 when a worker is ready and the master is not stopping, else 503
//   GET /status   the control socket's `status` reply
// Anything else is 404; a method other than GET or HEAD is 405.
#pragma once

#include <event2/event.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

struct evhttp;
struct evhttp_request;

namespace herd {

struct AdminAddress {
  std::string host;  // numeric IPv4 or IPv6, without brackets
  std::uint16_t port = 0;
};

// "127.0.0.1:9090", "[::1]:9090" or "localhost:9090"; nothing (and `error`)
// for anything else. Port 0 picks a free one.
std::optional<AdminAddress> parse_admin_address(const std::string& text, std::string& error);

class AdminServer {
 public:
  // What the master provides, asked afresh for each request.
  struct Sources {
    std::function<std::string()> metrics;
    std::function<std::optional<std::string>()> unready_reason;  // nothing when ready
    std::function<nlohmann::json()> status;
  };

  AdminServer(event_base* base, Sources sources);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds and starts serving; false with `error` set if it cannot.
  bool open(const AdminAddress& address, std::string& error);
  // "host:port" as bound.
  const std::string& address() const { return bound_; }

 private:
  static void on_request(evhttp_request* request, void* arg);
  void handle(evhttp_request* request);

  Sources sources_;
  std::unique_ptr<evhttp, void (*)(evhttp*)> http_;
  std::string bound_;
};

}  // namespace herd
