// Router: Express 4 style routing as pure logic. It maps (method, path) to the
// id of a handler registered by the caller, with the named path parameters;
// it knows nothing of HTTP messages, so the App (herd/app.h) owns the handlers
// (std::function) and the responses. Also the query-string decoding.
//
// Patterns, compared segment by segment (no regex):
//   /users           literal segments
//   /users/:id       a parameter: one non-empty segment, percent-decoded
//   /a/:x/b/:y       any number of parameters, names unique ([A-Za-z0-9_]+)
//   /static/*        a trailing wildcard: the rest of the path after "/static/",
//                    slashes included, possibly empty, percent-decoded, as
//                    param "0" (Express 4's req.params[0]). It needs the slash:
//                    "/static" does not match. "*" alone is "/*": every path.
// Express features not supported are rejected by add() (std::invalid_argument)
// rather than silently taken literally: optional or regex params (":id?",
// ":id(\\d+)"), params inside a segment ("/:from-:to"), a "*" that is not the
// whole last segment, and the characters ( ) ? + * : in literal segments.
//
// Defaults follow Express's Router: literals match case-insensitively (ASCII)
// and one trailing slash is optional on both the pattern and the path
// ("/users/" matches "/users" and back, "/users//" matches neither). Both can
// be switched off with RouterOptions, like Express's caseSensitive / strict.
// Literals are compared with the raw path as it came on the wire, so a literal
// holding a space must be written "%20". Parameter values keep their case.
//
// Routes are tried in registration order and the first match wins. HEAD also
// matches GET routes (whichever of the two was registered first answers, as in
// Express); "ALL" routes match every method. Request methods are compared
// exactly (methods are case-sensitive in HTTP); add() uppercases its argument.
//
// Percent-decoding of path params is decodeURIComponent's: "%XX" becomes the
// byte, "+" stays "+". A param with a malformed escape ("%zz", "%4") makes its
// route not match, so no handler ever sees an undecodable value; Express
// instead answers 400. Decoded values are not normalized: "%2F" and ".." reach
// the handler as-is, and a handler serving files must refuse them itself.
//
// No route for the method: Express answers 404 "Cannot <METHOD> <path>", both
// when no path matches and when the path matches another method only; the App
// keeps that (no 405). match() flags the second case and allowed_methods()
// lists the methods, for logging and for answering OPTIONS.
//
// Cost: match() is O(routes x path length) with no recursion, so long paths
// and many segments cost time linear in their size and constant stack.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace herd {

using HandlerId = std::size_t;
// Named path parameters, "0" for the wildcard.
using RouteParams = std::map<std::string, std::string, std::less<>>;

struct RouterOptions {
  bool case_sensitive = false;  // Express: caseSensitive
  bool strict = false;          // Express: strict; the trailing slash must match exactly
};

struct MatchResult {
  std::optional<HandlerId> handler;  // the first route matching method and path
  RouteParams params;                // of that route; empty when none matched
  // No route matched, but one would have for another method. Express answers
  // this 404 like any other.
  bool path_matched_other_method = false;
};

class Router {
 public:
  explicit Router(RouterOptions options = {});

  // Registers a route after the existing ones. `method` is "GET", "POST", ...
  // or "ALL" (any case; stored uppercase). Throws std::invalid_argument for an
  // empty method or an unsupported pattern (see above).
  void add(std::string_view method, std::string_view pattern, HandlerId handler);

  // The first route, in registration order, matching `method` and `path`.
  // `path` is the request target without its query; one that does not start
  // with '/' (like "*" or an absolute URI) matches nothing.
  MatchResult match(std::string_view method, std::string_view path) const;

  // The methods with a route matching `path`, sorted and unique, HEAD added
  // where GET is. "ALL" routes are not listed: they match every method, so a
  // path they match never yields path_matched_other_method.
  std::vector<std::string> allowed_methods(std::string_view path) const;

  std::size_t size() const { return routes_.size(); }

 private:
  struct Segment {
    bool is_param = false;
    std::string text;  // the literal, or the param name
  };
  struct Route {
    std::string method;  // uppercase; "ALL" for any
    std::vector<Segment> segments;
    bool wildcard = false;        // the pattern ends in "/*"
    bool trailing_slash = false;  // the pattern ends in "/"; matters when strict
    HandlerId handler = 0;
  };

  static bool method_matches(const Route& route, std::string_view method);
  // Matches `path` against the route's pattern, filling `params` if non-null.
  bool path_matches(const Route& route, std::string_view path, RouteParams* params) const;
  bool literal_equals(std::string_view pattern, std::string_view text) const;

  RouterOptions options_;
  std::vector<Route> routes_;
};

// decodeURIComponent on bytes: "%XX" becomes the byte, everything else stays.
// nullopt for a '%' not followed by two hex digits. UTF-8 validity is not
// checked.
std::optional<std::string> percent_decode(std::string_view text);

using QueryParams = std::vector<std::pair<std::string, std::string>>;

// Decodes an application/x-www-form-urlencoded query like Node's
// querystring.parse (Express's "simple" parser, no nesting): pairs split on
// '&', key and value on the first '=', "+" is a space, "%XX" the byte. Pairs
// keep their order and repeated keys are all kept. A key without '=' has the
// empty value; empty pairs ("a=1&&b=2", a trailing '&') are skipped; a
// malformed escape is kept as written ("%zz" stays "%zz"). One leading '?' is
// ignored. No limit on the pair count: the caller bounds the input's size.
QueryParams parse_query(std::string_view query);

}  // namespace herd
