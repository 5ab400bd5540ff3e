#include "herd/app.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "tests/worker/session_harness.h"
#include "worker/exchange.h"
#include "worker/http_session.h"

namespace herd {
namespace {

using namespace herd::testing;
using namespace std::chrono_literals;

// A request as a client would write it; Content-Length is added for a body.
std::string request(std::string_view method, std::string_view target, std::string_view body = {},
                    std::string_view extra_headers = {}) {
  std::string text = std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nHost: a\r\n";
  text += extra_headers;
  if (!body.empty()) text += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  text += "\r\n";
  text += body;
  return text;
}

std::string get(std::string_view target) {
  return request("GET", target);
}

// Serves `input`, one request, on a fresh session and parses the one response.
std::optional<ParsedResponse> serve(App app, std::string_view input, bool head = false) {
  TestSession session(HttpLimits{}, std::move(app));
  std::string output;
  session.feed(input, output);
  return only_response(output, head);
}

// The body `app` answers `input` with ("" and a test failure if unparseable).
std::string body_of(App app, std::string_view input) {
  std::optional<ParsedResponse> response = serve(std::move(app), input);
  return response ? response->body() : std::string();
}

bool has_header(const ParsedResponse& response, std::string_view name) {
  return response.find(name) != response.end();
}

// Gives a test the exchange behind a handle, to check the lifetime rules of
// worker/exchange.h that no public call can observe without undefined
// behaviour.
class ExchangePeek : public Request {
 public:
  explicit ExchangePeek(const Request& request) : Request(request) {}
  Exchange* exchange() const { return exchange_; }
};

// ---- routing ---------------------------------------------------------------

TEST(AppTest, RouteParamIsPercentDecoded) {
  App app;
  app.get("/users/:id",
          [](Request& req, Response& res) { res.send(std::string(req.param("id"))); });

  EXPECT_EQ(body_of(std::move(app), get("/users/john%20doe")), "john doe");
}

TEST(AppTest, WildcardIsParamZero) {
  App app;
  app.get("/static/*", [](Request& req, Response& res) { res.send(std::string(req.param("0"))); });

  EXPECT_EQ(body_of(std::move(app), get("/static/css/a%20b.css")), "css/a b.css");
}

TEST(AppTest, FirstRegisteredMatchingRouteWins) {
  App app;
  app.get("/users/:id", [](Request&, Response& res) { res.send("param route"); });
  app.get("/users/me", [](Request&, Response& res) { res.send("literal route"); });

  EXPECT_EQ(body_of(std::move(app), get("/users/me")), "param route");
}

TEST(AppTest, EachMethodHelperAnswersOnlyItsMethod) {
  auto make_app = [] {
    App app;
    app.post("/r", [](Request&, Response& res) { res.send("post"); });
    app.put("/r", [](Request&, Response& res) { res.send("put"); });
    app.patch("/r", [](Request&, Response& res) { res.send("patch"); });
    app.del("/r", [](Request&, Response& res) { res.send("delete"); });
    return app;
  };

  EXPECT_EQ(body_of(make_app(), request("POST", "/r")), "post");
  EXPECT_EQ(body_of(make_app(), request("PUT", "/r")), "put");
  EXPECT_EQ(body_of(make_app(), request("PATCH", "/r")), "patch");
  EXPECT_EQ(body_of(make_app(), request("DELETE", "/r")), "delete");
  EXPECT_EQ(body_of(make_app(), get("/r")), "Cannot GET /r");
}

TEST(AppTest, AllRouteAnswersEveryMethod) {
  auto make_app = [] {
    App app;
    app.all("/any",
            [](Request& req, Response& res) { res.send("all " + std::string(req.method())); });
    return app;
  };

  EXPECT_EQ(body_of(make_app(), get("/any")), "all GET");
  EXPECT_EQ(body_of(make_app(), request("POST", "/any")), "all POST");
  EXPECT_EQ(body_of(make_app(), request("OPTIONS", "/any")), "all OPTIONS");
  EXPECT_EQ(body_of(make_app(), request("DELETE", "/any")), "all DELETE");
}

TEST(AppTest, HeadIsAnsweredByGetRouteWithItsContentLengthAndNoBody) {
  std::string seen_method;
  App app;
  app.get("/doc", [&](Request& req, Response& res) {
    seen_method = req.method();
    res.send("twelve bytes");
  });
  TestSession session(HttpLimits{}, std::move(app));
  std::string output;

  session.feed(request("HEAD", "/doc"), output);

  EXPECT_EQ(seen_method, "HEAD");
  ASSERT_GE(output.size(), 4u);
  EXPECT_EQ(output.substr(output.size() - 4), "\r\n\r\n") << "a body followed the headers";
  std::optional<ParsedResponse> response = only_response(output, /*head=*/true);
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 200u);
  EXPECT_EQ(header(*response, http::field::content_length), "12");
  EXPECT_TRUE(response->body().empty());
}

TEST(AppTest, UnroutedRequestGetsCannotMethodPath) {
  std::optional<ParsedResponse> response = serve(App(), request("POST", "/nowhere"));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 404u);
  EXPECT_EQ(response->body(), "Cannot POST /nowhere");
  EXPECT_EQ(header(*response, http::field::content_type), "text/html; charset=utf-8");
}

TEST(AppTest, UnroutedHeadSaysCannotGet) {
  std::optional<ParsedResponse> response = serve(App(), request("HEAD", "/nowhere"), /*head=*/true);

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 404u);
  // The body is not sent, but its length is the GET answer's.
  EXPECT_EQ(header(*response, http::field::content_length),
            std::to_string(std::string_view("Cannot GET /nowhere").size()));
  EXPECT_TRUE(response->body().empty());
}

TEST(AppTest, PathRoutedForAnotherMethodOnlyGets404Not405) {
  App app;
  app.get("/only-get", [](Request&, Response& res) { res.send("got"); });

  std::optional<ParsedResponse> response = serve(std::move(app), request("POST", "/only-get"));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 404u);
  EXPECT_EQ(response->body(), "Cannot POST /only-get");
  EXPECT_FALSE(has_header(*response, "Allow"));
}

// ---- query -----------------------------------------------------------------

TEST(AppTest, QueryValueIsDecoded) {
  std::optional<std::string> a;
  std::optional<std::string> b;
  App app;
  app.get("/q", [&](Request& req, Response& res) {
    a = req.query("a");
    b = req.query("b");
    res.end();
  });

  serve(std::move(app), get("/q?a=hello+world%21&b=%E2%9C%93"));

  EXPECT_EQ(a, "hello world!");
  EXPECT_EQ(b, "\xE2\x9C\x93");
}

TEST(AppTest, RepeatedQueryKeysAreAllKeptInOrder) {
  QueryParams pairs;
  std::optional<std::string> first_tag;
  App app;
  app.get("/q", [&](Request& req, Response& res) {
    pairs = req.query_params();
    first_tag = req.query("tag");
    res.end();
  });

  serve(std::move(app), get("/q?tag=x&other=1&tag=y"));

  EXPECT_EQ(pairs, (QueryParams{{"tag", "x"}, {"other", "1"}, {"tag", "y"}}));
  EXPECT_EQ(first_tag, "x");
}

TEST(AppTest, AbsentQueryParamIsNullopt) {
  bool absent_with_query = false;
  bool absent_without_query = false;
  std::size_t pairs_without_query = 99;
  App app;
  app.get("/q", [&](Request& req, Response& res) {
    absent_with_query = !req.query("b").has_value();
    res.end();
  });
  app.get("/plain", [&](Request& req, Response& res) {
    absent_without_query = !req.query("a").has_value();
    pairs_without_query = req.query_params().size();
    res.end();
  });
  TestSession session(HttpLimits{}, std::move(app));
  std::string output;

  session.feed(get("/q?a=1") + get("/plain"), output);

  EXPECT_TRUE(absent_with_query);
  EXPECT_TRUE(absent_without_query);
  EXPECT_EQ(pairs_without_query, 0u);
}

// ---- request headers -------------------------------------------------------

TEST(AppTest, RequestHeaderLookupIgnoresCase) {
  std::optional<std::string> lower;
  std::optional<std::string> upper;
  App app;
  app.post("/h", [&](Request& req, Response& res) {
    lower = req.header("content-type");
    upper = req.header("CONTENT-TYPE");
    res.end();
  });

  serve(std::move(app), request("POST", "/h", "{}", "Content-Type: application/json\r\n"));

  EXPECT_EQ(lower, "application/json");
  EXPECT_EQ(upper, "application/json");
}

TEST(AppTest, AbsentRequestHeaderIsNullopt) {
  bool absent = false;
  App app;
  app.get("/h", [&](Request& req, Response& res) {
    absent = !req.header("X-Missing").has_value();
    res.end();
  });

  serve(std::move(app), get("/h"));

  EXPECT_TRUE(absent);
}

TEST(AppTest, HeadersListsEveryRequestHeaderInOrder) {
  std::vector<std::pair<std::string, std::string>> seen;
  App app;
  app.get("/h", [&](Request& req, Response& res) {
    for (auto [name, value] : req.headers()) seen.emplace_back(name, value);
    res.end();
  });

  serve(std::move(app), request("GET", "/h", {}, "X-One: 1\r\nx-two: 2\r\n"));

  EXPECT_EQ(seen, (std::vector<std::pair<std::string, std::string>>{
                      {"Host", "a"}, {"X-One", "1"}, {"x-two", "2"}}));
}

// ---- middleware ------------------------------------------------------------

TEST(AppTest, MiddlewareRunsInRegistrationOrderInterleavedWithRoutes) {
  std::vector<std::string> order;
  App app;
  app.use([&](Request&, Response&, Next& next) {
    order.push_back("first middleware");
    next();
  });
  app.get("/x", [&](Request&, Response&, Next& next) {
    order.push_back("first route");
    next();
  });
  app.use([&](Request&, Response&, Next& next) {
    order.push_back("second middleware");
    next();
  });
  app.get("/x", [&](Request&, Response& res) {
    order.push_back("second route");
    res.send("done");
  });

  EXPECT_EQ(body_of(std::move(app), get("/x")), "done");
  EXPECT_EQ(order, (std::vector<std::string>{"first middleware", "first route", "second middleware",
                                             "second route"}));
}

TEST(AppTest, MiddlewareThatDoesNotCallNextEndsTheChain) {
  bool route_ran = false;
  App app;
  app.use([](Request&, Response& res, Next&) { res.status(401).send("stopped"); });
  app.get("/", [&](Request&, Response& res) {
    route_ran = true;
    res.send("route");
  });

  std::optional<ParsedResponse> response = serve(std::move(app), get("/"));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 401u);
  EXPECT_EQ(response->body(), "stopped");
  EXPECT_FALSE(route_ran);
}

TEST(AppTest, PrefixMiddlewareMatchesOnlyOnSegmentBoundary) {
  std::vector<std::string> seen;
  App app;
  app.use("/api", [&](Request& req, Response&, Next& next) {
    seen.emplace_back(req.path());
    next();
  });
  TestSession session(HttpLimits{}, std::move(app));
  std::string output;

  session.feed(get("/api") + get("/api/x") + get("/apix") + get("/"), output);

  EXPECT_EQ(seen, (std::vector<std::string>{"/api", "/api/x"}));
  EXPECT_EQ(session.host().statuses, (std::vector<unsigned>{404, 404, 404, 404}));
}

TEST(AppTest, LocalsPassDataFromMiddlewareToRoute) {
  App app;
  app.use([](Request& req, Response&, Next& next) {
    req.locals()["user"] = "ann";
    next();
  });
  app.get("/me", [](Request& req, Response& res) {
    res.send(req.locals().value("user", std::string("nobody")));
  });

  EXPECT_EQ(body_of(std::move(app), get("/me")), "ann");
}

TEST(AppTest, LocalsStartEmptyForEachRequest) {
  std::vector<std::string> dumps;
  App app;
  app.get("/", [&](Request& req, Response& res) {
    dumps.push_back(req.locals().dump());
    req.locals()["seen"] = true;
    res.end();
  });
  TestSession session(HttpLimits{}, std::move(app));
  std::string output;

  session.feed(get("/") + get("/"), output);

  EXPECT_EQ(dumps, (std::vector<std::string>{"null", "null"}));
}

TEST(AppTest, CallingNextTwiceRunsTheNextLayerOnce) {
  int runs = 0;
  App app;
  app.use([](Request&, Response&, Next& next) {
    next();
    next();
  });
  app.get("/", [&](Request&, Response& res) {
    ++runs;
    res.send("once");
  });
  TestSession session(HttpLimits{}, std::move(app));
  std::string output;

  session.feed(get("/"), output);

  EXPECT_EQ(runs, 1);
  std::optional<ParsedResponse> response = only_response(output);
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->body(), "once");
}

TEST(AppTest, NextKeptByMiddlewareResumesTheChainLater) {
  std::optional<Next> kept;
  App app;
  app.use([&](Request&, Response&, Next& next) { kept.emplace(next); });
  app.get("/", [](Request&, Response& res) { res.send("resumed"); });
  TestSession session(HttpLimits{}, std::move(app));
  std::string output;

  session.feed(get("/"), output);
  ASSERT_TRUE(kept.has_value());
  EXPECT_TRUE(output.empty());
  EXPECT_EQ(session->outstanding(), 1u);

  (*kept)();
  kept.reset();

  EXPECT_EQ(session.host().output_ready_calls, 1);
  session.take_output(output);
  std::optional<ParsedResponse> response = only_response(output);
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->body(), "resumed");
  EXPECT_EQ(session->outstanding(), 0u);
}

// ---- responses -------------------------------------------------------------

TEST(AppTest, StatusSetAndSendMakeTheResponse) {
  App app;
  app.post("/items",
           [](Request&, Response& res) { res.status(201).set("X-Id", "7").send("made"); });

  std::optional<ParsedResponse> response = serve(std::move(app), request("POST", "/items"));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 201u);
  EXPECT_EQ(header(*response, "X-Id"), "7");
  EXPECT_EQ(response->body(), "made");
  EXPECT_EQ(header(*response, http::field::content_type), "text/html; charset=utf-8");
  EXPECT_EQ(header(*response, http::field::content_length), "4");
}

TEST(AppTest, JsonSendsDumpWithJsonContentType) {
  App app;
  app.get("/j", [](Request&, Response& res) { res.json({{"a", 1}, {"b", "two"}}); });

  std::optional<ParsedResponse> response = serve(std::move(app), get("/j"));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 200u);
  EXPECT_EQ(header(*response, http::field::content_type), "application/json; charset=utf-8");
  EXPECT_EQ(nlohmann::json::parse(response->body()), (nlohmann::json{{"a", 1}, {"b", "two"}}));
}

TEST(AppTest, ContentTypeSetByHandlerOverridesDefault) {
  App app;
  app.get("/j", [](Request&, Response& res) {
    res.type("application/vnd.api+json");
    res.json(nlohmann::json::array());
  });

  std::optional<ParsedResponse> response = serve(std::move(app), get("/j"));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(header(*response, http::field::content_type), "application/vnd.api+json");
  EXPECT_EQ(response->body(), "[]");
}

TEST(AppTest, RedirectAnswers302WithLocationAndFoundBody) {
  App app;
  app.get("/old", [](Request&, Response& res) { res.redirect("/new"); });

  std::optional<ParsedResponse> response = serve(std::move(app), get("/old"));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 302u);
  EXPECT_EQ(header(*response, http::field::location), "/new");
  EXPECT_EQ(response->body(), "Found. Redirecting to /new");
}

TEST(AppTest, RedirectUsesTheGivenStatus) {
  App app;
  app.get("/old", [](Request&, Response& res) { res.redirect("https://example.com/", 301); });

  std::optional<ParsedResponse> response = serve(std::move(app), get("/old"));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 301u);
  EXPECT_EQ(header(*response, http::field::location), "https://example.com/");
  EXPECT_EQ(response->body(), "Moved Permanently. Redirecting to https://example.com/");
}

TEST(AppTest, RedirectWithNon3xxStatusThrows) {
  bool threw = false;
  App app;
  app.get("/old", [&](Request&, Response& res) {
    try {
      res.redirect("/new", 200);
    } catch (const std::invalid_argument&) {
      threw = true;
    }
    res.send("not redirected");
  });

  EXPECT_EQ(body_of(std::move(app), get("/old")), "not redirected");
  EXPECT_TRUE(threw);
}

TEST(AppTest, SendStatusAnswersWithReasonPhrase) {
  App app;
  app.get("/secret", [](Request&, Response& res) { res.send_status(403); });

  std::optional<ParsedResponse> response = serve(std::move(app), get("/secret"));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 403u);
  EXPECT_EQ(response->body(), "Forbidden");
  EXPECT_EQ(header(*response, http::field::content_type), "text/plain; charset=utf-8");
}

TEST(AppTest, EndSendsAnEmptyBody) {
  App app;
  app.get("/", [](Request&, Response& res) { res.status(202).end(); });

  std::optional<ParsedResponse> response = serve(std::move(app), get("/"));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 202u);
  EXPECT_EQ(header(*response, http::field::content_length), "0");
  EXPECT_TRUE(response->body().empty());
}

TEST(AppTest, NoContentResponseHasNoContentLengthAndNoBody) {
  App app;
  app.del("/item", [](Request&, Response& res) { res.status(204).send("dropped"); });
  app.get("/", [](Request&, Response& res) { res.send("Hello World!"); });
  TestSession session(HttpLimits{}, std::move(app));
  std::string output;

  session.feed(request("DELETE", "/item") + get("/"), output);

  std::string_view rest = output;
  std::optional<ParsedResponse> no_content = read_response(rest);
  std::optional<ParsedResponse> next = read_response(rest);
  ASSERT_TRUE(no_content && next);
  EXPECT_EQ(no_content->result_int(), 204u);
  EXPECT_FALSE(has_header(*no_content, "Content-Length"));
  EXPECT_TRUE(no_content->body().empty());
  EXPECT_EQ(output.find("dropped"), std::string::npos);
  // The response after it is read where the 204's headers end.
  EXPECT_EQ(next->body(), "Hello World!");
}

TEST(AppTest, AppendKeepsEverySetCookie) {
  App app;
  app.get("/", [](Request&, Response& res) {
    res.append("Set-Cookie", "a=1").append("Set-Cookie", "b=2").send("ok");
  });

  std::optional<ParsedResponse> response = serve(std::move(app), get("/"));

  ASSERT_TRUE(response.has_value());
  std::vector<std::string> cookies;
  auto [begin, end] = response->equal_range(http::field::set_cookie);
  for (auto it = begin; it != end; ++it) cookies.emplace_back(it->value());
  EXPECT_EQ(cookies, (std::vector<std::string>{"a=1", "b=2"}));
}

TEST(AppTest, SetReplacesHeaderOfAnyCase) {
  std::optional<std::string> got;
  App app;
  app.get("/", [&](Request&, Response& res) {
    res.set("X-Thing", "1").set("x-thing", "2");
    got = res.get("X-THING");
    res.send("ok");
  });

  std::optional<ParsedResponse> response = serve(std::move(app), get("/"));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(got, "2");
  EXPECT_EQ(response->count("X-Thing"), 1u);
  EXPECT_EQ(header(*response, "X-Thing"), "2");
}

TEST(AppTest, SetRejectsCrOrLfInValue) {
  App app;
  app.get("/", [](Request&, Response& res) {
    EXPECT_THROW(res.set("X-A", "a\r\nInjected: 1"), std::invalid_argument);
    EXPECT_THROW(res.set("X-A", "a\nInjected: 1"), std::invalid_argument);
    EXPECT_THROW(res.set("X-A", "a\rInjected: 1"), std::invalid_argument);
    EXPECT_THROW(res.append("X-A", "a\r\nInjected: 1"), std::invalid_argument);
    res.send("ok");
  });
  TestSession session(HttpLimits{}, std::move(app));
  std::string output;

  session.feed(get("/"), output);

  EXPECT_EQ(output.find("Injected"), std::string::npos);
  std::optional<ParsedResponse> response = only_response(output);
  ASSERT_TRUE(response.has_value());
  EXPECT_FALSE(has_header(*response, "X-A"));
}

TEST(AppTest, SetRejectsNameThatIsNotAToken) {
  App app;
  app.get("/", [](Request&, Response& res) {
    EXPECT_THROW(res.set("Bad Name", "v"), std::invalid_argument);
    EXPECT_THROW(res.set("X:Y", "v"), std::invalid_argument);
    EXPECT_THROW(res.set("", "v"), std::invalid_argument);
    EXPECT_THROW(res.set("X\r\nY", "v"), std::invalid_argument);
    res.send("ok");
  });

  EXPECT_EQ(body_of(std::move(app), get("/")), "ok");
}

TEST(AppTest, SetRejectsHeadersTheRuntimeOwns) {
  App app;
  app.get("/", [](Request&, Response& res) {
    EXPECT_THROW(res.set("Content-Length", "1"), std::invalid_argument);
    EXPECT_THROW(res.set("content-length", "1"), std::invalid_argument);
    EXPECT_THROW(res.append("Transfer-Encoding", "chunked"), std::invalid_argument);
    EXPECT_THROW(res.set("Date", "yesterday"), std::invalid_argument);
    res.send("four");
  });

  std::optional<ParsedResponse> response = serve(std::move(app), get("/"));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(header(*response, http::field::content_length), "4");
  EXPECT_EQ(header(*response, http::field::date), kDate);
}

TEST(AppTest, StatusOutside200To999Throws) {
  App app;
  app.get("/", [](Request&, Response& res) {
    EXPECT_THROW(res.status(99), std::invalid_argument);
    EXPECT_THROW(res.status(101), std::invalid_argument);
    EXPECT_THROW(res.status(1000), std::invalid_argument);
    res.send("unchanged");
  });

  std::optional<ParsedResponse> response = serve(std::move(app), get("/"));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 200u);
}

TEST(AppTest, ConnectionCloseSetByHandlerClosesAfterResponse) {
  App app;
  app.get("/bye", [](Request&, Response& res) { res.set("Connection", "close").send("bye"); });
  TestSession session(HttpLimits{}, std::move(app));
  std::string output;
  std::string first = get("/bye");

  HttpSession::FeedResult fed = session.feed(first + get("/"), output);

  EXPECT_TRUE(session->closing());
  EXPECT_EQ(fed.consumed, first.size());  // the pipelined request is not read
  std::optional<ParsedResponse> response = only_response(output);
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->body(), "bye");
  EXPECT_FALSE(response->keep_alive());
  EXPECT_EQ(header(*response, http::field::connection), "close");
}

TEST(AppTest, ConnectionHeaderOtherThanCloseIsRejected) {
  App app;
  app.get("/", [](Request&, Response& res) {
    EXPECT_THROW(res.set("Connection", "upgrade"), std::invalid_argument);
    res.send("ok");
  });
  TestSession session(HttpLimits{}, std::move(app));
  std::string output;

  session.feed(get("/"), output);

  EXPECT_FALSE(session->closing());
  std::optional<ParsedResponse> response = only_response(output);
  ASSERT_TRUE(response.has_value());
  EXPECT_TRUE(response->keep_alive());
}

// ---- sending twice ---------------------------------------------------------

TEST(AppTest, SendingTwiceThrowsLogicError) {
  bool threw = false;
  App app;
  app.get("/", [&](Request&, Response& res) {
    res.send("first");
    try {
      res.send("second");
    } catch (const std::logic_error&) {
      threw = true;
    }
  });

  EXPECT_EQ(body_of(std::move(app), get("/")), "first");
  EXPECT_TRUE(threw);
}

TEST(AppTest, UncaughtSecondSendLeavesOnlyTheFirstResponse) {
  App app;
  app.get("/twice", [](Request&, Response& res) {
    res.send("first");
    res.json({{"second", true}});
  });
  app.get("/", [](Request&, Response& res) { res.send("Hello World!"); });
  TestSession session(HttpLimits{}, std::move(app));
  std::string output;

  session.feed(get("/twice") + get("/"), output);

  std::string_view rest = output;
  std::optional<ParsedResponse> twice = read_response(rest);
  std::optional<ParsedResponse> root = read_response(rest);
  ASSERT_TRUE(twice && root);
  EXPECT_EQ(twice->result_int(), 200u);
  EXPECT_EQ(twice->body(), "first");
  EXPECT_EQ(root->body(), "Hello World!");
  EXPECT_TRUE(rest.empty());
  EXPECT_FALSE(session->closing());
}

// The failed second send must not alter a response that was sent but still
// waits behind an earlier one on the connection.
TEST(AppTest, FailedSendStatusLeavesQueuedResponseUnchanged) {
  std::optional<Response> slow;
  bool threw = false;
  App app;
  app.get("/slow", [&](Request&, Response& res) { slow.emplace(res); });
  app.get("/twice", [&](Request&, Response& res) {
    res.send("first");
    try {
      res.send_status(500);
    } catch (const std::logic_error&) {
      threw = true;
    }
  });
  TestSession session(HttpLimits{}, std::move(app));
  std::string output;

  session.feed(get("/slow") + get("/twice"), output);
  ASSERT_TRUE(slow.has_value());
  slow->send("slow");
  slow.reset();
  session.take_output(output);

  EXPECT_TRUE(threw);
  std::string_view rest = output;
  std::optional<ParsedResponse> first = read_response(rest);
  std::optional<ParsedResponse> twice = read_response(rest);
  ASSERT_TRUE(first && twice);
  EXPECT_EQ(twice->body(), "first");
  EXPECT_EQ(twice->result_int(), 200u);
}

// ---- errors ----------------------------------------------------------------

TEST(AppTest, ExceptionInHandlerAnswers500AndKeepsConnectionServing) {
  App app;
  app.get("/boom", [](Request&, Response&) { throw std::runtime_error("secret detail"); });
  app.get("/", [](Request&, Response& res) { res.send("still here"); });
  TestSession session(HttpLimits{}, std::move(app));
  std::string output;

  session.feed(get("/boom") + get("/"), output);

  std::string_view rest = output;
  std::optional<ParsedResponse> boom = read_response(rest);
  std::optional<ParsedResponse> after = read_response(rest);
  ASSERT_TRUE(boom && after);
  EXPECT_EQ(boom->result_int(), 500u);
  EXPECT_EQ(boom->body(), "Internal Server Error");
  EXPECT_EQ(header(*boom, http::field::content_type), "text/plain; charset=utf-8");
  EXPECT_TRUE(boom->keep_alive());
  EXPECT_EQ(after->body(), "still here");
  EXPECT_FALSE(session->closing());
}

TEST(AppTest, HeadersSetBeforeExceptionAreKeptExceptContentType) {
  App app;
  app.get("/boom", [](Request&, Response& res) {
    res.status(201).set("Access-Control-Allow-Origin", "*").type("application/json");
    throw std::runtime_error("oops");
  });

  std::optional<ParsedResponse> response = serve(std::move(app), get("/boom"));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 500u);
  EXPECT_EQ(header(*response, "Access-Control-Allow-Origin"), "*");
  EXPECT_EQ(response->count(http::field::content_type), 1u);
  EXPECT_EQ(header(*response, http::field::content_type), "text/plain; charset=utf-8");
}

TEST(AppTest, NonStdExceptionAnswers500) {
  App app;
  app.get("/boom", [](Request&, Response&) { throw 42; });

  std::optional<ParsedResponse> response = serve(std::move(app), get("/boom"));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 500u);
  EXPECT_EQ(response->body(), "Internal Server Error");
}

TEST(AppTest, HttpErrorAnswersItsStatusAndMessage) {
  App app;
  app.get("/tea", [](Request&, Response&) { throw HttpError(418, "teapot"); });

  std::optional<ParsedResponse> response = serve(std::move(app), get("/tea"));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 418u);
  EXPECT_EQ(response->body(), "teapot");
  EXPECT_EQ(header(*response, http::field::content_type), "text/plain; charset=utf-8");
}

TEST(AppTest, HttpErrorWithStatusOutsideRangeAnswers500) {
  App app;
  app.get("/bad", [](Request&, Response&) { throw HttpError(42, "odd"); });

  std::optional<ParsedResponse> response = serve(std::move(app), get("/bad"));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 500u);
}

TEST(AppTest, RequestJsonParsesBody) {
  nlohmann::json parsed;
  App app;
  app.post("/j", [&](Request& req, Response& res) {
    parsed = req.json();
    res.end();
  });

  serve(std::move(app), request("POST", "/j", R"({"n":[1,2]})"));

  EXPECT_EQ(parsed, (nlohmann::json{{"n", {1, 2}}}));
}

TEST(AppTest, InvalidJsonBodyAnswers400) {
  App app;
  app.post("/j", [](Request& req, Response& res) { res.json(req.json()); });

  std::optional<ParsedResponse> response = serve(std::move(app), request("POST", "/j", "{nope"));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 400u);
  EXPECT_EQ(response->body().rfind("invalid JSON body", 0), 0u) << response->body();
  EXPECT_TRUE(response->keep_alive());
}

TEST(AppTest, ErrorHandlerCanAnswerJson) {
  auto make_app = [] {
    App app;
    app.get("/user", [](Request&, Response&) { throw HttpError(404, "no such user"); });
    app.get("/boom", [](Request&, Response&) { throw std::runtime_error("secret"); });
    app.on_error([](Request&, Response& res, unsigned status, const std::string& message) {
      res.status(status).json({{"error", message}});
    });
    return app;
  };

  std::optional<ParsedResponse> user = serve(make_app(), get("/user"));
  std::optional<ParsedResponse> boom = serve(make_app(), get("/boom"));

  ASSERT_TRUE(user && boom);
  EXPECT_EQ(user->result_int(), 404u);
  EXPECT_EQ(header(*user, http::field::content_type), "application/json; charset=utf-8");
  EXPECT_EQ(nlohmann::json::parse(user->body()), (nlohmann::json{{"error", "no such user"}}));
  EXPECT_EQ(boom->result_int(), 500u);
  EXPECT_EQ(nlohmann::json::parse(boom->body()),
            (nlohmann::json{{"error", "Internal Server Error"}}));
}

TEST(AppTest, ThrowingErrorHandlerFallsBackToDefaultText) {
  App app;
  app.get("/tea", [](Request&, Response&) { throw HttpError(418, "teapot"); });
  app.on_error([](Request&, Response& res, unsigned, const std::string&) {
    res.status(299).type("application/json");
    throw std::runtime_error("the error handler failed too");
  });

  std::optional<ParsedResponse> response = serve(std::move(app), get("/tea"));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 418u);
  EXPECT_EQ(response->body(), "teapot");
  EXPECT_EQ(header(*response, http::field::content_type), "text/plain; charset=utf-8");
}

TEST(AppTest, ErrorHandlerThatSendsNothingFallsBackToDefaultText) {
  App app;
  app.get("/boom", [](Request&, Response&) { throw std::runtime_error("x"); });
  app.on_error([](Request&, Response&, unsigned, const std::string&) {});

  std::optional<ParsedResponse> response = serve(std::move(app), get("/boom"));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 500u);
  EXPECT_EQ(response->body(), "Internal Server Error");
}

// ---- body limit ------------------------------------------------------------

TEST(AppTest, BodyOverLimitGets413AndClosesWithoutRunningHandler) {
  bool ran = false;
  App app;
  app.post("/upload", [&](Request&, Response& res) {
    ran = true;
    res.end();
  });
  TestSession session(HttpLimits{16 * 1024, 10}, std::move(app));
  std::string output;

  session.feed(request("POST", "/upload", "01234567890"), output);

  EXPECT_FALSE(ran);
  EXPECT_TRUE(session->closing());
  std::optional<ParsedResponse> response = only_response(output);
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 413u);
  EXPECT_FALSE(response->keep_alive());
}

TEST(AppTest, BodyAtLimitIsServed) {
  std::string body;
  App app;
  app.post("/upload", [&](Request& req, Response& res) {
    body = req.body();
    res.send("stored");
  });
  TestSession session(HttpLimits{16 * 1024, 10}, std::move(app));
  std::string output;

  session.feed(request("POST", "/upload", "0123456789"), output);

  EXPECT_EQ(body, "0123456789");
  EXPECT_FALSE(session->closing());
  std::optional<ParsedResponse> response = only_response(output);
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->body(), "stored");
}

// ---- asynchronous responses ------------------------------------------------

TEST(AppTest, KeptResponseIsWrittenWhenSentLater) {
  std::optional<Response> kept;
  App app;
  app.get("/slow", [&](Request&, Response& res) { kept.emplace(res); });
  TestSession session(HttpLimits{}, std::move(app));
  std::string output;

  session.feed(get("/slow"), output);
  ASSERT_TRUE(kept.has_value());
  EXPECT_TRUE(output.empty());
  EXPECT_EQ(session->outstanding(), 1u);
  EXPECT_FALSE(kept->sent());

  kept->send("late");

  EXPECT_TRUE(kept->sent());
  EXPECT_EQ(session.host().output_ready_calls, 1);
  EXPECT_EQ(session->outstanding(), 0u);
  session.take_output(output);
  std::optional<ParsedResponse> response = only_response(output);
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->body(), "late");
  EXPECT_TRUE(response->keep_alive());
}

TEST(AppTest, PipelinedResponseWaitsForEarlierAsyncOne) {
  std::optional<Response> kept;
  App app;
  app.get("/slow", [&](Request&, Response& res) { kept.emplace(res); });
  app.get("/fast", [](Request&, Response& res) { res.send("fast"); });
  TestSession session(HttpLimits{}, std::move(app));
  std::string output;

  session.feed(get("/slow") + get("/fast"), output);
  ASSERT_TRUE(kept.has_value());
  EXPECT_TRUE(output.empty());
  EXPECT_EQ(session->outstanding(), 2u);

  kept->send("slow");
  session.take_output(output);

  std::string_view rest = output;
  std::optional<ParsedResponse> first = read_response(rest);
  std::optional<ParsedResponse> second = read_response(rest);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->body(), "slow");
  EXPECT_EQ(second->body(), "fast");
  EXPECT_TRUE(rest.empty());
  EXPECT_EQ(session.host().output_ready_calls, 1);
}

TEST(AppTest, OutOfOrderCompletionKeepsRequestOrder) {
  std::vector<Response> kept;
  App app;
  app.get("/slow/:n", [&](Request&, Response& res) { kept.push_back(res); });
  TestSession session(HttpLimits{}, std::move(app));
  std::string output;

  session.feed(get("/slow/1") + get("/slow/2"), output);
  ASSERT_EQ(kept.size(), 2u);

  kept[1].send("second");
  session.take_output(output);
  EXPECT_TRUE(output.empty());
  EXPECT_EQ(session.host().output_ready_calls, 0);

  kept[0].send("first");
  session.take_output(output);

  std::string_view rest = output;
  std::optional<ParsedResponse> first = read_response(rest);
  std::optional<ParsedResponse> second = read_response(rest);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->body(), "first");
  EXPECT_EQ(second->body(), "second");
  EXPECT_TRUE(rest.empty());
}

TEST(AppTest, DroppingLastKeptResponseUnsentAnswers500) {
  std::optional<Response> kept;
  App app;
  app.get("/slow", [&](Request&, Response& res) { kept.emplace(res); });
  TestSession session(HttpLimits{}, std::move(app));
  std::string output;

  session.feed(get("/slow"), output);
  EXPECT_TRUE(output.empty());

  kept.reset();

  EXPECT_EQ(session.host().output_ready_calls, 1);
  session.take_output(output);
  std::optional<ParsedResponse> response = only_response(output);
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 500u);
  EXPECT_EQ(response->body(), "Internal Server Error");
  EXPECT_FALSE(session->closing());
}

TEST(AppTest, HandlerReturningWithoutSendingAnswers500) {
  App app;
  app.get("/forgot", [](Request&, Response&) {});

  std::optional<ParsedResponse> response = serve(std::move(app), get("/forgot"));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 500u);
  EXPECT_EQ(response->body(), "Internal Server Error");
}

TEST(AppTest, DisconnectBeforeResponseAbortsIt) {
  std::optional<Request> kept_request;
  std::optional<Response> kept_response;
  int aborts = 0;
  App app;
  app.get("/slow", [&](Request& req, Response& res) {
    kept_request.emplace(req);
    kept_response.emplace(res);
    res.on_abort([&] { ++aborts; });
  });
  auto session = std::make_unique<TestSession>(HttpLimits{}, std::move(app));
  std::string output;
  session->feed(get("/slow"), output);
  ASSERT_TRUE(kept_response.has_value());
  EXPECT_FALSE(kept_response->aborted());

  session.reset();  // the client went away

  EXPECT_EQ(aborts, 1);
  EXPECT_TRUE(kept_response->aborted());
  EXPECT_TRUE(kept_response->sent());
  EXPECT_NO_THROW(kept_response->send("too late"));
  EXPECT_NO_THROW(kept_response->json({{"too", "late"}}));
  EXPECT_EQ(kept_request->path(), "/slow");
  EXPECT_EQ(kept_request->method(), "GET");
  kept_response.reset();
  kept_request.reset();
  EXPECT_EQ(aborts, 1);
}

TEST(AppTest, OnAbortRegisteredAfterDisconnectRunsAtOnce) {
  std::optional<Response> kept;
  App app;
  app.get("/slow", [&](Request&, Response& res) { kept.emplace(res); });
  auto session = std::make_unique<TestSession>(HttpLimits{}, std::move(app));
  std::string output;
  session->feed(get("/slow"), output);
  session.reset();
  ASSERT_TRUE(kept.has_value());
  int aborts = 0;

  kept->on_abort([&] { ++aborts; });

  EXPECT_EQ(aborts, 1);
}

// exchange.h: a session that closes with exchanges still held by handles
// detaches them. A handler that answered at once but kept its Request (say,
// to log it from a timer) holds an exchange the pipeline already let go of.
TEST(AppTest, RequestKeptAfterResponseIsDetachedWhenSessionGoes) {
  std::optional<Request> kept;
  App app;
  app.get("/", [&](Request& req, Response& res) {
    kept.emplace(req);
    res.send("done");
  });
  auto session = std::make_unique<TestSession>(HttpLimits{}, std::move(app));
  std::string output;
  session->feed(get("/"), output);
  ASSERT_TRUE(kept.has_value());
  Exchange* exchange = ExchangePeek(*kept).exchange();

  session.reset();

  ASSERT_EQ(exchange->session, nullptr)
      << "the exchange still points at the destroyed session; dropping the Request would call "
         "HttpSession::release on freed memory";
  EXPECT_EQ(kept->path(), "/");
  kept.reset();
}

TEST(AppTest, DrainingClosesWithTheOutstandingAsyncResponse) {
  std::optional<Response> kept;
  App app;
  app.get("/slow", [&](Request&, Response& res) { kept.emplace(res); });
  TestSession session(HttpLimits{}, std::move(app));
  std::string output;
  session.feed(get("/slow"), output);
  ASSERT_TRUE(kept.has_value());

  session->drain();
  EXPECT_FALSE(session->closing());
  kept->send("last");
  session.take_output(output);

  EXPECT_TRUE(session->closing());
  std::optional<ParsedResponse> response = only_response(output);
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->body(), "last");
  EXPECT_FALSE(response->keep_alive());
  EXPECT_EQ(header(*response, http::field::connection), "close");
}

TEST(AppTest, PipelineLimitStopsReadingUntilAResponseGoesOut) {
  std::vector<Response> kept;
  App app;
  app.get("/slow/:n", [&](Request&, Response& res) { kept.push_back(res); });
  HttpLimits limits;
  limits.max_pipelined_requests = 2;
  TestSession session(limits, std::move(app));
  std::string output;
  std::string one = get("/slow/1");
  std::string two = get("/slow/2");
  std::string three = get("/slow/3");

  HttpSession::FeedResult fed = session.feed(one + two + three, output);

  EXPECT_EQ(fed.consumed, one.size() + two.size());
  EXPECT_EQ(fed.requests, 2u);
  EXPECT_EQ(kept.size(), 2u);
  EXPECT_FALSE(session->accepting());

  kept[0].send("1");
  EXPECT_TRUE(session->accepting());
  fed = session.feed(three, output);

  EXPECT_EQ(fed.consumed, three.size());
  EXPECT_EQ(fed.requests, 1u);
  EXPECT_EQ(kept.size(), 3u);
  kept.clear();  // unsent: answered 500, which also checks nothing dangles
}

TEST(AppTest, HostIsToldStatusesAndLatenciesInOrder) {
  std::optional<Response> kept;
  App app;
  app.get("/slow", [&](Request&, Response& res) { kept.emplace(res); });
  app.get("/", [](Request&, Response& res) { res.send("now"); });
  TestSession session(HttpLimits{}, std::move(app));
  std::string output;

  session.feed(get("/"), output);
  session.host().clock += 2ms;
  session.feed(get("/slow") + get("/missing"), output);
  session.host().clock += 5ms;
  ASSERT_TRUE(kept.has_value());
  kept->status(503).send("busy");

  EXPECT_EQ(session.host().statuses, (std::vector<unsigned>{200, 503, 404}));
  EXPECT_EQ(session.host().latencies_us, (std::vector<std::uint64_t>{0, 5000, 5000}));
}

}  // namespace
}  // namespace herd
