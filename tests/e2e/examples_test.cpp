// End-to-end: the example programs (examples/hello, examples/json_api) as herd
// workers, started by the real master with --exec, driven over HTTP on
// 127.0.0.1 and observed through the master's log and control socket.
//
// hello is the Express "Hello World!" on herd's worker API. json_api is a REST
// resource whose store lives in each worker process, so its tests run one
// worker; its GET /slow?ms=N is completed by a timer on the worker's loop, the
// asynchronous path of the API (a Response kept past the handler's return).
#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "tests/e2e/harness.h"

namespace herd::e2e {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kHelloPath = HERD_BIN_DIR "/hello";
constexpr const char* kJsonApiPath = HERD_BIN_DIR "/json_api";

constexpr std::string_view kJsonType = "application/json; charset=utf-8";

// Counters reach the master with heartbeats: room for a sanitizer build on a
// loaded machine.
constexpr Milliseconds kSettleTimeout{20000};
// A read bound for connections that wait on /slow: well above any delay asked
// for here, so only a hang fails it.
constexpr Milliseconds kSlowIoTimeout{15000};

const std::regex kRequestHandled(R"(Request handled by worker (\d+))");
const std::regex kWorkerDied(R"(Worker \d+ died)");

// The body parsed as JSON; a discarded value when it is not JSON.
json body_json(const HttpResponse& response) {
  return json::parse(response.body, nullptr, /*allow_exceptions=*/false);
}

// A request with a body (Content-Length, and Content-Type unless empty) or
// without one (`body` nullopt).
std::string make_request(std::string_view method, std::string_view target,
                         const std::optional<std::string>& body = std::nullopt,
                         std::string_view content_type = "application/json") {
  std::string request(method);
  request += ' ';
  request += target;
  request += " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  if (body) {
    if (!content_type.empty()) {
      request += "Content-Type: ";
      request += content_type;
      request += "\r\n";
    }
    request += "Content-Length: " + std::to_string(body->size()) + "\r\n";
  }
  request += "\r\n";
  if (body) request += *body;
  return request;
}

// Requests one after the other on one keep-alive connection. A failed
// exchange is a test failure, and its response comes back with status 0.
class ApiClient {
 public:
  explicit ApiClient(std::uint16_t port) : client_(port) {}

  HttpResponse call(std::string_view method, std::string_view target,
                    const std::optional<std::string>& body = std::nullopt,
                    std::string_view content_type = "application/json") {
    std::string what = std::string(method) + " " + std::string(target);
    if (!client_.send(make_request(method, target, body, content_type))) {
      ADD_FAILURE() << what << ": " << client_.error();
      return {};
    }
    HttpReadResult result = client_.read_responses(1);
    if (!result.ok()) {
      ADD_FAILURE() << what << ": " << result.error;
      return {};
    }
    return std::move(result.responses[0]);
  }

  HttpResponse get(std::string_view target) { return call("GET", target); }
  HttpResponse post(std::string_view target, const json& body) {
    return call("POST", target, body.dump());
  }
  HttpResponse put(std::string_view target, const json& body) {
    return call("PUT", target, body.dump());
  }
  HttpResponse patch(std::string_view target, const json& body) {
    return call("PATCH", target, body.dump());
  }
  HttpResponse del(std::string_view target) { return call("DELETE", target); }

 private:
  HttpClient client_;
};

// Checks an error answer of json_api: `status`, a JSON content type and a
// body {"error": <string>}; returns the message ("" when there is none).
std::string expect_json_error(const HttpResponse& response, unsigned status,
                              const std::string& what) {
  EXPECT_EQ(response.status, status) << what << ": body " << response.body;
  EXPECT_EQ(response.header("Content-Type"), kJsonType) << what;
  json body = body_json(response);
  bool shaped =
      body.is_object() && body.size() == 1 && body.contains("error") && body["error"].is_string();
  EXPECT_TRUE(shaped) << what << ": the body is not {\"error\": \"...\"}: " << response.body;
  return shaped ? body["error"].get<std::string>() : std::string();
}

// waited_ms of a /slow answer, or -1 when the body does not carry one.
std::int64_t waited_ms(const HttpResponse& response) {
  json body = body_json(response);
  if (!body.is_object() || !body.contains("waited_ms") || !body["waited_ms"].is_number_integer()) {
    return -1;
  }
  return body["waited_ms"].get<std::int64_t>();
}

// The master's `stats` reply once `predicate` holds for it, polled until
// kSettleTimeout; the last reply (or null) otherwise, with a test failure.
json wait_for_stats(const Cluster& cluster, const std::function<bool(const json&)>& predicate,
                    const std::string& what) {
  json last;
  bool settled = wait_until(
      [&] {
        std::optional<json> reply = control_request(control_path(cluster), {{"cmd", "stats"}});
        if (!reply || !is_ok(*reply)) return false;
        last = std::move(*reply);
        return predicate(last);
      },
      kSettleTimeout);
  EXPECT_TRUE(settled) << what << "; last stats: " << last.dump();
  return last;
}

json checked_status(const Cluster& cluster) {
  std::string error;
  std::optional<json> reply =
      control_request(control_path(cluster), {{"cmd", "status"}}, kIoTimeout, &error);
  EXPECT_TRUE(reply) << "no reply to status: " << error;
  if (!reply) return {};
  EXPECT_TRUE(is_ok(*reply)) << reply->dump();
  return *reply;
}

// ---- hello ------------------------------------------------------------------

// Two hello workers, heartbeats every 100 ms so counters arrive quickly.
std::optional<Cluster> start_hello(std::size_t workers = 2) {
  return start_cluster(workers, {"--heartbeat-interval", "100", "--exec", kHelloPath});
}

TEST(HelloExample, RootAnswersHelloWorld) {
  std::optional<Cluster> cluster = start_hello();
  ASSERT_TRUE(cluster);

  HttpReadResult result = http_get(cluster->port, "/");
  ASSERT_TRUE(result.ok()) << result.error;
  const HttpResponse& response = result.responses[0];
  EXPECT_EQ(response.status, 200u);
  EXPECT_EQ(response.body, "Hello World!");
  EXPECT_EQ(response.header("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(response.header("Content-Length"), "12");
  EXPECT_TRUE(response.keep_alive);
}

TEST(HelloExample, UnknownPathIsNotFound) {
  std::optional<Cluster> cluster = start_hello();
  ASSERT_TRUE(cluster);

  HttpReadResult result = http_get(cluster->port, "/x");
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.responses[0].status, 404u);
  EXPECT_EQ(result.responses[0].body, "Cannot GET /x");

  // The query is not part of the path it names; other methods are 404 too.
  HttpReadResult with_query = http_get(cluster->port, "/x?y=1");
  ASSERT_TRUE(with_query.ok()) << with_query.error;
  EXPECT_EQ(with_query.responses[0].status, 404u);
  EXPECT_EQ(with_query.responses[0].body, "Cannot GET /x");
  HttpReadResult post =
      http_exchange(cluster->port, make_request("POST", "/", std::string("hi"), "text/plain"));
  ASSERT_TRUE(post.ok()) << post.error;
  EXPECT_EQ(post.responses[0].status, 404u);
  EXPECT_EQ(post.responses[0].body, "Cannot POST /");
}

TEST(HelloExample, KeepAliveConnectionServesManyRequests) {
  std::optional<Cluster> cluster = start_hello();
  ASSERT_TRUE(cluster);

  constexpr int kRequests = 20;
  HttpClient client(cluster->port);
  ASSERT_TRUE(client.connected()) << client.error();
  for (int i = 0; i < kRequests; ++i) {
    bool found = i % 4 != 3;
    ASSERT_TRUE(client.send(get_request(found ? "/" : "/missing")))
        << "request " << i << ": " << client.error();
    HttpReadResult result = client.read_responses(1);
    ASSERT_TRUE(result.ok()) << "request " << i << ": " << result.error;
    EXPECT_EQ(result.responses[0].status, found ? 200u : 404u) << "request " << i;
    EXPECT_EQ(result.responses[0].body, found ? "Hello World!" : "Cannot GET /missing")
        << "request " << i;
    EXPECT_TRUE(result.responses[0].keep_alive) << "request " << i;
    ASSERT_FALSE(result.server_closed) << "the worker closed after request " << i;
  }

  // One connection lives in one worker.
  std::vector<LineMatch> handled = cluster->herd->wait_for_lines(kRequestHandled, kRequests);
  ASSERT_EQ(handled.size(), static_cast<std::size_t>(kRequests));
  for (const LineMatch& line : handled) EXPECT_EQ(line[1], handled.front()[1]) << line.line;
}

TEST(HelloExample, BothWorkersServe) {
  std::optional<Cluster> cluster = start_hello();
  ASSERT_TRUE(cluster);

  constexpr std::size_t kConnections = 20;
  for (std::size_t i = 0; i < kConnections; ++i) {
    HttpReadResult result = http_get(cluster->port, "/");
    ASSERT_TRUE(result.ok()) << "connection " << i << ": " << result.error;
    ASSERT_EQ(result.responses[0].status, 200u) << "connection " << i;
    ASSERT_EQ(result.responses[0].body, "Hello World!") << "connection " << i;
  }

  // The workers' own log lines...
  std::vector<LineMatch> handled = cluster->herd->wait_for_lines(kRequestHandled, kConnections);
  ASSERT_EQ(handled.size(), kConnections);
  std::set<std::string> serving_ids;
  for (const LineMatch& line : handled) serving_ids.insert(line[1]);
  EXPECT_EQ(serving_ids.size(), 2u) << "only worker " << *serving_ids.begin() << " served";

  // ... and the master's counters: both hello processes answered, every
  // answer a 2xx, and together exactly the requests sent.
  json stats = wait_for_stats(
      *cluster,
      [&](const json& reply) { return number(reply.at("total"), "requests") >= kConnections; },
      "the master never counted the requests");
  ASSERT_TRUE(stats.is_object() && stats.contains("workers"));
  ASSERT_EQ(stats["workers"].size(), 2u) << stats.dump();
  std::vector<pid_t> started = cluster->herd->worker_pids();
  std::uint64_t sum = 0;
  for (const json& worker : stats["workers"]) {
    EXPECT_GT(number(worker, "requests"), 0u) << "a worker served nothing: " << stats.dump();
    EXPECT_EQ(number(worker, "requests"), number(worker.at("responses"), "2xx")) << worker.dump();
    auto pid = static_cast<pid_t>(number(worker, "pid"));
    EXPECT_NE(std::find(started.begin(), started.end(), pid), started.end())
        << "worker pid " << pid << " was never announced as started";
    sum += number(worker, "requests");
  }
  EXPECT_EQ(sum, kConnections) << stats.dump();
}

TEST(HelloExample, StartedWithoutHerdExitsWithStatus2) {
  HerdProcess hello({}, kHelloPath);
  ASSERT_GT(hello.pid(), 0) << hello.start_error();
  std::optional<int> status = hello.wait_exit(kStartTimeout);
  ASSERT_TRUE(status) << "hello without a master kept running";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2)
      << "hello ended with " << describe_status(*status);
  EXPECT_TRUE(hello.wait_for_line(std::regex("HERD_CHANNEL_FD"), kIoTimeout))
      << "stderr does not name HERD_CHANNEL_FD: " << hello.output();
}

// ---- json_api -----------------------------------------------------------------

// One json_api worker (its store is per process), heartbeats every 100 ms.
std::optional<Cluster> start_json_api() {
  return start_cluster(1, {"--heartbeat-interval", "100", "--exec", kJsonApiPath});
}

TEST(JsonApiExample, CrudRoundTrip) {
  std::optional<Cluster> cluster = start_json_api();
  ASSERT_TRUE(cluster);
  ApiClient api(cluster->port);

  HttpResponse empty = api.get("/todos");
  EXPECT_EQ(empty.status, 200u);
  EXPECT_EQ(empty.header("Content-Type"), kJsonType);
  EXPECT_EQ(body_json(empty), json::array()) << empty.body;

  // Create two.
  HttpResponse created = api.post("/todos", {{"title", "buy milk"}});
  ASSERT_EQ(created.status, 201u) << created.body;
  EXPECT_EQ(created.header("Content-Type"), kJsonType);
  EXPECT_EQ(created.header("Location"), "/todos/1");
  json milk = {{"id", 1}, {"title", "buy milk"}, {"done", false}};
  EXPECT_EQ(body_json(created), milk) << created.body;

  HttpResponse second = api.post("/todos", {{"title", "walk the dog"}, {"done", true}});
  ASSERT_EQ(second.status, 201u) << second.body;
  EXPECT_EQ(second.header("Location"), "/todos/2");
  json dog = {{"id", 2}, {"title", "walk the dog"}, {"done", true}};
  EXPECT_EQ(body_json(second), dog) << second.body;

  // Read them back: the list in id order, and one through its Location.
  HttpResponse list = api.get("/todos");
  EXPECT_EQ(list.status, 200u);
  EXPECT_EQ(body_json(list), json::array({milk, dog})) << list.body;
  HttpResponse one = api.get(created.header("Location"));
  EXPECT_EQ(one.status, 200u);
  EXPECT_EQ(one.header("Content-Type"), kJsonType);
  EXPECT_EQ(body_json(one), milk) << one.body;

  // PATCH changes only the fields given.
  HttpResponse patched = api.patch("/todos/1", {{"done", true}});
  EXPECT_EQ(patched.status, 200u) << patched.body;
  json milk_done = {{"id", 1}, {"title", "buy milk"}, {"done", true}};
  EXPECT_EQ(body_json(patched), milk_done) << patched.body;
  EXPECT_EQ(body_json(api.get("/todos/1")), milk_done);

  // PUT replaces: `done` left out is false again.
  HttpResponse replaced = api.put("/todos/1", {{"title", "buy oat milk"}});
  EXPECT_EQ(replaced.status, 200u) << replaced.body;
  json oat = {{"id", 1}, {"title", "buy oat milk"}, {"done", false}};
  EXPECT_EQ(body_json(replaced), oat) << replaced.body;
  EXPECT_EQ(body_json(api.get("/todos/1")), oat);

  // DELETE: 204 with no body, then the todo is gone.
  HttpResponse deleted = api.del("/todos/1");
  EXPECT_EQ(deleted.status, 204u);
  EXPECT_EQ(deleted.body, "");
  EXPECT_TRUE(deleted.keep_alive);
  HttpResponse gone = api.get("/todos/1");
  EXPECT_EQ(expect_json_error(gone, 404, "GET after DELETE"), "no todo 1");
  EXPECT_EQ(expect_json_error(api.del("/todos/1"), 404, "second DELETE"), "no todo 1");
  EXPECT_EQ(body_json(api.get("/todos")), json::array({dog}));

  // Ids are not reused.
  HttpResponse third = api.post("/todos", {{"title", "third"}});
  EXPECT_EQ(third.status, 201u);
  EXPECT_EQ(third.header("Location"), "/todos/3");
}

TEST(JsonApiExample, UnknownIdIs404WithJsonError) {
  std::optional<Cluster> cluster = start_json_api();
  ASSERT_TRUE(cluster);
  ApiClient api(cluster->port);

  EXPECT_EQ(expect_json_error(api.get("/todos/42"), 404, "GET"), "no todo 42");
  EXPECT_EQ(expect_json_error(api.put("/todos/42", {{"title", "x"}}), 404, "PUT"), "no todo 42");
  EXPECT_EQ(expect_json_error(api.patch("/todos/42", {{"done", true}}), 404, "PATCH"),
            "no todo 42");
  EXPECT_EQ(expect_json_error(api.del("/todos/42"), 404, "DELETE"), "no todo 42");
  // Nothing was created on the way.
  EXPECT_EQ(body_json(api.get("/todos")), json::array());

  // A path no route knows is the App's Express-style 404, not the API's JSON.
  HttpResponse unrouted = api.get("/nope");
  EXPECT_EQ(unrouted.status, 404u);
  EXPECT_EQ(unrouted.body, "Cannot GET /nope");
}

TEST(JsonApiExample, InvalidTodoIs422WithJsonError) {
  std::optional<Cluster> cluster = start_json_api();
  ASSERT_TRUE(cluster);
  ApiClient api(cluster->port);

  struct Case {
    json body;
    std::string error;
  };
  const std::vector<Case> cases = {
      {json::object(), "'title' is required"},
      {{{"done", true}}, "'title' is required"},
      {{{"title", ""}}, "'title' must be 1 to 200 bytes"},
      {{{"title", std::string(201, 'a')}}, "'title' must be 1 to 200 bytes"},
      {{{"title", 5}}, "'title' must be a string"},
      {{{"title", nullptr}}, "'title' must be a string"},
      {{{"title", "x"}, {"done", "yes"}}, "'done' must be true or false"},
      {{{"title", "x"}, {"done", 1}}, "'done' must be true or false"},
      {{{"title", "x"}, {"id", 7}}, "unknown field 'id'"},
      {json::array({1, 2}), "the body must be a JSON object"},
      {json("a string"), "the body must be a JSON object"},
  };
  for (const Case& test : cases) {
    std::string what = "POST " + test.body.dump();
    EXPECT_EQ(expect_json_error(api.post("/todos", test.body), 422, what), test.error) << what;
  }
  // The bounds are inclusive: 200 bytes is fine.
  HttpResponse longest = api.post("/todos", {{"title", std::string(200, 'a')}});
  EXPECT_EQ(longest.status, 201u) << longest.body;
  json stored = body_json(longest);

  // PUT needs a title; PATCH checks what it is given, and a rejected update
  // leaves the todo as it was.
  EXPECT_EQ(expect_json_error(api.put("/todos/1", {{"done", true}}), 422, "PUT without title"),
            "'title' is required");
  EXPECT_EQ(expect_json_error(api.patch("/todos/1", {{"title", ""}}), 422, "PATCH empty title"),
            "'title' must be 1 to 200 bytes");
  EXPECT_EQ(expect_json_error(api.patch("/todos/1", {{"done", true}, {"title", 3}}), 422,
                              "PATCH title not a string"),
            "'title' must be a string");
  EXPECT_EQ(body_json(api.get("/todos/1")), stored);

  // None of the rejected bodies created anything.
  EXPECT_EQ(body_json(api.get("/todos")), json::array({stored}));
}

TEST(JsonApiExample, MalformedJsonIs400WithJsonError) {
  std::optional<Cluster> cluster = start_json_api();
  ASSERT_TRUE(cluster);
  ApiClient api(cluster->port);
  HttpResponse created = api.post("/todos", {{"title", "keep me"}});
  ASSERT_EQ(created.status, 201u) << created.body;

  const std::vector<std::string> bodies = {R"({"title": )", R"({"title": "x",})", "not json", "",
                                           "{\"title\": \"x\"} trailing",
                                           // Invalid UTF-8: the parser's message quotes it, and the
                                           // answer must still be valid JSON.
                                           "\xff\xfe"};
  for (const std::string& body : bodies) {
    for (const char* method : {"POST", "PUT", "PATCH"}) {
      std::string target = std::string(method) == "POST" ? "/todos" : "/todos/1";
      std::string what = std::string(method) + " with body '" + body + "'";
      std::string message = expect_json_error(api.call(method, target, body), 400, what);
      EXPECT_EQ(message.rfind("invalid JSON body", 0), 0u) << what << ": " << message;
    }
  }
  // The store is untouched and the connection still good.
  EXPECT_EQ(body_json(api.get("/todos")), json::array({body_json(created)}));
}

TEST(JsonApiExample, BodyNotDeclaredJsonIs415) {
  std::optional<Cluster> cluster = start_json_api();
  ASSERT_TRUE(cluster);
  ApiClient api(cluster->port);
  HttpResponse created = api.post("/todos", {{"title", "keep me"}});
  ASSERT_EQ(created.status, 201u) << created.body;
  const std::string body = json{{"title", "x"}}.dump();

  struct Case {
    std::string method;
    std::string target;
    std::string content_type;  // "" sends none
  };
  const std::vector<Case> cases = {
      {"POST", "/todos", ""},
      {"POST", "/todos", "text/plain"},
      {"POST", "/todos", "application/x-www-form-urlencoded"},
      {"PUT", "/todos/1", "text/plain"},
      {"PATCH", "/todos/1", ""},
      {"PATCH", "/todos/1", "application/xml"},
  };
  for (const Case& test : cases) {
    std::string what =
        test.method + " " + test.target + " with Content-Type '" + test.content_type + "'";
    EXPECT_EQ(
        expect_json_error(api.call(test.method, test.target, body, test.content_type), 415, what),
        "send the body as Content-Type: application/json")
        << what;
  }
  // A body-less POST is not declared JSON either.
  EXPECT_EQ(api.call("POST", "/todos").status, 415u);
  // Parameters after the type are fine.
  HttpResponse with_charset = api.call("POST", "/todos", body, "application/json; charset=utf-8");
  EXPECT_EQ(with_charset.status, 201u) << with_charset.body;

  // Only the two created ones exist.
  json list = body_json(api.get("/todos"));
  EXPECT_EQ(list.size(), 2u) << list.dump();
}

// RFC 9110 8.3.1: "The type and subtype tokens are case-insensitive", and
// Express's express.json() (type-is) accepts "Application/JSON".
TEST(JsonApiExample, JsonContentTypeIsMatchedCaseInsensitively) {
  std::optional<Cluster> cluster = start_json_api();
  ASSERT_TRUE(cluster);
  ApiClient api(cluster->port);
  const std::string body = json{{"title", "x"}}.dump();

  HttpResponse response = api.call("POST", "/todos", body, "Application/JSON");
  EXPECT_EQ(response.status, 201u)
      << "a JSON body declared 'Application/JSON' was refused: " << response.body;
}

TEST(JsonApiExample, MalformedIdIs400) {
  std::optional<Cluster> cluster = start_json_api();
  ASSERT_TRUE(cluster);
  ApiClient api(cluster->port);
  ASSERT_EQ(api.post("/todos", {{"title", "one"}}).status, 201u);

  const std::string kMessage = "id must be a positive integer";
  for (const char* id : {"abc", "0", "-1", "1.5", "1x", "%201", "99999999999999999999999"}) {
    std::string target = std::string("/todos/") + id;
    EXPECT_EQ(expect_json_error(api.get(target), 400, "GET " + target), kMessage);
    EXPECT_EQ(expect_json_error(api.put(target, {{"title", "x"}}), 400, "PUT " + target), kMessage);
    EXPECT_EQ(expect_json_error(api.patch(target, {{"done", true}}), 400, "PATCH " + target),
              kMessage);
    EXPECT_EQ(expect_json_error(api.del(target), 400, "DELETE " + target), kMessage);
  }
  // Todo 1 survived every one of them.
  HttpResponse one = api.get("/todos/1");
  EXPECT_EQ(one.status, 200u);
  EXPECT_EQ(body_json(one), (json{{"id", 1}, {"title", "one"}, {"done", false}}));
}

TEST(JsonApiExample, QueryFiltersByDone) {
  std::optional<Cluster> cluster = start_json_api();
  ASSERT_TRUE(cluster);
  ApiClient api(cluster->port);
  ASSERT_EQ(api.post("/todos", {{"title", "a"}}).status, 201u);
  ASSERT_EQ(api.post("/todos", {{"title", "b"}, {"done", true}}).status, 201u);
  ASSERT_EQ(api.post("/todos", {{"title", "c"}}).status, 201u);
  ASSERT_EQ(api.patch("/todos/3", {{"done", true}}).status, 200u);

  json a = {{"id", 1}, {"title", "a"}, {"done", false}};
  json b = {{"id", 2}, {"title", "b"}, {"done", true}};
  json c = {{"id", 3}, {"title", "c"}, {"done", true}};

  HttpResponse done = api.get("/todos?done=true");
  EXPECT_EQ(done.status, 200u);
  EXPECT_EQ(body_json(done), json::array({b, c})) << done.body;
  HttpResponse open = api.get("/todos?done=false");
  EXPECT_EQ(open.status, 200u);
  EXPECT_EQ(body_json(open), json::array({a})) << open.body;
  EXPECT_EQ(body_json(api.get("/todos")), json::array({a, b, c}));
  // Other query parameters are ignored.
  EXPECT_EQ(body_json(api.get("/todos?page=2&done=true")), json::array({b, c}));

  for (const char* query : {"?done=maybe", "?done=", "?done=TRUE", "?done=1"}) {
    std::string target = std::string("/todos") + query;
    EXPECT_EQ(expect_json_error(api.get(target), 400, "GET " + target),
              "'done' must be true or false");
  }
}

// ---- json_api: the asynchronous route ------------------------------------------

// Loop::after(delay) promises the callback `delay` from now, and /slow?ms=N
// promises an answer after N ms: waited_ms, measured by the worker from its
// handler to the timer's callback, must be at least N. Several requests one
// after the other, so that an early timer does not go unnoticed by luck.
TEST(JsonApiExample, SlowRouteAnswersAfterItsDelay) {
  std::optional<Cluster> cluster = start_json_api();
  ASSERT_TRUE(cluster);

  constexpr int kRequests = 12;
  constexpr int kDelayMs = 200;
  HttpClient client(cluster->port, kSlowIoTimeout);
  std::vector<std::int64_t> waited;
  for (int i = 0; i < kRequests; ++i) {
    Clock::time_point sent_at = Clock::now();
    ASSERT_TRUE(client.send(get_request("/slow?ms=" + std::to_string(kDelayMs))))
        << "request " << i << ": " << client.error();
    HttpReadResult result = client.read_responses(1);
    double elapsed = elapsed_ms(sent_at);
    ASSERT_TRUE(result.ok()) << "request " << i << ": " << result.error;
    const HttpResponse& response = result.responses[0];
    EXPECT_EQ(response.status, 200u) << "request " << i << ": " << response.body;
    EXPECT_EQ(response.header("Content-Type"), kJsonType);
    EXPECT_TRUE(response.keep_alive) << "request " << i;
    waited.push_back(waited_ms(response));
    EXPECT_GE(waited.back(), kDelayMs)
        << "request " << i << ": the worker answered /slow?ms=" << kDelayMs << " after "
        << waited.back() << " ms";
    EXPECT_GE(elapsed, kDelayMs) << "request " << i << ": the answer came before the delay";
  }
  std::cout << "[ slow     ] waited_ms of " << kRequests << " x /slow?ms=" << kDelayMs << ":";
  for (std::int64_t value : waited) std::cout << " " << value;
  std::cout << "\n";

  // The connection is still good after asynchronous answers.
  ASSERT_TRUE(client.send(get_request("/todos"))) << client.error();
  HttpReadResult after = client.read_responses(1);
  ASSERT_TRUE(after.ok()) << after.error;
  EXPECT_EQ(after.responses[0].status, 200u);
}

TEST(JsonApiExample, SlowRouteRejectsABadDelay) {
  std::optional<Cluster> cluster = start_json_api();
  ASSERT_TRUE(cluster);
  ApiClient api(cluster->port);
  for (const char* ms : {"0", "10001", "abc", "-5", ""}) {
    std::string target = std::string("/slow?ms=") + ms;
    EXPECT_EQ(expect_json_error(api.get(target), 400, "GET " + target), "'ms' must be 1 to 10000");
  }
  // Without ms, 1 ms.
  HttpResponse fast = api.get("/slow");
  EXPECT_EQ(fast.status, 200u);
  EXPECT_GE(waited_ms(fast), 0) << fast.body;
}

TEST(JsonApiExample, PipelinedSlowAndFastAnswerInRequestOrder) {
  std::optional<Cluster> cluster = start_json_api();
  ASSERT_TRUE(cluster);

  // The first request's answer is ready last; the third's is ready before the
  // first's. Responses must still leave in request order.
  HttpClient client(cluster->port, kSlowIoTimeout);
  ASSERT_TRUE(client.send(get_request("/slow?ms=300") + get_request("/todos") +
                          get_request("/slow?ms=50") + get_request("/todos?done=true")))
      << client.error();
  HttpReadResult result = client.read_responses(4);
  ASSERT_TRUE(result.ok()) << result.error;
  ASSERT_EQ(result.responses.size(), 4u);
  EXPECT_EQ(result.responses[0].status, 200u);
  EXPECT_GE(waited_ms(result.responses[0]), 300)
      << "response 1 should be /slow?ms=300: " << result.responses[0].body;
  EXPECT_EQ(result.responses[1].status, 200u);
  EXPECT_EQ(body_json(result.responses[1]), json::array())
      << "response 2 should be /todos: " << result.responses[1].body;
  EXPECT_EQ(result.responses[2].status, 200u);
  std::int64_t third = waited_ms(result.responses[2]);
  EXPECT_GE(third, 50) << "response 3 should be /slow?ms=50: " << result.responses[2].body;
  EXPECT_EQ(result.responses[3].status, 200u);
  EXPECT_EQ(body_json(result.responses[3]), json::array())
      << "response 4 should be /todos?done=true: " << result.responses[3].body;
  for (const HttpResponse& response : result.responses) EXPECT_TRUE(response.keep_alive);
  EXPECT_FALSE(result.server_closed);
}

TEST(JsonApiExample, ConcurrentSlowRequestsOverlapInOneWorker) {
  std::optional<Cluster> cluster = start_json_api();
  ASSERT_TRUE(cluster);

  constexpr int kConnections = 20;
  constexpr int kDelayMs = 300;
  std::vector<std::unique_ptr<HttpClient>> clients;
  Clock::time_point started = Clock::now();
  for (int i = 0; i < kConnections; ++i) {
    clients.push_back(std::make_unique<HttpClient>(cluster->port, kSlowIoTimeout));
    ASSERT_TRUE(clients.back()->send(get_request("/slow?ms=" + std::to_string(kDelayMs))))
        << "connection " << i << ": " << clients.back()->error();
  }
  for (int i = 0; i < kConnections; ++i) {
    HttpReadResult result = clients[i]->read_responses(1);
    ASSERT_TRUE(result.ok()) << "connection " << i << ": " << result.error;
    EXPECT_EQ(result.responses[0].status, 200u) << "connection " << i;
    EXPECT_GE(waited_ms(result.responses[0]), kDelayMs)
        << "connection " << i << ": " << result.responses[0].body;
  }
  double elapsed = elapsed_ms(started);
  std::cout << "[ slow     ] " << kConnections << " x /slow?ms=" << kDelayMs << " answered in "
            << elapsed << " ms by one worker\n";
  // Served one after the other they would take 20 x 300 ms.
  EXPECT_LT(elapsed, static_cast<double>(kConnections * kDelayMs))
      << "the slow requests were not served concurrently";

  // All by the one worker, which is still the first one.
  std::vector<LineMatch> handled = cluster->herd->wait_for_lines(kRequestHandled, kConnections);
  ASSERT_EQ(handled.size(), static_cast<std::size_t>(kConnections));
  for (const LineMatch& line : handled) EXPECT_EQ(line[1], cluster->ready[0][2]) << line.line;
  EXPECT_EQ(cluster->herd->worker_pids().size(), 1u);
}

TEST(JsonApiExample, FastRequestsAreServedWhileSlowOnesWait) {
  std::optional<Cluster> cluster = start_json_api();
  ASSERT_TRUE(cluster);

  constexpr int kSlow = 5;
  constexpr int kDelayMs = 4000;
  std::vector<std::unique_ptr<HttpClient>> slow;
  Clock::time_point slow_sent = Clock::now();
  for (int i = 0; i < kSlow; ++i) {
    slow.push_back(std::make_unique<HttpClient>(cluster->port, kSlowIoTimeout));
    ASSERT_TRUE(slow.back()->send(get_request("/slow?ms=" + std::to_string(kDelayMs))))
        << "slow connection " << i << ": " << slow.back()->error();
  }

  // Meanwhile, on another connection: a whole little CRUD exchange.
  {
    ApiClient api(cluster->port);
    EXPECT_EQ(api.get("/todos").status, 200u);
    EXPECT_EQ(api.post("/todos", {{"title", "meanwhile"}}).status, 201u);
    EXPECT_EQ(api.patch("/todos/1", {{"done", true}}).status, 200u);
    EXPECT_EQ(body_json(api.get("/todos?done=true")).size(), 1u);
  }
  double fast_done = elapsed_ms(slow_sent);
  // Were the worker blocked by the slow requests, these would wait for them.
  EXPECT_LT(fast_done, static_cast<double>(kDelayMs))
      << "fast requests waited for the slow ones (" << fast_done << " ms)";

  for (int i = 0; i < kSlow; ++i) {
    HttpReadResult result = slow[i]->read_responses(1);
    ASSERT_TRUE(result.ok()) << "slow connection " << i << ": " << result.error;
    EXPECT_EQ(result.responses[0].status, 200u) << "slow connection " << i;
    EXPECT_GE(waited_ms(result.responses[0]), kDelayMs)
        << "slow connection " << i << ": " << result.responses[0].body;
  }
  EXPECT_GE(elapsed_ms(slow_sent), static_cast<double>(kDelayMs));
}

TEST(JsonApiExample, ClientLeavingBeforeSlowResponseDoesNotHurtTheWorker) {
  std::optional<Cluster> cluster = start_json_api();
  ASSERT_TRUE(cluster);
  HerdProcess& herd = *cluster->herd;
  std::vector<pid_t> started = herd.worker_pids();
  ASSERT_EQ(started.size(), 1u);
  pid_t worker = started[0];

  constexpr int kRounds = 20;
  const std::string slow_request = get_request("/slow?ms=500");
  for (int round = 0; round < kRounds; ++round) {
    {
      HttpClient leaving(cluster->port);
      ASSERT_TRUE(leaving.send(slow_request)) << "round " << round << ": " << leaving.error();
    }  // closed at once, long before the answer
    HttpReadResult next = http_get(cluster->port, "/todos");
    ASSERT_TRUE(next.ok()) << "round " << round << ": " << next.error;
    EXPECT_EQ(next.responses[0].status, 200u) << "round " << round;
    ASSERT_TRUE(pid_alive(worker)) << "the worker died in round " << round;
  }

  // A slow request started after all of them ends after all their timers
  // were due: had one fired on a gone connection, it has by now.
  HttpClient last(cluster->port, kSlowIoTimeout);
  ASSERT_TRUE(last.send(get_request("/slow?ms=600"))) << last.error();
  HttpReadResult result = last.read_responses(1);
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.responses[0].status, 200u);
  EXPECT_GE(waited_ms(result.responses[0]), 600);

  EXPECT_TRUE(pid_alive(worker));
  EXPECT_EQ(herd.worker_pids(), started) << "a worker was started after the first";
  json status = checked_status(*cluster);
  ASSERT_TRUE(status.contains("workers") && status["workers"].size() == 1u) << status.dump();
  EXPECT_EQ(static_cast<pid_t>(number(status["workers"][0], "pid")), worker) << status.dump();
  EXPECT_EQ(number(status["workers"][0], "restarts"), 0u) << status.dump();
  EXPECT_EQ(number(status.at("master"), "restarts_total"), 0u) << status.dump();

  // The worker read every request (the handlers ran), and answered only the
  // ones whose client stayed: 20 /todos and the last /slow, no 5xx.
  const std::uint64_t kAnswered = kRounds + 1;
  const std::uint64_t bytes_sent = kRounds * (slow_request.size() + get_request("/todos").size()) +
                                   get_request("/slow?ms=600").size();
  json stats = wait_for_stats(
      *cluster,
      [&](const json& reply) {
        const json& total = reply.at("total");
        return number(total, "requests") >= kAnswered && number(total, "bytes_in") >= bytes_sent;
      },
      "the worker's counters never showed every request read and answered");
  if (stats.is_object() && stats.contains("total")) {
    const json& total = stats["total"];
    EXPECT_EQ(number(total, "bytes_in"), bytes_sent) << stats.dump();
    EXPECT_EQ(number(total, "requests"), kAnswered) << stats.dump();
    EXPECT_EQ(number(total.at("responses"), "2xx"), kAnswered) << stats.dump();
    EXPECT_EQ(number(total.at("responses"), "5xx"), 0u) << stats.dump();
  }
  EXPECT_FALSE(herd.wait_for_line(kWorkerDied, Milliseconds{0})) << "a worker died";
}

TEST(JsonApiExample, GracefulStopFinishesAnInFlightSlowRequest) {
  std::optional<Cluster> cluster = start_json_api();
  ASSERT_TRUE(cluster);
  HerdProcess& herd = *cluster->herd;
  std::vector<pid_t> workers = herd.worker_pids();
  ASSERT_EQ(workers.size(), 1u);

  constexpr int kDelayMs = 800;
  const std::string request = get_request("/slow?ms=" + std::to_string(kDelayMs));
  HttpClient client(cluster->port, kSlowIoTimeout);
  Clock::time_point sent_at = Clock::now();
  ASSERT_TRUE(client.send(request)) << client.error();
  // The worker has read the request (its handler ran, the timer is set) once
  // its byte counter says so.
  json stats = wait_for_stats(
      *cluster,
      [&](const json& reply) { return number(reply.at("total"), "bytes_in") >= request.size(); },
      "the worker never read the slow request");
  ASSERT_GE(number(stats.at("total"), "bytes_in"), request.size());
  double read_after = elapsed_ms(sent_at);
  if (read_after >= kDelayMs) {
    // The answer may already be out: the test would not prove anything.
    GTEST_SKIP() << "the machine is too slow: the request was read only after " << read_after
                 << " ms";
  }

  ASSERT_TRUE(herd.send_signal(SIGTERM));
  HttpReadResult result = client.read_responses(1);
  ASSERT_TRUE(result.ok()) << "the in-flight request was not answered: " << result.error;
  const HttpResponse& response = result.responses[0];
  EXPECT_EQ(response.status, 200u) << response.body;
  EXPECT_GE(waited_ms(response), kDelayMs) << response.body;
  EXPECT_FALSE(response.keep_alive) << "the last response of a draining worker is not keep-alive";
  EXPECT_EQ(response.header("Connection"), "close");
  EXPECT_TRUE(client.wait_for_close(kIoTimeout)) << "the drained connection was left open";

  std::optional<int> status = herd.wait_exit(kSettleTimeout);
  ASSERT_TRUE(status) << "herd still running " << kSettleTimeout.count() << " ms after SIGTERM";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << "herd ended with " << describe_status(*status);
  EXPECT_TRUE(herd.wait_for_line(
      std::regex("Worker " + std::to_string(workers[0]) + R"( died \(code 0\))")))
      << "the json_api worker did not exit with code 0";
  EXPECT_FALSE(pid_alive(workers[0]));
}

TEST(JsonApiExample, StartedWithoutHerdExitsWithStatus2) {
  HerdProcess api({}, kJsonApiPath);
  ASSERT_GT(api.pid(), 0) << api.start_error();
  std::optional<int> status = api.wait_exit(kStartTimeout);
  ASSERT_TRUE(status) << "json_api without a master kept running";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2)
      << "json_api ended with " << describe_status(*status);
  EXPECT_TRUE(api.wait_for_line(std::regex("HERD_CHANNEL_FD"), kIoTimeout))
      << "stderr does not name HERD_CHANNEL_FD: " << api.output();
}

}  // namespace
}  // namespace herd::e2e
