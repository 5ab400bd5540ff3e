// The application API: an Express-style App of middleware and routes, and the
// Request/Response a handler gets. herd::run (herd/run.h) makes a program
// serving an App a herd worker; the runtime owns the channel, the loop, HTTP,
// keep-alive, heartbeats, stats and draining.
//
//   herd::App app;
//   app.get("/users/:id", [](herd::Request& req, herd::Response& res) {
//     res.json({{"id", req.param("id")}});
//   });
//   return herd::run(app, argc, argv);
//
// Request and Response are handles on one exchange (a request and its
// response). A handler that answers later keeps a copy of the Response (and of
// the Request if it needs it) and completes it from the worker's loop
// (herd/loop.h); the exchange lives as long as any handle does. Responses on a
// connection go out in request order, whatever order handlers complete in.
//
// Guarantees that Express leaves to the programmer:
// - a response whose last handle goes away unsent is answered 500 and logged,
//   so a forgotten response never hangs a client;
// - an exception escaping a handler is answered 500 (HttpError: its status and
//   message) and logged, and the worker keeps serving;
// - a client that disconnects first makes send() a no-op: aborted() says so and
//   on_abort() runs, so work on its behalf can stop.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "herd/detail/exchange_handler.h"
#include "herd/router.h"

namespace herd {

struct Exchange;  // one request and its response; internal to the runtime

// Thrown by a handler (or by Request::json) to answer with `status` and
// `message` as a text/plain body instead of a 500.
class HttpError : public std::runtime_error {
 public:
  HttpError(unsigned status, const std::string& message)
      : std::runtime_error(message), status_(status) {}
  unsigned status() const { return status_; }

 private:
  unsigned status_;
};

// The parts of a handle shared by Request, Response and Next: a counted
// reference to the exchange, so a handle kept by an asynchronous handler keeps
// the exchange alive.
class ExchangeHandle {
 public:
  explicit ExchangeHandle(Exchange* exchange);
  ExchangeHandle(const ExchangeHandle& other);
  ExchangeHandle& operator=(const ExchangeHandle& other);
  ~ExchangeHandle();

 protected:
  Exchange* exchange_;
};

class Request : public ExchangeHandle {
 public:
  using ExchangeHandle::ExchangeHandle;

  std::string_view method() const;  // "GET"; HEAD requests say "HEAD"
  std::string_view url() const;     // the request target: "/users/7?full=1"
  std::string_view path() const;    // without the query: "/users/7"
  unsigned version() const;         // 11 for HTTP/1.1, 10 for HTTP/1.0

  // A route parameter, percent-decoded ("7" for "/users/:id"; "0" names the
  // wildcard). Empty if the matched route has no such parameter.
  std::string_view param(std::string_view name) const;
  const RouteParams& params() const;

  // The first value of a query parameter, decoded; nullopt if absent.
  std::optional<std::string_view> query(std::string_view name) const;
  // Every query pair in order, repeated keys included.
  const QueryParams& query_params() const;

  // A request header by name, compared case-insensitively; the first if
  // repeated. nullopt if absent.
  std::optional<std::string_view> header(std::string_view name) const;
  std::vector<std::pair<std::string_view, std::string_view>> headers() const;

  std::string_view body() const;
  // The body parsed as JSON. Throws HttpError(400) naming the problem when it
  // is not JSON, which answers the request with 400 if left uncaught.
  nlohmann::json json() const;

  // Per-request data for middleware to pass on (Express's res.locals).
  nlohmann::json& locals();
};

class Response : public ExchangeHandle {
 public:
  using ExchangeHandle::ExchangeHandle;

  // Changing a response once sent throws std::logic_error (Express's
  // ERR_HTTP_HEADERS_SENT); changing an aborted one does nothing.

  // The status code, 200 by default. Throws std::invalid_argument outside
  // 200-999 (interim 1xx responses are not supported).
  Response& status(unsigned code);
  // Sets a header, replacing one of the same name (case-insensitive).
  // Throws std::invalid_argument for a name that is not an HTTP token, a value
  // holding CR, LF or NUL, or a header the runtime owns (Content-Length,
  // Transfer-Encoding, Date). "Connection: close" closes after this response.
  Response& set(std::string_view name, std::string_view value);
  // Adds a header, keeping others of the same name (Set-Cookie).
  Response& append(std::string_view name, std::string_view value);
  // Sets Content-Type.
  Response& type(std::string_view content_type);
  std::optional<std::string_view> get(std::string_view name) const;

  // Ends the exchange with `body`; Content-Type defaults to text/html.
  // Throws std::logic_error if the response was already sent.
  void send(std::string body);
  // Ends the exchange with value.dump(); Content-Type defaults to JSON.
  void json(const nlohmann::json& value);
  // Ends the exchange with a redirect to `url` (302 unless given).
  void redirect(std::string_view url, unsigned code = 302);
  // Ends the exchange with `code` and its reason phrase as the body.
  void send_status(unsigned code);
  // Ends the exchange with an empty body.
  void end();

  // True once the response was sent (or the exchange was aborted).
  bool sent() const;
  // True if the client went away before the response was sent.
  bool aborted() const;
  // Runs `callback` once if the client goes away before the response is sent.
  void on_abort(std::function<void()> callback);
};

// Passes the request on to the next matching middleware or route. Calling it
// more than once does nothing more (and is logged).
class Next : public ExchangeHandle {
 public:
  Next(Exchange* exchange, std::size_t position);
  void operator()() const;

 private:
  std::size_t position_;  // the layer after the one this Next was given to
};

using Handler = std::function<void(Request&, Response&, Next&)>;
// Answers a request whose handler failed: `status` and `message` from an
// HttpError, or 500 and "Internal Server Error" for any other exception (whose
// text is logged, not sent). Headers set before the failure are kept, except
// Content-Type.
using ErrorHandler =
    std::function<void(Request&, Response&, unsigned status, const std::string& message)>;

struct AppOptions {
  RouterOptions routing;
};

class App : public detail::ExchangeHandler {
 public:
  explicit App(AppOptions options = {});

  // Routes: `pattern` as in herd/router.h. Handlers take (req, res) or
  // (req, res, next). Throws std::invalid_argument for a bad pattern.
  template <typename F>
  App& get(std::string_view pattern, F&& handler) {
    return route("GET", pattern, std::forward<F>(handler));
  }
  template <typename F>
  App& post(std::string_view pattern, F&& handler) {
    return route("POST", pattern, std::forward<F>(handler));
  }
  template <typename F>
  App& put(std::string_view pattern, F&& handler) {
    return route("PUT", pattern, std::forward<F>(handler));
  }
  template <typename F>
  App& patch(std::string_view pattern, F&& handler) {
    return route("PATCH", pattern, std::forward<F>(handler));
  }
  template <typename F>
  App& del(std::string_view pattern, F&& handler) {
    return route("DELETE", pattern, std::forward<F>(handler));
  }
  template <typename F>
  App& all(std::string_view pattern, F&& handler) {
    return route("ALL", pattern, std::forward<F>(handler));
  }
  template <typename F>
  App& route(std::string_view method, std::string_view pattern, F&& handler) {
    return add_route(method, pattern, wrap(std::forward<F>(handler)));
  }

  // Middleware, run in registration order with the routes, for every request
  // (or those whose path is `prefix` or under it, on a segment boundary:
  // "/api" covers "/api" and "/api/x", not "/apix").
  App& use(Handler middleware);
  App& use(std::string_view prefix, Handler middleware);

  // Replaces the default error answer (text/plain `message`), e.g. to answer
  // JSON. If it throws or sends nothing, the default answer is sent.
  App& on_error(ErrorHandler handler);

  // Runs the middleware and routes for `exchange`; the runtime calls this.
  void dispatch(Exchange& exchange) const override;
  // Resumes dispatch at layer `position` (Next's work).
  void resume(Exchange& exchange, std::size_t position) const;

 private:
  struct Layer {
    bool is_route = false;
    Router route;        // one route, when is_route
    std::string prefix;  // middleware only; "" is every path
    Handler handler;
  };

  template <typename F>
  static Handler wrap(F&& handler) {
    if constexpr (std::is_invocable_v<F&, Request&, Response&, Next&>) {
      return Handler(std::forward<F>(handler));
    } else {
      static_assert(std::is_invocable_v<F&, Request&, Response&>,
                    "a handler takes (herd::Request&, herd::Response&) or "
                    "(herd::Request&, herd::Response&, herd::Next&)");
      return [inner = std::forward<F>(handler)](Request& request, Response& response, Next&) {
        inner(request, response);
      };
    }
  }
  App& add_route(std::string_view method, std::string_view pattern, Handler handler);
  bool layer_matches(const Layer& layer, Exchange& exchange) const;
  void run_layer(const Layer& layer, Exchange& exchange, std::size_t next_position) const;
  void answer_error(Exchange& exchange, Request& request, Response& response, unsigned status,
                    const std::string& message) const;

  AppOptions options_;
  std::vector<Layer> layers_;
  ErrorHandler error_handler_;
};

}  // namespace herd
