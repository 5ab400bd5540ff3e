#include "common/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace herd {

std::size_t LatencyHistogram::bucket_index(std::uint64_t micros) {
  if (micros < kSubBuckets) return static_cast<std::size_t>(micros);
  unsigned exponent = static_cast<unsigned>(std::bit_width(micros)) - 1;  // 2^exponent <= micros
  if (exponent > kMaxExponent) return kBucketCount - 1;
  // The kSubBucketBits bits below the leading one pick the sub-bucket.
  std::uint64_t sub = (micros >> (exponent - kSubBucketBits)) & (kSubBuckets - 1);
  return (exponent - kSubBucketBits + 1) * kSubBuckets + static_cast<std::size_t>(sub);
}

std::uint64_t LatencyHistogram::bucket_upper_bound(std::size_t index) {
  if (index >= kBucketCount - 1) return UINT64_MAX;  // the top bucket also holds every larger value
  if (index < kSubBuckets) return index;
  unsigned exponent = static_cast<unsigned>(index / kSubBuckets) + kSubBucketBits - 1;
  std::uint64_t sub = index % kSubBuckets;
  std::uint64_t width = std::uint64_t{1} << (exponent - kSubBucketBits);
  return (std::uint64_t{1} << exponent) + (sub + 1) * width - 1;
}

void LatencyHistogram::record(std::uint64_t micros, std::uint64_t times) {
  if (times == 0) return;
  buckets_[bucket_index(micros)] += times;
  count_ += times;
  max_ = std::max(max_, micros);
  sum_ += micros * times;
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  for (std::size_t i = 0; i < kBucketCount; ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
}

std::uint64_t LatencyHistogram::count_up_to(std::uint64_t micros) const {
  std::size_t last = bucket_index(micros);
  std::uint64_t counted = 0;
  for (std::size_t i = 0; i <= last; ++i) counted += buckets_[i];
  return counted;
}

std::uint64_t LatencyHistogram::percentile(double fraction) const {
  if (count_ == 0) return 0;
  fraction = std::clamp(fraction, 0.0, 1.0);
  // The epsilon keeps 0.07 * 100 = 7.000000000000001 at rank 7, not 8.
  auto rank = static_cast<std::uint64_t>(std::ceil(fraction * static_cast<double>(count_) - 1e-9));
  rank = std::max<std::uint64_t>(rank, 1);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBucketCount; ++i) {
    seen += buckets_[i];
    if (seen >= rank) return std::min(bucket_upper_bound(i), max_);
  }
  return max_;
}

std::uint64_t LatencyHistogram::estimated_sum() const {
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i < kBucketCount; ++i) {
    if (buckets_[i] == 0) continue;
    std::uint64_t low = i == 0 ? 0 : bucket_upper_bound(i - 1) + 1;
    std::uint64_t high = std::min(bucket_upper_bound(i), std::max(max_, low));
    sum += buckets_[i] * (low + (high - low) / 2);
  }
  return sum;
}

nlohmann::json LatencyHistogram::to_json() const {
  nlohmann::json buckets = nlohmann::json::array();
  for (std::size_t i = 0; i < kBucketCount; ++i) {
    if (buckets_[i] != 0) buckets.push_back({i, buckets_[i]});
  }
  return {{"buckets", std::move(buckets)}, {"max", max_}, {"sum", sum_}};
}

std::optional<LatencyHistogram> LatencyHistogram::from_json(const nlohmann::json& json,
                                                            std::string& error) {
  if (!json.is_object()) {
    error = "latency histogram must be an object";
    return std::nullopt;
  }
  auto buckets = json.find("buckets");
  auto max = json.find("max");
  if (buckets == json.end() || !buckets->is_array() || max == json.end() ||
      !max->is_number_unsigned()) {
    error = "latency histogram needs 'buckets' (array) and 'max' (non-negative integer)";
    return std::nullopt;
  }
  LatencyHistogram histogram;
  histogram.max_ = max->get<std::uint64_t>();
  for (const nlohmann::json& pair : *buckets) {
    if (!pair.is_array() || pair.size() != 2 || !pair[0].is_number_unsigned() ||
        !pair[1].is_number_unsigned() || pair[0].get<std::uint64_t>() >= kBucketCount) {
      error =
          "latency histogram bucket must be [index < " + std::to_string(kBucketCount) + ", count]";
      return std::nullopt;
    }
    std::uint64_t count = pair[1].get<std::uint64_t>();
    histogram.buckets_[pair[0].get<std::size_t>()] += count;
    histogram.count_ += count;
  }
  auto sum = json.find("sum");
  if (sum == json.end()) {
    histogram.sum_ = histogram.estimated_sum();
  } else if (sum->is_number_unsigned()) {
    histogram.sum_ = sum->get<std::uint64_t>();
  } else {
    error = "latency histogram 'sum' must be a non-negative integer";
    return std::nullopt;
  }
  return histogram;
}

}  // namespace herd
