#include "herd/router.h"

#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace herd {
namespace {

constexpr HandlerId kFirst = 1;
constexpr HandlerId kSecond = 2;
constexpr HandlerId kThird = 3;

QueryParams pairs(std::vector<std::pair<std::string, std::string>> expected) {
  return expected;
}

// ---- paths and precedence ----

TEST(RouterTest, MatchesLiteralPath) {
  Router router;
  router.add("GET", "/users", kFirst);
  MatchResult result = router.match("GET", "/users");
  EXPECT_EQ(result.handler, kFirst);
  EXPECT_TRUE(result.params.empty());
  EXPECT_FALSE(result.path_matched_other_method);
}

TEST(RouterTest, ReportsNoMatchForUnknownPath) {
  Router router;
  router.add("GET", "/users", kFirst);
  MatchResult result = router.match("GET", "/groups");
  EXPECT_FALSE(result.handler.has_value());
  EXPECT_TRUE(result.params.empty());
  EXPECT_FALSE(result.path_matched_other_method);
}

TEST(RouterTest, ReportsNoMatchWhenEmpty) {
  Router router;
  EXPECT_FALSE(router.match("GET", "/").handler.has_value());
}

TEST(RouterTest, RootPatternMatchesOnlyRoot) {
  Router router;
  router.add("GET", "/", kFirst);
  EXPECT_EQ(router.match("GET", "/").handler, kFirst);
  EXPECT_FALSE(router.match("GET", "/a").handler.has_value());
  EXPECT_FALSE(router.match("GET", "//").handler.has_value());
}

TEST(RouterTest, DoesNotMatchPrefixOfPath) {
  Router router;
  router.add("GET", "/users", kFirst);
  EXPECT_FALSE(router.match("GET", "/users/1").handler.has_value());
  EXPECT_FALSE(router.match("GET", "/user").handler.has_value());
  EXPECT_FALSE(router.match("GET", "/usersx").handler.has_value());
}

TEST(RouterTest, PathWithoutLeadingSlashNeverMatches) {
  Router router;
  router.add("ALL", "*", kFirst);
  EXPECT_FALSE(router.match("OPTIONS", "*").handler.has_value());
  EXPECT_FALSE(router.match("GET", "http://example.com/").handler.has_value());
  EXPECT_FALSE(router.match("GET", "").handler.has_value());
}

TEST(RouterTest, EarlierLiteralRouteWinsOverLaterParamRoute) {
  Router router;
  router.add("GET", "/users/new", kFirst);
  router.add("GET", "/users/:id", kSecond);
  MatchResult result = router.match("GET", "/users/new");
  EXPECT_EQ(result.handler, kFirst);
  EXPECT_TRUE(result.params.empty());
  EXPECT_EQ(router.match("GET", "/users/7").handler, kSecond);
}

TEST(RouterTest, EarlierParamRouteWinsOverLaterLiteralRoute) {
  Router router;
  router.add("GET", "/users/:id", kFirst);
  router.add("GET", "/users/new", kSecond);
  MatchResult result = router.match("GET", "/users/new");
  EXPECT_EQ(result.handler, kFirst);
  EXPECT_EQ(result.params.at("id"), "new");
}

TEST(RouterTest, FirstOfDuplicateRoutesWins) {
  Router router;
  router.add("GET", "/a", kFirst);
  router.add("GET", "/a", kSecond);
  EXPECT_EQ(router.match("GET", "/a").handler, kFirst);
  EXPECT_EQ(router.size(), 2u);
}

// ---- params ----

TEST(RouterTest, ExtractsOneParam) {
  Router router;
  router.add("GET", "/users/:id", kFirst);
  MatchResult result = router.match("GET", "/users/42");
  ASSERT_EQ(result.handler, kFirst);
  EXPECT_EQ(result.params, (RouteParams{{"id", "42"}}));
}

TEST(RouterTest, ExtractsSeveralParams) {
  Router router;
  router.add("GET", "/a/:x/b/:y", kFirst);
  MatchResult result = router.match("GET", "/a/1/b/two");
  ASSERT_EQ(result.handler, kFirst);
  EXPECT_EQ(result.params, (RouteParams{{"x", "1"}, {"y", "two"}}));
  EXPECT_FALSE(router.match("GET", "/a/1/c/two").handler.has_value());
}

TEST(RouterTest, ParamDoesNotMatchEmptySegment) {
  Router router;
  router.add("GET", "/users/:id", kFirst);
  EXPECT_FALSE(router.match("GET", "/users/").handler.has_value());
  EXPECT_FALSE(router.match("GET", "/users//").handler.has_value());
  EXPECT_FALSE(router.match("GET", "/users").handler.has_value());
}

TEST(RouterTest, ParamDoesNotSpanSlashes) {
  Router router;
  router.add("GET", "/users/:id", kFirst);
  EXPECT_FALSE(router.match("GET", "/users/1/2").handler.has_value());
}

TEST(RouterTest, DecodesPercentEscapesInParams) {
  Router router;
  router.add("GET", "/files/:name", kFirst);
  MatchResult result = router.match("GET", "/files/my%20file%2Etxt");
  ASSERT_EQ(result.handler, kFirst);
  EXPECT_EQ(result.params.at("name"), "my file.txt");
}

TEST(RouterTest, DecodedSlashStaysInsideOneParam) {
  Router router;
  router.add("GET", "/files/:name", kFirst);
  MatchResult result = router.match("GET", "/files/a%2Fb");
  ASSERT_EQ(result.handler, kFirst);
  EXPECT_EQ(result.params.at("name"), "a/b");
}

TEST(RouterTest, KeepsPlusInPathParams) {
  Router router;
  router.add("GET", "/q/:term", kFirst);
  EXPECT_EQ(router.match("GET", "/q/a+b").params.at("term"), "a+b");
}

TEST(RouterTest, DecodesMultiByteUtf8InParams) {
  Router router;
  router.add("GET", "/w/:word", kFirst);
  EXPECT_EQ(router.match("GET", "/w/caf%C3%A9").params.at("word"), "caf\xC3\xA9");
}

TEST(RouterTest, ParamWithInvalidEscapeDoesNotMatch) {
  Router router;
  router.add("GET", "/files/:name", kFirst);
  EXPECT_FALSE(router.match("GET", "/files/%zz").handler.has_value());
  EXPECT_FALSE(router.match("GET", "/files/bad%4").handler.has_value());
  EXPECT_FALSE(router.match("GET", "/files/bad%").handler.has_value());
}

TEST(RouterTest, ParamWithInvalidEscapeFallsThroughToLaterRoute) {
  Router router;
  router.add("GET", "/files/:name", kFirst);
  router.add("GET", "/files/*", kSecond);
  router.add("GET", "/files/%zz", kThird);
  MatchResult result = router.match("GET", "/files/%zz");
  EXPECT_EQ(result.handler, kThird);
  EXPECT_TRUE(result.params.empty());  // nothing left over from the failed attempts
}

TEST(RouterTest, ParamsKeepTheirCase) {
  Router router;
  router.add("GET", "/users/:id", kFirst);
  EXPECT_EQ(router.match("GET", "/USERS/AbC").params.at("id"), "AbC");
}

// ---- wildcard ----

TEST(RouterTest, WildcardCapturesRestOfPathAsParamZero) {
  Router router;
  router.add("GET", "/static/*", kFirst);
  MatchResult result = router.match("GET", "/static/css/site.css");
  ASSERT_EQ(result.handler, kFirst);
  EXPECT_EQ(result.params, (RouteParams{{"0", "css/site.css"}}));
}

TEST(RouterTest, WildcardCapturesEmptyRest) {
  Router router;
  router.add("GET", "/static/*", kFirst);
  MatchResult result = router.match("GET", "/static/");
  ASSERT_EQ(result.handler, kFirst);
  EXPECT_EQ(result.params.at("0"), "");
}

TEST(RouterTest, WildcardNeedsTheSlashBeforeIt) {
  Router router;
  router.add("GET", "/static/*", kFirst);
  EXPECT_FALSE(router.match("GET", "/static").handler.has_value());
  EXPECT_FALSE(router.match("GET", "/staticx/a").handler.has_value());
}

TEST(RouterTest, WildcardDecodesCapture) {
  Router router;
  router.add("GET", "/static/*", kFirst);
  EXPECT_EQ(router.match("GET", "/static/a%20b/c").params.at("0"), "a b/c");
  EXPECT_FALSE(router.match("GET", "/static/a%zz").handler.has_value());
}

TEST(RouterTest, WildcardCombinesWithParams) {
  Router router;
  router.add("GET", "/u/:user/files/*", kFirst);
  MatchResult result = router.match("GET", "/u/ann/files/x/y");
  ASSERT_EQ(result.handler, kFirst);
  EXPECT_EQ(result.params, (RouteParams{{"0", "x/y"}, {"user", "ann"}}));
}

TEST(RouterTest, BareStarMatchesEveryPath) {
  Router router;
  router.add("GET", "*", kFirst);
  EXPECT_EQ(router.match("GET", "/").params.at("0"), "");
  EXPECT_EQ(router.match("GET", "/a/b/c").params.at("0"), "a/b/c");
}

// ---- methods ----

TEST(RouterTest, MatchesOnlyRegisteredMethod) {
  Router router;
  router.add("POST", "/users", kFirst);
  EXPECT_EQ(router.match("POST", "/users").handler, kFirst);
  EXPECT_FALSE(router.match("GET", "/users").handler.has_value());
  EXPECT_FALSE(router.match("PUT", "/users").handler.has_value());
}

TEST(RouterTest, SelectsRouteByMethodOnSamePath) {
  Router router;
  router.add("GET", "/users", kFirst);
  router.add("POST", "/users", kSecond);
  EXPECT_EQ(router.match("GET", "/users").handler, kFirst);
  EXPECT_EQ(router.match("POST", "/users").handler, kSecond);
}

TEST(RouterTest, HeadFallsBackToGetRoute) {
  Router router;
  router.add("GET", "/users/:id", kFirst);
  MatchResult result = router.match("HEAD", "/users/3");
  EXPECT_EQ(result.handler, kFirst);
  EXPECT_EQ(result.params.at("id"), "3");
}

TEST(RouterTest, HeadUsesWhicheverOfGetAndHeadWasRegisteredFirst) {
  Router get_first;
  get_first.add("GET", "/a", kFirst);
  get_first.add("HEAD", "/a", kSecond);
  EXPECT_EQ(get_first.match("HEAD", "/a").handler, kFirst);

  Router head_first;
  head_first.add("HEAD", "/a", kFirst);
  head_first.add("GET", "/a", kSecond);
  EXPECT_EQ(head_first.match("HEAD", "/a").handler, kFirst);
  EXPECT_EQ(head_first.match("GET", "/a").handler, kSecond);
}

TEST(RouterTest, GetDoesNotFallBackToHeadRoute) {
  Router router;
  router.add("HEAD", "/a", kFirst);
  EXPECT_FALSE(router.match("GET", "/a").handler.has_value());
}

TEST(RouterTest, AllMatchesEveryMethod) {
  Router router;
  router.add("ALL", "/any", kFirst);
  for (const char* method : {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"}) {
    EXPECT_EQ(router.match(method, "/any").handler, kFirst) << method;
  }
}

TEST(RouterTest, AllRouteTakesItsPlaceInRegistrationOrder) {
  Router router;
  router.add("GET", "/a", kFirst);
  router.add("ALL", "/a", kSecond);
  router.add("POST", "/a", kThird);
  EXPECT_EQ(router.match("GET", "/a").handler, kFirst);
  EXPECT_EQ(router.match("POST", "/a").handler, kSecond);
}

TEST(RouterTest, UppercasesMethodAtRegistration) {
  Router router;
  router.add("get", "/a", kFirst);
  router.add("all", "/b", kSecond);
  EXPECT_EQ(router.match("GET", "/a").handler, kFirst);
  EXPECT_EQ(router.match("DELETE", "/b").handler, kSecond);
}

TEST(RouterTest, ComparesRequestMethodExactly) {
  Router router;
  router.add("GET", "/a", kFirst);
  EXPECT_FALSE(router.match("get", "/a").handler.has_value());
}

// ---- no route for the method ----

TEST(RouterTest, FlagsPathMatchedOnlyByAnotherMethod) {
  Router router;
  router.add("POST", "/users/:id", kFirst);
  MatchResult result = router.match("GET", "/users/1");
  EXPECT_FALSE(result.handler.has_value());
  EXPECT_TRUE(result.path_matched_other_method);
  EXPECT_TRUE(result.params.empty());
}

TEST(RouterTest, DoesNotFlagWhenNoPathMatches) {
  Router router;
  router.add("POST", "/users", kFirst);
  EXPECT_FALSE(router.match("GET", "/groups").path_matched_other_method);
}

TEST(RouterTest, DoesNotFlagWhenALaterRouteMatchesTheMethod) {
  Router router;
  router.add("POST", "/users", kFirst);
  router.add("GET", "/users", kSecond);
  MatchResult result = router.match("GET", "/users");
  EXPECT_EQ(result.handler, kSecond);
  EXPECT_FALSE(result.path_matched_other_method);
}

TEST(RouterTest, ListsAllowedMethodsForPath) {
  Router router;
  router.add("POST", "/users", kFirst);
  router.add("GET", "/users", kSecond);
  router.add("DELETE", "/users/:id", kThird);
  router.add("POST", "/users/", kThird);
  EXPECT_EQ(router.allowed_methods("/users"), (std::vector<std::string>{"GET", "HEAD", "POST"}));
  EXPECT_EQ(router.allowed_methods("/users/9"), (std::vector<std::string>{"DELETE"}));
  EXPECT_TRUE(router.allowed_methods("/nothing").empty());
}

TEST(RouterTest, AllowedMethodsLeavesOutAllRoutes) {
  Router router;
  router.add("ALL", "/a", kFirst);
  router.add("PUT", "/a", kSecond);
  EXPECT_EQ(router.allowed_methods("/a"), (std::vector<std::string>{"PUT"}));
}

// ---- trailing slash and case ----

TEST(RouterTest, ToleratesTrailingSlashOnPath) {
  Router router;
  router.add("GET", "/users", kFirst);
  EXPECT_EQ(router.match("GET", "/users/").handler, kFirst);
}

TEST(RouterTest, ToleratesTrailingSlashOnPattern) {
  Router router;
  router.add("GET", "/users/", kFirst);
  EXPECT_EQ(router.match("GET", "/users").handler, kFirst);
  EXPECT_EQ(router.match("GET", "/users/").handler, kFirst);
}

TEST(RouterTest, ToleratesTrailingSlashAfterParam) {
  Router router;
  router.add("GET", "/users/:id", kFirst);
  MatchResult result = router.match("GET", "/users/5/");
  ASSERT_EQ(result.handler, kFirst);
  EXPECT_EQ(result.params.at("id"), "5");
}

TEST(RouterTest, DoesNotTolerateTwoTrailingSlashes) {
  Router router;
  router.add("GET", "/users", kFirst);
  EXPECT_FALSE(router.match("GET", "/users//").handler.has_value());
}

TEST(RouterTest, StrictModeRequiresExactTrailingSlash) {
  Router router(RouterOptions{.case_sensitive = false, .strict = true});
  router.add("GET", "/users", kFirst);
  router.add("GET", "/groups/", kSecond);
  EXPECT_EQ(router.match("GET", "/users").handler, kFirst);
  EXPECT_FALSE(router.match("GET", "/users/").handler.has_value());
  EXPECT_EQ(router.match("GET", "/groups/").handler, kSecond);
  EXPECT_FALSE(router.match("GET", "/groups").handler.has_value());
}

TEST(RouterTest, StrictModeStillMatchesRoot) {
  Router router(RouterOptions{.case_sensitive = false, .strict = true});
  router.add("GET", "/", kFirst);
  EXPECT_EQ(router.match("GET", "/").handler, kFirst);
}

TEST(RouterTest, MatchesLiteralsCaseInsensitively) {
  Router router;
  router.add("GET", "/Users/List", kFirst);
  EXPECT_EQ(router.match("GET", "/users/list").handler, kFirst);
  EXPECT_EQ(router.match("GET", "/USERS/LIST").handler, kFirst);
}

TEST(RouterTest, CaseSensitiveModeComparesLiteralsExactly) {
  Router router(RouterOptions{.case_sensitive = true, .strict = false});
  router.add("GET", "/Users", kFirst);
  EXPECT_EQ(router.match("GET", "/Users").handler, kFirst);
  EXPECT_FALSE(router.match("GET", "/users").handler.has_value());
}

TEST(RouterTest, ComparesLiteralsWithRawPath) {
  Router router;
  router.add("GET", "/hello%20world", kFirst);
  EXPECT_EQ(router.match("GET", "/hello%20world").handler, kFirst);
  EXPECT_FALSE(router.match("GET", "/hello world").handler.has_value());
}

// ---- patterns add() refuses ----

TEST(RouterTest, RejectsPatternWithoutLeadingSlash) {
  Router router;
  EXPECT_THROW(router.add("GET", "users", kFirst), std::invalid_argument);
  EXPECT_THROW(router.add("GET", "", kFirst), std::invalid_argument);
}

TEST(RouterTest, RejectsEmptyMethod) {
  Router router;
  EXPECT_THROW(router.add("", "/a", kFirst), std::invalid_argument);
}

TEST(RouterTest, RejectsWildcardBeforeLastSegment) {
  Router router;
  EXPECT_THROW(router.add("GET", "/a/*/b", kFirst), std::invalid_argument);
}

TEST(RouterTest, RejectsUnsupportedParamSyntax) {
  Router router;
  EXPECT_THROW(router.add("GET", "/users/:", kFirst), std::invalid_argument);
  EXPECT_THROW(router.add("GET", "/users/:id?", kFirst), std::invalid_argument);
  EXPECT_THROW(router.add("GET", "/users/:id(\\d+)", kFirst), std::invalid_argument);
  EXPECT_THROW(router.add("GET", "/flights/:from-:to", kFirst), std::invalid_argument);
}

TEST(RouterTest, RejectsDuplicateParamNames) {
  Router router;
  EXPECT_THROW(router.add("GET", "/a/:x/b/:x", kFirst), std::invalid_argument);
}

TEST(RouterTest, RejectsExpressPatternCharactersInLiterals) {
  Router router;
  for (const char* pattern : {"/ab?cd", "/ab+cd", "/ab*cd", "/ab(cd)", "/v1:batch"}) {
    EXPECT_THROW(router.add("GET", pattern, kFirst), std::invalid_argument) << pattern;
  }
  EXPECT_EQ(router.size(), 0u);
}

// ---- size ----

TEST(RouterTest, HandlesVeryLongPath) {
  Router router;
  router.add("GET", "/blob/:id", kFirst);
  router.add("GET", "/files/*", kSecond);
  std::string long_segment(1 << 20, 'x');
  EXPECT_EQ(router.match("GET", "/blob/" + long_segment).params.at("id").size(),
            long_segment.size());
  EXPECT_FALSE(router.match("GET", "/nothing/" + long_segment).handler.has_value());

  std::string many_segments = "/files";
  for (int i = 0; i < 100000; ++i) many_segments += "/s";
  EXPECT_EQ(router.match("GET", many_segments).params.at("0").size(), 100000u * 2 - 1);
}

TEST(RouterTest, HandlesPatternWithManySegments) {
  constexpr int kSegments = 10000;
  std::string pattern;
  std::string path;
  for (int i = 0; i < kSegments; ++i) {
    pattern += "/:p" + std::to_string(i);
    path += "/v" + std::to_string(i);
  }
  Router router;
  router.add("GET", pattern, kFirst);
  MatchResult result = router.match("GET", path);
  ASSERT_EQ(result.handler, kFirst);
  EXPECT_EQ(result.params.size(), static_cast<std::size_t>(kSegments));
  EXPECT_EQ(result.params.at("p9999"), "v9999");
  EXPECT_FALSE(router.match("GET", path + "/extra").handler.has_value());
}

// ---- percent_decode ----

TEST(RouterPercentDecodeTest, DecodesEscapesOfEitherCase) {
  EXPECT_EQ(percent_decode("a%20b%2fc%2Fd"), "a b/c/d");
}

TEST(RouterPercentDecodeTest, LeavesPlusAndPlainTextAlone) {
  EXPECT_EQ(percent_decode("a+b"), "a+b");
  EXPECT_EQ(percent_decode(""), "");
}

TEST(RouterPercentDecodeTest, RefusesMalformedEscapes) {
  EXPECT_FALSE(percent_decode("%").has_value());
  EXPECT_FALSE(percent_decode("%4").has_value());
  EXPECT_FALSE(percent_decode("%g0").has_value());
  EXPECT_FALSE(percent_decode("ok%0").has_value());
}

TEST(RouterPercentDecodeTest, DecodesNulByte) {
  EXPECT_EQ(percent_decode("a%00b"), std::string("a\0b", 3));
}

// ---- parse_query ----

TEST(QueryTest, SplitsPairsOnAmpersand) {
  EXPECT_EQ(parse_query("a=1&b=2"), pairs({{"a", "1"}, {"b", "2"}}));
}

TEST(QueryTest, EmptyQueryHasNoPairs) {
  EXPECT_TRUE(parse_query("").empty());
  EXPECT_TRUE(parse_query("?").empty());
  EXPECT_TRUE(parse_query("&&").empty());
}

TEST(QueryTest, IgnoresOneLeadingQuestionMark) {
  EXPECT_EQ(parse_query("?a=1"), pairs({{"a", "1"}}));
  EXPECT_EQ(parse_query("??a=1"), pairs({{"?a", "1"}}));
}

TEST(QueryTest, DecodesPlusAsSpace) {
  EXPECT_EQ(parse_query("q=hello+world&a+b=c"), pairs({{"q", "hello world"}, {"a b", "c"}}));
}

TEST(QueryTest, DecodesPercentEscapesInKeysAndValues) {
  EXPECT_EQ(parse_query("na%6De=caf%C3%A9%2b"), pairs({{"name", "caf\xC3\xA9+"}}));
}

TEST(QueryTest, EncodedSeparatorsStayInsideTheirPair) {
  EXPECT_EQ(parse_query("a%3Db=c%26d"), pairs({{"a=b", "c&d"}}));
}

TEST(QueryTest, KeepsRepeatedKeysInOrder) {
  EXPECT_EQ(parse_query("tag=a&x=1&tag=b&tag=a"),
            pairs({{"tag", "a"}, {"x", "1"}, {"tag", "b"}, {"tag", "a"}}));
}

TEST(QueryTest, KeepsEmptyValues) {
  EXPECT_EQ(parse_query("a=&b="), pairs({{"a", ""}, {"b", ""}}));
}

TEST(QueryTest, KeyWithoutEqualsHasEmptyValue) {
  EXPECT_EQ(parse_query("flag&a=1"), pairs({{"flag", ""}, {"a", "1"}}));
}

TEST(QueryTest, KeepsEmptyKey) {
  EXPECT_EQ(parse_query("=x"), pairs({{"", "x"}}));
}

TEST(QueryTest, SkipsEmptyPairs) {
  EXPECT_EQ(parse_query("&a=1&&b=2&"), pairs({{"a", "1"}, {"b", "2"}}));
}

TEST(QueryTest, SplitsKeyFromValueOnFirstEquals) {
  EXPECT_EQ(parse_query("a=b=c"), pairs({{"a", "b=c"}}));
}

TEST(QueryTest, KeepsInvalidEscapesRaw) {
  EXPECT_EQ(parse_query("a=%zz&b=%4&c=100%&d%=1"),
            pairs({{"a", "%zz"}, {"b", "%4"}, {"c", "100%"}, {"d%", "1"}}));
}

TEST(QueryTest, DecodesValidEscapeAfterInvalidOne) {
  EXPECT_EQ(parse_query("a=%%41"), pairs({{"a", "%A"}}));
}

TEST(QueryTest, HandlesManyPairs) {
  std::string query;
  for (int i = 0; i < 100000; ++i) query += "k=v&";
  QueryParams parsed = parse_query(query);
  ASSERT_EQ(parsed.size(), 100000u);
  EXPECT_EQ(parsed.back(), (std::pair<std::string, std::string>{"k", "v"}));
}

}  // namespace
}  // namespace herd
