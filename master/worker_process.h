// Starting a worker process: fork + exec with its channel end at fd 3, the way
// Node hands NODE_CHANNEL_FD to a cluster worker. Exec (not just fork) means a
// reload picks up a newly deployed worker binary.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "master/credentials.h"
#include "master/dispatcher.h"
#include "proto/worker_env.h"

namespace herd {

// The descriptor number the worker finds its channel on (HERD_CHANNEL_FD).
inline constexpr int kWorkerChannelFd = 3;
// With --schedule none, where the worker finds the listening socket
// (HERD_LISTEN_FD).
inline constexpr int kWorkerListenFd = 4;

enum class Schedule { kRoundRobin, kNone };

struct WorkerCommand {
  std::string program;                     // path to exec
  std::vector<std::string> args;           // after argv[0]
  proto::WorkerEnv env;                    // what every worker is told; fds, id and slot per worker
  int listen_fd = -1;                      // shared with the worker as fd 4 when >= 0
  std::optional<Credentials> credentials;  // --user/--group: who the worker runs as
};

struct SpawnedWorker {
  pid_t pid = -1;        // -1 on failure
  UniqueFd channel;      // the master's end
  UniqueFd stdout_pipe;  // read ends of the worker's stdout and stderr:
  UniqueFd stderr_pipe;  // O_NONBLOCK and close-on-exec
  std::string error;     // "fork() failed: ..." when pid == -1
};

// Forks and execs one worker. The child gets only its channel (fd 3), the
// listening socket (fd 4) if `command.listen_fd` is set, the master's stdin,
// and pipes to the master as stdout and stderr (blocking on the worker's
// side: a worker that writes faster than the master reads waits rather than
// loses lines). Every other descriptor of the master is close-on-exec. The
// child gets SIGTERM when the master dies (PR_SET_PDEATHSIG), even if exec
// fails. With `command.credentials` the child becomes that user before exec,
// and exits 126 (saying why on its stderr) if it cannot.
SpawnedWorker spawn_worker(const WorkerCommand& command, WorkerId id, std::size_t slot);

}  // namespace herd
