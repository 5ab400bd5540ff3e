// End-to-end: the real herd-worker with the test as its master. The test
// holds the other end of the channel, hands the worker connections it
// accepted itself and reads every message the worker sends, so the worker's
// side of the ack rules (proto/README.md) is checked without herd in between.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/fd_passing.h"
#include "common/listen_socket.h"
#include "proto/messages.h"
#include "tests/e2e/harness.h"

namespace herd::e2e {
namespace {

using std::chrono::steady_clock;

class FakeMaster {
 public:
  // Starts herd-worker as herd would with --handoff-window `window`.
  explicit FakeMaster(std::size_t window) {
    listener_ = open_listen_socket("127.0.0.1", 0, 64);
    UniqueFd worker_end;
    if (!listener_.fd || !make_channel_pair(channel_, worker_end)) return;
    // Keep the worker's end off fd 3, so dup2() below clears close-on-exec.
    UniqueFd moved(::fcntl(worker_end.get(), F_DUPFD_CLOEXEC, 10));
    std::vector<std::string> env = {"HERD_CHANNEL_FD=3", "HERD_WORKER_ID=1", "HERD_WORKER_SLOT=0",
                                    "HERD_HANDOFF_WINDOW=" + std::to_string(window),
                                    "HERD_HEARTBEAT_INTERVAL_MS=60000"};
    std::vector<char*> envp;
    for (std::string& entry : env) envp.push_back(entry.data());
    envp.push_back(nullptr);
    char* argv[] = {const_cast<char*>(kWorkerPath), nullptr};
    pid_ = ::fork();
    if (pid_ == 0) {
      if (::dup2(moved.get(), 3) < 0) ::_exit(127);
      ::execve(kWorkerPath, argv, envp.data());
      ::_exit(127);
    }
  }

  ~FakeMaster() {
    if (pid_ > 0 && !exit_status_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  bool started() const { return pid_ > 0 && channel_.valid(); }
  std::uint16_t port() const { return listener_.port; }

  // Accepts the connection `client` made and hands it over as `seq`. The
  // master's copy is kept until the ack, as herd does; `peek`, if given,
  // gets another copy to inspect the socket the worker serves.
  bool hand(std::uint64_t seq, UniqueFd* peek = nullptr) {
    pollfd ready{listener_.fd.get(), POLLIN, 0};
    if (::poll(&ready, 1, static_cast<int>(kIoTimeout.count())) != 1) return false;
    UniqueFd fd(::accept4(listener_.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) return false;
    if (peek != nullptr) peek->reset(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 0));
    bool sent = send(proto::Conn{seq}, fd.get());
    held_.emplace(seq, std::move(fd));
    return sent;
  }

  bool send(const proto::MasterMessage& message, int fd = -1) {
    return send_message(channel_.get(), proto::encode(message), fd) == SendResult::kSent;
  }

  // The next message from the worker, skipping heartbeats; nothing on
  // timeout or when the worker closed the channel.
  std::optional<proto::WorkerMessage> receive(Milliseconds timeout) {
    auto deadline = steady_clock::now() + timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<Milliseconds>(deadline - steady_clock::now());
      pollfd ready{channel_.get(), POLLIN, 0};
      if (left.count() <= 0 || ::poll(&ready, 1, static_cast<int>(left.count())) != 1) {
        return std::nullopt;
      }
      ReceivedMessage received = receive_message(channel_.get());
      if (received.status == ReceiveStatus::kWouldBlock) continue;
      if (received.status != ReceiveStatus::kMessage) return std::nullopt;
      proto::Decoded<proto::WorkerMessage> decoded = proto::decode_worker_message(received.payload);
      if (!decoded.message) {
        ADD_FAILURE() << "undecodable message from the worker: " << decoded.error;
        return std::nullopt;
      }
      if (std::holds_alternative<proto::Heartbeat>(*decoded.message)) continue;
      return decoded.message;
    }
  }

  // Reads until `seqs` have all been acked with `accepted`; returns the acks
  // seen (each seq once), or fewer on timeout.
  std::map<std::uint64_t, bool> collect_acks(std::size_t count, Milliseconds timeout) {
    std::map<std::uint64_t, bool> acked;
    auto deadline = steady_clock::now() + timeout;
    while (acked.size() < count) {
      auto left = std::chrono::duration_cast<Milliseconds>(deadline - steady_clock::now());
      std::optional<proto::WorkerMessage> message = receive(left);
      if (!message) break;
      const auto* ack = std::get_if<proto::Ack>(&*message);
      if (ack == nullptr) continue;
      for (std::uint64_t seq : ack->seqs) {
        EXPECT_TRUE(acked.emplace(seq, ack->accepted).second) << "seq " << seq << " acked twice";
        held_.erase(seq);
      }
    }
    return acked;
  }

  // Waits for hello and ready.
  bool handshake() {
    std::optional<proto::WorkerMessage> hello = receive(kStartTimeout);
    std::optional<proto::WorkerMessage> ready = receive(kStartTimeout);
    return hello && std::holds_alternative<proto::Hello>(*hello) && ready &&
           std::holds_alternative<proto::Ready>(*ready);
  }

  std::optional<int> wait_exit(Milliseconds timeout) {
    bool exited = wait_until(
        [&] {
          int status = 0;
          if (::waitpid(pid_, &status, WNOHANG) != pid_) return false;
          exit_status_ = status;
          return true;
        },
        timeout);
    if (!exited) return std::nullopt;
    return exit_status_;
  }

 private:
  ListenResult listener_;
  UniqueFd channel_;
  pid_t pid_ = -1;
  std::optional<int> exit_status_;
  std::map<std::uint64_t, UniqueFd> held_;
};

// With a window of 16 the worker gathers acks; a lone connection must still
// be acked (by the ack timer) although no further connection comes.
TEST(WorkerChannel, LoneConnectionIsAckedWithoutMoreTraffic) {
  FakeMaster master(16);
  ASSERT_TRUE(master.started());
  ASSERT_TRUE(master.handshake());

  HttpClient client(master.port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(master.hand(1));
  std::map<std::uint64_t, bool> acked = master.collect_acks(1, kIoTimeout);
  ASSERT_EQ(acked.size(), 1u) << "no ack for the only connection";
  EXPECT_TRUE(acked.at(1));

  ASSERT_TRUE(client.send(get_request("/")));
  HttpReadResult result = client.read_responses(1);
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.responses.at(0).status, 200);
}

bool nagle_off(const UniqueFd& socket) {
  int value = 0;
  socklen_t length = sizeof(value);
  return ::getsockopt(socket.get(), IPPROTO_TCP, TCP_NODELAY, &value, &length) == 0 && value != 0;
}

// Nagle can only delay a send that follows unacknowledged data, so the worker
// sets TCP_NODELAY before its second send on a connection, never for a
// connection that carries one response.
TEST(WorkerChannel, NagleIsTurnedOffBeforeTheSecondResponse) {
  FakeMaster master(1);
  ASSERT_TRUE(master.started());
  ASSERT_TRUE(master.handshake());
  HttpClient client(master.port());
  ASSERT_TRUE(client.connected());
  UniqueFd served;
  ASSERT_TRUE(master.hand(1, &served));
  ASSERT_TRUE(served.valid());

  ASSERT_TRUE(client.send(get_request("/")));
  HttpReadResult first = client.read_responses(1);
  ASSERT_TRUE(first.ok()) << first.error;
  EXPECT_FALSE(nagle_off(served)) << "TCP_NODELAY set for the first response";

  ASSERT_TRUE(client.send(get_request("/")));
  HttpReadResult second = client.read_responses(1);
  ASSERT_TRUE(second.ok()) << second.error;
  EXPECT_TRUE(nagle_off(served)) << "TCP_NODELAY not set by the second response";
}

// Every connection handed is acked exactly once and served, whatever the
// window: 1 acks each at once, larger windows gather them.
class WorkerChannelWindow : public ::testing::TestWithParam<std::size_t> {};

TEST_P(WorkerChannelWindow, EveryConnectionIsAckedOnceAndServed) {
  constexpr std::size_t kConnections = 40;
  FakeMaster master(GetParam());
  ASSERT_TRUE(master.started());
  ASSERT_TRUE(master.handshake());

  std::vector<std::unique_ptr<HttpClient>> clients;
  for (std::uint64_t seq = 1; seq <= kConnections; ++seq) {
    clients.push_back(std::make_unique<HttpClient>(master.port()));
    ASSERT_TRUE(clients.back()->connected());
    ASSERT_TRUE(master.hand(seq));
  }
  std::map<std::uint64_t, bool> acked = master.collect_acks(kConnections, kIoTimeout);
  ASSERT_EQ(acked.size(), kConnections);
  for (const auto& [seq, accepted] : acked) EXPECT_TRUE(accepted) << "seq " << seq;

  for (auto& client : clients) {
    ASSERT_TRUE(client->send(get_request("/")));
    HttpReadResult result = client->read_responses(1);
    ASSERT_TRUE(result.ok()) << result.error;
    EXPECT_EQ(result.responses.at(0).status, 200);
  }
}

INSTANTIATE_TEST_SUITE_P(Windows, WorkerChannelWindow, ::testing::Values(1, 4, 16, 1024));

// A drain right behind a connection: the worker acks what it adopted before
// it refuses anything, refuses later connections at once, and exits 0.
TEST(WorkerChannel, DrainAcksAdoptedThenRefusesTheRest) {
  FakeMaster master(16);
  ASSERT_TRUE(master.started());
  ASSERT_TRUE(master.handshake());

  HttpClient adopted(master.port());
  ASSERT_TRUE(adopted.connected());
  ASSERT_TRUE(master.hand(1));
  ASSERT_TRUE(master.send(proto::Drain{5000}));
  HttpClient late(master.port());
  ASSERT_TRUE(late.connected());
  ASSERT_TRUE(master.hand(2));

  std::map<std::uint64_t, bool> acked = master.collect_acks(2, kIoTimeout);
  ASSERT_EQ(acked.size(), 2u);
  EXPECT_TRUE(acked.at(1)) << "the connection handed before the drain was refused";
  EXPECT_FALSE(acked.at(2)) << "the connection handed after the drain was adopted";

  // The adopted connection is still served, with Connection: close.
  ASSERT_TRUE(adopted.send(get_request("/")));
  HttpReadResult result = adopted.read_responses(1);
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.responses.at(0).status, 200);

  std::optional<int> status = master.wait_exit(kStartTimeout);
  ASSERT_TRUE(status) << "the worker did not exit after draining";
  EXPECT_EQ(describe_status(*status), describe_status(0));
}

}  // namespace
}  // namespace herd::e2e
