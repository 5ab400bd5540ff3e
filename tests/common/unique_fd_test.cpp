#include "common/unique_fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <type_traits>
#include <utility>

#include <gtest/gtest.h>

namespace herd {
namespace {

// True when `fd` names no open descriptor in this process.
bool is_closed(int fd) {
  errno = 0;
  return ::fcntl(fd, F_GETFD) == -1 && errno == EBADF;
}

// A fresh open descriptor (the read end of a pipe whose write end is closed).
int open_descriptor() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return -1;
  ::close(fds[1]);
  return fds[0];
}

TEST(UniqueFdTest, DefaultConstructedHoldsNothing) {
  UniqueFd fd;
  EXPECT_FALSE(fd.valid());
  EXPECT_FALSE(static_cast<bool>(fd));
  EXPECT_EQ(fd.get(), -1);
}

TEST(UniqueFdTest, IsMoveOnly) {
  EXPECT_FALSE(std::is_copy_constructible_v<UniqueFd>);
  EXPECT_FALSE(std::is_copy_assignable_v<UniqueFd>);
  EXPECT_TRUE(std::is_nothrow_move_constructible_v<UniqueFd>);
  EXPECT_TRUE(std::is_nothrow_move_assignable_v<UniqueFd>);
}

TEST(UniqueFdTest, ClosesDescriptorOnDestruction) {
  int raw = open_descriptor();
  ASSERT_GE(raw, 0);
  {
    UniqueFd fd(raw);
    EXPECT_TRUE(fd.valid());
    EXPECT_EQ(fd.get(), raw);
    EXPECT_FALSE(is_closed(raw));
  }
  EXPECT_TRUE(is_closed(raw));
}

TEST(UniqueFdTest, MoveConstructionTransfersOwnership) {
  int raw = open_descriptor();
  ASSERT_GE(raw, 0);
  UniqueFd original(raw);
  {
    UniqueFd moved(std::move(original));
    EXPECT_EQ(moved.get(), raw);
    EXPECT_FALSE(
        original.valid());  // NOLINT(bugprone-use-after-move): checking the moved-from state
    EXPECT_FALSE(is_closed(raw));
  }
  EXPECT_TRUE(is_closed(raw));
}

TEST(UniqueFdTest, MoveAssignmentClosesTheDescriptorItHeld) {
  int old_raw = open_descriptor();
  int new_raw = open_descriptor();
  ASSERT_GE(old_raw, 0);
  ASSERT_GE(new_raw, 0);
  UniqueFd target(old_raw);
  UniqueFd source(new_raw);

  target = std::move(source);

  EXPECT_TRUE(is_closed(old_raw));
  EXPECT_EQ(target.get(), new_raw);
  EXPECT_FALSE(source.valid());  // NOLINT(bugprone-use-after-move): checking the moved-from state
  EXPECT_FALSE(is_closed(new_raw));
}

TEST(UniqueFdTest, MoveAssignmentFromEmptyClosesAndEmpties) {
  int raw = open_descriptor();
  ASSERT_GE(raw, 0);
  UniqueFd target(raw);
  UniqueFd empty;

  target = std::move(empty);

  EXPECT_TRUE(is_closed(raw));
  EXPECT_FALSE(target.valid());
}

TEST(UniqueFdTest, SelfMoveAssignmentKeepsTheDescriptor) {
  int raw = open_descriptor();
  ASSERT_GE(raw, 0);
  UniqueFd fd(raw);
  UniqueFd& alias = fd;  // through a reference, so the compiler does not flag the self-move

  fd = std::move(alias);

  EXPECT_EQ(fd.get(), raw);
  EXPECT_FALSE(is_closed(raw));
}

TEST(UniqueFdTest, ReleaseGivesUpOwnershipWithoutClosing) {
  int raw = open_descriptor();
  ASSERT_GE(raw, 0);
  int released = -1;
  {
    UniqueFd fd(raw);
    released = fd.release();
    EXPECT_FALSE(fd.valid());
    EXPECT_EQ(fd.get(), -1);
  }
  EXPECT_EQ(released, raw);
  EXPECT_FALSE(is_closed(raw));
  ::close(raw);
}

TEST(UniqueFdTest, ResetClosesTheOldDescriptorAndTakesTheNewOne) {
  int old_raw = open_descriptor();
  int new_raw = open_descriptor();
  ASSERT_GE(old_raw, 0);
  ASSERT_GE(new_raw, 0);
  {
    UniqueFd fd(old_raw);
    fd.reset(new_raw);
    EXPECT_TRUE(is_closed(old_raw));
    EXPECT_EQ(fd.get(), new_raw);
    EXPECT_FALSE(is_closed(new_raw));
  }
  EXPECT_TRUE(is_closed(new_raw));
}

TEST(UniqueFdTest, ResetWithoutArgumentClosesAndEmpties) {
  int raw = open_descriptor();
  ASSERT_GE(raw, 0);
  UniqueFd fd(raw);

  fd.reset();

  EXPECT_TRUE(is_closed(raw));
  EXPECT_FALSE(fd.valid());
  fd.reset();  // a second reset on an empty owner closes nothing
  EXPECT_FALSE(fd.valid());
}

}  // namespace
}  // namespace herd
