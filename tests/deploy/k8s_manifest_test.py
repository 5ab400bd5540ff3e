#!/usr/bin/python3
"""Keeps deploy/k8s/ true to herd.

Two kinds of checks on the Deployment's herd container:
  - the manifest against itself and against herd's measured figures: probes
    on the port herd's --admin binds, the Service on the port --port binds,
    a grace period that covers preStop + --shutdown-delay + --kill-timeout,
    a readiness probe that notices a stop within the shutdown delay,
    --workers equal to the CPU request, memory for the master and workers;
  - the real herd started with the container's command, args and env
    (binary path mapped to --bin-dir; --host, --port, --admin and --control
    replaced by loopback, an ephemeral port and a temporary socket): the
    probe paths answer 200, and on SIGTERM /readyz turns 503 while GET /
    still answers through the shutdown delay, then herd exits 0 in time.

Usage (Debian's python3 with python3-yaml):
  /usr/bin/python3 tests/deploy/k8s_manifest_test.py --bin-dir build/bin [unittest args]
The bin dir may also come from HERD_BIN_DIR.
"""

import http.client
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

try:
    import yaml
except ImportError:
    sys.exit("PyYAML is missing: apt-get install python3-yaml, and run /usr/bin/python3")

SOURCE_DIR = Path(__file__).resolve().parents[2]
MANIFEST_DIR = SOURCE_DIR / "deploy" / "k8s"

# Peak RSS under load, README "Results" (bench/results/20261125-142645.md):
# the highest figure of any herd row.
MASTER_RSS_MIB = 6.8
WORKER_RSS_MIB = 5.6

# Between herd's SIGKILL of the last worker at --kill-timeout and kubelet's
# SIGKILL at the end of the grace period: the master reaps and exits, and
# kubelet's own timers are not exact.
GRACE_MARGIN_SECONDS = 5

# herd's defaults for the options the checks read (README "Usage").
HERD_DEFAULTS = {"host": "0.0.0.0", "port": "3000", "shutdown-delay": "0",
                 "kill-timeout": "10000", "max-rss": "0"}

# Bounded waits of the live run.
READY_TIMEOUT_SECONDS = 20.0  # start to /readyz 200 (ASan builds start slower)
READYZ_FLIP_SECONDS = 1.0  # SIGTERM to /readyz 503 ("at once")
EXIT_SLACK_SECONDS = 3.0  # after shutdown-delay + kill-timeout
TIMER_GRAIN_SECONDS = 0.02  # libevent's timers: CLOCK_MONOTONIC_COARSE
POLL_SECONDS = 0.05
SERVE_CHECK_SECONDS = 0.25  # between GET / checks during the shutdown delay

BIN_DIR = None  # set by main() from --bin-dir or HERD_BIN_DIR


# ---- the manifest ---------------------------------------------------------


def load_documents():
    """Every non-empty YAML document in deploy/k8s/, with its file name."""
    documents = []
    for path in sorted(MANIFEST_DIR.glob("*.y*ml")):
        with path.open() as file:
            for document in yaml.safe_load_all(file):
                if document is not None:
                    documents.append((path.name, document))
    return documents


def is_herd_command(command):
    return bool(command) and os.path.basename(command[0]) == "herd"


def parse_cpu(quantity):
    """A Kubernetes CPU quantity ("2", 2, "1500m", "0.5") in cores."""
    text = str(quantity)
    if text.endswith("m"):
        return float(text[:-1]) / 1000
    return float(text)


MEMORY_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
                   "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def parse_memory_mib(quantity):
    """A Kubernetes memory quantity ("128Mi", "134217728", "1G") in MiB."""
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(quantity))
    if match is None or (match.group(2) and match.group(2) not in MEMORY_SUFFIXES):
        raise ValueError(f"unsupported memory quantity {quantity!r}")
    return float(match.group(1)) * MEMORY_SUFFIXES.get(match.group(2), 1) / 2**20


class HerdOptions:
    """herd's options as the container gives them: the command line first,
    then HERD_<NAME> variables (CLI11's order), then herd's defaults.

    Every herd option takes one value; arguments after `--` go to the
    workers."""

    def __init__(self, container):
        argv = list(container.get("command", [])[1:]) + list(container.get("args", []))
        self.options = []  # [name, value] in order
        self.worker_args = []
        index = 0
        while index < len(argv):
            token = str(argv[index])
            if token == "--":
                self.worker_args = [str(arg) for arg in argv[index + 1:]]
                break
            if not token.startswith("--"):
                raise ValueError(f"herd argument {token!r} is not an option")
            if "=" in token:
                name, value = token[2:].split("=", 1)
            elif index + 1 < len(argv):
                name, value = token[2:], str(argv[index + 1])
                index += 1
            else:
                raise ValueError(f"herd option {token} has no value")
            self.options.append([name, value])
            index += 1
        self.environment = {}
        for variable in container.get("env", []):
            if "value" in variable:
                self.environment[variable["name"]] = str(variable["value"])
            elif variable["name"].startswith("HERD_"):
                raise ValueError(f"{variable['name']} comes from valueFrom, which this test "
                                 "cannot resolve; give it a value or extend the test")

    def given(self, name):
        """The value the container gives, or None."""
        for option, value in reversed(self.options):
            if option == name:
                return value
        return self.environment.get("HERD_" + name.upper().replace("-", "_"))

    def get(self, name):
        value = self.given(name)
        return HERD_DEFAULTS.get(name) if value is None else value

    def milliseconds(self, name):
        return int(self.get(name))

    def admin_address(self):
        """(host, port) of --admin, or None when it is off."""
        value = self.given("admin")
        if value is None:
            return None
        host, _, port = value.rpartition(":")
        return host.strip("[]"), int(port)


class Manifest:
    """The Deployment running herd, its herd container, and the other
    objects of deploy/k8s/."""

    def __init__(self):
        self.documents = load_documents()
        deployments = [doc for _, doc in self.documents if doc.get("kind") == "Deployment"]
        herd = [(deployment, container) for deployment in deployments
                for container in deployment["spec"]["template"]["spec"]["containers"]
                if is_herd_command(container.get("command"))]
        if len(herd) != 1:
            raise AssertionError(
                f"expected one Deployment container whose command runs herd (an explicit "
                f"`command: [/usr/local/bin/herd]`; the image has no entrypoint), found "
                f"{len(herd)} in {sorted({name for name, _ in self.documents})}")
        self.deployment, self.container = herd[0]
        self.pod_spec = self.deployment["spec"]["template"]["spec"]
        self.pod_labels = self.deployment["spec"]["template"]["metadata"].get("labels", {})
        self.options = HerdOptions(self.container)

    def of_kind(self, kind):
        return [doc for _, doc in self.documents if doc.get("kind") == kind]

    def container_port(self, port):
        """The containerPort a probe or Service port (a number or a port's
        name) refers to, or None when no containerPort matches."""
        for entry in self.container.get("ports", []):
            if port == entry.get("name") or port == entry["containerPort"]:
                return entry["containerPort"]
        return None

    def resources(self, kind):
        return self.container.get("resources", {}).get(kind, {})

    def pre_stop_sleep_seconds(self):
        """preStop's sleep in seconds; raises when preStop is not a sleep."""
        pre_stop = self.container.get("lifecycle", {}).get("preStop")
        if pre_stop is None:
            raise AssertionError("no lifecycle.preStop")
        if "sleep" in pre_stop:
            return float(pre_stop["sleep"]["seconds"])
        command = [str(arg) for arg in pre_stop.get("exec", {}).get("command", [])]
        if len(command) == 2 and os.path.basename(command[0]) == "sleep":
            return float(command[1])
        raise AssertionError(
            f"preStop must be a sleep (kubelet sends SIGTERM only after it, and a second "
            f"stop signal makes herd kill its workers at once), not {pre_stop}")

    def grace_period_seconds(self):
        return self.pod_spec.get("terminationGracePeriodSeconds", 30)


def selector_matches(selector, labels):
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


# ---- running herd ---------------------------------------------------------


def free_port():
    """A port nothing listens on now, for --admin (--port takes 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http_get(port, path, timeout=2.0):
    """(status, body) of GET path on 127.0.0.1:port, on a new connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        connection.close()


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def is_asan_build(binary):
    with open(binary, "rb") as file:
        return b"__asan_init" in file.read()


class HerdRun:
    """herd started as the manifest's container would start it, on loopback
    ports and with its log in a file."""

    def __init__(self, manifest, temporary_directory):
        options = manifest.options
        image_bin_dir = os.path.dirname(manifest.container["command"][0])
        self.admin_port = free_port()
        self.shutdown_delay = options.milliseconds("shutdown-delay") / 1000
        self.kill_timeout = options.milliseconds("kill-timeout") / 1000
        self.workers = options.given("workers")  # None: herd's default
        overrides = {"host": "127.0.0.1", "port": "0",
                     "admin": f"127.0.0.1:{self.admin_port}",
                     "control": os.path.join(temporary_directory, "c.sock")}

        def local(value):  # an image path beside herd (--exec) -> the build's
            if os.path.dirname(value) == image_bin_dir:
                return os.path.join(BIN_DIR, os.path.basename(value))
            return value

        self.argv = [os.path.join(BIN_DIR, "herd")]
        for name, value in options.options:
            if name not in overrides:
                self.argv += [f"--{name}", local(value)]
        for name, value in overrides.items():
            self.argv += [f"--{name}", value]
        if options.worker_args:
            self.argv += ["--"] + options.worker_args

        # A container's environment: the manifest's variables, no HERD_* of
        # the caller's; the sanitizers' settings pass through.
        environment = {name: value for name, value in os.environ.items()
                       if name in ("PATH", "TMPDIR") or name.endswith("SAN_OPTIONS")}
        for name, value in options.environment.items():
            environment[name] = local(value)
        self.log_path = os.path.join(temporary_directory, "herd.log")
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.argv, env=environment, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)
        self.pid = self.process.pid

    def log_tail(self, lines=40):
        with open(self.log_path, "rb") as log:
            text = log.read().decode("utf-8", "replace").splitlines()
        return "\n".join(text[-lines:])

    def describe(self):
        return f"herd {' '.join(self.argv)}\n--- log (last lines) ---\n{self.log_tail()}"

    def admin_get(self, path):
        return http_get(self.admin_port, path)

    def wait_until_ready(self, test):
        """Polls /readyz until 200; returns the bound HTTP port (from /status)."""
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                test.fail(f"herd exited {self.process.returncode} before it was ready\n"
                          + self.describe())
            try:
                status, body = self.admin_get("/readyz")
                if status == 200:
                    _, status_body = self.admin_get("/status")
                    listen = json.loads(status_body)["master"]["listen"]
                    return int(listen.rpartition(":")[2])
                last = f"{status} {body.strip()}"
            except OSError as error:
                last = str(error)
            time.sleep(POLL_SECONDS)
        test.fail(f"/readyz not 200 within {READY_TIMEOUT_SECONDS} s (last: {last})\n"
                  + self.describe())

    def kill(self):
        """SIGKILL, by its pid, the herd started here if it still runs (its
        workers follow through PR_SET_PDEATHSIG)."""
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


# ---- the tests ------------------------------------------------------------


class ManifestTest(unittest.TestCase):
    """The manifest's numbers agree with each other and with herd's."""

    @classmethod
    def setUpClass(cls):
        cls.manifest = Manifest()
        cls.options = cls.manifest.options

    def test_herd_options_are_all_in_the_manifest(self):
        self.assertIsNone(self.options.given("config"),
                          "--config: this test reads only args and env; extend it to read "
                          "the TOML file (a ConfigMap) before using one")

    def test_probes_use_the_admin_port_herd_binds(self):
        admin = self.options.admin_address()
        self.assertIsNotNone(admin, "herd needs --admin for /readyz and /healthz")
        host, port = admin
        self.assertIn(host, ("0.0.0.0", "::", ""),
                      f"--admin binds {host}: kubelet probes the pod's IP, not loopback")
        for probe_name, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            probe = self.manifest.container.get(probe_name)
            self.assertIsNotNone(probe, f"no {probe_name}")
            self.assertIn("httpGet", probe, f"{probe_name} must be an httpGet")
            self.assertEqual(probe["httpGet"].get("path"), path, probe_name)
            self.assertEqual(self.manifest.container_port(probe["httpGet"]["port"]), port,
                             f"{probe_name} port {probe['httpGet']['port']!r} is not the "
                             f"containerPort of --admin {host}:{port}")

    def test_http_container_port_is_herds_port(self):
        self.assertEqual(self.manifest.container_port("http"), int(self.options.get("port")),
                         "the containerPort named http must be herd's --port")
        host = self.options.get("host")
        self.assertNotIn(host, ("127.0.0.1", "::1", "localhost"),
                         "--host on loopback: the Service cannot reach it")

    def test_service_target_port_resolves_to_the_http_container_port(self):
        services = [service for service in self.manifest.of_kind("Service")
                    if selector_matches(service["spec"].get("selector"),
                                        self.manifest.pod_labels)]
        self.assertEqual(len(services), 1, "one Service selecting herd's pods")
        ports = services[0]["spec"]["ports"]
        self.assertTrue(ports, "the Service has no ports")
        for port in ports:
            target = port.get("targetPort", port["port"])
            self.assertEqual(self.manifest.container_port(target), int(self.options.get("port")),
                             f"Service port {port['port']} -> targetPort {target!r} "
                             f"does not reach herd's --port")

    def test_every_selector_matches_the_pod_labels(self):
        selectors = [("Deployment", self.manifest.deployment["spec"]["selector"]["matchLabels"])]
        selectors += [("Service", service["spec"].get("selector"))
                      for service in self.manifest.of_kind("Service")]
        selectors += [("PodDisruptionBudget", budget["spec"]["selector"]["matchLabels"])
                      for budget in self.manifest.of_kind("PodDisruptionBudget")]
        for kind, selector in selectors:
            self.assertTrue(selector_matches(selector, self.manifest.pod_labels),
                            f"{kind} selector {selector} does not match the pod labels "
                            f"{self.manifest.pod_labels}")

    def test_rolling_update_starts_a_new_pod_before_stopping_an_old_one(self):
        strategy = self.manifest.deployment["spec"].get("strategy", {})
        self.assertEqual(strategy.get("type"), "RollingUpdate")
        self.assertEqual(strategy["rollingUpdate"].get("maxUnavailable"), 0)
        self.assertGreaterEqual(strategy["rollingUpdate"].get("maxSurge", 0), 1)

    def test_pre_stop_is_a_sleep_not_a_stop(self):
        self.assertGreater(self.manifest.pre_stop_sleep_seconds(), 0)

    def test_grace_period_covers_pre_stop_shutdown_delay_and_kill_timeout(self):
        pre_stop = self.manifest.pre_stop_sleep_seconds()
        delay = self.options.milliseconds("shutdown-delay") / 1000
        kill = self.options.milliseconds("kill-timeout") / 1000
        needed = pre_stop + delay + kill + GRACE_MARGIN_SECONDS
        self.assertGreaterEqual(
            self.manifest.grace_period_seconds(), needed,
            f"terminationGracePeriodSeconds must be >= preStop {pre_stop} + shutdown-delay "
            f"{delay} + kill-timeout {kill} + margin {GRACE_MARGIN_SECONDS} s")

    def test_readiness_probe_notices_a_stop_within_the_shutdown_delay(self):
        probe = self.manifest.container["readinessProbe"]
        detection = probe.get("periodSeconds", 10) * probe.get("failureThreshold", 3)
        delay = self.options.milliseconds("shutdown-delay") / 1000
        self.assertLess(detection, delay,
                        f"readiness periodSeconds x failureThreshold = {detection} s must be "
                        f"below --shutdown-delay {delay} s, or herd stops accepting before "
                        f"the pod is marked unready")

    def test_workers_match_the_cpu_request(self):
        workers = self.options.given("workers")
        self.assertIsNotNone(workers, "set --workers: without a CPU limit herd's default is "
                                      "one worker per node CPU, not per requested CPU")
        cpu = self.manifest.resources("requests").get("cpu")
        self.assertIsNotNone(cpu, "no CPU request")
        self.assertEqual(int(workers), max(1, math.floor(parse_cpu(cpu) + 0.5)),
                         f"--workers {workers} for a CPU request of {cpu}")

    def test_memory_request_covers_the_measured_master_and_workers(self):
        workers = int(self.options.get("workers"))
        needed = MASTER_RSS_MIB + workers * WORKER_RSS_MIB
        request = self.manifest.resources("requests").get(
            "memory", self.manifest.resources("limits").get("memory"))
        self.assertIsNotNone(request, "no memory request")
        self.assertGreaterEqual(parse_memory_mib(request), needed,
                                f"memory request {request} below master {MASTER_RSS_MIB} + "
                                f"{workers} x worker {WORKER_RSS_MIB} MiB")

    def test_memory_limit_covers_every_worker_at_max_rss_during_a_replacement(self):
        max_rss = int(self.options.get("max-rss"))
        limit = self.manifest.resources("limits").get("memory")
        if max_rss == 0 or limit is None:
            self.skipTest("no --max-rss or no memory limit: nothing to compare")
        workers = int(self.options.get("workers"))
        # A replaced worker serves until its successor is ready: one more.
        needed = MASTER_RSS_MIB + workers * max_rss + WORKER_RSS_MIB
        self.assertGreaterEqual(parse_memory_mib(limit), needed,
                                f"memory limit {limit} below master {MASTER_RSS_MIB} + {workers}"
                                f" x --max-rss {max_rss} + a successor {WORKER_RSS_MIB} MiB: the "
                                f"OOM killer would act before herd replaces the worker")


class HerdFromManifestTest(unittest.TestCase):
    """The real herd, started with the container's command, args and env."""

    def setUp(self):
        self.manifest = Manifest()
        self.directory = tempfile.TemporaryDirectory(prefix="herd-k8s-test-")
        self.herd = HerdRun(self.manifest, self.directory.name)

    def tearDown(self):
        self.herd.kill()
        self.directory.cleanup()

    def test_probe_paths_answer_200_once_herd_is_up(self):
        self.herd.wait_until_ready(self)
        for probe_name in ("readinessProbe", "livenessProbe"):
            path = self.manifest.container[probe_name]["httpGet"]["path"]
            status, body = self.herd.admin_get(path)
            self.assertEqual(status, 200, f"{probe_name} {path}: {body}")

    def test_master_and_workers_fit_in_the_memory_request(self):
        if is_asan_build(os.path.join(BIN_DIR, "herd")):
            self.skipTest("ASan's shadow memory inflates RSS")
        self.herd.wait_until_ready(self)
        _, body = self.herd.admin_get("/status")
        workers = [worker["pid"] for worker in json.loads(body)["workers"]]
        if self.herd.workers is not None:
            self.assertEqual(len(workers), int(self.herd.workers), body)
        total = rss_mib(self.herd.pid) + sum(rss_mib(pid) for pid in workers)
        request = self.manifest.resources("requests").get(
            "memory", self.manifest.resources("limits").get("memory"))
        self.assertLessEqual(total, parse_memory_mib(request),
                             f"idle master + {len(workers)} workers use {total:.1f} MiB")

    def test_sigterm_turns_readyz_503_serves_through_the_delay_then_exits_0(self):
        delay, kill = self.herd.shutdown_delay, self.herd.kill_timeout
        self.assertGreater(delay, READYZ_FLIP_SECONDS,
                           f"--shutdown-delay of {delay} s: too short to serve through")
        port = self.herd.wait_until_ready(self)

        stop_at = time.monotonic()
        os.kill(self.herd.pid, signal.SIGTERM)

        last = "no answer"
        while True:
            status, body = self.herd.admin_get("/readyz")
            if status == 503:
                break
            last = f"{status} {body.strip()}"
            self.assertLess(time.monotonic() - stop_at, READYZ_FLIP_SECONDS,
                            f"/readyz still {last} after SIGTERM\n" + self.herd.describe())
            time.sleep(POLL_SECONDS)
        self.assertIn("stopping", body)

        # Through the delay (up to its last READYZ_FLIP_SECONDS, so that the
        # last check is surely inside it): new connections are served, and
        # the liveness path stays 200 so kubelet does not restart the pod.
        last_check = None
        while last_check is None or time.monotonic() - stop_at < delay - READYZ_FLIP_SECONDS:
            elapsed = last_check = time.monotonic() - stop_at
            try:
                status, body = http_get(port, "/")
            except OSError as error:
                status, body = None, str(error)
            self.assertEqual(status, 200, f"GET / {elapsed:.2f} s into the {delay} s "
                                          f"shutdown delay: {body}\n" + self.herd.describe())
            status, body = self.herd.admin_get("/healthz")
            self.assertEqual(status, 200, f"/healthz {elapsed:.2f} s after SIGTERM: {body}")
            self.assertEqual(self.herd.admin_get("/readyz")[0], 503)
            time.sleep(SERVE_CHECK_SECONDS)
        self.assertLess(last_check, delay, "the checks ran past the shutdown delay")

        budget = delay + kill + EXIT_SLACK_SECONDS
        try:
            code = self.herd.process.wait(timeout=max(0.0, stop_at + budget - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.fail(f"herd still running {budget} s after SIGTERM\n" + self.herd.describe())
        exited_after = time.monotonic() - stop_at
        self.assertEqual(code, 0, self.herd.describe())
        # herd's timers run on the coarse monotonic clock (a few ms a tick).
        self.assertGreaterEqual(exited_after, delay - TIMER_GRAIN_SECONDS,
                                f"herd exited {exited_after:.2f} s after SIGTERM, before its "
                                f"{delay} s shutdown delay was over")


def main():
    global BIN_DIR
    argv = sys.argv[1:]
    for index, arg in enumerate(argv):
        if arg == "--bin-dir" and index + 1 < len(argv):
            BIN_DIR = argv[index + 1]
            del argv[index:index + 2]
            break
        if arg.startswith("--bin-dir="):
            BIN_DIR = arg.split("=", 1)[1]
            del argv[index]
            break
    BIN_DIR = BIN_DIR or os.environ.get("HERD_BIN_DIR")
    if not BIN_DIR or not os.access(os.path.join(BIN_DIR, "herd"), os.X_OK):
        print(f"usage: {sys.argv[0]} --bin-dir BUILD/bin [unittest args] "
              f"(or HERD_BIN_DIR); no executable herd in {BIN_DIR!r}", file=sys.stderr)
        return 2
    BIN_DIR = os.path.abspath(BIN_DIR)
    unittest.main(argv=[sys.argv[0]] + argv, verbosity=2)


if __name__ == "__main__":
    sys.exit(main())
