#include "common/histogram.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace herd {
namespace {

constexpr std::size_t kLastBucket = LatencyHistogram::kBucketCount - 1;
// The largest value with a bucket of its own range: the top bucket's nominal end.
constexpr std::uint64_t kTopOfRange =
    (std::uint64_t{1} << (LatencyHistogram::kMaxExponent + 1)) - 1;

// Latencies spread evenly over orders of magnitude, 1 us to 10 s, from a fixed seed.
std::vector<std::uint64_t> log_uniform_latencies(std::size_t count, unsigned seed) {
  std::mt19937 generator(seed);
  std::uniform_real_distribution<double> exponent(0.0, std::log(10'000'000.0));
  std::vector<std::uint64_t> values;
  values.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    values.push_back(static_cast<std::uint64_t>(std::exp(exponent(generator))));
  }
  return values;
}

// The nearest-rank percentile: the smallest value with at least `fraction` of the values at or
// below it.
std::uint64_t exact_percentile(std::vector<std::uint64_t> values, double fraction) {
  std::sort(values.begin(), values.end());
  auto rank = static_cast<std::size_t>(std::ceil(fraction * static_cast<double>(values.size())));
  return values[std::max<std::size_t>(rank, 1) - 1];
}

LatencyHistogram histogram_of(const std::vector<std::uint64_t>& values) {
  LatencyHistogram histogram;
  for (std::uint64_t value : values) histogram.record(value);
  return histogram;
}

// Checks that `value` falls inside bucket_index(value) as bucket_upper_bound draws it.
void expect_in_its_bucket(std::uint64_t value) {
  std::size_t index = LatencyHistogram::bucket_index(value);
  ASSERT_LT(index, LatencyHistogram::kBucketCount) << "value " << value;
  EXPECT_GE(LatencyHistogram::bucket_upper_bound(index), value) << "value " << value;
  if (index > 0) {
    EXPECT_LT(LatencyHistogram::bucket_upper_bound(index - 1), value) << "value " << value;
  }
}

TEST(LatencyHistogramTest, EverySmallValueLiesInItsBucket) {
  for (std::uint64_t value = 0; value <= 100'000; ++value) {
    expect_in_its_bucket(value);
    if (::testing::Test::HasFailure()) break;
  }
}

TEST(LatencyHistogramTest, LargeValuesLieInTheirBuckets) {
  std::vector<std::uint64_t> values;
  for (unsigned bits = 1; bits <= 40; ++bits) {
    std::uint64_t power = std::uint64_t{1} << bits;
    values.insert(values.end(), {power - 1, power, power + 1});
  }
  std::mt19937_64 generator(7);
  for (int i = 0; i < 100'000; ++i) values.push_back(generator() >> (64 - 40));  // below 2^40

  for (std::uint64_t value : values) {
    expect_in_its_bucket(value);
    if (::testing::Test::HasFailure()) break;
  }
}

TEST(LatencyHistogramTest, BucketsCoverEveryValueWithoutGaps) {
  EXPECT_EQ(LatencyHistogram::bucket_upper_bound(0), 0u);
  for (std::size_t index = 1; index < LatencyHistogram::kBucketCount; ++index) {
    std::uint64_t first = LatencyHistogram::bucket_upper_bound(index - 1) + 1;
    EXPECT_EQ(LatencyHistogram::bucket_index(first), index) << "bucket " << index;
  }
}

TEST(LatencyHistogramTest, BucketsAboveThirtyTwoAreAtMostOneThirtySecondWide) {
  for (std::size_t index = 32; index < kLastBucket; ++index) {
    std::uint64_t lower = LatencyHistogram::bucket_upper_bound(index - 1) + 1;
    std::uint64_t width = LatencyHistogram::bucket_upper_bound(index) - lower + 1;
    EXPECT_LE(width * 32, lower) << "bucket " << index << " starts at " << lower;
  }
}

TEST(LatencyHistogramTest, ValuesBelowThirtyTwoHaveExactBuckets) {
  for (std::uint64_t value = 0; value < 32; ++value) {
    EXPECT_EQ(LatencyHistogram::bucket_upper_bound(LatencyHistogram::bucket_index(value)), value);
  }
}

TEST(LatencyHistogramTest, PercentilesAreWithinOneThirtySecondAboveTheExactValue) {
  std::vector<std::uint64_t> values = log_uniform_latencies(10'000, 42);
  LatencyHistogram histogram = histogram_of(values);

  for (double fraction : {0.5, 0.9, 0.99}) {
    std::uint64_t exact = exact_percentile(values, fraction);
    std::uint64_t reported = histogram.percentile(fraction);
    EXPECT_GE(reported, exact) << "p" << fraction * 100;
    EXPECT_LE((reported - exact) * 32, exact)
        << "p" << fraction * 100 << ": " << reported << " for exact " << exact;
    EXPECT_LE(reported, histogram.max()) << "p" << fraction * 100;
  }
}

TEST(LatencyHistogramTest, PercentileNeverExceedsMax) {
  LatencyHistogram histogram;
  histogram.record(1000);  // its bucket runs to 1007

  EXPECT_EQ(histogram.percentile(0.5), 1000u);
  EXPECT_EQ(histogram.percentile(0.99), 1000u);
  EXPECT_EQ(histogram.percentile(1.0), 1000u);
}

TEST(LatencyHistogramTest, MaxIsTheLargestValueRecorded) {
  std::vector<std::uint64_t> values = log_uniform_latencies(1000, 3);
  LatencyHistogram histogram = histogram_of(values);

  EXPECT_EQ(histogram.max(), *std::max_element(values.begin(), values.end()));
  EXPECT_EQ(histogram.count(), values.size());
}

TEST(LatencyHistogramTest, EmptyHistogramReportsZero) {
  LatencyHistogram histogram;

  EXPECT_EQ(histogram.count(), 0u);
  EXPECT_EQ(histogram.max(), 0u);
  EXPECT_EQ(histogram.percentile(0.5), 0u);
  EXPECT_EQ(histogram.percentile(0.99), 0u);
}

TEST(LatencyHistogramTest, MergeEqualsOneHistogramThatRecordedEverything) {
  std::vector<std::uint64_t> first = log_uniform_latencies(5000, 1);
  std::vector<std::uint64_t> second = log_uniform_latencies(3000, 2);
  std::vector<std::uint64_t> everything = first;
  everything.insert(everything.end(), second.begin(), second.end());

  LatencyHistogram merged = histogram_of(first);
  merged.merge(histogram_of(second));

  LatencyHistogram combined = histogram_of(everything);
  EXPECT_TRUE(merged == combined);
  EXPECT_EQ(merged.count(), everything.size());
  EXPECT_EQ(merged.max(), combined.max());
}

TEST(LatencyHistogramTest, MergedPercentilesEqualThoseOfTheCombinedHistogram) {
  std::vector<std::uint64_t> fast = log_uniform_latencies(4000, 10);
  std::vector<std::uint64_t> slow = log_uniform_latencies(1000, 11);
  for (std::uint64_t& value : slow) value *= 10;
  std::vector<std::uint64_t> everything = fast;
  everything.insert(everything.end(), slow.begin(), slow.end());

  LatencyHistogram merged = histogram_of(fast);
  merged.merge(histogram_of(slow));
  LatencyHistogram combined = histogram_of(everything);

  for (double fraction : {0.5, 0.9, 0.99, 1.0}) {
    EXPECT_EQ(merged.percentile(fraction), combined.percentile(fraction)) << fraction;
  }
}

TEST(LatencyHistogramTest, MergeWithEmptyChangesNothing) {
  LatencyHistogram histogram = histogram_of(log_uniform_latencies(100, 5));
  LatencyHistogram before = histogram;

  histogram.merge(LatencyHistogram{});

  EXPECT_TRUE(histogram == before);
}

TEST(LatencyHistogramTest, RecordTimesCountsTheValueThatManyTimes) {
  LatencyHistogram repeated;
  repeated.record(250, 5);

  LatencyHistogram one_by_one;
  for (int i = 0; i < 5; ++i) one_by_one.record(250);

  EXPECT_TRUE(repeated == one_by_one);
  EXPECT_EQ(repeated.count(), 5u);
  EXPECT_EQ(repeated.max(), 250u);
}

TEST(LatencyHistogramTest, RecordZeroTimesRecordsNothing) {
  LatencyHistogram histogram;

  histogram.record(250, 0);

  EXPECT_TRUE(histogram == LatencyHistogram{});
  EXPECT_EQ(histogram.max(), 0u);
}

TEST(LatencyHistogramTest, RecordTimesWeighsPercentiles) {
  LatencyHistogram histogram;
  histogram.record(10, 98);
  histogram.record(20, 2);

  EXPECT_EQ(histogram.percentile(0.5), 10u);
  EXPECT_EQ(histogram.percentile(0.98), 10u);
  EXPECT_EQ(histogram.percentile(0.99), 20u);
}

TEST(LatencyHistogramTest, HugeValuesLandInTheLastBucketAndKeepTheirExactMax) {
  const std::uint64_t huge = std::uint64_t{1} << 40;
  LatencyHistogram histogram;

  histogram.record(huge);

  EXPECT_EQ(LatencyHistogram::bucket_index(huge), kLastBucket);
  EXPECT_EQ(LatencyHistogram::bucket_index(kTopOfRange + 1), kLastBucket);
  EXPECT_EQ(LatencyHistogram::bucket_index(std::numeric_limits<std::uint64_t>::max()), kLastBucket);
  EXPECT_EQ(histogram.max(), huge);
  EXPECT_EQ(histogram.count(), 1u);
}

TEST(LatencyHistogramTest, PercentileOfValuesBeyondTheTopBucketIsNotBelowThem) {
  const std::uint64_t five_minutes = 300'000'000;  // past the top bucket's nominal 2^27 us
  LatencyHistogram histogram;

  histogram.record(five_minutes, 10);

  EXPECT_EQ(histogram.percentile(0.5), five_minutes);
  EXPECT_EQ(histogram.percentile(0.99), five_minutes);
}

TEST(LatencyHistogramTest, JsonRoundTripKeepsEveryBucket) {
  LatencyHistogram original = histogram_of(log_uniform_latencies(2000, 9));
  original.record(std::uint64_t{1} << 40);

  std::string error;
  std::optional<LatencyHistogram> decoded =
      LatencyHistogram::from_json(nlohmann::json::parse(original.to_json().dump()), error);

  ASSERT_TRUE(decoded.has_value()) << error;
  EXPECT_TRUE(*decoded == original);
  EXPECT_EQ(decoded->count(), original.count());
  EXPECT_EQ(decoded->max(), original.max());
}

TEST(LatencyHistogramTest, JsonListsOnlyNonEmptyBuckets) {
  LatencyHistogram histogram;
  histogram.record(3, 2);
  histogram.record(40);

  EXPECT_EQ(histogram.to_json(),
            nlohmann::json::parse(R"({"buckets":[[3,2],[40,1]],"max":40,"sum":46})"));
}

TEST(LatencyHistogramTest, SumIsExactAndMerges) {
  LatencyHistogram first;
  first.record(100, 3);
  first.record(7);
  LatencyHistogram second;
  second.record(1'000'000);

  first.merge(second);

  EXPECT_EQ(first.sum(), 300u + 7u + 1'000'000u);
}

TEST(LatencyHistogramTest, SumOmittedFromJsonIsEstimatedFromTheBuckets) {
  std::string error;
  // Bucket 3 holds exactly 3; bucket 40 holds 40..41 (width 2).
  std::optional<LatencyHistogram> decoded = LatencyHistogram::from_json(
      nlohmann::json::parse(R"({"buckets":[[3,2],[40,1]],"max":41})"), error);

  ASSERT_TRUE(decoded.has_value()) << error;
  EXPECT_EQ(decoded->sum(), 2u * 3u + 40u);
}

TEST(LatencyHistogramTest, NegativeOrFractionalSumIsRejected) {
  for (const char* text :
       {R"({"buckets":[],"max":0,"sum":-1})", R"({"buckets":[],"max":0,"sum":1.5})",
        R"({"buckets":[],"max":0,"sum":"7"})"}) {
    std::string error;
    EXPECT_FALSE(LatencyHistogram::from_json(nlohmann::json::parse(text), error)) << text;
    EXPECT_NE(error.find("sum"), std::string::npos) << error;
  }
}

TEST(LatencyHistogramTest, CountUpToCountsWholeBucketsUpToTheOneHoldingTheBound) {
  LatencyHistogram histogram;
  histogram.record(10, 4);    // bucket of its own
  histogram.record(1000, 2);  // [992, 1007]
  histogram.record(1010, 1);  // [1008, 1023]
  histogram.record(5000, 1);

  EXPECT_EQ(histogram.count_up_to(9), 0u);
  EXPECT_EQ(histogram.count_up_to(10), 4u);
  EXPECT_EQ(histogram.count_up_to(999), 6u);  // 1000 shares 999's bucket
  EXPECT_EQ(histogram.count_up_to(1007), 6u);
  EXPECT_EQ(histogram.count_up_to(1008), 7u);
  EXPECT_EQ(histogram.count_up_to(UINT64_MAX), histogram.count());
}

TEST(LatencyHistogramTest, EmptyHistogramRoundTripsThroughJson) {
  std::string error;
  std::optional<LatencyHistogram> decoded = LatencyHistogram::from_json(
      nlohmann::json::parse(LatencyHistogram{}.to_json().dump()), error);

  ASSERT_TRUE(decoded.has_value()) << error;
  EXPECT_TRUE(*decoded == LatencyHistogram{});
}

TEST(LatencyHistogramTest, FromJsonAcceptsTheLastBucket) {
  std::string error;
  std::string text = R"({"buckets":[[)" + std::to_string(kLastBucket) + R"(,4]],"max":5000000000})";

  std::optional<LatencyHistogram> decoded =
      LatencyHistogram::from_json(nlohmann::json::parse(text), error);

  ASSERT_TRUE(decoded.has_value()) << error;
  EXPECT_EQ(decoded->count(), 4u);
  EXPECT_EQ(decoded->max(), 5'000'000'000u);
}

// from_json on `text`, which must be rejected with an error message.
void expect_rejected(const std::string& text) {
  std::string error;
  std::optional<LatencyHistogram> decoded =
      LatencyHistogram::from_json(nlohmann::json::parse(text), error);
  EXPECT_FALSE(decoded.has_value()) << text;
  EXPECT_FALSE(error.empty()) << text;
}

TEST(LatencyHistogramTest, FromJsonRejectsANonObject) {
  expect_rejected("[]");
  expect_rejected("[[1,2]]");
  expect_rejected("5");
  expect_rejected("null");
  expect_rejected(R"("buckets")");
}

TEST(LatencyHistogramTest, FromJsonRejectsMissingOrMistypedFields) {
  expect_rejected("{}");
  expect_rejected(R"({"max":5})");
  expect_rejected(R"({"buckets":[]})");
  expect_rejected(R"({"buckets":{},"max":5})");
  expect_rejected(R"({"buckets":[],"max":-1})");
  expect_rejected(R"({"buckets":[],"max":1.5})");
  expect_rejected(R"({"buckets":[],"max":"5"})");
}

TEST(LatencyHistogramTest, FromJsonRejectsAnIndexOutOfRange) {
  expect_rejected(R"({"buckets":[[)" + std::to_string(LatencyHistogram::kBucketCount) +
                  R"(,1]],"max":5})");
  expect_rejected(R"({"buckets":[[18446744073709551615,1]],"max":5})");
  expect_rejected(R"({"buckets":[[-1,1]],"max":5})");
}

TEST(LatencyHistogramTest, FromJsonRejectsANegativeCount) {
  expect_rejected(R"({"buckets":[[3,-1]],"max":5})");
}

TEST(LatencyHistogramTest, FromJsonRejectsAMalformedBucketPair) {
  expect_rejected(R"({"buckets":[[3]],"max":5})");
  expect_rejected(R"({"buckets":[[3,1,1]],"max":5})");
  expect_rejected(R"({"buckets":[3],"max":5})");
  expect_rejected(R"({"buckets":[{"3":1}],"max":5})");
  expect_rejected(R"({"buckets":[["3",1]],"max":5})");
  expect_rejected(R"({"buckets":[[3,1.5]],"max":5})");
  expect_rejected(R"({"buckets":[[3,1],null],"max":5})");
}

}  // namespace
}  // namespace herd
