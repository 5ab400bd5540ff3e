#include "proto/worker_env.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace herd::proto {
namespace {

// The "NAME=value" entries as a lookup, the way the worker's getenv sees them.
std::map<std::string, std::string> as_variables(const std::vector<std::string>& entries) {
  std::map<std::string, std::string> variables;
  for (const std::string& entry : entries) {
    std::size_t equals = entry.find('=');
    variables[entry.substr(0, equals)] = entry.substr(equals + 1);
  }
  return variables;
}

WorkerEnv read_from(const std::map<std::string, std::string>& variables) {
  return read_worker_env([&variables](const char* name) -> const char* {
    auto found = variables.find(name);
    return found == variables.end() ? nullptr : found->second.c_str();
  });
}

TEST(WorkerEnvTest, WhatTheMasterWritesTheWorkerReadsBack) {
  WorkerEnv env;
  env.channel_fd = 3;
  env.listen_fd = 4;
  env.worker_id = 12;
  env.slot = 1;
  env.heartbeat_interval_ms = 250;
  env.handoff_window = 8;
  env.max_connections = 1000;
  env.log_level = "debug";
  env.log_format = "json";
  EXPECT_EQ(read_from(as_variables(to_environment(env))), env);
}

TEST(WorkerEnvTest, EveryVariableIsNamedHerd) {
  WorkerEnv env;
  env.channel_fd = 3;
  env.listen_fd = 4;
  std::vector<std::string> entries = to_environment(env);
  EXPECT_EQ(entries.size(), 9u);
  for (const std::string& entry : entries) {
    EXPECT_TRUE(entry.starts_with(kWorkerEnvPrefix)) << entry;
  }
  EXPECT_EQ(as_variables(entries).at("HERD_CHANNEL_FD"), "3");
  EXPECT_EQ(as_variables(entries).at("HERD_LISTEN_FD"), "4");
}

TEST(WorkerEnvTest, MissingDescriptorsAreNotWritten) {
  std::map<std::string, std::string> variables = as_variables(to_environment(WorkerEnv{}));
  EXPECT_EQ(variables.count("HERD_CHANNEL_FD"), 0u);
  EXPECT_EQ(variables.count("HERD_LISTEN_FD"), 0u);
}

TEST(WorkerEnvTest, NothingSetGivesTheDefaults) {
  EXPECT_EQ(read_from({}), WorkerEnv{});
}

TEST(WorkerEnvTest, ValuesThatAreNoNumberKeepTheirDefaults) {
  WorkerEnv env = read_from({{"HERD_CHANNEL_FD", "3x"},
                             {"HERD_LISTEN_FD", "-4"},
                             {"HERD_WORKER_ID", ""},
                             {"HERD_HEARTBEAT_INTERVAL_MS", "fast"},
                             {"HERD_MAX_CONNECTIONS", "99999999999999999999999"},
                             {"HERD_LOG_LEVEL", ""}});
  EXPECT_EQ(env, WorkerEnv{});
}

TEST(WorkerEnvTest, AHandoffWindowOfZeroIsOne) {
  EXPECT_EQ(read_from({{"HERD_HANDOFF_WINDOW", "0"}}).handoff_window, 1u);
}

}  // namespace
}  // namespace herd::proto
