#include "common/fd_passing.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace herd {
namespace {

// The number of descriptors this process has open, from /proc/self/fd.
// The directory's own descriptor is counted every time, so counts compare.
int count_open_fds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int count = 0;
  while (dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  ::closedir(dir);
  return count;
}

bool is_close_on_exec(int fd) {
  int flags = ::fcntl(fd, F_GETFD);
  return flags != -1 && (flags & FD_CLOEXEC) != 0;
}

struct Pipe {
  UniqueFd read_end;
  UniqueFd write_end;
};

// A pipe without O_CLOEXEC, so close-on-exec on a received copy proves the
// receiver set it.
Pipe make_pipe() {
  int fds[2] = {-1, -1};
  EXPECT_EQ(::pipe(fds), 0) << std::strerror(errno);
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// Sends `payload` with every descriptor in `fds` in one SCM_RIGHTS message,
// bypassing send_message(), which only ever attaches one.
ssize_t send_with_fds(int socket, const std::string& payload, const std::vector<int>& fds) {
  iovec iov{const_cast<char*>(payload.data()), payload.size()};
  std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
  std::memcpy(CMSG_DATA(cmsg), fds.data(), sizeof(int) * fds.size());
  return ::sendmsg(socket, &msg, MSG_NOSIGNAL);
}

class FdPassingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(make_channel_pair(master_, worker_)) << std::strerror(errno);
  }

  UniqueFd master_;
  UniqueFd worker_;
};

TEST_F(FdPassingTest, ChannelPairIsNonBlockingCloseOnExecSeqpacket) {
  for (const UniqueFd* end : {&master_, &worker_}) {
    int type = 0;
    socklen_t length = sizeof(type);
    ASSERT_EQ(::getsockopt(end->get(), SOL_SOCKET, SO_TYPE, &type, &length), 0);
    EXPECT_EQ(type, SOCK_SEQPACKET);
    EXPECT_NE(::fcntl(end->get(), F_GETFL) & O_NONBLOCK, 0);
    EXPECT_TRUE(is_close_on_exec(end->get()));
  }
}

TEST_F(FdPassingTest, DeliversMessageWithoutDescriptor) {
  ASSERT_EQ(send_message(master_.get(), R"({"type":"ping"})"), SendResult::kSent);

  ReceivedMessage received = receive_message(worker_.get());

  EXPECT_EQ(received.status, ReceiveStatus::kMessage);
  EXPECT_EQ(received.payload, R"({"type":"ping"})");
  EXPECT_TRUE(received.fds.empty());
  EXPECT_FALSE(received.payload_truncated);
  EXPECT_FALSE(received.control_truncated);
}

TEST_F(FdPassingTest, KeepsMessageBoundaries) {
  ASSERT_EQ(send_message(master_.get(), "first"), SendResult::kSent);
  ASSERT_EQ(send_message(master_.get(), "second"), SendResult::kSent);

  EXPECT_EQ(receive_message(worker_.get()).payload, "first");
  EXPECT_EQ(receive_message(worker_.get()).payload, "second");
  EXPECT_EQ(receive_message(worker_.get()).status, ReceiveStatus::kWouldBlock);
}

TEST_F(FdPassingTest, PassedDescriptorIsUsableByReceiver) {
  Pipe pipe = make_pipe();
  ASSERT_EQ(send_message(master_.get(), "conn", pipe.write_end.get()), SendResult::kSent);

  ReceivedMessage received = receive_message(worker_.get());

  ASSERT_EQ(received.status, ReceiveStatus::kMessage);
  EXPECT_EQ(received.payload, "conn");
  ASSERT_EQ(received.fds.size(), 1u);
  EXPECT_NE(received.fds[0].get(), pipe.write_end.get());
  ASSERT_EQ(::write(received.fds[0].get(), "hi", 2), 2);
  char buffer[8] = {};
  ASSERT_EQ(::read(pipe.read_end.get(), buffer, sizeof(buffer)), 2);
  EXPECT_EQ(std::string(buffer, 2), "hi");
}

TEST_F(FdPassingTest, ReceivedDescriptorIsCloseOnExec) {
  Pipe pipe = make_pipe();
  ASSERT_FALSE(is_close_on_exec(pipe.write_end.get()));
  ASSERT_EQ(send_message(master_.get(), "conn", pipe.write_end.get()), SendResult::kSent);

  ReceivedMessage received = receive_message(worker_.get());

  ASSERT_EQ(received.fds.size(), 1u);
  EXPECT_TRUE(is_close_on_exec(received.fds[0].get()));
}

TEST_F(FdPassingTest, SenderKeepsItsCopyOfPassedDescriptor) {
  Pipe pipe = make_pipe();
  ASSERT_EQ(send_message(master_.get(), "conn", pipe.write_end.get()), SendResult::kSent);
  {
    ReceivedMessage received = receive_message(worker_.get());
    ASSERT_EQ(received.fds.size(), 1u);
  }  // the received copy is closed here

  ASSERT_EQ(::write(pipe.write_end.get(), "x", 1), 1);
  char byte = 0;
  EXPECT_EQ(::read(pipe.read_end.get(), &byte, 1), 1);
}

TEST_F(FdPassingTest, ClosesReceivedDescriptorWhenMessageIsDropped) {
  Pipe pipe = make_pipe();
  ASSERT_EQ(send_message(master_.get(), "conn", pipe.write_end.get()), SendResult::kSent);
  pipe.write_end.reset();
  {
    ReceivedMessage received = receive_message(worker_.get());
    ASSERT_EQ(received.fds.size(), 1u);
  }

  // With the last write end gone, the reader sees end-of-file instead of EAGAIN.
  char byte = 0;
  EXPECT_EQ(::read(pipe.read_end.get(), &byte, 1), 0);
}

TEST_F(FdPassingTest, DeliversDescriptorWithEmptyPayload) {
  Pipe pipe = make_pipe();
  ASSERT_EQ(send_message(master_.get(), "", pipe.write_end.get()), SendResult::kSent);

  ReceivedMessage received = receive_message(worker_.get());

  EXPECT_EQ(received.status, ReceiveStatus::kMessage);
  EXPECT_TRUE(received.payload.empty());
  EXPECT_EQ(received.fds.size(), 1u);
}

TEST_F(FdPassingTest, ReceivesEveryDescriptorOfMessageWithSeveral) {
  int open_before = count_open_fds();
  {
    std::vector<Pipe> pipes;
    std::vector<int> write_ends;
    for (int i = 0; i < 3; ++i) {
      pipes.push_back(make_pipe());
      write_ends.push_back(pipes.back().write_end.get());
    }
    ASSERT_EQ(send_with_fds(master_.get(), "conn", write_ends), 4) << std::strerror(errno);

    ReceivedMessage received = receive_message(worker_.get());

    ASSERT_EQ(received.status, ReceiveStatus::kMessage);
    EXPECT_FALSE(received.control_truncated);
    ASSERT_EQ(received.fds.size(), 3u);
    for (std::size_t i = 0; i < pipes.size(); ++i) {
      ASSERT_EQ(::write(received.fds[i].get(), "x", 1), 1);
      char byte = 0;
      EXPECT_EQ(::read(pipes[i].read_end.get(), &byte, 1), 1) << "descriptor " << i;
    }
  }
  EXPECT_EQ(count_open_fds(), open_before);
}

TEST_F(FdPassingTest, TooManyDescriptorsAreReportedOrAllReceivedAndNoneLeak) {
  constexpr std::size_t kSent = 64;
  int open_before = count_open_fds();
  {
    std::vector<Pipe> pipes;
    std::vector<int> write_ends;
    for (std::size_t i = 0; i < kSent; ++i) {
      pipes.push_back(make_pipe());
      write_ends.push_back(pipes.back().write_end.get());
    }
    ASSERT_EQ(send_with_fds(master_.get(), "conn", write_ends), 4) << std::strerror(errno);

    ReceivedMessage received = receive_message(worker_.get());

    ASSERT_EQ(received.status, ReceiveStatus::kMessage);
    EXPECT_EQ(received.payload, "conn");
    EXPECT_TRUE(received.control_truncated || received.fds.size() == kSent)
        << received.fds.size() << " of " << kSent << " descriptors and no MSG_CTRUNC";
    EXPECT_LE(received.fds.size(), kSent);
  }
  EXPECT_EQ(count_open_fds(), open_before);
}

TEST_F(FdPassingTest, DeliversPayloadOfExactlyMaxSize) {
  std::string payload(kMaxMessageBytes, 'a');
  payload.back() = 'z';
  ASSERT_EQ(send_message(master_.get(), payload), SendResult::kSent);

  ReceivedMessage received = receive_message(worker_.get());

  EXPECT_EQ(received.status, ReceiveStatus::kMessage);
  EXPECT_FALSE(received.payload_truncated);
  EXPECT_EQ(received.payload, payload);
}

TEST_F(FdPassingTest, ReportsPayloadOverMaxSizeAsTruncated) {
  std::string payload(kMaxMessageBytes + 1, 'a');
  ASSERT_EQ(send_message(master_.get(), payload), SendResult::kSent);

  ReceivedMessage received = receive_message(worker_.get());

  EXPECT_EQ(received.status, ReceiveStatus::kMessage);
  EXPECT_TRUE(received.payload_truncated);
  EXPECT_LE(received.payload.size(), kMaxMessageBytes);
  // The rest of the datagram is discarded, not delivered as another message.
  EXPECT_EQ(receive_message(worker_.get()).status, ReceiveStatus::kWouldBlock);
}

TEST_F(FdPassingTest, ReceiveOnEmptySocketWouldBlock) {
  ReceivedMessage received = receive_message(worker_.get());

  EXPECT_EQ(received.status, ReceiveStatus::kWouldBlock);
  EXPECT_TRUE(received.payload.empty());
  EXPECT_TRUE(received.fds.empty());
}

TEST_F(FdPassingTest, ReceiveReportsClosedAfterPeerCloses) {
  master_.reset();

  EXPECT_EQ(receive_message(worker_.get()).status, ReceiveStatus::kClosed);
}

TEST_F(FdPassingTest, DeliversQueuedMessagesBeforeReportingClosed) {
  ASSERT_EQ(send_message(master_.get(), "last words"), SendResult::kSent);
  master_.reset();

  ReceivedMessage first = receive_message(worker_.get());
  EXPECT_EQ(first.status, ReceiveStatus::kMessage);
  EXPECT_EQ(first.payload, "last words");
  EXPECT_EQ(receive_message(worker_.get()).status, ReceiveStatus::kClosed);
}

TEST_F(FdPassingTest, SendToClosedPeerReportsPeerGone) {
  worker_.reset();

  // MSG_NOSIGNAL: without it SIGPIPE would end the test process here.
  EXPECT_EQ(send_message(master_.get(), "anyone?"), SendResult::kPeerGone);
}

TEST_F(FdPassingTest, SendReportsWouldBlockWhenPeerStopsReading) {
  const std::string payload(4096, 'x');
  SendResult result = SendResult::kSent;
  for (int i = 0; i < 100000 && result == SendResult::kSent; ++i) {
    result = send_message(master_.get(), payload);
  }

  EXPECT_EQ(result, SendResult::kWouldBlock);
}

TEST(FdPassingErrorTest, SendOnNonSocketReportsErrorWithErrno) {
  Pipe pipe = make_pipe();
  errno = 0;

  EXPECT_EQ(send_message(pipe.write_end.get(), "x"), SendResult::kError);
  EXPECT_EQ(errno, ENOTSOCK);
}

TEST(FdPassingErrorTest, ReceiveOnNonSocketReportsErrorWithErrno) {
  Pipe pipe = make_pipe();

  ReceivedMessage received = receive_message(pipe.read_end.get());

  EXPECT_EQ(received.status, ReceiveStatus::kError);
  EXPECT_EQ(received.error, ENOTSOCK);
}

}  // namespace
}  // namespace herd
