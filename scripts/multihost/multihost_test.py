#!/usr/bin/env python3
"""herd on several hosts behind a load balancer, on one machine.

Each test builds its own small network with scripts/multihost/netns.sh (a
balancer namespace and three host namespaces joined by veth pairs), runs one
real herd per host namespace and HAProxy (deploy/haproxy.cfg) or nginx
(deploy/nginx.conf) in the balancer's, keeps a paced load on the balancer
(scripts/multihost/load.py, every request accounted for) while it stops,
reloads, kills or restarts hosts, and tears it all down. Every wait is
bounded; the figures of each run are printed and written as JSON to
--report-dir.

Usage: multihost_test.py --bin-dir BUILD/bin [--report-dir DIR] [unittest args]
Exits 77 (ctest's "skipped") with the reason when it cannot run here: not
root, no network namespaces, no haproxy or nginx.
"""

import csv
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from datetime import datetime

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(os.path.dirname(HERE))
NETNS_SCRIPT = os.path.join(HERE, "netns.sh")
LOAD_SCRIPT = os.path.join(HERE, "load.py")
HAPROXY_CONFIG = os.path.join(SOURCE_DIR, "deploy", "haproxy.cfg")
NGINX_CONFIG = os.path.join(SOURCE_DIR, "deploy", "nginx.conf")
SKIP_EXIT_CODE = 77

HOSTS = 3
WORKERS_PER_HOST = 2  # so a reload replaces one slot after another
HTTP_PORT = 3000
ADMIN_PORT = 9090
BALANCER_PORT = 80
# As in deploy/haproxy.cfg: checks every 500 ms, out after 2 failures, back
# after 2 successes. The shutdown delay must outlast fall x inter plus a check
# timeout (500 ms), with margin.
CHECK_INTERVAL_S = 0.5
CHECK_FALL = 2
CHECK_RISE = 2
SHUTDOWN_DELAY_MS = 3000
KILL_TIMEOUT_MS = 5000
# Rolling reloads: every host in turn, this many times over.
RELOAD_ROUNDS = 3
# Load: 6 keep-alive and 2 new-connection clients, 100 requests/s each.
KEEPALIVE_CLIENTS = 6
FRESH_CLIENTS = 2
CLIENT_RATE = 100

START_TIMEOUT_S = 20.0  # generous for the ASan build on a loaded machine
STEP_TIMEOUT_S = 30.0

bin_dir = None
report_dir = None


def wait_until(predicate, timeout, interval=0.02):
    """Polls predicate until it returns something truthy or timeout passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def run(command, timeout=STEP_TIMEOUT_S):
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def namespace_pids(namespace):
    result = run(["ip", "netns", "pids", namespace])
    return [int(pid) for pid in result.stdout.split()] if result.returncode == 0 else []


def process_gone(pid):
    """True once `pid` has exited (a zombie counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone before, or while, it was read
        return True


def log_time(line):
    """Wall-clock time of a herd text log line ("2026-12-03 08:13:01.106 ...")."""
    match = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})", line)
    return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp() if match else None


class Process:
    """A process the test started inside a namespace, owned by its pid."""

    def __init__(self, namespace, command, log_path):
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.popen = subprocess.Popen(["ip", "netns", "exec", namespace] + command,
                                          stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT)

    @property
    def pid(self):
        return self.popen.pid

    def running(self):
        return self.popen.poll() is None

    def wait(self, timeout):
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.running():
            os.kill(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=STEP_TIMEOUT_S)

    def log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as log:
            return log.read()


class Herd:
    """One host: a herd master (and its workers) in the host's namespace."""

    def __init__(self, index, namespace, work_dir):
        self.index = index
        self.name = f"host{index}"
        self.namespace = namespace
        self.control = os.path.join(work_dir, f"{self.name}.sock")
        self.log_path = os.path.join(work_dir, f"{self.name}.log")
        self.process = None

    def start(self):
        # Each host has its own network stack, so every one listens on the
        # same ports, as real machines would; the control sockets share the
        # file system, so each gets its own path.
        self.process = Process(self.namespace, [
            os.path.join(bin_dir, "herd"), "--host", "0.0.0.0", "--port", str(HTTP_PORT),
            "--workers", str(WORKERS_PER_HOST), "--admin", f"0.0.0.0:{ADMIN_PORT}", "--control", self.control,
            "--shutdown-delay", str(SHUTDOWN_DELAY_MS), "--kill-timeout", str(KILL_TIMEOUT_MS),
            "--heartbeat-interval", "200"], self.log_path)

    def herdctl(self, *args, timeout=STEP_TIMEOUT_S):
        return run([os.path.join(bin_dir, "herdctl"), "-s", self.control] + list(args),
                   timeout=timeout)

    def query(self, *args):
        result = self.herdctl(*args, "--json", timeout=5)
        return json.loads(result.stdout) if result.returncode == 0 else None

    def ready_workers(self):
        status = self.query("status")
        if status is None:
            return []
        return [worker for worker in status["workers"] if worker["state"] == "ready"]

    def wait_ready(self):
        return wait_until(lambda: self.process.running() and
                          len(self.ready_workers()) == WORKERS_PER_HOST,
                          START_TIMEOUT_S, interval=0.05)

    def reload(self):
        """`herdctl reload --wait`, then waits for the replaced workers to
        finish their drain and exit. Returns (milliseconds until the reload
        was done, milliseconds until the last old worker exited)."""
        before = {worker["pid"] for worker in self.ready_workers()}
        started = time.monotonic()
        reload = self.herdctl("reload", "--wait", timeout=60)
        if reload.returncode != 0:
            raise AssertionError(f"{self.name}: reload failed: {reload.stdout}{reload.stderr}")
        done = time.monotonic()
        after = {worker["pid"] for worker in self.ready_workers()}
        if len(after) != WORKERS_PER_HOST or before & after:
            raise AssertionError(f"{self.name}: workers {before} were not replaced: {after}")
        if not wait_until(lambda: all(process_gone(pid) for pid in before), STEP_TIMEOUT_S):
            raise AssertionError(f"{self.name}: old workers {before} never exited")
        return round((done - started) * 1000), round((time.monotonic() - started) * 1000)

    def requests(self):
        """Requests answered by this master's workers, as of their last heartbeats."""
        stats = self.query("stats")
        return stats["total"]["requests"] if stats else None

    def log_line_time(self, pattern):
        for line in self.process.log().splitlines():
            if re.search(pattern, line):
                return log_time(line)
        return None


class Haproxy:
    """HAProxy with deploy/haproxy.cfg, and a thread recording every server
    state change it reports on its stats socket."""

    def __init__(self, namespace, work_dir):
        self.stats_socket = os.path.join(work_dir, "haproxy.sock")
        extra = os.path.join(work_dir, "haproxy-test.cfg")
        with open(extra, "w", encoding="utf-8") as config:
            config.write(f"global\n    stats socket {self.stats_socket} mode 600 level admin\n")
        self.process = Process(namespace, ["haproxy", "-db", "-f", HAPROXY_CONFIG, "-f", extra],
                               os.path.join(work_dir, "haproxy.log"))
        self.lock = threading.Lock()
        self.history = {}  # server -> [(monotonic time, status, check status)]
        self.stop_monitor = threading.Event()
        self.monitor = threading.Thread(target=self.watch, daemon=True)
        self.monitor.start()

    def show_stat(self):
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stats:
                stats.settimeout(2)
                stats.connect(self.stats_socket)
                stats.sendall(b"show stat\n")
                chunks = []
                while chunk := stats.recv(65536):
                    chunks.append(chunk)
        except OSError:
            return None
        text = b"".join(chunks).decode().lstrip("# ")
        rows = csv.DictReader(io.StringIO(text))
        return {row["svname"]: row for row in rows
                if row["pxname"] == "herd" and row["svname"] not in ("BACKEND", "FRONTEND")}

    def watch(self):
        while not self.stop_monitor.is_set():
            servers = self.show_stat()
            now = time.monotonic()
            if servers:
                with self.lock:
                    for name, row in servers.items():
                        entry = (now, row["status"], f'{row["check_status"]} {row["check_code"]}'.strip())
                        past = self.history.setdefault(name, [])
                        if not past or past[-1][1] != entry[1]:
                            past.append(entry)
            self.stop_monitor.wait(0.025)

    def status(self, server):
        with self.lock:
            past = self.history.get(server)
            return past[-1][1] if past else None

    def wait_status(self, server, status, timeout, since=0.0):
        """When `server` was first seen in `status` (exactly) at or after `since`."""
        def seen():
            with self.lock:
                for entry in self.history.get(server, []):
                    if entry[0] >= since and entry[1] == status:
                        return entry
            return None
        return wait_until(seen, timeout)

    def transitions(self, since):
        with self.lock:
            return {server: [entry for entry in past if entry[0] >= since]
                    for server, past in self.history.items()}

    def stop(self):
        self.stop_monitor.set()
        self.monitor.join(timeout=5)
        self.process.kill()


class Nginx:
    """nginx with deploy/nginx.conf; only its pid file and error log differ."""

    def __init__(self, namespace, work_dir):
        self.process = Process(namespace, [
            "nginx", "-p", work_dir, "-c", NGINX_CONFIG, "-e", os.path.join(work_dir, "nginx-error.log"),
            "-g", f"daemon off; master_process on; pid {os.path.join(work_dir, 'nginx.pid')};"],
            os.path.join(work_dir, "nginx.log"))

    def stop(self):
        # nginx's workers outlive a SIGKILLed master: ask for its fast
        # shutdown (SIGTERM), which takes the workers with it.
        if self.process.running():
            os.kill(self.process.pid, signal.SIGTERM)
            if self.process.wait(10) is None:
                self.process.kill()


class Load:
    """scripts/multihost/load.py inside the balancer's namespace."""

    def __init__(self, namespace, work_dir):
        self.report_path = os.path.join(work_dir, "load.json")
        self.started_path = os.path.join(work_dir, "load.started")
        self.process = Process(namespace, [
            sys.executable, LOAD_SCRIPT, "--host", "127.0.0.1", "--port", str(BALANCER_PORT),
            "--keepalive", str(KEEPALIVE_CLIENTS), "--fresh", str(FRESH_CLIENTS),
            "--rate", str(CLIENT_RATE), "--max-seconds", "240", "--out", self.report_path,
            "--started-file", self.started_path], os.path.join(work_dir, "load.log"))

    def wait_started(self):
        return wait_until(lambda: os.path.exists(self.started_path), START_TIMEOUT_S)

    def stop(self):
        """Stops the clients and returns their report."""
        if self.process.running():
            os.kill(self.process.pid, signal.SIGTERM)
        code = self.process.wait(STEP_TIMEOUT_S)
        if code != 0:
            raise AssertionError(f"load.py exited {code}:\n{self.process.log()}")
        with open(self.report_path, encoding="utf-8") as report:
            return json.load(report)


class MultiHostCase(unittest.TestCase):
    """One fresh topology per test: three herds and a balancer, all torn down."""

    balancer_kind = None

    def setUp(self):
        self.work_dir = tempfile.mkdtemp(prefix="herd-multihost-")
        self.prefix = f"herdmh{os.getpid()}"
        self.balancer_namespace = f"{self.prefix}-lb"
        self.figures = {}
        self.load = None
        self.balancer = None
        self.hosts = []
        up = run([NETNS_SCRIPT, "up", self.prefix, str(HOSTS)])
        if up.returncode != 0:
            run([NETNS_SCRIPT, "down", self.prefix, str(HOSTS)])
            self.fail(f"netns.sh up failed: {up.stderr}")
        self.addCleanup(self.tear_down_topology)
        self.hosts = [Herd(i, f"{self.prefix}-h{i}", self.work_dir) for i in range(1, HOSTS + 1)]
        for host in self.hosts:
            host.start()
        for host in self.hosts:
            self.assertTrue(host.wait_ready(), f"{host.name} never had a ready worker:\n"
                            f"{host.process.log()}")
        if self.balancer_kind == "haproxy":
            self.balancer = Haproxy(self.balancer_namespace, self.work_dir)
            for host in self.hosts:
                self.assertTrue(wait_until(lambda h=host: self.balancer.status(h.name) == "UP" or
                                           not self.balancer.process.running(), START_TIMEOUT_S)
                                and self.balancer.process.running(),
                                f"HAProxy never saw {host.name} UP:\n{self.balancer.process.log()}")
        else:
            self.balancer = Nginx(self.balancer_namespace, self.work_dir)
            self.assertTrue(wait_until(self.balancer_answers, START_TIMEOUT_S),
                            f"nginx never answered:\n{self.balancer.process.log()}")

    def balancer_answers(self):
        probe = run(["ip", "netns", "exec", self.balancer_namespace, sys.executable, "-c",
                     "import http.client as h; c = h.HTTPConnection('127.0.0.1', 80, timeout=1); "
                     "c.request('GET', '/'); print(c.getresponse().status)"], timeout=10)
        return probe.stdout.strip() == "200"

    def tear_down_topology(self):
        if self.load is not None and self.load.process.running():
            self.load.process.kill()
        if self.balancer is not None:
            self.balancer.stop()
        for host in self.hosts:
            if host.process is not None:
                host.process.kill()
        # The workers follow their master (PR_SET_PDEATHSIG); wait for every
        # process in the test's own namespaces to be gone before removing them.
        namespaces = [self.balancer_namespace] + [host.namespace for host in self.hosts]
        if not wait_until(lambda: not any(namespace_pids(ns) for ns in namespaces), 10):
            for namespace in namespaces:
                for pid in namespace_pids(namespace):  # only the test's own children live here
                    os.kill(pid, signal.SIGKILL)
        down = run([NETNS_SCRIPT, "down", self.prefix, str(HOSTS)])
        if down.returncode != 0:
            print(f"netns.sh down: {down.stderr}", file=sys.stderr)
        self.write_report()
        shutil.rmtree(self.work_dir, ignore_errors=True)

    def write_report(self):
        if not self.figures:
            return
        print(f"\n{self.id()}: {json.dumps(self.figures, indent=1)}")
        if report_dir:
            os.makedirs(report_dir, exist_ok=True)
            path = os.path.join(report_dir, self.id().split(".", 1)[1] + ".json")
            with open(path, "w", encoding="utf-8") as report:
                json.dump(self.figures, report, indent=1)

    # ---- steps shared by the scenarios ----

    def start_load(self):
        self.load = Load(self.balancer_namespace, self.work_dir)
        self.assertTrue(self.load.wait_started(), f"no request succeeded:\n{self.load.process.log()}")
        # Round robin reaches every host before anything happens to one.
        for host in self.hosts:
            self.assertTrue(wait_until(lambda h=host: (h.requests() or 0) > 0, START_TIMEOUT_S),
                            f"{host.name} was never sent a request")

    def stop_load(self, settle_s=1.0):
        """Lets the load run `settle_s` more seconds, then stops it and checks it ran."""
        time.sleep(settle_s)  # load keeps flowing: requests after the event are the point
        report = self.load.stop()
        self.assertGreater(report["ok"], 0)
        self.figures["load"] = {
            "requests": report["ok"] + report["failed"], "failed": report["failed"],
            "seconds": round(report["stopped_at"] - report["started_at"], 1),
            "latency_ms": report["latency_ms"],
            "failures": report["failures"][:20],
        }
        return report

    def assert_no_failed_request(self, report):
        self.assertEqual(report["failed"], 0, f"failed requests: {report['failures'][:20]}")


class HaproxyInFront(MultiHostCase):
    balancer_kind = "haproxy"

    def test_stopped_host_is_taken_out_then_drains_without_a_failed_request(self):
        self.start_load()
        host = self.hosts[1]
        stop_wall, stop_at = time.time(), time.monotonic()
        stop = host.herdctl("stop")
        self.assertEqual(stop.returncode, 0, stop.stderr)
        down = self.balancer.wait_status(host.name, "DOWN", SHUTDOWN_DELAY_MS / 1000 + 10, stop_at)
        self.assertTrue(down, f"HAProxy never took {host.name} out: {self.balancer.transitions(stop_at)}")
        code = host.process.wait(SHUTDOWN_DELAY_MS / 1000 + KILL_TIMEOUT_MS / 1000 + 10)
        exited_at = time.monotonic()
        self.assertEqual(code, 0, host.process.log())
        drain_wall = host.log_line_time(r"Shutting down: draining")
        self.assertIsNotNone(drain_wall, host.process.log())
        report = self.stop_load()

        self.figures.update({
            "taken_out_after_ms": round((down[0] - stop_at) * 1000),
            "check_when_taken_out": down[2],
            "drain_began_after_ms": round((drain_wall - stop_wall) * 1000),
            "exited_after_ms": round((exited_at - stop_at) * 1000),
        })
        self.assertLess(down[0] - stop_at, SHUTDOWN_DELAY_MS / 1000,
                        "HAProxy took the host out only after it had stopped accepting")
        self.assertIn("503", down[2], "taken out for another reason than /readyz's 503")
        self.assertGreater(report["last_ok_at"], exited_at, "the others kept serving")
        self.assert_no_failed_request(report)

    def test_rolling_reload_of_every_host_fails_no_request(self):
        self.start_load()
        began_at = time.monotonic()
        reloads = [host.reload() for _ in range(RELOAD_ROUNDS) for host in self.hosts]
        report = self.stop_load()

        self.figures["reload_done_ms, old_worker_gone_ms"] = reloads
        changes = {server: past for server, past in self.balancer.transitions(began_at).items() if past}
        self.assertEqual(changes, {}, "no host left the balancer during the reloads")
        self.assert_no_failed_request(report)

    def test_killed_master_is_routed_around_and_taken_back_when_restarted(self):
        self.start_load()
        host = self.hosts[1]
        killed_at = time.monotonic()
        os.kill(host.process.pid, signal.SIGKILL)
        self.assertEqual(host.process.wait(STEP_TIMEOUT_S), -signal.SIGKILL)
        down = self.balancer.wait_status(host.name, "DOWN", STEP_TIMEOUT_S, killed_at)
        self.assertTrue(down, f"HAProxy never took {host.name} out")
        # Its workers follow it (PR_SET_PDEATHSIG, channel EOF).
        self.assertTrue(wait_until(lambda: not namespace_pids(host.namespace), 10),
                        f"{host.name} still runs {namespace_pids(host.namespace)}")
        workers_gone_at = time.monotonic()
        time.sleep(1.0)  # load keeps flowing through the two hosts left
        restarted_at = time.monotonic()
        host.start()
        self.assertTrue(host.wait_ready(), host.process.log())
        up = self.balancer.wait_status(host.name, "UP", STEP_TIMEOUT_S, restarted_at)
        self.assertTrue(up, f"HAProxy never took {host.name} back")
        self.assertTrue(wait_until(lambda: (host.requests() or 0) > 0, STEP_TIMEOUT_S),
                        f"{host.name} got no request after it was taken back")
        served_after_rejoin = host.requests()
        report = self.stop_load()

        failures_at = [failure["t"] for failure in report["failures"]]
        self.figures.update({
            "taken_out_after_ms": round((down[0] - killed_at) * 1000),
            "check_when_taken_out": down[2],
            "workers_gone_after_ms": round((workers_gone_at - killed_at) * 1000),
            "failed_while_dead": sum(1 for t in failures_at if t < restarted_at),
            "taken_back_after_ms": round((up[0] - restarted_at) * 1000),
            "served_by_it_after_rejoin": served_after_rejoin,
        })
        # The bound: a client has at most one request in flight, so at most
        # one per client can be caught by the kill; every later request is
        # either sent to a live host or refused and retried on one.
        self.assertLessEqual(report["failed"], KEEPALIVE_CLIENTS + FRESH_CLIENTS, report["failures"])
        self.assertTrue(all(t < down[0] for t in failures_at),
                        "a request failed after HAProxy had taken the host out")
        self.assertEqual([t for t in failures_at if t >= restarted_at], [],
                         "a request failed while the host rejoined")


class NginxInFront(MultiHostCase):
    balancer_kind = "nginx"

    def test_stopped_host_drains_without_a_failed_request(self):
        self.start_load()
        host = self.hosts[1]
        stop_at = time.monotonic()
        stop = host.herdctl("stop")
        self.assertEqual(stop.returncode, 0, stop.stderr)
        code = host.process.wait(SHUTDOWN_DELAY_MS / 1000 + KILL_TIMEOUT_MS / 1000 + 10)
        exited_at = time.monotonic()
        self.assertEqual(code, 0, host.process.log())
        report = self.stop_load()

        self.figures["exited_after_ms"] = round((exited_at - stop_at) * 1000)
        self.assertGreater(report["last_ok_at"], exited_at, "the others kept serving")
        self.assert_no_failed_request(report)

    def test_rolling_reload_of_every_host_fails_no_request(self):
        self.start_load()
        self.figures["reload_done_ms, old_worker_gone_ms"] = [
            host.reload() for _ in range(RELOAD_ROUNDS) for host in self.hosts]
        report = self.stop_load()
        self.assert_no_failed_request(report)


def why_it_cannot_run():
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    for program in ("ip", "haproxy", "nginx"):
        if shutil.which(program) is None:
            return f"{program} is not installed (scripts/setup.sh installs it)"
    probe = f"herdmhprobe{os.getpid()}"
    added = run(["ip", "netns", "add", probe])
    if added.returncode != 0:
        return f"cannot create a network namespace: {added.stderr.strip()}"
    run(["ip", "netns", "del", probe])
    return None


def main():
    global bin_dir, report_dir
    arguments = sys.argv[1:]
    while arguments and arguments[0] in ("--bin-dir", "--report-dir"):
        if len(arguments) < 2:
            sys.exit(f"usage: {sys.argv[0]} --bin-dir BUILD/bin [--report-dir DIR] [tests...]")
        if arguments[0] == "--bin-dir":
            bin_dir = os.path.abspath(arguments[1])
        else:
            report_dir = os.path.abspath(arguments[1])
        arguments = arguments[2:]
    if bin_dir is None or not os.access(os.path.join(bin_dir, "herd"), os.X_OK):
        sys.exit(f"usage: {sys.argv[0]} --bin-dir BUILD/bin [--report-dir DIR] [tests...] "
                 "(BUILD/bin must hold herd and herdctl)")
    reason = why_it_cannot_run()
    if reason:
        print(f"SKIP: multi-host test: {reason}")
        sys.exit(SKIP_EXIT_CODE)
    unittest.main(argv=[sys.argv[0], "-v"] + arguments)


if __name__ == "__main__":
    main()
