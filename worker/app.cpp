#include "herd/app.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>

#include "worker/exchange.h"
#include "worker/http_session.h"

namespace herd {
namespace {

constexpr std::string_view kHtml = "text/html; charset=utf-8";
constexpr std::string_view kJson = "application/json; charset=utf-8";
constexpr std::string_view kText = "text/plain; charset=utf-8";

char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return ascii_lower(x) == ascii_lower(y);
         });
}

// RFC 9110 5.6.2 token characters.
bool is_token(std::string_view name) {
  constexpr std::string_view kSymbols = "!#$%&'*+-.^_`|~";
  return !name.empty() && std::all_of(name.begin(), name.end(), [&](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           kSymbols.find(c) != std::string_view::npos;
  });
}

void check_header(std::string_view name, std::string_view value) {
  if (!is_token(name)) {
    throw std::invalid_argument("header name '" + std::string(name) + "' is not an HTTP token");
  }
  if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
    throw std::invalid_argument("header '" + std::string(name) + "' value holds CR, LF or NUL");
  }
  for (std::string_view owned : {"Content-Length", "Transfer-Encoding", "Date"}) {
    if (iequals(name, owned)) {
      throw std::invalid_argument("header '" + std::string(owned) + "' is set by herd");
    }
  }
}

const std::string* find_header(const Exchange& exchange, std::string_view name) {
  for (const auto& [key, value] : exchange.headers) {
    if (iequals(key, name)) return &value;
  }
  return nullptr;
}

// Ends the exchange: its response may now be written, in its turn.
void finish(Exchange& exchange, std::string_view default_type) {
  // A static string: no allocation for the common case.
  if (!default_type.empty() && find_header(exchange, "Content-Type") == nullptr) {
    exchange.default_type = default_type;
  }
  exchange.sent = true;
  if (exchange.session != nullptr) exchange.session->response_ready(exchange);
}

// The response must not be sent yet (Express's ERR_HTTP_HEADERS_SENT). An
// aborted exchange (the client left) takes changes and sends silently; the
// handler learns it from aborted().
bool ready_to_change(Exchange& exchange) {
  if (exchange.aborted) return false;
  if (exchange.sent) throw std::logic_error("response already sent");
  return true;
}

void remove_header(Exchange& exchange, std::string_view name) {
  auto& headers = exchange.headers;
  headers.erase(std::remove_if(headers.begin(), headers.end(),
                               [&](const auto& header) { return iequals(header.first, name); }),
                headers.end());
}

// Headers set so far (CORS, say) stay; the type is the error's.
void clear_content_type(Exchange& exchange) {
  remove_header(exchange, "Content-Type");
  exchange.default_type = {};
}

void send_text_error(Exchange& exchange, unsigned status, std::string_view message) {
  exchange.status = status;
  clear_content_type(exchange);
  exchange.body = message;
  finish(exchange, kText);
}

std::string describe(const Exchange& exchange) {
  return std::string(exchange.message.method_string()) + " " + std::string(exchange.path);
}

}  // namespace

// ---- handles ---------------------------------------------------------------

ExchangeHandle::ExchangeHandle(Exchange* exchange) : exchange_(exchange) {
  ++exchange_->handles;
}

ExchangeHandle::ExchangeHandle(const ExchangeHandle& other) : exchange_(other.exchange_) {
  ++exchange_->handles;
}

ExchangeHandle& ExchangeHandle::operator=(const ExchangeHandle& other) {
  ExchangeHandle copy(other);
  std::swap(exchange_, copy.exchange_);
  return *this;  // `copy` lets go of the old exchange
}

ExchangeHandle::~ExchangeHandle() {
  Exchange& exchange = *exchange_;
  if (--exchange.handles > 0) return;
  if (!exchange.sent && !exchange.aborted) {
    // Nothing can answer it any more: answer rather than hang the client.
    spdlog::error("{}: every handle on the response was dropped without sending it; answered 500",
                  describe(exchange));
    ++exchange.handles;  // keep it alive through finish()
    send_text_error(exchange, 500, "Internal Server Error");
    --exchange.handles;
  }
  release_exchange(exchange);
}

// ---- Request ---------------------------------------------------------------

std::string_view Request::method() const {
  return exchange_->message.method_string();
}
std::string_view Request::url() const {
  return exchange_->message.target();
}
std::string_view Request::path() const {
  return exchange_->path;
}
unsigned Request::version() const {
  return exchange_->message.version();
}

std::string_view Request::param(std::string_view name) const {
  auto found = exchange_->params.find(name);
  return found == exchange_->params.end() ? std::string_view() : std::string_view(found->second);
}

const RouteParams& Request::params() const {
  return exchange_->params;
}

const QueryParams& Request::query_params() const {
  if (!exchange_->query) {
    std::string_view target = exchange_->message.target();
    std::size_t mark = target.find('?');
    exchange_->query =
        parse_query(mark == std::string_view::npos ? std::string_view() : target.substr(mark));
  }
  return *exchange_->query;
}

std::optional<std::string_view> Request::query(std::string_view name) const {
  for (const auto& [key, value] : query_params()) {
    if (key == name) return std::string_view(value);
  }
  return std::nullopt;
}

std::optional<std::string_view> Request::header(std::string_view name) const {
  auto found = exchange_->message.find(name);  // Beast compares case-insensitively
  if (found == exchange_->message.end()) return std::nullopt;
  return found->value();
}

std::vector<std::pair<std::string_view, std::string_view>> Request::headers() const {
  std::vector<std::pair<std::string_view, std::string_view>> all;
  for (const auto& field : exchange_->message) all.emplace_back(field.name_string(), field.value());
  return all;
}

std::string_view Request::body() const {
  return exchange_->message.body();
}

nlohmann::json Request::json() const {
  try {
    return nlohmann::json::parse(body());
  } catch (const nlohmann::json::parse_error& error) {
    throw HttpError(400, std::string("invalid JSON body: ") + error.what());
  }
}

nlohmann::json& Request::locals() {
  return exchange_->locals;
}

// ---- Response --------------------------------------------------------------

Response& Response::status(unsigned code) {
  if (code < 200 || code > 999) {
    throw std::invalid_argument("status " + std::to_string(code) + " is outside 200-999");
  }
  if (ready_to_change(*exchange_)) exchange_->status = code;
  return *this;
}

Response& Response::set(std::string_view name, std::string_view value) {
  check_header(name, value);
  if (!ready_to_change(*exchange_)) return *this;
  remove_header(*exchange_, name);
  return append(name, value);
}

Response& Response::append(std::string_view name, std::string_view value) {
  check_header(name, value);
  if (!ready_to_change(*exchange_)) return *this;
  if (iequals(name, "Connection")) {
    // The runtime writes the Connection header; the app may only ask to close.
    if (!iequals(value, "close")) {
      throw std::invalid_argument("header 'Connection' may only be set to 'close'");
    }
    exchange_->close_after = true;
    return *this;
  }
  exchange_->headers.emplace_back(name, value);
  return *this;
}

Response& Response::type(std::string_view content_type) {
  return set("Content-Type", content_type);
}

std::optional<std::string_view> Response::get(std::string_view name) const {
  if (iequals(name, "Connection") && exchange_->close_after) return "close";
  const std::string* value = find_header(*exchange_, name);
  if (value == nullptr && iequals(name, "Content-Type") && !exchange_->default_type.empty()) {
    return exchange_->default_type;
  }
  if (value == nullptr) return std::nullopt;
  return std::string_view(*value);
}

void Response::send(std::string body) {
  if (!ready_to_change(*exchange_)) return;
  exchange_->body = std::move(body);
  finish(*exchange_, kHtml);
}

void Response::json(const nlohmann::json& value) {
  if (!ready_to_change(*exchange_)) return;
  // Invalid UTF-8 in a string becomes U+FFFD rather than an exception.
  exchange_->body = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  finish(*exchange_, kJson);
}

void Response::redirect(std::string_view url, unsigned code) {
  if (code < 300 || code > 399) {
    throw std::invalid_argument("redirect status " + std::to_string(code) + " is not 3xx");
  }
  if (!ready_to_change(*exchange_)) return;
  status(code);
  set("Location", url);
  // Express's plain-text redirect body.
  exchange_->body = std::string(reason_phrase(code)) + ". Redirecting to " + std::string(url);
  finish(*exchange_, kText);
}

void Response::send_status(unsigned code) {
  if (!ready_to_change(*exchange_)) return;
  status(code);
  exchange_->body = reason_phrase(code);
  finish(*exchange_, kText);
}

void Response::end() {
  if (!ready_to_change(*exchange_)) return;
  exchange_->body.clear();
  finish(*exchange_, {});
}

bool Response::sent() const {
  return exchange_->sent || exchange_->aborted;
}
bool Response::aborted() const {
  return exchange_->aborted;
}

void Response::on_abort(std::function<void()> callback) {
  if (exchange_->aborted) {
    callback();
    return;
  }
  exchange_->on_abort = std::move(callback);
}

// ---- Next ------------------------------------------------------------------

Next::Next(Exchange* exchange, std::size_t position)
    : ExchangeHandle(exchange), position_(position) {}

void Next::operator()() const {
  Exchange& exchange = *exchange_;
  if (exchange.aborted || exchange.app == nullptr) return;
  if (exchange.next_layer != position_) {
    spdlog::error("{}: next() called more than once by one handler; ignored", describe(exchange));
    return;
  }
  exchange.app->resume(exchange, position_);
}

// ---- App -------------------------------------------------------------------

App::App(AppOptions options) : options_(options) {}

App& App::add_route(std::string_view method, std::string_view pattern, Handler handler) {
  Layer layer;
  layer.is_route = true;
  layer.route = Router(options_.routing);
  layer.route.add(method, pattern, 0);
  layer.handler = std::move(handler);
  layers_.push_back(std::move(layer));
  return *this;
}

App& App::use(Handler middleware) {
  return use("", std::move(middleware));
}

App& App::use(std::string_view prefix, Handler middleware) {
  if (!prefix.empty() && prefix.front() != '/') {
    throw std::invalid_argument("middleware prefix '" + std::string(prefix) +
                                "' must start with '/'");
  }
  while (!prefix.empty() && prefix.back() == '/') prefix.remove_suffix(1);
  Layer layer;
  layer.prefix = prefix;
  layer.handler = std::move(middleware);
  layers_.push_back(std::move(layer));
  return *this;
}

void App::dispatch(Exchange& exchange) const {
  exchange.app = this;  // for Next, which resumes here
  resume(exchange, 0);
}

void App::resume(Exchange& exchange, std::size_t position) const {
  for (std::size_t index = position; index < layers_.size(); ++index) {
    if (!layer_matches(layers_[index], exchange)) continue;
    exchange.next_layer = index + 1;
    return run_layer(layers_[index], exchange, index + 1);
  }
  exchange.next_layer = layers_.size() + 1;  // a later next() is a repeat
  if (exchange.sent || exchange.aborted) return;
  // Express's answer for an unrouted request, minus its HTML page frame.
  std::string_view method = exchange.head ? "GET" : exchange.message.method_string();
  exchange.status = 404;
  exchange.body = "Cannot " + html_escape(method) + " " + html_escape(exchange.path);
  finish(exchange, kHtml);
}

bool App::layer_matches(const Layer& layer, Exchange& exchange) const {
  if (layer.is_route) {
    MatchResult match = layer.route.match(exchange.message.method_string(), exchange.path);
    if (!match.handler) return false;
    exchange.params = std::move(match.params);
    return true;
  }
  std::string_view path = exchange.path;
  if (layer.prefix.empty()) return true;
  if (path.size() < layer.prefix.size()) return false;
  bool boundary = path.size() == layer.prefix.size() || path[layer.prefix.size()] == '/';
  bool case_sensitive = options_.routing.case_sensitive;
  std::string_view head = path.substr(0, layer.prefix.size());
  return boundary && (case_sensitive ? head == layer.prefix : iequals(head, layer.prefix));
}

void App::run_layer(const Layer& layer, Exchange& exchange, std::size_t next_position) const {
  Request request(&exchange);
  Response response(&exchange);
  Next next(&exchange, next_position);
  try {
    layer.handler(request, response, next);
    return;
  } catch (const HttpError& error) {
    if (!response.sent()) {
      spdlog::debug("{}: answered {}: {}", describe(exchange), error.status(), error.what());
      unsigned status = error.status() >= 200 && error.status() <= 999 ? error.status() : 500;
      return answer_error(exchange, request, response, status, error.what());
    }
    spdlog::error("{}: handler threw HttpError {} after responding: {}", describe(exchange),
                  error.status(), error.what());
  } catch (const std::exception& error) {
    spdlog::error("{}: handler threw: {}", describe(exchange), error.what());
  } catch (...) {
    spdlog::error("{}: handler threw a non-exception", describe(exchange));
  }
  if (!response.sent()) answer_error(exchange, request, response, 500, "Internal Server Error");
}

App& App::on_error(ErrorHandler handler) {
  error_handler_ = std::move(handler);
  return *this;
}

void App::answer_error(Exchange& exchange, Request& request, Response& response, unsigned status,
                       const std::string& message) const {
  clear_content_type(exchange);
  exchange.status = status;
  if (error_handler_) {
    try {
      error_handler_(request, response, status, message);
    } catch (const std::exception& error) {
      spdlog::error("{}: the error handler threw: {}", describe(exchange), error.what());
    } catch (...) {
      spdlog::error("{}: the error handler threw a non-exception", describe(exchange));
    }
    if (response.sent()) return;
  }
  send_text_error(exchange, status, message);
}

}  // namespace herd
