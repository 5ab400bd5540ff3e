#include "herd/router.h"

#include <algorithm>
#include <set>
#include <stdexcept>

namespace herd {
namespace {

constexpr std::string_view kAnyMethod = "ALL";
constexpr std::string_view kWildcardParam = "0";

char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}
char ascii_upper(char c) {
  return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The byte of the escape at text[at] ('%'), or -1 if it is malformed.
int escaped_byte(std::string_view text, std::size_t at) {
  if (at + 2 >= text.size()) return -1;
  int high = hex_value(text[at + 1]);
  int low = hex_value(text[at + 2]);
  if (high < 0 || low < 0) return -1;
  return high * 16 + low;
}

bool is_param_name(std::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

[[noreturn]] void reject(std::string_view pattern, std::string_view why) {
  throw std::invalid_argument("route pattern '" + std::string(pattern) + "': " + std::string(why));
}

// Form decoding for the query: '+' is a space, a malformed escape stays as written.
std::string form_decode(std::string_view text) {
  std::string decoded;
  decoded.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '+') {
      decoded.push_back(' ');
    } else if (c == '%' && escaped_byte(text, i) >= 0) {
      decoded.push_back(static_cast<char>(escaped_byte(text, i)));
      i += 2;
    } else {
      decoded.push_back(c);
    }
  }
  return decoded;
}

}  // namespace

std::optional<std::string> percent_decode(std::string_view text) {
  std::string decoded;
  decoded.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      decoded.push_back(text[i]);
      continue;
    }
    int byte = escaped_byte(text, i);
    if (byte < 0) return std::nullopt;
    decoded.push_back(static_cast<char>(byte));
    i += 2;
  }
  return decoded;
}

QueryParams parse_query(std::string_view query) {
  if (!query.empty() && query.front() == '?') query.remove_prefix(1);
  QueryParams pairs;
  while (!query.empty()) {
    std::size_t end = std::min(query.find('&'), query.size());
    std::string_view pair = query.substr(0, end);
    query.remove_prefix(std::min(end + 1, query.size()));
    if (pair.empty()) continue;
    std::size_t equals = pair.find('=');
    if (equals == std::string_view::npos) {
      pairs.emplace_back(form_decode(pair), std::string());
    } else {
      pairs.emplace_back(form_decode(pair.substr(0, equals)), form_decode(pair.substr(equals + 1)));
    }
  }
  return pairs;
}

Router::Router(RouterOptions options) : options_(options) {}

void Router::add(std::string_view method, std::string_view pattern, HandlerId handler) {
  Route route;
  route.handler = handler;
  if (method.empty()) throw std::invalid_argument("route method is empty");
  route.method.reserve(method.size());
  for (char c : method) route.method.push_back(ascii_upper(c));

  std::string_view body = pattern == "*" ? std::string_view("/*") : pattern;
  if (body.empty() || body.front() != '/') reject(pattern, "must start with '/'");
  body.remove_prefix(1);
  if (body.empty()) route.trailing_slash = true;  // "/" itself
  if (!body.empty() && body.back() == '/') {
    route.trailing_slash = true;
    body.remove_suffix(1);
  }

  // An empty body is the root: no segments. Otherwise every '/' starts one.
  bool more = !body.empty();
  std::set<std::string_view> param_names;  // views into `pattern`
  while (more) {
    std::size_t end = std::min(body.find('/'), body.size());
    std::string_view text = body.substr(0, end);
    more = end < body.size();
    body.remove_prefix(std::min(end + 1, body.size()));

    if (text == "*") {
      if (more) reject(pattern, "'*' is only supported as the last segment");
      route.wildcard = true;
    } else if (!text.empty() && text.front() == ':') {
      std::string_view name = text.substr(1);
      if (!is_param_name(name)) {
        reject(pattern, "param '" + std::string(text) +
                            "' must be ':' then [A-Za-z0-9_]+ (no '?', regex or second param)");
      }
      if (!param_names.insert(name).second) {
        reject(pattern, "param ':" + std::string(name) + "' appears twice");
      }
      route.segments.push_back(Segment{true, std::string(name)});
    } else {
      if (text.find_first_of("()?+*:") != std::string_view::npos) {
        reject(pattern, "literal '" + std::string(text) + "' holds one of ( ) ? + * :");
      }
      route.segments.push_back(Segment{false, std::string(text)});
    }
  }
  routes_.push_back(std::move(route));
}

MatchResult Router::match(std::string_view method, std::string_view path) const {
  MatchResult result;
  for (const Route& route : routes_) {
    if (method_matches(route, method)) {
      if (path_matches(route, path, &result.params)) {
        result.handler = route.handler;
        result.path_matched_other_method = false;
        return result;
      }
      result.params.clear();  // a partial match may have filled some
    } else if (!result.path_matched_other_method && path_matches(route, path, nullptr)) {
      result.path_matched_other_method = true;
    }
  }
  return result;
}

std::vector<std::string> Router::allowed_methods(std::string_view path) const {
  std::vector<std::string> methods;
  for (const Route& route : routes_) {
    if (route.method == kAnyMethod || !path_matches(route, path, nullptr)) continue;
    methods.push_back(route.method);
    if (route.method == "GET") methods.emplace_back("HEAD");
  }
  std::sort(methods.begin(), methods.end());
  methods.erase(std::unique(methods.begin(), methods.end()), methods.end());
  return methods;
}

bool Router::method_matches(const Route& route, std::string_view method) {
  return route.method == method || route.method == kAnyMethod ||
         (method == "HEAD" && route.method == "GET");
}

bool Router::literal_equals(std::string_view pattern, std::string_view text) const {
  if (options_.case_sensitive) return pattern == text;
  return pattern.size() == text.size() &&
         std::equal(pattern.begin(), pattern.end(), text.begin(),
                    [](char a, char b) { return ascii_lower(a) == ascii_lower(b); });
}

// Invariant: `cursor` is at the '/' that starts the next path segment, or at
// the end of the path.
bool Router::path_matches(const Route& route, std::string_view path, RouteParams* params) const {
  if (path.empty() || path.front() != '/') return false;
  std::size_t cursor = 0;
  for (const Segment& segment : route.segments) {
    if (cursor >= path.size()) return false;
    std::size_t begin = cursor + 1;
    std::size_t end = std::min(path.find('/', begin), path.size());
    std::string_view text = path.substr(begin, end - begin);
    cursor = end;
    if (!segment.is_param) {
      if (!literal_equals(segment.text, text)) return false;
      continue;
    }
    if (text.empty()) return false;
    std::optional<std::string> value = percent_decode(text);
    if (!value) return false;
    if (params) params->insert_or_assign(segment.text, std::move(*value));
  }

  std::string_view rest = path.substr(cursor);
  if (route.wildcard) {
    if (rest.empty()) return false;  // "/static" for "/static/*"
    std::optional<std::string> value = percent_decode(rest.substr(1));
    if (!value) return false;
    if (params) params->insert_or_assign(std::string(kWildcardParam), std::move(*value));
    return true;
  }
  if (rest.empty()) return !options_.strict || !route.trailing_slash;
  if (rest == "/") return !options_.strict || route.trailing_slash;
  return false;
}

}  // namespace herd
