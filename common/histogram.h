// LatencyHistogram: request latencies in fixed log-linear buckets, so that
// histograms from many workers merge exactly (bucket counts add up) and
// percentiles of the merged whole are as good as those of any one worker.
//
// Buckets over microseconds: values below 32 have a bucket each; above, each
// power of two [2^k, 2^(k+1)) is cut into 32 equal sub-buckets, so a bucket's
// width is at most 1/32 (about 3 %) of its values. The top bucket ends at
// 2^27 us (about 134 s); larger values are counted there and kept in max().
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace herd {

class LatencyHistogram {
 public:
  static constexpr unsigned kSubBucketBits = 5;  // 32 sub-buckets per power of two
  static constexpr unsigned kSubBuckets = 1u << kSubBucketBits;
  static constexpr unsigned kMaxExponent = 26;  // the top bucket row is [2^26, 2^27) us
  // The linear buckets, then kSubBuckets for each exponent kSubBucketBits..kMaxExponent.
  static constexpr std::size_t kBucketCount = kSubBuckets * (kMaxExponent - kSubBucketBits + 2);

  void record(std::uint64_t micros, std::uint64_t times = 1);
  void merge(const LatencyHistogram& other);

  std::uint64_t count() const { return count_; }
  std::uint64_t max() const { return max_; }
  // Sum of every value recorded, for means and Prometheus' _sum.
  std::uint64_t sum() const { return sum_; }
  // How many values fell in the buckets up to the one holding `micros`:
  // the values <= micros, give or take that bucket's width (about 3 %).
  std::uint64_t count_up_to(std::uint64_t micros) const;
  // The smallest bucket bound below which at least `fraction` (0..1] of the
  // values lie, never above max(); 0 when empty. O(buckets).
  std::uint64_t percentile(double fraction) const;

  static std::size_t bucket_index(std::uint64_t micros);
  // The largest value that falls in bucket `index`.
  static std::uint64_t bucket_upper_bound(std::size_t index);

  // Wire form: {"buckets":[[index,count],...], "max":N, "sum":N}, only
  // non-empty buckets.
  nlohmann::json to_json() const;
  // The reverse; nullopt (and `error`) on a malformed or out-of-range form.
  // `sum` is optional: without it, it is estimated from the bucket middles.
  static std::optional<LatencyHistogram> from_json(const nlohmann::json& json, std::string& error);

  bool operator==(const LatencyHistogram&) const = default;

 private:
  std::uint64_t estimated_sum() const;

  std::array<std::uint64_t, kBucketCount> buckets_{};
  std::uint64_t count_ = 0;
  std::uint64_t max_ = 0;
  std::uint64_t sum_ = 0;
};

}  // namespace herd
