#include "worker/http_session.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "tests/worker/session_harness.h"

namespace herd {
namespace {

using namespace herd::testing;
using Response = ParsedResponse;

class HttpSessionTest : public ::testing::Test {
 protected:
  // Feeds `input` in one call and returns what was written.
  std::string feed_all(std::string_view input) {
    std::string output;
    last_ = session_.feed(input, output);
    return output;
  }

  // Feeds `input` `piece` bytes at a time, as reads would bring it, keeping
  // what the session did not consume; stops once the session closes.
  std::string feed_in_pieces(std::string_view input, std::size_t piece) {
    std::string pending;
    std::string output;
    for (std::size_t offset = 0; offset < input.size() && !session_->closing(); offset += piece) {
      pending += input.substr(offset, piece);
      pending.erase(0, session_.feed(pending, output).consumed);
    }
    return output;
  }

  TestSession session_;
  HttpSession::FeedResult last_;
};

TEST_F(HttpSessionTest, AnswersGetRootWithHelloWorld) {
  std::optional<Response> response = only_response(feed_all(kGetRoot));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 200u);
  EXPECT_EQ(response->version(), 11u);
  EXPECT_EQ(response->body(), "Hello World!");
  EXPECT_EQ(header(*response, http::field::content_type), "text/html; charset=utf-8");
  EXPECT_EQ(header(*response, http::field::content_length), "12");
  EXPECT_EQ(header(*response, http::field::date), kDate);
  EXPECT_EQ(last_.consumed, kGetRoot.size());
  EXPECT_EQ(last_.requests, 1u);
}

TEST_F(HttpSessionTest, AnswersOtherPathWithCannotGet) {
  std::optional<Response> response =
      only_response(feed_all("GET /nope HTTP/1.1\r\nHost: localhost\r\n\r\n"));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 404u);
  EXPECT_EQ(response->body(), "Cannot GET /nope");
  EXPECT_EQ(header(*response, http::field::content_type), "text/html; charset=utf-8");
  EXPECT_EQ(header(*response, http::field::content_length), "16");
}

TEST_F(HttpSessionTest, IgnoresQueryStringWhenRouting) {
  std::optional<Response> root =
      only_response(feed_all("GET /?name=x&y=1 HTTP/1.1\r\nHost: a\r\n\r\n"));
  std::optional<Response> other =
      only_response(feed_all("GET /nope?q=1 HTTP/1.1\r\nHost: a\r\n\r\n"));

  ASSERT_TRUE(root.has_value());
  EXPECT_EQ(root->result_int(), 200u);
  ASSERT_TRUE(other.has_value());
  EXPECT_EQ(other->body(), "Cannot GET /nope");
}

TEST_F(HttpSessionTest, EscapesPathInNotFoundBody) {
  std::optional<Response> response =
      only_response(feed_all("GET /a&b'c\"d HTTP/1.1\r\nHost: a\r\n\r\n"));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 404u);
  EXPECT_EQ(response->body(), "Cannot GET /a&amp;b&#39;c&quot;d");
}

TEST_F(HttpSessionTest, HeadGetsHeadersWithoutBody) {
  std::string output = feed_all("HEAD / HTTP/1.1\r\nHost: localhost\r\n\r\n");

  ASSERT_GE(output.size(), 4u);
  ASSERT_EQ(output.substr(output.size() - 4), "\r\n\r\n") << "a body followed the headers";
  std::optional<Response> response = only_response(output, /*head=*/true);
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 200u);
  EXPECT_EQ(header(*response, http::field::content_length), "12");
  EXPECT_EQ(header(*response, http::field::content_type), "text/html; charset=utf-8");
  EXPECT_TRUE(response->body().empty());
}

TEST_F(HttpSessionTest, PipelinedRequestsAreAnsweredInOrder) {
  std::string input =
      "GET /first HTTP/1.1\r\nHost: a\r\n\r\n"
      "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"
      "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
      "GET /last HTTP/1.1\r\nHost: a\r\n\r\n";

  std::string output = feed_all(input);

  EXPECT_EQ(last_.consumed, input.size());
  EXPECT_EQ(last_.requests, 4u);
  std::string_view rest = output;
  std::optional<Response> first = read_response(rest);
  std::optional<Response> head = read_response(rest, /*head=*/true);
  std::optional<Response> root = read_response(rest);
  std::optional<Response> last = read_response(rest);
  ASSERT_TRUE(first && head && root && last);
  EXPECT_EQ(first->body(), "Cannot GET /first");
  EXPECT_EQ(head->result_int(), 200u);
  EXPECT_EQ(root->body(), "Hello World!");
  EXPECT_EQ(last->body(), "Cannot GET /last");
  EXPECT_TRUE(rest.empty());
  EXPECT_FALSE(session_->closing());
}

TEST_F(HttpSessionTest, RequestFedByteByByteYieldsOneResponse) {
  std::string input = "GET / HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n";
  std::string pending;  // what the caller keeps: unconsumed bytes plus new ones
  std::string output;
  std::size_t consumed = 0;
  std::size_t requests = 0;

  for (std::size_t i = 0; i < input.size(); ++i) {
    pending += input[i];
    HttpSession::FeedResult result = session_.feed(pending, output);
    ASSERT_LE(result.consumed, pending.size());
    pending.erase(0, result.consumed);
    consumed += result.consumed;
    requests += result.requests;
    if (i + 1 < input.size()) {
      ASSERT_TRUE(output.empty()) << "answered after " << i + 1 << " bytes";
      EXPECT_TRUE(session_->in_request()) << "after " << i + 1 << " bytes";
    }
  }

  EXPECT_EQ(consumed, input.size());
  EXPECT_TRUE(pending.empty());
  EXPECT_EQ(requests, 1u);
  EXPECT_FALSE(session_->in_request());
  std::optional<Response> response = only_response(output);
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->body(), "Hello World!");
}

TEST_F(HttpSessionTest, PostBodyFedByteByByteIsConsumedOnce) {
  std::string input =
      "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: "
      "a\r\n\r\n";
  std::string pending;
  std::string output;
  std::size_t requests = 0;

  for (char byte : input) {
    pending += byte;
    HttpSession::FeedResult result = session_.feed(pending, output);
    ASSERT_LE(result.consumed, pending.size());
    pending.erase(0, result.consumed);
    requests += result.requests;
  }

  EXPECT_TRUE(pending.empty());
  EXPECT_EQ(requests, 2u);
  std::string_view rest = output;
  std::optional<Response> post = read_response(rest);
  std::optional<Response> get = read_response(rest);
  ASSERT_TRUE(post && get);
  EXPECT_EQ(post->body(), "Cannot POST /x");
  EXPECT_EQ(get->body(), "Hello World!");
  EXPECT_TRUE(rest.empty());
}

TEST_F(HttpSessionTest, RequestSplitAcrossFeedsAtEveryPointYieldsOneResponse) {
  std::string input = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc";
  for (std::size_t split = 1; split < input.size(); ++split) {
    TestSession session;
    std::string output;
    std::string pending = input.substr(0, split);

    HttpSession::FeedResult first = session.feed(pending, output);
    pending.erase(0, first.consumed);
    pending += input.substr(split);
    HttpSession::FeedResult second = session.feed(pending, output);

    EXPECT_EQ(first.requests + second.requests, 1u) << "split at " << split;
    EXPECT_EQ(second.consumed, pending.size()) << "split at " << split;
    std::optional<Response> response = only_response(output);
    ASSERT_TRUE(response.has_value()) << "split at " << split;
    EXPECT_EQ(response->body(), "Cannot POST /x") << "split at " << split;
  }
}

// ---- garbage, and requests a proxy in front could read another way ---------

// Each is refused with `status` and the connection closes; the request after
// it in the same bytes is never read.
struct Refused {
  const char* name;
  std::string request;
  unsigned status;
};

class RefusedRequestTest : public ::testing::TestWithParam<Refused> {};

TEST_P(RefusedRequestTest, IsRefusedAndNothingAfterItIsRead) {
  int calls = 0;
  App app;
  app.use([&](Request&, herd::Response& res, Next&) {
    ++calls;
    res.send("called");
  });
  TestSession session(HttpLimits{}, std::move(app));
  std::string output;

  session.feed(GetParam().request + std::string(kGetRoot), output);

  EXPECT_EQ(calls, 0) << "a refused request reached the application";
  EXPECT_TRUE(session->closing());
  EXPECT_FALSE(session->in_request());
  std::optional<Response> response = only_response(output);
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), GetParam().status);
  EXPECT_FALSE(response->keep_alive());
}

// The same, with the request split in two feeds at every byte.
TEST_P(RefusedRequestTest, IsRefusedWhereverItIsSplit) {
  const std::string& input = GetParam().request;
  for (std::size_t split = 1; split < input.size(); ++split) {
    TestSession session;
    std::string output;
    std::string pending = input.substr(0, split);
    pending.erase(0, session.feed(pending, output).consumed);
    if (!session->closing()) {
      pending += input.substr(split);
      session.feed(pending, output);
    }
    std::optional<Response> response = only_response(output);
    ASSERT_TRUE(response.has_value()) << "split at " << split;
    EXPECT_EQ(response->result_int(), GetParam().status) << "split at " << split;
  }
}

std::string refused_name(const ::testing::TestParamInfo<Refused>& info) {
  return info.param.name;
}

INSTANTIATE_TEST_SUITE_P(
    Smuggling, RefusedRequestTest,
    ::testing::Values(
        Refused{"Garbage", "NOT HTTP AT ALL\r\n\r\n", 400},
        Refused{"ContentLengthAndTransferEncoding",
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
                "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                400},
        Refused{"DifferingContentLengths",
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n"
                "abcde",
                400},
        Refused{"ChunkSizeNotHex",
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n"
                "0\r\n\r\n",
                400},
        Refused{"ChunkSizeOverflowing",
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                "ffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
                400},
        Refused{"ObsFold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", 400},
        Refused{"ObsFoldWithTab", "GET / HTTP/1.1\r\nX-A: b\r\n\tc\r\nHost: a\r\n\r\n", 400},
        Refused{"SpaceBeforeTheFirstField", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400},
        Refused{"BareLfEndingTheRequestLine", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400},
        Refused{"BareLfEndingAField", "GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", 400},
        Refused{"TransferEncodingIdentity",
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 400},
        Refused{"ChunkedNotLast",
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"
                "0\r\n\r\n",
                400},
        Refused{"EmptyTransferEncoding",
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n", 400},
        Refused{"UnknownCodingBeforeChunked",
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                "0\r\n\r\n",
                501},
        Refused{"UnknownCodingInAnEarlierField",
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n"
                "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                501}),
    refused_name);

std::string empty_lines(std::size_t count) {
  std::string lines;
  for (std::size_t i = 0; i < count; ++i) lines += "\r\n";
  return lines;
}

// RFC 9112's rules for the message around the framing.
INSTANTIATE_TEST_SUITE_P(
    Conformance, RefusedRequestTest,
    ::testing::Values(
        Refused{"Http11WithoutHost", "GET / HTTP/1.1\r\n\r\n", 400},
        Refused{"TwoHosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
        Refused{"TwoHostsInOneRequestOfHttp10", "GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n",
                400},
        Refused{"TooManyEmptyLinesFirst",
                empty_lines(HttpSession::kMaxEmptyLines + 1) + "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
                400},
        Refused{"BareLfFirst", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        Refused{"Http2Preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
        Refused{"Http3Version", "GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505},
        Refused{"Http10WithTransferEncoding",
                "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
        Refused{"Http10WithTransferEncodingAndContentLength",
                "POST / HTTP/1.0\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                "0\r\n\r\n",
                400}),
    refused_name);

// What Beast lets through in a chunked body: a chunk line that never ends,
// bytes RFC 9112 7.1.1 does not allow in it, and data not followed by CRLF.
std::string chunked_post(std::string_view body) {
  return "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + std::string(body);
}

INSTANTIATE_TEST_SUITE_P(
    ChunkLines, RefusedRequestTest,
    ::testing::Values(
        Refused{"QuotedExtensionLeftOpen", chunked_post("5;a=\"def; ghi\r\nhello\r\n0\r\n\r\n"),
                400},
        Refused{"QuotedExtensionLeftOpenByAQuotedPair",
                chunked_post("5;a=\"def\\\"\r\nhello\r\n0\r\n\r\n"), 400},
        Refused{"LastChunkExtensionLeftOpen", chunked_post("0;a=\"x\r\n\r\n"), 400},
        Refused{"LfInAQuotedExtension", chunked_post("5;a=\"b\nc\"\r\nhello\r\n0\r\n\r\n"), 400},
        Refused{"NulInAQuotedExtension",
                chunked_post(std::string("5;a=\"b\0c\"\r\nhello\r\n0\r\n\r\n", 24)), 400},
        Refused{"DelInAQuotedExtension", chunked_post("5;a=\"b\x7f\"\r\nhello\r\n0\r\n\r\n"), 400},
        Refused{"LfEndingAChunkLine", chunked_post("5\nhello\r\n0\r\n\r\n"), 400},
        Refused{"ChunkLineOverTheLimit",
                chunked_post("5;a=" + std::string(HttpLimits{}.chunk_line_bytes, 'b') +
                             "\r\nhello\r\n0\r\n\r\n"),
                400},
        Refused{"ChunkDataNotFollowedByCrlf", chunked_post("5\r\nhelloXY\r\n0\r\n\r\n"), 400},
        Refused{"ChunkDataFollowedByCrThenNotLf", chunked_post("5\r\nhello\rX\r\n0\r\n\r\n"), 400},
        Refused{"BareLfInTheTrailer", chunked_post("0\r\nX: a\nY: b\r\n\r\n"), 400},
        Refused{"TrailerOverTheHeaderLimit",
                chunked_post("0\r\nX: " + std::string(HttpLimits{}.header_bytes, 't') + "\r\n\r\n"),
                431}),
    refused_name);

TEST_F(HttpSessionTest, Http10WithoutHostIsServed) {
  std::optional<Response> response = only_response(feed_all("GET / HTTP/1.0\r\n\r\n"));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 200u);
}

// RFC 9112 2.2: a client may send an empty line after a POST body.
TEST_F(HttpSessionTest, EmptyLinesBeforeARequestAreSkipped) {
  std::string post = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nab";
  std::string input =
      empty_lines(HttpSession::kMaxEmptyLines) + post + "\r\n" + std::string(kGetRoot);

  for (std::size_t piece : {input.size(), std::size_t{1}, std::size_t{3}}) {
    TestSession session;
    std::string pending;
    std::string output;
    for (std::size_t offset = 0; offset < input.size(); offset += piece) {
      pending += input.substr(offset, piece);
      pending.erase(0, session.feed(pending, output).consumed);
    }

    EXPECT_TRUE(pending.empty()) << "in pieces of " << piece;
    std::string_view rest = output;
    std::optional<Response> first = read_response(rest);
    std::optional<Response> second = read_response(rest);
    ASSERT_TRUE(first && second) << "in pieces of " << piece;
    EXPECT_EQ(first->body(), "Cannot POST /x");
    EXPECT_EQ(second->body(), "Hello World!");
    EXPECT_FALSE(session->closing());
    EXPECT_FALSE(session->in_request()) << "in pieces of " << piece;
  }
}

// An empty line does not start a request: the connection stays idle (its
// keep-alive timeout, not the request's, applies).
TEST_F(HttpSessionTest, EmptyLineAloneLeavesTheConnectionIdle) {
  std::string output = feed_all("\r\n");

  EXPECT_TRUE(output.empty());
  EXPECT_EQ(last_.consumed, 2u);
  EXPECT_EQ(last_.requests, 0u);
  EXPECT_FALSE(session_->in_request());
}

TEST_F(HttpSessionTest, ChunkExtensionsWithinTheRulesAreAccepted) {
  std::string body;
  App app;
  app.post("/x", [&](Request& req, herd::Response& res) {
    body = std::string(req.body());
    res.send("ok");
  });
  TestSession session(HttpLimits{}, std::move(app));
  std::string output;

  session.feed(
      "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;a=\"b c\\\"d\";e=f\r\nhello\r\n1 ; g = \"\t\"\r\n!\r\n0;h\r\n\r\n",
      output);

  std::optional<Response> response = only_response(output);
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 200u);
  EXPECT_EQ(body, "hello!");
  EXPECT_FALSE(session->closing());
}

// Bytes the application never sees still count: extensions against the
// body limit.
TEST_F(HttpSessionTest, ChunkExtensionsCountAgainstTheBodyLimit) {
  HttpLimits limits;
  limits.body_bytes = 16;
  std::string within = chunked_post("5;a=bcd\r\nhello\r\n0\r\n\r\n");           // 5 + 6 bytes
  std::string beyond = chunked_post("5;a=bcdefghijklm\r\nhello\r\n0\r\n\r\n");  // 5 + 15 bytes

  TestSession accepted(limits);
  std::string output;
  accepted.feed(within, output);
  std::optional<Response> response = only_response(output);
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 404u);

  TestSession refused(limits);
  output.clear();
  refused.feed(beyond, output);
  response = only_response(output);
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 413u);
  EXPECT_TRUE(refused->closing());
}

// The memory attack: a chunk line that never ends. Beast keeps all of it
// unconsumed; the session refuses it once it passes the limit, so the
// connection never holds more.
TEST_F(HttpSessionTest, ChunkLineThatNeverEndsIsRefusedAtTheLimit) {
  for (std::string_view start : {"5;a=\"b", "5;a=", "5", "0;a=b"}) {
    TestSession session;
    std::string output;
    std::string pending = chunked_post(start);
    pending.erase(0, session.feed(pending, output).consumed);
    std::size_t sent = 0;
    while (!session->closing() && sent < 1024 * 1024) {
      pending += std::string(512, 'b');
      sent += 512;
      pending.erase(0, session.feed(pending, output).consumed);
    }

    EXPECT_TRUE(session->closing()) << start << ": still reading after " << sent << " bytes";
    EXPECT_LE(sent, HttpLimits{}.chunk_line_bytes + 512) << start;
    std::optional<Response> response = only_response(output);
    ASSERT_TRUE(response.has_value()) << start;
    EXPECT_EQ(response->result_int(), 400u) << start;
  }
}

// Refused at once, not at the header timeout: the line is whole, and its
// quote would only close in the data that follows.
TEST_F(HttpSessionTest, QuotedExtensionLeftOpenIsRefusedWhenItsLineEnds) {
  std::optional<Response> response = only_response(feed_all(chunked_post("5;a=\"def; ghi\r\n")));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 400u);
  EXPECT_TRUE(session_->closing());
}

// Refused at the first byte after the data that is not CR (Beast would wait
// for four).
TEST_F(HttpSessionTest, ChunkDataNotFollowedByCrIsRefusedAtOnce) {
  for (std::string_view after : {"X", "\rX"}) {
    TestSession session;
    std::string output;
    session.feed(chunked_post("5\r\nhello") + std::string(after), output);

    std::optional<Response> response = only_response(output);
    ASSERT_TRUE(response.has_value()) << after;
    EXPECT_EQ(response->result_int(), 400u);
  }
}

// Beast would merge trailer fields into the header, after the Host and
// framing checks: they are dropped (RFC 9110 6.5.1).
TEST_F(HttpSessionTest, TrailerFieldsAreDroppedNotMergedIntoTheHeader) {
  std::vector<std::string> seen;
  App app = hello_app();
  app.post("/x", [&](Request& req, herd::Response& res) {
    seen = {std::string(req.header("Host").value_or("none")),
            std::string(req.header("X-Trailer").value_or("none")),
            std::to_string(req.headers().size())};
    res.send(std::string(req.body()));
  });
  TestSession session(HttpLimits{}, std::move(app));
  std::string output;
  std::string input =
      "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n0\r\nHost: evil\r\nX-Trailer: 1\r\n\r\n" +
      std::string(kGetRoot);

  session.feed(input, output);

  EXPECT_EQ(seen, (std::vector<std::string>{"a", "none", "2"}));
  std::string_view rest = output;
  std::optional<Response> post = read_response(rest);
  std::optional<Response> get = read_response(rest);
  ASSERT_TRUE(post && get);
  EXPECT_EQ(post->body(), "hello");
  EXPECT_EQ(get->body(), "Hello World!");
}

TEST_F(HttpSessionTest, ChunkedInAnyCaseIsAccepted) {
  std::string input =
      "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked \r\n\r\n3\r\nabc\r\n0\r\n\r\n";

  std::optional<Response> response = only_response(feed_all(input));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->body(), "Cannot POST /x");
  EXPECT_FALSE(session_->closing());
}

// Only the header is scanned for folds: spaces inside values, and a body
// with a line that starts with a space, are fine.
TEST_F(HttpSessionTest, SpacesThatAreNotObsFoldAreAccepted) {
  std::string input =
      "POST /x HTTP/1.1\r\nHost: a\r\nX-A:  b c \r\nContent-Length: 6\r\n\r\nab\r\n c";

  std::optional<Response> response = only_response(feed_all(input));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 404u);
  EXPECT_FALSE(session_->closing());
}

// The scan starts afresh with each request on a keep-alive connection.
TEST_F(HttpSessionTest, ObsFoldInASecondPipelinedRequestIsRefused) {
  std::string output =
      feed_all(std::string(kGetRoot) + "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n");

  std::string_view rest = output;
  std::optional<Response> first = read_response(rest);
  std::optional<Response> second = read_response(rest);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->result_int(), 200u);
  EXPECT_EQ(second->result_int(), 400u);
}

TEST_F(HttpSessionTest, InRequestWhileRequestIsIncomplete) {
  EXPECT_FALSE(session_->in_request());

  std::string output;
  HttpSession::FeedResult partial = session_.feed("GET / HT", output);

  EXPECT_TRUE(session_->in_request());
  EXPECT_TRUE(output.empty());
  std::string rest = std::string("GET / HT").substr(partial.consumed) + "TP/1.1\r\n\r\n";
  session_.feed(rest, output);
  EXPECT_FALSE(session_->in_request());
  EXPECT_FALSE(output.empty());
}

TEST_F(HttpSessionTest, InRequestWhileBodyIsIncomplete) {
  std::string head = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n12345";
  std::string output;

  HttpSession::FeedResult result = session_.feed(head, output);

  EXPECT_EQ(result.consumed, head.size());  // the partial body is buffered in the session
  EXPECT_EQ(result.requests, 0u);
  EXPECT_TRUE(session_->in_request());
  EXPECT_TRUE(output.empty());
  result = session_.feed("67890", output);
  EXPECT_EQ(result.requests, 1u);
  EXPECT_FALSE(session_->in_request());
}

TEST_F(HttpSessionTest, Http11KeepsConnectionAliveByDefault) {
  std::optional<Response> response = only_response(feed_all(kGetRoot));

  ASSERT_TRUE(response.has_value());
  EXPECT_TRUE(response->keep_alive());
  EXPECT_FALSE(session_->closing());
}

TEST_F(HttpSessionTest, ConnectionCloseRequestClosesAfterResponse) {
  std::string first = "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";

  std::string output = feed_all(first + std::string(kGetRoot));

  EXPECT_TRUE(session_->closing());
  EXPECT_EQ(last_.consumed, first.size());  // the pipelined request is not read
  EXPECT_EQ(last_.requests, 1u);
  std::optional<Response> response = only_response(output);
  ASSERT_TRUE(response.has_value());
  EXPECT_FALSE(response->keep_alive());
  EXPECT_EQ(header(*response, http::field::connection), "close");
}

TEST_F(HttpSessionTest, Http10WithoutKeepAliveCloses) {
  std::optional<Response> response = only_response(feed_all("GET / HTTP/1.0\r\n\r\n"));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->body(), "Hello World!");
  EXPECT_FALSE(response->keep_alive());
  EXPECT_TRUE(session_->closing());
}

TEST_F(HttpSessionTest, Http10WithKeepAliveStaysOpen) {
  std::optional<Response> response =
      only_response(feed_all("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->version(), 10u);
  EXPECT_TRUE(response->keep_alive());
  EXPECT_FALSE(session_->closing());
}

TEST_F(HttpSessionTest, ClosingSessionConsumesAndAnswersNothingMore) {
  feed_all("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(session_->closing());

  std::string output = feed_all(kGetRoot);

  EXPECT_TRUE(output.empty());
  EXPECT_EQ(last_.consumed, 0u);
  EXPECT_EQ(last_.requests, 0u);
}

TEST_F(HttpSessionTest, HeadersOverLimitGet431) {
  std::string input =
      "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(17 * 1024, 'a') + "\r\n\r\n";

  std::optional<Response> response = only_response(feed_all(input));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 431u);
  EXPECT_FALSE(response->keep_alive());
  EXPECT_TRUE(session_->closing());
}

TEST_F(HttpSessionTest, HeadersOverLimitArrivingInPiecesGet431) {
  std::string input =
      "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(17 * 1024, 'a') + "\r\n\r\n";

  std::optional<Response> response = only_response(feed_in_pieces(input, 1000));
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 431u);
}

TEST_F(HttpSessionTest, RequestLineOverHeaderLimitGets414) {
  std::string input = "GET /" + std::string(17 * 1024, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n";

  std::optional<Response> response = only_response(feed_all(input));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 414u);
  EXPECT_FALSE(response->keep_alive());
}

TEST_F(HttpSessionTest, RequestLineOverHeaderLimitArrivingInPiecesGets414) {
  std::string input = "GET /" + std::string(17 * 1024, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n";

  std::optional<Response> response = only_response(feed_in_pieces(input, 1000));
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 414u);
}

TEST_F(HttpSessionTest, RequestLineAndHeadersTogetherOverLimitGet431) {
  // Each part is under 16 KiB; the limit is on their sum.
  std::string input = "GET /" + std::string(9 * 1024, 'a') +
                      " HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(9 * 1024, 'b') + "\r\n\r\n";

  std::optional<Response> response = only_response(feed_all(input));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 431u);
}

TEST_F(HttpSessionTest, HeadersJustUnderLimitAreAccepted) {
  std::string input =
      "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(15 * 1024, 'a') + "\r\n\r\n";

  std::optional<Response> response = only_response(feed_all(input));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 200u);
}

TEST_F(HttpSessionTest, ContentLengthOverBodyLimitGets413) {
  std::string input =
      "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: " + std::to_string(1024 * 1024 + 1) +
      "\r\n\r\n";

  std::optional<Response> response = only_response(feed_all(input));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 413u);
  EXPECT_FALSE(response->keep_alive());
  EXPECT_TRUE(session_->closing());
}

TEST_F(HttpSessionTest, BodyOfExactlyBodyLimitIsAccepted) {
  std::string input =
      "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: " + std::to_string(1024 * 1024) + "\r\n\r\n" +
      std::string(1024 * 1024, 'b');

  std::optional<Response> response = only_response(feed_all(input));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 404u);
  EXPECT_EQ(last_.consumed, input.size());
}

TEST_F(HttpSessionTest, ChunkedBodyOverLimitGets413) {
  TestSession session(HttpLimits{16 * 1024, 10});
  std::string output;

  session.feed(
      "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nb\r\nhello "
      "world\r\n0\r\n\r\n",
      output);

  std::optional<Response> response = only_response(output);
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 413u);
  EXPECT_TRUE(session->closing());
}

TEST_F(HttpSessionTest, PostBodyIsConsumedAndAnsweredNotFound) {
  std::string post = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";

  std::string output = feed_all(post + std::string(kGetRoot));

  EXPECT_EQ(last_.consumed, post.size() + kGetRoot.size());
  EXPECT_EQ(last_.requests, 2u);
  std::string_view rest = output;
  std::optional<Response> first = read_response(rest);
  std::optional<Response> second = read_response(rest);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->result_int(), 404u);
  EXPECT_EQ(first->body(), "Cannot POST /x");
  EXPECT_EQ(second->body(), "Hello World!");
}

TEST_F(HttpSessionTest, ChunkedPostBodyIsConsumed) {
  std::string post =
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";

  std::string output = feed_all(post + std::string(kGetRoot));

  EXPECT_EQ(last_.consumed, post.size() + kGetRoot.size());
  std::string_view rest = output;
  std::optional<Response> first = read_response(rest);
  std::optional<Response> second = read_response(rest);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->body(), "Cannot POST /");
  EXPECT_EQ(second->body(), "Hello World!");
}

TEST_F(HttpSessionTest, PassesMethodTargetPathAndBodyToHandler) {
  std::vector<std::string> seen;
  App app;
  app.put("/items/:id", [&](Request& request, herd::Response& response) {
    seen = {std::string(request.method()), std::string(request.url()), std::string(request.path()),
            std::string(request.body())};
    response.status(201).type("application/json").send("{}");
  });
  TestSession session(HttpLimits{}, std::move(app));
  std::string output;

  session.feed("PUT /items/7?force=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\ndata", output);

  EXPECT_EQ(seen, (std::vector<std::string>{"PUT", "/items/7?force=1", "/items/7", "data"}));
  std::optional<Response> response = only_response(output);
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 201u);
  EXPECT_EQ(header(*response, http::field::content_type), "application/json");
  EXPECT_EQ(response->body(), "{}");
}

TEST_F(HttpSessionTest, DrainingMakesTheLastResponseCloseConnection) {
  session_->drain();

  std::string output = feed_all(std::string(kGetRoot) + std::string(kGetRoot));

  EXPECT_TRUE(session_->closing());
  EXPECT_EQ(last_.requests, 1u);
  EXPECT_EQ(last_.consumed, kGetRoot.size());
  std::optional<Response> response = only_response(output);
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->body(), "Hello World!");
  EXPECT_FALSE(response->keep_alive());
}

TEST_F(HttpSessionTest, DrainingAppliesToRequestAlreadyInProgress) {
  std::string output;
  HttpSession::FeedResult partial = session_.feed("GET / HTTP/1.1\r\nHost: a\r\n", output);

  session_->drain();
  std::string rest = std::string("GET / HTTP/1.1\r\nHost: a\r\n").substr(partial.consumed) + "\r\n";
  session_.feed(rest, output);

  std::optional<Response> response = only_response(output);
  ASSERT_TRUE(response.has_value());
  EXPECT_FALSE(response->keep_alive());
  EXPECT_TRUE(session_->closing());
}

TEST_F(HttpSessionTest, AnswersOtherMethodsOnRootWithCannot) {
  std::optional<Response> response =
      only_response(feed_all("DELETE / HTTP/1.1\r\nHost: a\r\n\r\n"));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->result_int(), 404u);
  EXPECT_EQ(response->body(), "Cannot DELETE /");
}

TEST_F(HttpSessionTest, EscapesHtmlInNotFoundPath) {
  std::optional<Response> response =
      only_response(feed_all("GET /<b> HTTP/1.1\r\nHost: a\r\n\r\n"));

  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->body(), "Cannot GET /&lt;b&gt;");
  EXPECT_EQ(header(*response, http::field::content_type), "text/html; charset=utf-8");
}

TEST(HttpDateTest, FormatsImfFixdate) {
  EXPECT_EQ(http_date(784111777), kDate);
}

TEST(ReasonPhraseTest, NamesCommonStatuses) {
  EXPECT_EQ(reason_phrase(200), "OK");
  EXPECT_EQ(reason_phrase(400), "Bad Request");
  EXPECT_EQ(reason_phrase(404), "Not Found");
}

}  // namespace
}  // namespace herd
