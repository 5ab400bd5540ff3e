#!/usr/bin/env python3
"""Continuous, paced HTTP load that accounts for every request.

Runs until SIGTERM or SIGINT (or --max-seconds, so it always stops by itself),
then writes a JSON report to --out: how many requests were answered 200 with
the expected body, and every one that was not (time, connection kind, what
went wrong). Times are time.monotonic(), the same clock as the multi-host
test's, which runs this inside the balancer's network namespace.

Two kinds of client thread, as behind a real balancer:
  keep-alive: one persistent connection, reopened after any failure;
  fresh:      a new connection (and `Connection: close`) for every request.
A failure is anything but `200` with the expected body: a refused or reset
connection, a close before the response, a timeout, another status.
"""

import argparse
import http.client
import json
import signal
import threading
import time

MAX_FAILURES_KEPT = 1000


class Tally:
    """What every thread saw, under one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ok = 0
        self.failed = 0
        self.failures = []
        self.latencies_ms = []
        self.first_ok_at = None
        self.last_ok_at = None

    def record_ok(self, at, latency_ms):
        with self.lock:
            self.ok += 1
            self.latencies_ms.append(latency_ms)
            if self.first_ok_at is None:
                self.first_ok_at = at
            self.last_ok_at = at

    def record_failure(self, at, kind, error):
        with self.lock:
            self.failed += 1
            if len(self.failures) < MAX_FAILURES_KEPT:
                self.failures.append({"t": at, "connection": kind, "error": error})


def percentile(sorted_values, fraction):
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, int(fraction * len(sorted_values)))
    return sorted_values[index]


def run_client(kind, args, tally, stop):
    """One client thread: paced requests until `stop` is set."""
    interval = 1.0 / args.rate
    next_at = time.monotonic()
    connection = None
    headers = {"Connection": "close"} if kind == "fresh" else {}
    while not stop.is_set():
        now = time.monotonic()
        if next_at > now:
            stop.wait(next_at - now)
            continue
        next_at = max(next_at + interval, now - interval)
        started = time.monotonic()
        try:
            if connection is None:
                connection = http.client.HTTPConnection(args.host, args.port, timeout=args.timeout)
            connection.request("GET", args.path, headers=headers)
            response = connection.getresponse()
            body = response.read()
            if response.status != 200 or body != args.expect.encode():
                raise ValueError(f"status {response.status}, body {body[:60]!r}")
            if kind == "fresh" or response.will_close:
                connection.close()
                connection = None
            tally.record_ok(time.monotonic(), (time.monotonic() - started) * 1000.0)
        except (OSError, http.client.HTTPException, ValueError) as error:
            tally.record_failure(started, kind, f"{type(error).__name__}: {error}")
            if connection is not None:
                connection.close()
                connection = None
    if connection is not None:
        connection.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--path", default="/")
    parser.add_argument("--expect", default="Hello World!", help="the body a 200 must carry")
    parser.add_argument("--keepalive", type=int, default=6, help="keep-alive client threads")
    parser.add_argument("--fresh", type=int, default=2, help="new-connection client threads")
    parser.add_argument("--rate", type=float, default=150.0, help="requests/s per thread")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per request")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="stop by itself after")
    parser.add_argument("--out", required=True, help="where to write the JSON report")
    parser.add_argument("--started-file", help="created once the first request succeeded")
    args = parser.parse_args()

    stop = threading.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signal_number, lambda *_: stop.set())

    tally = Tally()
    started_at = time.monotonic()
    kinds = ["keep-alive"] * args.keepalive + ["fresh"] * args.fresh
    threads = [threading.Thread(target=run_client, args=(kind, args, tally, stop), daemon=True)
               for kind in kinds]
    for thread in threads:
        thread.start()

    announced = args.started_file is None
    deadline = started_at + args.max_seconds
    while not stop.is_set() and time.monotonic() < deadline:
        if not announced and tally.first_ok_at is not None:
            with open(args.started_file, "w", encoding="utf-8") as started_file:
                started_file.write(f"{tally.first_ok_at}\n")
            announced = True
        stop.wait(0.02)
    stop.set()
    for thread in threads:
        thread.join(timeout=args.timeout + 1)

    latencies = sorted(tally.latencies_ms)
    report = {
        "started_at": started_at,
        "stopped_at": time.monotonic(),
        "clients": {"keep-alive": args.keepalive, "fresh": args.fresh},
        "rate_per_client": args.rate,
        "ok": tally.ok,
        "failed": tally.failed,
        "failures": tally.failures,
        "first_ok_at": tally.first_ok_at,
        "last_ok_at": tally.last_ok_at,
        "latency_ms": {"p50": percentile(latencies, 0.50), "p99": percentile(latencies, 0.99),
                       "max": latencies[-1] if latencies else None},
    }
    with open(args.out, "w", encoding="utf-8") as out:
        json.dump(report, out, indent=1)


if __name__ == "__main__":
    main()
