// rogue_worker: a worker program that misbehaves on purpose, for end-to-end
// tests of the master's protocol enforcement and connection re-dispatch.
//
//   rogue_worker MODE [REAL_WORKER]
//
// Only the worker in slot 0 misbehaves; every other slot execs REAL_WORKER (the
// real herd-worker), so a test can check that the good workers pick up what the
// rogue one drops. Modes:
//   garbage        sends a datagram that is not JSON
//   unknown-type   sends {"type":"bogus"}
//   fd             sends a heartbeat with a descriptor attached
//   wrong-proto    says hello with protocol version 99
//   ack-unknown    acks a seq it was never handed
//   silent         says hello and ready, then never sends another message
//   refuse         refuses (ack accepted:false) every connection it is handed
//   die-on-conn    exits without acking as soon as it is handed a connection
//
// Modes about the worker's output (tests/e2e/logs_test.cpp), for the first
// worker (HERD_WORKER_ID 1) only; later ones exec REAL_WORKER, so the slot
// settles:
//   last-words     writes the kLastWords lines below to stdout and stderr, the
//                  last one without a newline, says hello and ready, and exits 3
//   flood          writes a 1 MiB line, a line of binary garbage and then
//                  "rogue: after the flood" to stdout, and execs REAL_WORKER
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <string_view>
#include <utility>

#include "common/fd_passing.h"
#include "proto/messages.h"

namespace {

using namespace herd;

// What last-words writes, in order.
constexpr std::pair<int, const char*> kLastWords[] = {
    {STDOUT_FILENO, "rogue: starting up\n"},
    {STDERR_FILENO, "rogue: warning: something is wrong\r\n"},
    {STDOUT_FILENO, "rogue: still trying\n"},
    {STDERR_FILENO, "rogue: fatal: giving up"},
};

// Unbuffered, so nothing is lost to an exit that skips stdio's flush.
void write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t written = ::write(fd, bytes.data(), bytes.size());
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return;
    bytes.remove_prefix(static_cast<std::size_t>(written));
  }
}

void write_flood() {
  write_all(STDOUT_FILENO, std::string(1024 * 1024, 'x') + "\n");
  std::string garbage;
  for (int byte = 0; byte < 256; ++byte) {
    if (byte != '\n') garbage += static_cast<char>(byte);
  }
  garbage += "\xc3\x28 \xed\xa0\x80 \xf0\x9f\x98";  // invalid UTF-8 sequences
  write_all(STDOUT_FILENO, garbage + "\n");
  write_all(STDOUT_FILENO, "rogue: after the flood\n");
}

void send(const proto::WorkerMessage& message, int fd = -1) {
  send_message(3, proto::encode(message), fd);
}

// Blocks until the next datagram from the master.
ReceivedMessage wait_for_message() {
  for (;;) {
    pollfd channel{3, POLLIN, 0};
    if (::poll(&channel, 1, -1) < 0) continue;
    ReceivedMessage received = receive_message(3);
    if (received.status != ReceiveStatus::kWouldBlock) return received;
  }
}

// Waits for the master to kill us (or to go away).
[[noreturn]] void idle() {
  for (;;) {
    ReceivedMessage received = wait_for_message();
    if (received.status != ReceiveStatus::kMessage) std::_Exit(0);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: rogue_worker MODE [REAL_WORKER]\n";
    return 2;
  }
  std::string mode = argv[1];
  const char* slot = std::getenv("HERD_WORKER_SLOT");
  const char* id = std::getenv("HERD_WORKER_ID");
  bool output_mode = mode == "last-words" || mode == "flood";
  bool misbehaves = output_mode ? id != nullptr && std::strcmp(id, "1") == 0
                                : slot != nullptr && std::strcmp(slot, "0") == 0;
  if (mode == "flood" && misbehaves) write_flood();
  if (argc >= 3 && (!misbehaves || mode == "flood")) {
    ::execv(argv[2], argv + 2);
    std::cerr << "rogue_worker: exec " << argv[2] << " failed: " << std::strerror(errno) << "\n";
    return 127;
  }

  if (mode == "wrong-proto") {
    send(proto::Hello{99, ::getpid()});
    idle();
  }
  send(proto::Hello{proto::kProtocolVersion, ::getpid()});
  send(proto::Ready{});

  if (mode == "last-words") {
    for (const auto& [fd, text] : kLastWords) write_all(fd, text);
    std::_Exit(3);
  } else if (mode == "garbage") {
    send_message(3, "this is not json");
  } else if (mode == "unknown-type") {
    send_message(3, R"({"type":"bogus"})");
  } else if (mode == "fd") {
    send(proto::Heartbeat{}, STDERR_FILENO);
  } else if (mode == "ack-unknown") {
    send(proto::Ack{{424242}, true});
  } else if (mode == "refuse" || mode == "die-on-conn") {
    for (;;) {
      ReceivedMessage received = wait_for_message();
      if (received.status != ReceiveStatus::kMessage) return 0;
      auto decoded = proto::decode_master_message(received.payload);
      if (!decoded.message) continue;
      const auto* conn = std::get_if<proto::Conn>(&*decoded.message);
      if (conn == nullptr) continue;
      if (mode == "die-on-conn") std::_Exit(3);
      send(proto::Ack{{conn->seq}, false});
    }
  } else if (mode != "silent" && mode != "flood") {
    std::cerr << "rogue_worker: unknown mode " << mode << "\n";
    return 2;
  }
  idle();
}
