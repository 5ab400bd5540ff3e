// End-to-end: the workers' stdout and stderr as the master logs them (tagged
// text or JSON), --log-file and its reopening on SIGUSR1, a dead worker's last
// lines in `stats`, and workers that write huge lines or binary garbage.
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tests/e2e/harness.h"

namespace herd::e2e {
namespace {

using nlohmann::json;

constexpr const char* kRoguePath = HERD_BIN_DIR "/rogue_worker";
constexpr const char* kHerdctlPath = HERD_BIN_DIR "/herdctl";
constexpr std::size_t kMaxLineBytes = 16 * 1024;

const std::regex kRequestHandled(
    R"(^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \[worker (\d+) slot (\d+) pid (\d+) stderr\] )"
    R"(debug: Request handled by worker (\d+)$)");
const std::regex kListening(R"(listening on 127\.0\.0\.1:(\d+))");

// The whole file, or "" if it cannot be read.
std::string read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

std::size_t count_matches(const std::string& text, const std::regex& pattern) {
  return static_cast<std::size_t>(std::distance(
      std::sregex_iterator(text.begin(), text.end(), pattern), std::sregex_iterator()));
}

// Waits until the file at `path` has a match for `pattern`; returns the
// match's groups ([0] the whole match), and the file's text in `text`.
std::optional<std::vector<std::string>> wait_for_file_match(const std::string& path,
                                                            const std::regex& pattern,
                                                            std::string& text,
                                                            Milliseconds timeout = kLogTimeout) {
  std::smatch match;
  bool found = wait_until(
      [&] {
        text = read_file(path);
        return std::regex_search(text, match, pattern);
      },
      timeout);
  if (!found) return std::nullopt;
  return std::vector<std::string>(match.begin(), match.end());
}

// A master that logs to `log_file`, started by hand: its own output stays
// empty, so start_cluster() cannot follow it.
struct LoggingToFile {
  TempDir dir;
  std::string log_file = dir.path() + "/herd.log";
  std::unique_ptr<HerdProcess> herd;
  std::uint16_t port = 0;
};

std::optional<LoggingToFile> start_logging_to_file() {
  LoggingToFile master;
  master.herd = std::make_unique<HerdProcess>(std::vector<std::string>{
      "--host", "127.0.0.1", "--port", "0", "--workers", "1", "--log-level", "debug", "--control",
      master.dir.path() + "/control.sock", "--log-file", master.log_file});
  if (master.herd->pid() < 0) {
    ADD_FAILURE() << "cannot start herd: " << master.herd->start_error();
    return std::nullopt;
  }
  std::string text;
  std::optional<std::vector<std::string>> listening =
      wait_for_file_match(master.log_file, kListening, text, kStartTimeout);
  if (!listening || !wait_for_file_match(master.log_file, std::regex(R"(Worker \d+ ready)"), text,
                                         kStartTimeout)) {
    ADD_FAILURE() << "no 'listening' and 'ready' lines in " << master.log_file << ":\n"
                  << text << "\nherd's own output:\n"
                  << master.herd->output();
    return std::nullopt;
  }
  master.port = static_cast<std::uint16_t>(std::stoul((*listening)[1]));
  return master;
}

// ---- tagged lines --------------------------------------------------------------

TEST(WorkerLogs, WorkerLinesAreTaggedWithIdSlotPidAndStream) {
  std::optional<Cluster> cluster = start_cluster(1);
  ASSERT_TRUE(cluster);
  const LineMatch& ready = cluster->ready.at(0);  // pid, id, slot

  ASSERT_TRUE(http_get(cluster->port, "/").ok());

  std::optional<LineMatch> handled = cluster->herd->wait_for_line(kRequestHandled);
  ASSERT_TRUE(handled) << cluster->herd->output();
  EXPECT_EQ((*handled)[1], ready[2]) << handled->line;  // id
  EXPECT_EQ((*handled)[2], ready[3]) << handled->line;  // slot
  EXPECT_EQ((*handled)[3], ready[1]) << handled->line;  // pid
  EXPECT_EQ((*handled)[4], ready[2]) << handled->line;
  // herd-worker leaves the time and its identity to the master's tag.
  EXPECT_EQ(handled->line.find("[worker", handled->line.find("[worker") + 1), std::string::npos)
      << "tagged twice: " << handled->line;
}

TEST(WorkerLogs, JsonLogHasOneObjectPerLineWithTheWorkerTags) {
  std::optional<Cluster> cluster = start_cluster(1, {"--log-format", "json"});
  ASSERT_TRUE(cluster);
  const LineMatch& ready = cluster->ready.at(0);

  ASSERT_TRUE(http_get(cluster->port, "/").ok());
  ASSERT_TRUE(cluster->herd->wait_for_line(std::regex("Request handled by worker")))
      << cluster->herd->output();

  std::optional<json> handled;
  for (const std::string& line : cluster->herd->lines()) {
    json record = json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(record.is_object()) << "not a JSON object: " << line;
    EXPECT_TRUE(record.contains("time") && record.contains("level")) << line;
    if (record.value("msg", "") == "Request handled by worker " + ready[2]) handled = record;
  }
  ASSERT_TRUE(handled) << cluster->herd->output();
  EXPECT_EQ(handled->value("level", ""), "debug") << handled->dump();
  EXPECT_EQ(handled->value("process", ""), "worker " + ready[2]) << handled->dump();
  EXPECT_EQ(handled->value("worker", 0u), std::stoul(ready[2])) << handled->dump();
  EXPECT_EQ(handled->value("slot", 99u), std::stoul(ready[3])) << handled->dump();
  EXPECT_EQ(handled->value("pid", 0l), std::stol(ready[1])) << handled->dump();
  EXPECT_EQ(handled->value("stream", ""), "stderr") << handled->dump();
}

// ---- a worker that floods ------------------------------------------------------

// rogue_worker flood: a 1 MiB line, binary garbage, then a marker line, and
// then it becomes herd-worker.
std::vector<std::string> flood_args() {
  return {"--exec", kRoguePath, "--", "flood", kWorkerPath};
}

TEST(WorkerLogs, HugeLineIsCutAndMarkedAndTheMasterKeepsServing) {
  std::optional<Cluster> cluster = start_cluster(1, flood_args());
  ASSERT_TRUE(cluster);
  HerdProcess& herd = *cluster->herd;

  std::optional<LineMatch> cut = herd.wait_for_line(
      std::regex(R"(\[worker 1 slot 0 pid \d+ stdout\] (x+) \[cut at 16384 bytes\]$)"));
  ASSERT_TRUE(cut) << "no cut line in the log";
  EXPECT_EQ((*cut)[1].size(), kMaxLineBytes);
  std::optional<LineMatch> after = herd.wait_for_line(
      std::regex(R"(\[worker 1 slot 0 pid \d+ stdout\] rogue: after the flood$)"), kLogTimeout,
      cut->index + 1);
  ASSERT_TRUE(after) << "the line after the flood was lost";

  HttpReadResult result = http_get(cluster->port, "/");
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.responses.at(0).status, 200u);
  EXPECT_TRUE(pid_alive(herd.pid()));
  EXPECT_FALSE(herd.wait_for_line(std::regex(R"(Worker \d+ died)"), Milliseconds{0}));
}

TEST(WorkerLogs, BinaryGarbageAndHugeLinesKeepTheJsonLogValid) {
  std::optional<Cluster> cluster = start_cluster(1, [] {
    std::vector<std::string> args{"--log-format", "json"};
    for (const std::string& arg : flood_args()) args.push_back(arg);
    return args;
  }());
  ASSERT_TRUE(cluster);
  HerdProcess& herd = *cluster->herd;
  ASSERT_TRUE(herd.wait_for_line(std::regex("rogue: after the flood")));
  ASSERT_TRUE(http_get(cluster->port, "/").ok());

  int cut_lines = 0;
  bool saw_garbage = false;
  for (const std::string& line : herd.lines()) {
    json record = json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(record.is_object()) << "not a JSON object: " << line.substr(0, 200);
    if (record.value("stream", "") != "stdout") continue;
    std::string message = record.value("msg", "");
    if (record.value("cut", false)) {
      ++cut_lines;
      EXPECT_EQ(message, std::string(kMaxLineBytes, 'x'));
    } else if (message.find("\xef\xbf\xbd") != std::string::npos) {
      saw_garbage = true;  // invalid UTF-8 became U+FFFD
      EXPECT_NE(message.find(std::string("\x01\x02\x03", 3)), std::string::npos);
    }
  }
  EXPECT_EQ(cut_lines, 1);
  EXPECT_TRUE(saw_garbage) << "no line with replaced garbage";
}

// ---- a dead worker's last lines ------------------------------------------------

// rogue_worker last-words, from tests/e2e/rogue_worker.cpp.
const std::vector<std::pair<std::string, std::string>> kLastWords{
    {"stdout", "rogue: starting up"},
    {"stderr", "rogue: warning: something is wrong"},
    {"stdout", "rogue: still trying"},
    {"stderr", "rogue: fatal: giving up"},
};

// The lines of `stream` in kLastWords, in order.
std::vector<std::string> last_words_of(const std::string& stream) {
  std::vector<std::string> lines;
  for (const auto& [from, line] : kLastWords) {
    if (from == stream) lines.push_back(line);
  }
  return lines;
}

// Order is kept within each stream; between the two pipes, the master reads
// whichever it reads first.
void expect_last_words(const json& lines) {
  ASSERT_TRUE(lines.is_array()) << lines.dump();
  ASSERT_EQ(lines.size(), kLastWords.size()) << lines.dump();
  std::map<std::string, std::vector<std::string>> by_stream;
  for (const json& line : lines) {
    EXPECT_TRUE(line.contains("time") && line["time"].is_number()) << line.dump();
    EXPECT_FALSE(line.contains("cut")) << line.dump();
    by_stream[line.value("stream", "")].push_back(line.value("line", ""));
  }
  EXPECT_EQ(by_stream["stdout"], last_words_of("stdout")) << lines.dump();
  EXPECT_EQ(by_stream["stderr"], last_words_of("stderr")) << lines.dump();
}

TEST(WorkerLogs, StatsShowsTheLastLinesOfAWorkerThatDied) {
  std::optional<Cluster> cluster =
      start_cluster(1, {"--exec", kRoguePath, "--", "last-words", kWorkerPath});
  ASSERT_TRUE(cluster);
  HerdProcess& herd = *cluster->herd;
  const LineMatch& first = cluster->ready.at(0);
  ASSERT_EQ(first[2], "1") << first.line;
  const std::string dead_pid = first[1];

  std::optional<LineMatch> died = herd.wait_for_line(
      std::regex("Worker " + dead_pid + R"( died \(code 3\))"), kLogTimeout, first.index);
  ASSERT_TRUE(died) << herd.output();
  ASSERT_TRUE(herd.wait_for_line(std::regex(R"(Worker (\d+) ready \(id 2, slot 0\))")))
      << herd.output();
  // Its lines were logged, the unfinished last one included, before its death.
  std::optional<LineMatch> last = herd.wait_for_line(
      std::regex(R"(\[worker 1 slot 0 pid )" + dead_pid + R"( stderr\] rogue: fatal: giving up$)"));
  ASSERT_TRUE(last) << herd.output();
  EXPECT_LT(last->index, died->index);

  std::string path = control_path(*cluster);
  std::optional<json> dead = control_request(path, {{"cmd", "stats"}, {"id", 1}});
  ASSERT_TRUE(dead);
  ASSERT_EQ(dead->value("ok", false), true) << dead->dump();
  const json& record = dead->at("workers").at(0);
  EXPECT_EQ(record.value("id", 0), 1) << record.dump();
  EXPECT_EQ(record.value("state", ""), "exited") << record.dump();
  EXPECT_EQ(record.value("pid", 0l), std::stol(dead_pid)) << record.dump();
  EXPECT_EQ(record.at("exit"), json({{"code", 3}, {"signal", nullptr}})) << record.dump();
  expect_last_words(record.at("last_lines"));

  // Its successor's stats name it as the slot's last exit, with its lines.
  std::optional<json> successor = control_request(path, {{"cmd", "stats"}, {"id", 2}});
  ASSERT_TRUE(successor);
  const json& current = successor->at("workers").at(0);
  EXPECT_EQ(current.value("state", ""), "ready") << current.dump();
  EXPECT_TRUE(current.at("last_lines").is_array()) << current.dump();
  const json& last_exit = current.at("last_exit");
  EXPECT_EQ(last_exit.value("id", 0), 1) << current.dump();
  EXPECT_EQ(last_exit.value("code", 0), 3) << current.dump();
  expect_last_words(last_exit.at("last_lines"));

  // status keeps its shape: no lines there.
  std::optional<json> status = control_request(path, {{"cmd", "status"}});
  ASSERT_TRUE(status);
  EXPECT_EQ(status->at("workers").at(0).at("last_exit"), json({{"code", 3}, {"signal", nullptr}}));
}

TEST(WorkerLogs, HerdctlStatsShowsADeadWorkersLastLines) {
  std::optional<Cluster> cluster =
      start_cluster(1, {"--exec", kRoguePath, "--", "last-words", kWorkerPath});
  ASSERT_TRUE(cluster);
  ASSERT_TRUE(cluster->herd->wait_for_line(std::regex(R"(Worker \d+ ready \(id 2, slot 0\))")))
      << cluster->herd->output();
  const std::string path = control_path(*cluster);

  HerdProcess as_json({"-s", path, "stats", "1", "--json"}, kHerdctlPath);
  ASSERT_EQ(as_json.wait_exit(kIoTimeout), std::optional<int>(0)) << as_json.output();
  ASSERT_TRUE(as_json.wait_for_line(std::regex("^\\{"))) << as_json.output();
  json reply = json::parse(as_json.output(), nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(reply.is_object()) << as_json.output();
  expect_last_words(reply.at("workers").at(0).at("last_lines"));

  HerdProcess dead({"-s", path, "stats", "1"}, kHerdctlPath);
  ASSERT_EQ(dead.wait_exit(kIoTimeout), std::optional<int>(0)) << dead.output();
  EXPECT_TRUE(dead.wait_for_line(std::regex(R"(^state: +exited$)"))) << dead.output();
  EXPECT_TRUE(dead.wait_for_line(std::regex(R"(^exited: +code 3 at )"))) << dead.output();
  std::optional<LineMatch> heading = dead.wait_for_line(std::regex("^last lines:$"));
  ASSERT_TRUE(heading) << dead.output();
  for (const auto& [stream, text] : kLastWords) {
    std::optional<LineMatch> line = dead.wait_for_line(
        std::regex(R"(^  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}  )" + stream + "  " + text + "$"),
        kIoTimeout, heading->index + 1);
    ASSERT_TRUE(line) << dead.output();
    EXPECT_LE(line->index, heading->index + kLastWords.size()) << dead.output();
  }

  HerdProcess successor({"-s", path, "stats", "2"}, kHerdctlPath);
  ASSERT_EQ(successor.wait_exit(kIoTimeout), std::optional<int>(0)) << successor.output();
  EXPECT_TRUE(
      successor.wait_for_line(std::regex(R"(^last lines of worker 1 \(pid \d+, code 3\):$)")))
      << successor.output();
  EXPECT_TRUE(successor.wait_for_line(std::regex(" stderr  rogue: fatal: giving up$")))
      << successor.output();

  HerdProcess unknown({"-s", path, "stats", "77"}, kHerdctlPath);
  std::optional<int> status = unknown.wait_exit(kIoTimeout);
  ASSERT_TRUE(status && WIFEXITED(*status)) << unknown.output();
  EXPECT_EQ(WEXITSTATUS(*status), 1) << unknown.output();
  EXPECT_TRUE(unknown.wait_for_line(std::regex("no worker with id 77"))) << unknown.output();
}

// ---- --log-file ------------------------------------------------------------------

TEST(LogFile, MasterAndWorkerLinesGoToTheFileCreated0640) {
  std::optional<LoggingToFile> master = start_logging_to_file();
  ASSERT_TRUE(master);

  ASSERT_TRUE(http_get(master->port, "/").ok());
  std::string text;
  ASSERT_TRUE(wait_for_file_match(master->log_file, std::regex("Request handled by worker"), text))
      << text;

  struct stat info {};
  ASSERT_EQ(::stat(master->log_file.c_str(), &info), 0);
  mode_t mask = ::umask(0);
  ::umask(mask);
  EXPECT_EQ(info.st_mode & 0777, 0640 & ~mask);
  EXPECT_TRUE(std::regex_search(text, std::regex(R"(\[master\] info: Master \d+ is running)")));
  EXPECT_TRUE(std::regex_search(
      text, std::regex(R"(\[worker 1 slot 0 pid \d+ stderr\] debug: Request handled by worker 1)")))
      << text;
  EXPECT_EQ(master->herd->output(), "") << "the master wrote to stderr despite --log-file";
}

TEST(LogFile, Sigusr1ReopensTheFileAtItsPath) {
  std::optional<LoggingToFile> master = start_logging_to_file();
  ASSERT_TRUE(master);
  const std::regex handled("Request handled by worker");
  std::string text;
  ASSERT_TRUE(http_get(master->port, "/").ok());
  ASSERT_TRUE(wait_for_file_match(master->log_file, handled, text)) << text;

  // What logrotate does: rename, then tell the master.
  const std::string rotated = master->log_file + ".1";
  ASSERT_EQ(std::rename(master->log_file.c_str(), rotated.c_str()), 0);
  ASSERT_TRUE(master->herd->send_signal(SIGUSR1));
  ASSERT_TRUE(wait_for_file_match(master->log_file, std::regex("reopened log file"), text))
      << "no new file at the path:\n"
      << read_file(rotated);

  ASSERT_TRUE(http_get(master->port, "/").ok());
  ASSERT_TRUE(wait_for_file_match(master->log_file, handled, text))
      << "a worker's line after the reopen is not in the new file:\n"
      << text << "\nold file:\n"
      << read_file(rotated);
  std::string old_text = read_file(rotated);
  EXPECT_EQ(count_matches(old_text, handled), 1u) << old_text;
  EXPECT_EQ(count_matches(text, handled), 1u) << text;
  EXPECT_EQ(old_text.find("reopened"), std::string::npos) << old_text;

  ASSERT_TRUE(master->herd->send_signal(SIGTERM));
  std::optional<int> status = master->herd->wait_exit(kStartTimeout);
  ASSERT_TRUE(status);
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << describe_status(*status);
  EXPECT_TRUE(std::regex_search(read_file(master->log_file), std::regex(R"(Master \d+ stopped)")));
}

TEST(LogFile, FailedReopenLogsWhyAndKeepsTheOldFile) {
  std::optional<LoggingToFile> master = start_logging_to_file();
  ASSERT_TRUE(master);
  const std::string rotated = master->log_file + ".1";
  ASSERT_EQ(std::rename(master->log_file.c_str(), rotated.c_str()), 0);
  // A directory in the way: open() fails even for root.
  ASSERT_EQ(::mkdir(master->log_file.c_str(), 0700), 0);

  ASSERT_TRUE(master->herd->send_signal(SIGUSR1));
  std::string text;
  ASSERT_TRUE(wait_for_file_match(
      rotated, std::regex("SIGUSR1: cannot open log file " + master->log_file + ": Is a directory"),
      text))
      << text;
  ASSERT_TRUE(http_get(master->port, "/").ok());
  EXPECT_TRUE(wait_for_file_match(rotated, std::regex("Request handled by worker"), text)) << text;
  EXPECT_TRUE(pid_alive(master->herd->pid()));
  ::rmdir(master->log_file.c_str());
}

TEST(LogFile, UnopenableFileIsAClearErrorAndExit2) {
  TempDir dir;
  const std::string missing = dir.path() + "/no/such/dir/herd.log";
  HerdProcess herd({"--host", "127.0.0.1", "--port", "0", "--workers", "1", "--control",
                    dir.path() + "/control.sock", "--log-file", missing});
  ASSERT_GT(herd.pid(), 0) << herd.start_error();

  std::optional<int> status = herd.wait_exit(kStartTimeout);
  ASSERT_TRUE(status) << "herd did not exit";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2) << describe_status(*status);
  EXPECT_TRUE(herd.wait_for_line(
      std::regex("cannot open log file " + missing + ": No such file or directory")))
      << herd.output();
  EXPECT_FALSE(herd.wait_for_line(kListening, Milliseconds{0})) << herd.output();
}

}  // namespace
}  // namespace herd::e2e
