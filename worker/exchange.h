// Exchange: one request and its response, shared by the HttpSession that parsed
// it (while the response waits its turn on the connection) and the handles the
// application holds (Request, Response, Next in herd/app.h).
//
// Lifetime: an exchange is freed when it has left its session's pipeline and no
// handle refers to it. A session that closes with exchanges still held by
// handles detaches them (session = nullptr): their requests stay readable and
// sending becomes a no-op.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "herd/router.h"

namespace herd {

class App;
class HttpSession;

struct Exchange {
  using Message = boost::beast::http::request<boost::beast::http::string_body>;

  // The request.
  Message message;
  std::string_view path;             // message.target() without the query
  RouteParams params;                // of the route being run
  std::optional<QueryParams> query;  // parsed on first use
  nlohmann::json locals;
  bool head = false;                              // a HEAD request: the response carries no body
  bool keep_alive = false;                        // as the request asked
  std::chrono::steady_clock::time_point started;  // its first byte was read

  // Dispatch.
  const App* app = nullptr;
  std::size_t next_layer = 0;  // the App layer dispatch tries next

  // The response, serialized when its turn on the connection comes.
  unsigned status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string_view default_type;  // Content-Type when `headers` has none; static storage
  std::string body;
  bool close_after = false;  // the app set Connection: close
  bool sent = false;
  bool aborted = false;
  std::function<void()> on_abort;

  // Ownership (see above).
  HttpSession* session = nullptr;
  std::size_t handles = 0;
  bool in_pipeline = false;

  // Back to a fresh exchange, keeping allocated capacity.
  void reset();
};

// Called by the last handle going away.
void release_exchange(Exchange& exchange);

}  // namespace herd
