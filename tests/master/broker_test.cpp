#include "master/broker.h"

#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <deque>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace herd {
namespace {

// Records every send instead of making it; fails the ones it is told to.
class FakeSender final : public ChannelSender {
 public:
  struct Sent {
    int channel;
    std::string message;
    int fd;
  };

  SendResult send(int channel, std::string_view message, int fd) override {
    if (!script_.empty()) {
      auto [result, error] = script_.front();
      script_.pop_front();
      if (result != SendResult::kSent) {
        errno = error;
        return result;
      }
    }
    sent_.push_back({channel, std::string(message), fd});
    return SendResult::kSent;
  }

  // The next sends' results, in order; after them every send succeeds.
  void fail_next(SendResult result, int error = 0) { script_.emplace_back(result, error); }

  const std::vector<Sent>& sent() const { return sent_; }
  // The seq of the i-th `conn` sent.
  Seq seq_of(std::size_t index) const {
    proto::Decoded<proto::MasterMessage> decoded =
        proto::decode_master_message(sent_[index].message);
    const auto* conn = decoded.message ? std::get_if<proto::Conn>(&*decoded.message) : nullptr;
    return conn != nullptr ? conn->seq : 0;
  }

 private:
  std::deque<std::pair<SendResult, int>> script_;
  std::vector<Sent> sent_;
};

class FakeHost final : public BrokerHost {
 public:
  void handle_message(WorkerId worker, const proto::WorkerMessage& message) override {
    messages.emplace_back(worker, std::string(proto::type_name(message)));
  }
  void protocol_violation(WorkerId worker, const std::string& reason) override {
    violations.emplace_back(worker, reason);
  }
  void channel_closed(WorkerId worker) override { closed.push_back(worker); }
  void handed(WorkerId worker, std::size_t count) override { handed_to[worker] += count; }
  std::int64_t worker_pid(WorkerId worker) const override {
    return 1000 + static_cast<std::int64_t>(worker);
  }

  std::vector<std::pair<WorkerId, std::string>> messages;
  std::vector<std::pair<WorkerId, std::string>> violations;
  std::vector<WorkerId> closed;
  std::map<WorkerId, std::size_t> handed_to;
};

// A client connection: the broker gets one end, the test keeps the other.
struct Client {
  UniqueFd ours;
  UniqueFd theirs;  // moved into the broker
};

Client make_client() {
  int fds[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// What the broker's side of the connection did: "open" while it holds it,
// "closed" once it let go, or the bytes it wrote first.
std::string client_sees(const Client& client) {
  char buffer[512];
  ssize_t count = ::recv(client.ours.get(), buffer, sizeof buffer, MSG_DONTWAIT);
  if (count > 0) return std::string(buffer, static_cast<std::size_t>(count));
  if (count == 0) return "closed";
  return errno == EAGAIN ? "open" : "error";
}

class BrokerTest : public ::testing::Test {
 protected:
  explicit BrokerTest(BrokerSettings settings = {}) : settings_(settings) {
    base_.reset(event_base_new());
    broker_ = std::make_unique<Broker>(base_.get(), host_, sender_, settings_);
  }

  // A worker with a channel, serving; returns the test's end of its channel.
  int add_worker(WorkerId worker, bool serving = true) {
    UniqueFd master_end;
    UniqueFd worker_end;
    EXPECT_TRUE(make_channel_pair(master_end, worker_end));
    channel_fds_[worker] = master_end.get();
    broker_->attach(worker, std::move(master_end));
    broker_->set_serving(worker, serving);
    worker_ends_[worker] = std::move(worker_end);
    return worker_ends_[worker].get();
  }

  Client& connect() {
    clients_.push_back(make_client());
    broker_->adopt(std::move(clients_.back().theirs));
    return clients_.back();
  }

  void ack(WorkerId worker, std::vector<Seq> seqs, bool accepted = true) {
    EXPECT_EQ(broker_->acknowledge(worker, proto::Ack{std::move(seqs), accepted}), std::nullopt);
  }

  // Runs what libevent has ready (channel reads, a writable channel).
  void run_ready_events() { event_base_loop(base_.get(), EVLOOP_NONBLOCK); }

  BrokerSettings settings_;
  EventBasePtr base_;
  FakeHost host_;
  FakeSender sender_;
  std::unique_ptr<Broker> broker_;
  std::map<WorkerId, int> channel_fds_;
  std::map<WorkerId, UniqueFd> worker_ends_;
  std::deque<Client> clients_;
};

TEST_F(BrokerTest, HandsConnectionsRoundRobinToTheServingWorkers) {
  add_worker(1);
  add_worker(2);
  for (int i = 0; i < 4; ++i) connect();

  ASSERT_EQ(sender_.sent().size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(sender_.seq_of(i), i + 1);
    EXPECT_EQ(sender_.sent()[i].channel, channel_fds_[i % 2 == 0 ? 1 : 2]);
    EXPECT_GE(sender_.sent()[i].fd, 0) << "a conn always carries its descriptor";
  }
  EXPECT_EQ(host_.handed_to[1], 2u);
  EXPECT_EQ(host_.handed_to[2], 2u);
  EXPECT_EQ(broker_->queued(), 0u);
  EXPECT_EQ(broker_->held(), 4u) << "the master keeps its copies until the acks";
  EXPECT_EQ(broker_->connections_total(), 4u);
}

TEST_F(BrokerTest, AWorkerNotServingIsHandedNothing) {
  add_worker(1, /*serving=*/false);
  connect();
  EXPECT_TRUE(sender_.sent().empty());
  EXPECT_EQ(broker_->queued(), 1u);

  broker_->set_serving(1, true);
  broker_->dispatch();
  ASSERT_EQ(sender_.sent().size(), 1u);
  EXPECT_EQ(broker_->queued(), 0u);
}

TEST_F(BrokerTest, AnAckClosesTheMastersCopy) {
  add_worker(1);
  Client& client = connect();
  EXPECT_EQ(client_sees(client), "open");
  ack(1, {1});
  EXPECT_EQ(broker_->held(), 0u);
  EXPECT_EQ(client_sees(client), "closed")
      << "the fake sender kept no copy: the broker's was the last";
}

TEST_F(BrokerTest, TheWindowBoundsWhatAWorkerHoldsUnacked) {
  add_worker(1);
  for (int i = 0; i < 20; ++i) connect();
  EXPECT_EQ(sender_.sent().size(), settings_.handoff_window);
  EXPECT_EQ(broker_->queued(), 20 - settings_.handoff_window);

  ack(1, {1, 2});
  EXPECT_EQ(sender_.sent().size(), settings_.handoff_window + 2)
      << "each ack frees one unit of credit";
}

TEST_F(BrokerTest, ARefusedConnectionGoesToAnotherWorker) {
  add_worker(1);
  add_worker(2);
  connect();
  ASSERT_EQ(sender_.sent().size(), 1u);
  int fd = sender_.sent()[0].fd;

  ack(1, {1}, /*accepted=*/false);
  ASSERT_EQ(sender_.sent().size(), 2u);
  EXPECT_EQ(sender_.seq_of(1), 1u) << "the same connection, under the same seq";
  EXPECT_EQ(sender_.sent()[1].channel, channel_fds_[2]);
  EXPECT_EQ(sender_.sent()[1].fd, fd);
}

TEST_F(BrokerTest, AnAckOfAConnectionNeverHandedIsReported) {
  add_worker(1);
  add_worker(2);
  connect();
  EXPECT_EQ(broker_->acknowledge(2, proto::Ack{{1}, true}), Seq{1}) << "handed to worker 1, not 2";
  EXPECT_EQ(broker_->acknowledge(1, proto::Ack{{99}, true}), Seq{99});
  EXPECT_EQ(broker_->held(), 1u);
}

TEST_F(BrokerTest, AClosedChannelRedispatchesWhatItsWorkerDidNotAcknowledge) {
  add_worker(1);
  add_worker(2);
  Client& first = connect();
  ASSERT_EQ(sender_.sent()[0].channel, channel_fds_[1]);

  broker_->close_channel(1);
  EXPECT_EQ(host_.closed, std::vector<WorkerId>{1});
  EXPECT_FALSE(broker_->has_channel(1));
  ASSERT_EQ(sender_.sent().size(), 2u);
  EXPECT_EQ(sender_.sent()[1].channel, channel_fds_[2]);
  EXPECT_EQ(client_sees(first), "open") << "never lost";

  broker_->close_channel(1);
  EXPECT_EQ(host_.closed.size(), 1u) << "a second close is nothing";
}

TEST_F(BrokerTest, AFullChannelKeepsTheConnectionUntilItHasRoom) {
  add_worker(1);
  sender_.fail_next(SendResult::kWouldBlock, EAGAIN);
  connect();
  EXPECT_TRUE(sender_.sent().empty());
  EXPECT_EQ(broker_->queued(), 1u);
  EXPECT_EQ(host_.handed_to[1], 0u);

  run_ready_events();  // the channel's socket has room: its write event fires
  ASSERT_EQ(sender_.sent().size(), 1u);
  EXPECT_EQ(broker_->queued(), 0u);
}

TEST_F(BrokerTest, ASendErrorClosesThatChannelAndTheNextWorkerGetsTheConnection) {
  add_worker(1);
  add_worker(2);
  sender_.fail_next(SendResult::kError, EPIPE);
  connect();
  EXPECT_EQ(host_.closed, std::vector<WorkerId>{1});
  ASSERT_EQ(sender_.sent().size(), 1u);
  EXPECT_EQ(sender_.sent()[0].channel, channel_fds_[2]);
}

class BrokerQueueTimeoutTest : public BrokerTest {
 protected:
  BrokerQueueTimeoutTest() : BrokerTest(BrokerSettings{16, Milliseconds{0}, 4096}) {}
};

TEST_F(BrokerQueueTimeoutTest, AConnectionNoWorkerTookIsAnswered503) {
  Client& client = connect();
  broker_->expire_queued();
  EXPECT_EQ(broker_->queued(), 0u);
  EXPECT_EQ(broker_->held(), 0u);
  EXPECT_EQ(client_sees(client).rfind("HTTP/1.1 503 Service Unavailable\r\n", 0), 0u);
}

TEST_F(BrokerQueueTimeoutTest, AConnectionInFlightIsNotExpired) {
  add_worker(1);
  Client& client = connect();
  broker_->expire_queued();
  EXPECT_EQ(broker_->held(), 1u);
  EXPECT_EQ(client_sees(client), "open");
}

TEST_F(BrokerTest, StopClosesTheQueueAndKeepsWhatIsInFlight) {
  settings_.handoff_window = 1;
  broker_ = std::make_unique<Broker>(base_.get(), host_, sender_, settings_);
  add_worker(1);
  Client& in_flight = connect();
  Client& queued = connect();

  broker_->stop();
  EXPECT_EQ(client_sees(queued), "closed");
  EXPECT_EQ(client_sees(in_flight), "open");
  ack(1, {1});
  EXPECT_EQ(broker_->held(), 0u);
  EXPECT_EQ(sender_.sent().size(), 1u);
}

TEST_F(BrokerTest, WhatAWorkerSendsGoesToTheHost) {
  int worker = add_worker(1);
  ASSERT_EQ(send_message(worker, R"({"type":"hello","proto":1,"pid":7})"), SendResult::kSent);
  ASSERT_EQ(send_message(worker, R"({"type":"ready"})"), SendResult::kSent);
  run_ready_events();
  ASSERT_EQ(host_.messages.size(), 2u);
  EXPECT_EQ(host_.messages[0], std::make_pair(WorkerId{1}, std::string("hello")));
  EXPECT_EQ(host_.messages[1], std::make_pair(WorkerId{1}, std::string("ready")));
  EXPECT_TRUE(host_.violations.empty());
}

TEST_F(BrokerTest, ABrokenMessageIsAViolationForTheHostToAnswer) {
  int worker = add_worker(1);
  ASSERT_EQ(send_message(worker, "not json"), SendResult::kSent);
  ASSERT_EQ(send_message(worker, R"({"type":"ready"})", worker), SendResult::kSent);
  run_ready_events();
  ASSERT_EQ(host_.violations.size(), 2u);
  EXPECT_EQ(host_.violations[0].second.rfind("sent a malformed message: ", 0), 0u);
  EXPECT_EQ(host_.violations[1].second, "sent a file descriptor on its channel");
  EXPECT_TRUE(host_.messages.empty());
}

TEST_F(BrokerTest, AWorkerClosingItsEndClosesTheChannel) {
  add_worker(1);
  worker_ends_[1].reset();
  run_ready_events();
  EXPECT_EQ(host_.closed, std::vector<WorkerId>{1});
  EXPECT_FALSE(broker_->has_channel(1));
}

TEST_F(BrokerTest, MessagesToAWorkerGoOnItsChannel) {
  add_worker(1);
  EXPECT_TRUE(broker_->send(1, proto::Drain{5000}));
  ASSERT_EQ(sender_.sent().size(), 1u);
  EXPECT_EQ(sender_.sent()[0].fd, -1);
  EXPECT_FALSE(broker_->send(2, proto::Ping{})) << "no such channel";
}

}  // namespace
}  // namespace herd
