#include "master/worker_output.h"

#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace herd {

static void PrintTo(const OutputLine& line, std::ostream* out) {
  *out << "{\"" << line.text << "\"" << (line.cut ? ", cut" : "") << "}";
}

namespace {

using nlohmann::ordered_json;

std::vector<OutputLine> feed_all(LineSplitter& splitter, const std::vector<std::string>& pieces) {
  std::vector<OutputLine> lines;
  for (const std::string& piece : pieces) splitter.feed(piece, lines);
  return lines;
}

KeptLine kept(std::string text, std::int64_t unix_ms = 0) {
  return KeptLine{unix_ms, OutputStream::kStderr, std::move(text), false};
}

const OutputTag kTag{3, 1, 1234, OutputStream::kStderr};

// ---- LineSplitter --------------------------------------------------------------

TEST(LineSplitterTest, SplitsAReadIntoLines) {
  LineSplitter splitter;

  std::vector<OutputLine> lines = feed_all(splitter, {"one\ntwo\n\nthree\n"});

  EXPECT_EQ(lines, (std::vector<OutputLine>{{"one"}, {"two"}, {""}, {"three"}}));
  EXPECT_EQ(splitter.finish(), std::nullopt);
}

TEST(LineSplitterTest, JoinsALineSplitAcrossReads) {
  LineSplitter splitter;

  std::vector<OutputLine> lines = feed_all(splitter, {"hel", "lo wo", "rld\nnext", " line\n"});

  EXPECT_EQ(lines, (std::vector<OutputLine>{{"hello world"}, {"next line"}}));
}

TEST(LineSplitterTest, DropsTheCarriageReturnOfACrlf) {
  LineSplitter splitter;

  std::vector<OutputLine> lines = feed_all(splitter, {"dos\r\n", "split\r", "\n", "bare\rcr\n"});

  EXPECT_EQ(lines, (std::vector<OutputLine>{{"dos"}, {"split"}, {"bare\rcr"}}));
}

TEST(LineSplitterTest, FlushesAPartialLastLineAtTheEnd) {
  LineSplitter splitter;

  std::vector<OutputLine> lines = feed_all(splitter, {"done\nlast words"});
  std::optional<OutputLine> last = splitter.finish();

  EXPECT_EQ(lines, (std::vector<OutputLine>{{"done"}}));
  EXPECT_EQ(last, (OutputLine{"last words"}));
  EXPECT_EQ(splitter.finish(), std::nullopt) << "flushed twice";
}

TEST(LineSplitterTest, CutsAnOverlongLineAtTheLimitAndDropsItsRest) {
  LineSplitter splitter(8);

  std::vector<OutputLine> lines = feed_all(splitter, {"0123456789abcdef\nafter\n"});

  EXPECT_EQ(lines, (std::vector<OutputLine>{{"01234567", true}, {"after"}}));
}

TEST(LineSplitterTest, GivesAnOverlongLineOutBeforeItsNewlineArrives) {
  LineSplitter splitter(8);
  std::vector<OutputLine> lines;

  splitter.feed("0123", lines);
  splitter.feed("456789", lines);
  ASSERT_EQ(lines, (std::vector<OutputLine>{{"01234567", true}}));
  // However much more comes, nothing is kept until the newline.
  for (int i = 0; i < 1000; ++i) splitter.feed(std::string(1000, 'x'), lines);
  splitter.feed("tail\nnext\n", lines);

  EXPECT_EQ(lines, (std::vector<OutputLine>{{"01234567", true}, {"next"}}));
  EXPECT_EQ(splitter.finish(), std::nullopt);
}

TEST(LineSplitterTest, KeepsALineOfExactlyTheLimit) {
  LineSplitter splitter(8);

  std::vector<OutputLine> lines = feed_all(splitter, {"01234567\n", "01234567\r\n"});

  EXPECT_EQ(lines, (std::vector<OutputLine>{{"01234567"}, {"01234567"}}));
}

TEST(LineSplitterTest, PassesBinaryBytesThrough) {
  LineSplitter splitter;
  std::string binary("\0\x01\xff\xfe", 4);

  std::vector<OutputLine> lines = feed_all(splitter, {binary + "\n"});

  EXPECT_EQ(lines, (std::vector<OutputLine>{{binary}}));
}

// ---- to_valid_utf8 -------------------------------------------------------------

TEST(ValidUtf8Test, LeavesValidTextAlone) {
  EXPECT_EQ(to_valid_utf8("plain ascii"), "plain ascii");
  EXPECT_EQ(to_valid_utf8("caf\xc3\xa9 \xf0\x9f\x90\x91"), "caf\xc3\xa9 \xf0\x9f\x90\x91");
  EXPECT_EQ(to_valid_utf8(std::string("nul\0inside", 10)), std::string("nul\0inside", 10));
}

TEST(ValidUtf8Test, ReplacesInvalidSequences) {
  const std::string replacement = "\xef\xbf\xbd";

  EXPECT_EQ(to_valid_utf8("a\xff"
                          "b"),
            "a" + replacement + "b");
  EXPECT_EQ(to_valid_utf8("cut \xf0\x9f\x98"), "cut " + replacement);
  std::string surrogate = to_valid_utf8("\xed\xa0\x80");
  EXPECT_NE(surrogate.find(replacement), std::string::npos) << surrogate;
  EXPECT_EQ(surrogate.find('\xed'), std::string::npos) << "a UTF-16 surrogate got through";
}

// ---- OutputRing ----------------------------------------------------------------

TEST(OutputRingTest, KeepsTheLastLinesOldestFirst) {
  OutputRing ring(3);

  for (int i = 1; i <= 5; ++i) ring.add(kept("line " + std::to_string(i), i));

  ASSERT_EQ(ring.lines().size(), 3u);
  EXPECT_EQ(ring.lines()[0], kept("line 3", 3));
  EXPECT_EQ(ring.lines()[1], kept("line 4", 4));
  EXPECT_EQ(ring.lines()[2], kept("line 5", 5));
}

TEST(OutputRingTest, StartsEmpty) {
  OutputRing ring;

  EXPECT_TRUE(ring.lines().empty());
}

TEST(OutputRingTest, CutsALongLineOnACharacterBoundary) {
  OutputRing ring;
  // "é" is two bytes: the limit falls inside the one at its end.
  std::string text(OutputRing::kMaxKeptLineBytes - 1, 'a');
  text += "\xc3\xa9 and more";

  ring.add(kept(text));

  ASSERT_EQ(ring.lines().size(), 1u);
  EXPECT_EQ(ring.lines()[0].text, std::string(OutputRing::kMaxKeptLineBytes - 1, 'a'));
  EXPECT_TRUE(ring.lines()[0].cut);
}

// ---- records -------------------------------------------------------------------

TEST(WorkerOutputRecordTest, TextRecordTagsTheLine) {
  EXPECT_EQ(text_record(kTag, {"boom"}), "[worker 3 slot 1 pid 1234 stderr] boom");
  EXPECT_EQ(text_record({7, 0, 99, OutputStream::kStdout}, {"x", true}),
            "[worker 7 slot 0 pid 99 stdout] x [cut at 16384 bytes]");
}

TEST(WorkerOutputRecordTest, JsonRecordOfAPlainLineHasTheTagsAndTheMessage) {
  ordered_json record = json_record(kTag, {"a \"quoted\" line"});

  EXPECT_EQ(record, ordered_json::parse(R"({"level":"info","process":"worker 3","pid":1234,
      "worker":3,"slot":1,"stream":"stderr","msg":"a \"quoted\" line"})"));
}

TEST(WorkerOutputRecordTest, JsonRecordMarksACutLine) {
  ordered_json record = json_record(kTag, {"{\"level\":\"error\",\"msg\":\"trunc", true});

  EXPECT_EQ(record["cut"], true);
  EXPECT_EQ(record["msg"], "{\"level\":\"error\",\"msg\":\"trunc");
}

TEST(WorkerOutputRecordTest, JsonRecordLiftsTheFieldsOfAJsonLine) {
  ordered_json record = json_record(
      kTag,
      {R"({"time":"t0","level":"debug","msg":"Request handled by worker 3","pid":1,"x":[1]})"});

  EXPECT_EQ(record, ordered_json::parse(R"({"level":"debug","msg":"Request handled by worker 3",
      "pid":1234,"x":[1],"worker_time":"t0","process":"worker 3","worker":3,"slot":1,
      "stream":"stderr"})"));
}

TEST(WorkerOutputRecordTest, JsonRecordKeepsTooDeepJsonAsAPlainLine) {
  std::string deep = std::string(100, '[') + std::string(100, ']');
  std::string line = "{\"a\":" + deep + "}";

  ordered_json record = json_record(kTag, {line});

  EXPECT_EQ(record["msg"], line);
  EXPECT_FALSE(record.contains("a"));
}

TEST(WorkerOutputRecordTest, JsonRecordKeepsNonObjectJsonAsAPlainLine) {
  EXPECT_EQ(json_record(kTag, {"[1,2]"})["msg"], "[1,2]");
  EXPECT_EQ(json_record(kTag, {"{not json"})["msg"], "{not json");
  EXPECT_EQ(json_record(kTag, {"42"})["msg"], "42");
}

}  // namespace
}  // namespace herd
