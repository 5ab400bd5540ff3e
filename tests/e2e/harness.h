// The end-to-end harness: starts the real herd binaries, follows their log as
// it is written, and talks HTTP/1.1 to them over blocking sockets on
// 127.0.0.1. Every wait is bounded; none of them sleeps and hopes.
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "common/unique_fd.h"

namespace herd::e2e {

using Milliseconds = std::chrono::milliseconds;

// Generous enough for an AddressSanitizer build on a loaded machine, short
// enough that a hang fails the test instead of the whole run.
inline constexpr Milliseconds kStartTimeout{10000};
inline constexpr Milliseconds kLogTimeout{10000};
inline constexpr Milliseconds kIoTimeout{5000};

inline constexpr const char* kHerdPath = HERD_BIN_DIR "/herd";
inline constexpr const char* kWorkerPath = HERD_BIN_DIR "/herd-worker";

// True while `pid` names a process that has not exited: it exists and is not
// a zombie (an orphaned worker may linger unreaped as a zombie under init).
bool pid_alive(pid_t pid);

// Polls `predicate` every 10 ms until it holds or `timeout` has passed.
// Returns the predicate's last value.
bool wait_until(const std::function<bool()>& predicate, Milliseconds timeout);

// Milliseconds since `since`, for the figures tests print.
double elapsed_ms(std::chrono::steady_clock::time_point since);

// A waitpid() status in words: "exit code 2", "signal 9".
std::string describe_status(int status);

// Matches the master's log line about worker `pid`, followed by `rest`
// (a regex): "Worker 4045 " + "died \\(code 0\\)".
std::regex exact_worker_line(pid_t pid, const std::string& rest);

// Resident memory of `pid` in KiB (VmRSS in /proc/<pid>/status), or nullopt
// once it is gone.
std::optional<long> resident_kb(pid_t pid);

// CPU time `pid` has used so far (utime + stime from /proc/<pid>/stat), or
// nullopt once it is gone.
std::optional<Milliseconds> process_cpu_time(pid_t pid);

// The CPU time `pids` used together over `window`, and how long the window
// really was. A measured observation window (what a process costs while
// nothing should happen), not a wait for an event. nullopt if one of them is
// gone.
struct CpuUse {
  double cpu_ms = 0;
  double window_ms = 0;
};
std::optional<CpuUse> cpu_use_over(const std::vector<pid_t>& pids, Milliseconds window);

// What a program run to completion by run_program() did.
struct RunResult {
  int exit_code = -1;  // -1 unless it exited normally
  std::string out;
  std::string err;
  std::string error;  // why it could not be run or waited for

  std::vector<std::string> out_lines() const;
};

std::ostream& operator<<(std::ostream& stream, const RunResult& result);

inline constexpr Milliseconds kRunTimeout{15000};

// Runs `args` (args[0] a path or a name on PATH) with stdin from /dev/null and
// stdout and stderr captured apart, in `environment` ("NAME=value" entries;
// the test's own when nullopt). SIGKILLed if it runs past `timeout`.
RunResult run_program(const std::vector<std::string>& args,
                      const std::optional<std::vector<std::string>>& environment = std::nullopt,
                      Milliseconds timeout = kRunTimeout);

// A log line that matched a pattern.
struct LineMatch {
  std::size_t index = 0;  // position in lines(); search from index + 1 for the next one
  std::string line;
  std::vector<std::string> groups;  // groups[0] is the whole match

  const std::string& operator[](std::size_t group) const { return groups.at(group); }
};

// One child process (herd by default), with stdout and stderr captured line
// by line by a background thread. herd's workers inherit the master's stderr,
// so their lines arrive here too.
//
// The destructor SIGKILLs and reaps the process if it still runs, then
// SIGKILLs every worker it learned of from a "Worker <pid> started" line that
// is still alive; nothing is ever killed by name. When the test has failed,
// the destructor prints the captured output.
class HerdProcess {
 public:
  // Starts `program` with `args` (argv[0] excluded). The child gets the test's
  // environment minus every HERD_* variable, /dev/null as stdin, and dies with
  // the test process (PR_SET_PDEATHSIG). `env` changes that environment:
  // "NAME=VALUE" sets NAME, a bare "NAME" removes it.
  explicit HerdProcess(std::vector<std::string> args, std::string program = kHerdPath,
                       const std::vector<std::string>& env = {});
  ~HerdProcess();

  HerdProcess(const HerdProcess&) = delete;
  HerdProcess& operator=(const HerdProcess&) = delete;

  // -1 when the process could not be started; start_error() says why.
  pid_t pid() const { return pid_; }
  const std::string& start_error() const { return start_error_; }

  // A snapshot of the output so far, one entry per line, without newlines.
  std::vector<std::string> lines() const;
  std::size_t line_count() const;
  std::string output() const;  // all lines, joined with '\n'

  // Waits until a line at or after index `from` matches `pattern`
  // (std::regex_search). Gives up after `timeout` or once the output has
  // closed with no match.
  std::optional<LineMatch> wait_for_line(const std::regex& pattern,
                                         Milliseconds timeout = kLogTimeout, std::size_t from = 0);
  // Waits until `count` lines at or after `from` match; returns the matches
  // found, fewer than `count` on timeout.
  std::vector<LineMatch> wait_for_lines(const std::regex& pattern, std::size_t count,
                                        Milliseconds timeout = kLogTimeout, std::size_t from = 0);

  // Pids from "Worker <pid> started" lines, in order of appearance.
  std::vector<pid_t> worker_pids() const;

  bool send_signal(int signal);

  // Waits up to `timeout` for the process to exit and reaps it. Returns its
  // waitpid() status, or nullopt if it is still running.
  std::optional<int> wait_exit(Milliseconds timeout);

 private:
  void read_output();
  void add_line(std::string line);  // with mutex_ held
  void kill_leftovers();
  void stop_reader();

  std::string program_;
  pid_t pid_ = -1;
  unsigned long long start_time_ = 0;  // /proc/<pid>/stat starttime, to vet worker pids
  std::string start_error_;
  std::optional<int> exit_status_;

  UniqueFd output_;     // read end of the child's stdout/stderr pipe
  UniqueFd wake_read_;  // written by the destructor to stop the reader
  UniqueFd wake_write_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> lines_;
  std::vector<pid_t> worker_pids_;
  bool output_closed_ = false;
  std::thread reader_;
};

// A directory under /tmp, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(TempDir&& other) noexcept : path_(std::exchange(other.path_, {})) {}
  TempDir& operator=(TempDir&&) = delete;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }  // "" if mkdtemp() failed

 private:
  std::string path_;
};

// A master started by start_cluster(), with every worker ready.
struct Cluster {
  // Holds the control socket, so a master killed by SIGKILL leaves no stale
  // socket behind in /tmp. Declared first: removed after the master is gone.
  TempDir dir;
  std::unique_ptr<HerdProcess> herd;
  std::uint16_t port = 0;
  std::vector<LineMatch> ready;  // "Worker (pid) ready (id (id), slot (slot))"
};

// Runs `herd --host 127.0.0.1 --port 0 --workers N --log-level debug
// --control <dir>/control.sock <extra>` and waits for its listening port and for N "Worker <pid>
// ready" lines. On failure, records a test failure with the log and returns nullopt.
std::optional<Cluster> start_cluster(std::size_t workers,
                                     const std::vector<std::string>& extra_args = {});

// Runs `herd --host 127.0.0.1 --port 0 --workers N --control <dir>/control.sock
// <extra>` (info-level log) and waits only for its listening port, not for any
// worker: for masters whose workers never become ready. `ready` stays empty.
std::optional<Cluster> start_master(std::size_t workers,
                                    const std::vector<std::string>& extra_args = {});

// The control socket start_cluster() gave the master: <dir>/control.sock.
std::string control_path(const Cluster& cluster);

// ---- HTTP over blocking sockets ---------------------------------------------

struct HttpResponse {
  unsigned status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // names lower-cased
  bool keep_alive = false;

  // The value of header `name` (any case), or "" when absent.
  std::string header(std::string_view name) const;
};

struct HttpReadResult {
  std::vector<HttpResponse> responses;
  // The server had closed its side (EOF or reset) by the time reading stopped.
  bool server_closed = false;
  std::string error;  // empty unless fewer responses than asked for were read

  bool ok() const { return error.empty(); }
};

// One client connection to 127.0.0.1:port. Every send and receive is bounded
// by `io_timeout` (SO_SNDTIMEO / SO_RCVTIMEO). Responses are parsed by
// Boost.Beast's response_parser; bytes past the last parsed response are kept
// for the next read, so pipelined responses are split correctly.
class HttpClient {
 public:
  explicit HttpClient(std::uint16_t port, Milliseconds io_timeout = kIoTimeout);

  bool connected() const { return socket_.valid(); }
  const std::string& error() const { return error_; }

  // Writes all of `bytes`; false (and error()) on failure or timeout.
  bool send(std::string_view bytes);
  // Reads until `count` whole responses have arrived, the server closes, or
  // a receive times out.
  HttpReadResult read_responses(std::size_t count);
  // True once the server closes its side within `timeout`; bytes that arrive
  // first are kept for read_responses().
  bool wait_for_close(Milliseconds timeout);
  // True if the server has already closed its side, without waiting: what a
  // client checks before it reuses an idle keep-alive connection. Bytes that
  // arrived are kept for read_responses().
  bool server_has_closed();
  // The kernel's TCP state of the connection (TCP_ESTABLISHED, TCP_CLOSE_WAIT
  // after the server's FIN, TCP_CLOSE after a reset, ... from <netinet/tcp.h>),
  // or nullopt when not connected. A reset tells that the server discarded
  // what was sent unread; a FIN alone, that it read everything first.
  std::optional<int> tcp_state() const;

 private:
  UniqueFd socket_;
  Milliseconds io_timeout_;
  std::string pending_;  // received, not yet parsed
  bool peer_closed_ = false;
  std::string error_;
};

// "GET <target> HTTP/1.1" with a Host header and nothing else (keep-alive).
std::string get_request(std::string_view target);

// Connects, sends `request`, reads `count` responses.
HttpReadResult http_exchange(std::uint16_t port, std::string_view request, std::size_t count = 1);

// One GET on a fresh connection.
HttpReadResult http_get(std::uint16_t port, std::string_view target);

// ---- the control socket -----------------------------------------------------

// One client connection to a master's control socket (AF_UNIX stream,
// newline-delimited JSON, proto/README.md). connect() and every send are
// bounded by `io_timeout` (SO_SNDTIMEO); every read takes its own bound.
class ControlClient {
 public:
  explicit ControlClient(const std::string& path, Milliseconds io_timeout = kIoTimeout);

  bool connected() const { return socket_.valid(); }
  const std::string& error() const { return error_; }
  // The master has closed its side (EOF or reset), as far as reads have seen.
  bool peer_closed() const { return peer_closed_; }

  // Writes all of `bytes`; false (and error()) on failure or timeout.
  bool send(std::string_view bytes);
  // Writes `line` and a newline.
  bool send_line(std::string_view line);
  // The next line the master wrote, without its newline; nullopt (and
  // error()) on timeout, on close, or on a failed read.
  std::optional<std::string> read_line(Milliseconds timeout = kIoTimeout);
  // read_line() parsed as JSON; nullopt (and error()) if it is not JSON.
  std::optional<nlohmann::json> read_json(Milliseconds timeout = kIoTimeout);
  // Writes `request` as one line and reads one reply line.
  std::optional<nlohmann::json> request(const nlohmann::json& request,
                                        Milliseconds timeout = kIoTimeout);
  // True once the master closes its side within `timeout`; lines that arrive
  // first are kept for read_line().
  bool wait_for_close(Milliseconds timeout);

 private:
  // Reads what is there, waiting at most until `deadline`; false on timeout
  // or error (with error_ set), true if bytes arrived or the peer closed.
  bool receive_until(std::chrono::steady_clock::time_point deadline);

  UniqueFd socket_;
  Milliseconds io_timeout_;
  std::string pending_;  // received, not yet returned as a line
  bool peer_closed_ = false;
  std::string error_;
};

// One request on a fresh connection; nullopt (and a reason in `error`, if
// given) when the master could not be reached or did not answer in time.
std::optional<nlohmann::json> control_request(const std::string& path,
                                              const nlohmann::json& request,
                                              Milliseconds timeout = kIoTimeout,
                                              std::string* error = nullptr);

// Whether a control reply says {"ok": true}.
bool is_ok(const nlohmann::json& reply);

// An unsigned field, or 0 when it is absent or of another type.
std::uint64_t number(const nlohmann::json& object, const char* key);

// The master's `status` reply, or nullopt when it did not answer.
std::optional<nlohmann::json> status_of(const Cluster& cluster);

// Sequential GET / requests, each on a fresh connection, in a thread, until
// stop() or its bounds: load beside an operation under test. Every
// answer other than a 200 is a failure.
class RequestLoop {
 public:
  // Bounds, should a test forget to stop it. Not a count alone: a slow reload
  // (a Python worker starting on a loaded machine) outlasts a few thousand
  // requests, and the test must still see requests after it.
  static constexpr std::size_t kMaxLoopRequests = 1'000'000;
  static constexpr Milliseconds kMaxLoopDuration{120'000};

  explicit RequestLoop(std::uint16_t port) : thread_([this, port] { run(port); }) {}
  ~RequestLoop() { stop(); }
  RequestLoop(const RequestLoop&) = delete;
  RequestLoop& operator=(const RequestLoop&) = delete;

  // Stops and joins; the results are final afterwards.
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  // Waits until the loop has had `count` answers (of any kind).
  bool wait_for_requests(std::size_t count, Milliseconds timeout) const {
    return wait_until([&] { return done_ >= count; }, timeout);
  }
  std::size_t done() const { return done_; }
  // Only after stop().
  const std::vector<std::string>& failures() const { return failures_; }

 private:
  void run(std::uint16_t port);

  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> done_{0};
  std::vector<std::string> failures_;  // written by the thread only
  std::thread thread_;                 // last: starts once the rest exists
};

}  // namespace herd::e2e
