// The Node.js program herd grew from: a cluster primary forks N workers, each
// an Express app answering GET / with "Hello World!". Node's default cluster
// scheduling on Linux is SCHED_RR: the primary accepts every connection and
// hands it round-robin to a worker over IPC, which is what herd does in C++.
// A worker that exits is replaced.
//
// Unlike the original, N, the port and the address come from the environment
// (WORKERS, PORT, HOST) so that bench/run.sh can drive it; it binds to
// 127.0.0.1 by default.
const cluster = require('cluster');
const os = require('os');

const numWorkers = parseInt(process.env.WORKERS || os.cpus().length, 10);
const port = parseInt(process.env.PORT || 3000, 10);
const host = process.env.HOST || '127.0.0.1';

if (cluster.isPrimary) {
  for (let i = 0; i < numWorkers; i++) {
    cluster.fork();
  }
  cluster.on('exit', (worker, code, signal) => {
    console.log(`worker ${worker.process.pid} died (${signal || code}); respawning`);
    cluster.fork();
  });
} else {
  const express = require('express');
  const app = express();
  app.get('/', (req, res) => res.send('Hello World!'));
  app.listen(port, host);
}
