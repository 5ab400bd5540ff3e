#include "master/proc_stats.h"

#include <unistd.h>

#include <limits>
#include <optional>
#include <string>

#include <gtest/gtest.h>

namespace herd {
namespace {

constexpr std::uint64_t kPageKb = 4;

// A /proc/<pid>/stat line as Linux writes it, with utime 250 (field 14),
// stime 50 (field 15) and rss 2048 pages (field 24) after the given command.
std::string stat_line(const std::string& command) {
  return "4242 (" + command +
         ") S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 50 0 0 20 0 1 0 123456 12345678 2048 "
         "18446744073709551615 94897136799744 94897136819625 140727780685936 0 0 0 0 0 0 0 0 0 17 "
         "0 0 0 0 0 0 94897136835632 94897136837248 94897582231552 140727780690374 "
         "140727780690394 140727780690394 140727780691947 0\n";
}

TEST(ParseProcStatTest, ReadsCpuTicksAndRss) {
  std::optional<ProcSample> sample = parse_proc_stat(stat_line("herd-worker"), kPageKb);

  ASSERT_TRUE(sample.has_value());
  EXPECT_EQ(sample->cpu_ticks, 300u);     // utime + stime
  EXPECT_EQ(sample->rss_kb, 2048u * 4u);  // pages times the page size
}

TEST(ParseProcStatTest, ScalesRssByThePageSize) {
  std::optional<ProcSample> sample = parse_proc_stat(stat_line("herd-worker"), 64);

  ASSERT_TRUE(sample.has_value());
  EXPECT_EQ(sample->rss_kb, 2048u * 64u);
}

TEST(ParseProcStatTest, CommandMayHoldSpacesAndParentheses) {
  std::optional<ProcSample> sample = parse_proc_stat(stat_line("my (weird) name"), kPageKb);

  ASSERT_TRUE(sample.has_value());
  EXPECT_EQ(sample->cpu_ticks, 300u);
  EXPECT_EQ(sample->rss_kb, 2048u * 4u);
}

TEST(ParseProcStatTest, CommandThatLooksLikeFieldsIsSkipped) {
  std::optional<ProcSample> sample = parse_proc_stat(
      stat_line("x) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20"), kPageKb);

  ASSERT_TRUE(sample.has_value());
  EXPECT_EQ(sample->cpu_ticks, 300u);
  EXPECT_EQ(sample->rss_kb, 2048u * 4u);
}

TEST(ParseProcStatTest, LineEndingAtRssIsEnough) {
  std::string line = "1 (init) S 0 1 1 0 -1 4194560 0 0 0 0 7 3 0 0 20 0 1 0 10 1000 25\n";

  std::optional<ProcSample> sample = parse_proc_stat(line, kPageKb);

  ASSERT_TRUE(sample.has_value());
  EXPECT_EQ(sample->cpu_ticks, 10u);
  EXPECT_EQ(sample->rss_kb, 100u);
}

TEST(ParseProcStatTest, RejectsAnEmptyLine) {
  EXPECT_FALSE(parse_proc_stat("", kPageKb).has_value());
}

TEST(ParseProcStatTest, RejectsALineWithoutTheCommandsClosingParenthesis) {
  EXPECT_FALSE(parse_proc_stat("4242 (herd-worker S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 50 0 "
                               "0 20 0 1 0 123456 12345678 2048 0",
                               kPageKb)
                   .has_value());
}

TEST(ParseProcStatTest, RejectsALineCutBeforeRss) {
  std::string line =
      "4242 (herd-worker) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 50 0 0 20 0 1 "
      "0 123456 12345678";

  EXPECT_FALSE(parse_proc_stat(line, kPageKb).has_value());
}

TEST(ParseProcStatTest, RejectsANonNumericCpuTime) {
  std::string line =
      "4242 (herd-worker) S 1 4242 4242 0 -1 4194560 1234 0 0 0 lots 50 0 0 20 0 "
      "1 0 123456 12345678 2048 0";

  EXPECT_FALSE(parse_proc_stat(line, kPageKb).has_value());
}

TEST(ParseProcStatTest, RejectsANegativeRss) {
  std::string line =
      "4242 (herd-worker) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 50 0 0 20 0 1 "
      "0 123456 12345678 -2048 0";

  EXPECT_FALSE(parse_proc_stat(line, kPageKb).has_value());
}

TEST(ReadProcSampleTest, ReadsThisProcess) {
  std::optional<ProcSample> sample = read_proc_sample(::getpid());

  ASSERT_TRUE(sample.has_value());
  EXPECT_GT(sample->rss_kb, 0u);
}

TEST(ReadProcSampleTest, ProcessThatDoesNotExistHasNoSample) {
  // Above any pid_max Linux allows (2^22), so never a live process.
  EXPECT_FALSE(read_proc_sample(std::numeric_limits<pid_t>::max()).has_value());
}

TEST(CpuPercentTest, OneCoreBusyForTheWholeIntervalIsOneHundredPercent) {
  EXPECT_DOUBLE_EQ(cpu_percent(100, Milliseconds{1000}, 100), 100.0);
}

TEST(CpuPercentTest, PartOfTheIntervalIsThatFraction) {
  EXPECT_DOUBLE_EQ(cpu_percent(50, Milliseconds{2000}, 100), 25.0);
}

TEST(CpuPercentTest, SeveralCoresGoAboveOneHundredPercent) {
  EXPECT_DOUBLE_EQ(cpu_percent(400, Milliseconds{1000}, 100), 400.0);
}

TEST(CpuPercentTest, IdleIsZero) {
  EXPECT_EQ(cpu_percent(0, Milliseconds{1000}, 100), 0.0);
}

TEST(CpuPercentTest, ZeroElapsedIsZero) {
  EXPECT_EQ(cpu_percent(100, Milliseconds{0}, 100), 0.0);
}

TEST(CpuPercentTest, NegativeElapsedIsZero) {
  EXPECT_EQ(cpu_percent(100, Milliseconds{-5}, 100), 0.0);
}

TEST(CpuPercentTest, UnknownTickRateIsZero) {
  EXPECT_EQ(cpu_percent(100, Milliseconds{1000}, 0), 0.0);
}

}  // namespace
}  // namespace herd
