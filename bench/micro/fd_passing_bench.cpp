// The master<->worker channel, per accepted connection: the `conn` datagram
// with its fd over a SEQPACKET socketpair (sendmsg + recvmsg with SCM_RIGHTS),
// and the JSON of the messages on it (proto/messages.h): `conn` and `ack` on
// every hand-off, `heartbeat` once a second per worker.
#include "common/fd_passing.h"

#include <benchmark/benchmark.h>
#include <fcntl.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>

#include "bench/micro/allocation_counter.h"
#include "common/unique_fd.h"
#include "proto/messages.h"

namespace herd {
namespace {

// A channel with a descriptor worth passing: the fds passed are dups of
// /dev/null made by the kernel on each receive, closed by UniqueFd.
struct Channel {
  UniqueFd master;
  UniqueFd worker;
  UniqueFd passed;

  bool open() {
    if (!make_channel_pair(master, worker)) return false;
    passed.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    return passed.valid();
  }
};

// One hand-off on the wire: sendmsg() of a `conn` with one fd, recvmsg() of
// it on the other end, the received fd closed.
void BM_FdPassingSendReceive(benchmark::State& state) {
  Channel channel;
  if (!channel.open()) {
    state.SkipWithError("could not open the socketpair or /dev/null");
    return;
  }
  std::string payload = proto::encode(proto::MasterMessage{proto::Conn{42}});
  std::uint64_t allocations_before = bench::allocations_on_this_thread();
  for (auto _ : state) {
    if (send_message(channel.master.get(), payload, channel.passed.get()) != SendResult::kSent) {
      state.SkipWithError("send_message() failed");
      break;
    }
    ReceivedMessage received = receive_message(channel.worker.get());
    if (received.status != ReceiveStatus::kMessage || received.fds.size() != 1 ||
        received.payload != payload) {
      state.SkipWithError("receive_message() did not return the message and its fd");
      break;
    }
    benchmark::DoNotOptimize(received.fds.front().get());
  }  // `received` closes the passed fd here
  bench::report_allocations_per_item(state, allocations_before, state.iterations());
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(payload.size()));
}
BENCHMARK(BM_FdPassingSendReceive);

// The whole master->worker hand-off: encode, send with the fd, receive, decode.
void BM_ChannelConnHandoff(benchmark::State& state) {
  Channel channel;
  if (!channel.open()) {
    state.SkipWithError("could not open the socketpair or /dev/null");
    return;
  }
  std::uint64_t seq = 0;
  std::uint64_t allocations_before = bench::allocations_on_this_thread();
  for (auto _ : state) {
    ++seq;
    std::string payload = proto::encode(proto::MasterMessage{proto::Conn{seq}});
    if (send_message(channel.master.get(), payload, channel.passed.get()) != SendResult::kSent) {
      state.SkipWithError("send_message() failed");
      break;
    }
    ReceivedMessage received = receive_message(channel.worker.get());
    proto::Decoded<proto::MasterMessage> decoded = proto::decode_master_message(received.payload);
    const proto::Conn* conn =
        decoded.message ? std::get_if<proto::Conn>(&*decoded.message) : nullptr;
    if (received.fds.size() != 1 || conn == nullptr || conn->seq != seq) {
      state.SkipWithError("the conn message or its fd did not arrive intact");
      break;
    }
    benchmark::DoNotOptimize(received.fds.front().get());
  }
  bench::report_allocations_per_item(state, allocations_before, state.iterations());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ChannelConnHandoff);

// Whether `encoded` decodes to a message that encodes back to the same text
// (the messages have no operator==; the JSON is their canonical form).
template <typename Message, typename Decode>
bool round_trips(const std::string& encoded, Decode decode) {
  proto::Decoded<Message> decoded = decode(encoded);
  return decoded.message && proto::encode(*decoded.message) == encoded;
}

// Encodes `message` per iteration; checks once that it decodes back to itself.
template <typename Message, typename Decode>
void run_encode(benchmark::State& state, const Message& message, Decode decode) {
  if (!round_trips<Message>(proto::encode(message), decode)) {
    state.SkipWithError("the message does not survive encode and decode");
    return;
  }
  std::int64_t bytes = 0;
  std::uint64_t allocations_before = bench::allocations_on_this_thread();
  for (auto _ : state) {
    std::string encoded = proto::encode(message);
    bytes += static_cast<std::int64_t>(encoded.size());
    benchmark::DoNotOptimize(encoded.data());
  }
  bench::report_allocations_per_item(state, allocations_before, state.iterations());
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(bytes);
}

// Decodes the encoded `message` per iteration, checking the result each time.
template <typename Message, typename Decode>
void run_decode(benchmark::State& state, const Message& message, Decode decode) {
  std::string encoded = proto::encode(message);
  std::uint64_t allocations_before = bench::allocations_on_this_thread();
  for (auto _ : state) {
    proto::Decoded<Message> decoded = decode(encoded);
    if (!decoded.message) {
      state.SkipWithError(("decode failed: " + decoded.error).c_str());
      break;
    }
    benchmark::DoNotOptimize(decoded);
  }
  bench::report_allocations_per_item(state, allocations_before, state.iterations());
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(encoded.size()));
  // The loop checks success; the content is checked once here.
  if (!round_trips<Message>(encoded, decode)) {
    state.SkipWithError("the decoded message differs from the encoded one");
  }
}

const proto::MasterMessage kConn = proto::Conn{123456789};
const proto::WorkerMessage kAck = proto::Ack{{1001, 1002, 1003, 1004}, true};

// A heartbeat after a long run: latencies from 20 us to 200 ms fill about
// 400 of the histogram's buckets, the realistic worst case for its size.
proto::WorkerMessage busy_heartbeat() {
  proto::WorkerStats stats;
  stats.connections = 120'000;
  stats.active_connections = 256;
  stats.requests = 9'876'543;
  stats.responses = {9'800'000, 1'000, 75'000, 543};
  stats.bytes_in = 1'234'567'890;
  stats.bytes_out = 2'345'678'901;
  for (double micros = 20; micros < 200'000; micros *= 1.01) {
    stats.latency_us.record(static_cast<std::uint64_t>(micros),
                            1 + static_cast<std::uint64_t>(micros) % 97);
  }
  return proto::Heartbeat{stats};
}

void BM_ProtoEncodeConn(benchmark::State& state) {
  run_encode(state, kConn, proto::decode_master_message);
}
BENCHMARK(BM_ProtoEncodeConn);

void BM_ProtoDecodeConn(benchmark::State& state) {
  run_decode(state, kConn, proto::decode_master_message);
}
BENCHMARK(BM_ProtoDecodeConn);

void BM_ProtoEncodeAck4(benchmark::State& state) {
  run_encode(state, kAck, proto::decode_worker_message);
}
BENCHMARK(BM_ProtoEncodeAck4);

void BM_ProtoDecodeAck4(benchmark::State& state) {
  run_decode(state, kAck, proto::decode_worker_message);
}
BENCHMARK(BM_ProtoDecodeAck4);

void BM_ProtoEncodeHeartbeat(benchmark::State& state) {
  run_encode(state, busy_heartbeat(), proto::decode_worker_message);
}
BENCHMARK(BM_ProtoEncodeHeartbeat);

void BM_ProtoDecodeHeartbeat(benchmark::State& state) {
  run_decode(state, busy_heartbeat(), proto::decode_worker_message);
}
BENCHMARK(BM_ProtoDecodeHeartbeat);

}  // namespace
}  // namespace herd
