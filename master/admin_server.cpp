#include "master/admin_server.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <spdlog/spdlog.h>

#include <string_view>

#include "common/listen_socket.h"

namespace herd {
namespace {

// The endpoint answers small GETs; anything bigger is not for it.
constexpr ev_ssize_t kMaxHeadersBytes = 8 * 1024;
constexpr ev_ssize_t kMaxBodyBytes = 1024;
// A scraper that stalls mid-request is dropped after this long.
constexpr int kRequestTimeoutSeconds = 10;
constexpr int kBacklog = 64;

void reply(evhttp_request* request, int code, const char* reason, std::string_view content_type,
           std::string_view body) {
  evkeyvalq* headers = evhttp_request_get_output_headers(request);
  evhttp_add_header(headers, "Content-Type", std::string(content_type).c_str());
  evhttp_add_header(headers, "Cache-Control", "no-store");
  evbuffer* buffer = evbuffer_new();
  if (buffer == nullptr) {
    evhttp_send_error(request, HTTP_INTERNAL, nullptr);
    return;
  }
  evbuffer_add(buffer, body.data(), body.size());
  evhttp_send_reply(request, code, reason, buffer);
  evbuffer_free(buffer);
}

}  // namespace

std::optional<AdminAddress> parse_admin_address(const std::string& text, std::string& error) {
  std::unique_ptr<evhttp_uri, void (*)(evhttp_uri*)> uri(
      evhttp_uri_parse(("http://" + text).c_str()), evhttp_uri_free);
  const char* host = uri ? evhttp_uri_get_host(uri.get()) : nullptr;
  int port = uri ? evhttp_uri_get_port(uri.get()) : -1;
  const char* path = uri ? evhttp_uri_get_path(uri.get()) : nullptr;
  if (host == nullptr || port < 0 || port > 65535 || (path != nullptr && *path != '\0') ||
      evhttp_uri_get_userinfo(uri.get()) != nullptr || evhttp_uri_get_query(uri.get()) != nullptr) {
    error = "'" + text + "' is not HOST:PORT (e.g. 127.0.0.1:9090 or [::1]:9090)";
    return std::nullopt;
  }
  AdminAddress address{host, static_cast<std::uint16_t>(port)};
  // evhttp keeps an IPv6 literal's brackets.
  if (address.host.size() > 2 && address.host.front() == '[' && address.host.back() == ']') {
    address.host = address.host.substr(1, address.host.size() - 2);
  }
  if (address.host == "localhost") address.host = "127.0.0.1";
  if (!is_numeric_address(address.host)) {
    error = "'" + address.host + "' is not a numeric IPv4 or IPv6 address";
    return std::nullopt;
  }
  return address;
}

AdminServer::AdminServer(event_base* base, Sources sources)
    : sources_(std::move(sources)), http_(evhttp_new(base), evhttp_free) {}

AdminServer::~AdminServer() = default;

bool AdminServer::open(const AdminAddress& address, std::string& error) {
  if (!http_) {
    error = "evhttp_new() failed";
    return false;
  }
  ListenResult listener = open_listen_socket(address.host, address.port, kBacklog);
  if (!listener.fd) {
    error = listener.error;
    return false;
  }
  int fd = listener.fd.get();
  if (evhttp_accept_socket_with_handle(http_.get(), fd) == nullptr) {
    error = "evhttp cannot accept on " + format_host_port(address.host, listener.port);
    return false;
  }
  (void)listener.fd.release();  // evhttp owns it now and closes it when freed
  evhttp_set_max_headers_size(http_.get(), kMaxHeadersBytes);
  evhttp_set_max_body_size(http_.get(), kMaxBodyBytes);
  evhttp_set_timeout(http_.get(), kRequestTimeoutSeconds);
  // Every method reaches handle(), which answers 405 itself (evhttp's own
  // refusal would be 501 without an Allow header).
  evhttp_set_allowed_methods(http_.get(), EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                              EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                              EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                              EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
  evhttp_set_gencb(http_.get(), on_request, this);
  bound_ = format_host_port(address.host, listener.port);
  return true;
}

void AdminServer::on_request(evhttp_request* request, void* arg) {
  static_cast<AdminServer*>(arg)->handle(request);
}

void AdminServer::handle(evhttp_request* request) {
  evhttp_cmd_type method = evhttp_request_get_command(request);
  if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) {
    evhttp_add_header(evhttp_request_get_output_headers(request), "Allow", "GET, HEAD");
    reply(request, 405, "Method Not Allowed", "text/plain; charset=utf-8",
          "only GET and HEAD are served here\n");
    return;
  }
  const evhttp_uri* uri = evhttp_request_get_evhttp_uri(request);
  const char* raw_path = uri == nullptr ? nullptr : evhttp_uri_get_path(uri);
  std::string_view path = raw_path == nullptr ? "" : raw_path;

  if (path == "/metrics") {
    reply(request, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", sources_.metrics());
  } else if (path == "/healthz") {
    reply(request, 200, "OK", "text/plain; charset=utf-8", "ok\n");
  } else if (path == "/readyz") {
    if (std::optional<std::string> reason = sources_.unready_reason()) {
      reply(request, 503, "Service Unavailable", "text/plain; charset=utf-8",
            "not ready: " + *reason + "\n");
    } else {
      reply(request, 200, "OK", "text/plain; charset=utf-8", "ready\n");
    }
  } else if (path == "/status") {
    reply(request, 200, "OK", "application/json", sources_.status().dump() + "\n");
  } else {
    reply(request, 404, "Not Found", "text/plain; charset=utf-8",
          "not found; try /metrics, /healthz, /readyz or /status\n");
  }
}

}  // namespace herd
