#!/usr/bin/env python3
"""A herd worker in Python: the reference implementation of proto/README.md.

It speaks the channel protocol with the standard library only and serves the
same app as herd-worker (GET / -> "Hello World!", other paths -> 404), to show
that a worker needs nothing but that document. Run it under a master:

    herd --exec /usr/bin/python3 -- examples/python_worker.py

One thread, one selector loop: the channel (fd 3, SOCK_SEQPACKET, one JSON
object per datagram, a `conn` carries its client socket as SCM_RIGHTS), every
adopted client connection, and a wakeup socket for SIGTERM/SIGINT. The HTTP/1.1
parser is deliberately small (no chunked request bodies: 501); it is an
example, not the product.
"""

import array
import email.utils
import html
import json
import os
import re
import selectors
import signal
import socket
import sys
import time

MAX_MESSAGE_BYTES = 64 * 1024  # proto/README.md: a larger datagram is a violation
MAX_HEADER_BYTES = 16 * 1024
MAX_BODY_BYTES = 1024 * 1024
DRAIN_IDLE_GRACE = 1.0  # s an idle connection may still send one last request
ORPHAN_DRAIN_SECONDS = 1.0  # drain deadline on SIGTERM or a vanished master
# socket.recv_fds() drops its flags argument, so recvmsg() is called directly.
CMSG_CLOEXEC = getattr(socket, "MSG_CMSG_CLOEXEC", 0)
TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token: methods, header names
DIGITS = re.compile(r"[0-9]+")
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 413: "Payload Too Large",
           431: "Request Header Fields Too Large", 501: "Not Implemented",
           505: "HTTP Version Not Supported"}

# common/histogram.h: values below 32 us get a bucket each; each power of two
# [2^k, 2^(k+1)) above is cut into 32 sub-buckets; the top row is [2^26, 2^27).
SUB_BUCKET_BITS, MAX_EXPONENT = 5, 26
BUCKET_COUNT = (1 << SUB_BUCKET_BITS) * (MAX_EXPONENT - SUB_BUCKET_BITS + 2)


def bucket_index(micros):
    """The latency histogram bucket of `micros`, exactly as the master computes it."""
    if micros < 1 << SUB_BUCKET_BITS:
        return micros
    exponent = micros.bit_length() - 1
    if exponent > MAX_EXPONENT:
        return BUCKET_COUNT - 1
    sub = (micros >> (exponent - SUB_BUCKET_BITS)) & ((1 << SUB_BUCKET_BITS) - 1)
    return ((exponent - SUB_BUCKET_BITS + 1) << SUB_BUCKET_BITS) + sub


def log(message):
    print(f"python-worker {os.getpid()}: {message}", file=sys.stderr, flush=True)


def hello_world_app(method, path):
    """(status, body): what herd-worker answers, like Express without routes."""
    if method in ("GET", "HEAD") and path == "/":
        return 200, b"Hello World!"
    shown = "GET" if method == "HEAD" else method
    return 404, f"Cannot {html.escape(shown)} {html.escape(path)}".encode()


class Client:
    """One adopted HTTP connection: bytes in, parsed requests, bytes out."""

    def __init__(self, sock):
        self.sock = sock
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.request_started = None  # monotonic ns of the current request's first byte
        self.served = False  # a drained connection owes its first response
        self.close_when_flushed = False
        self.idle_deadline = None  # while draining: close if still idle by then
        self.closed = False
        self.callback = None


class Worker:
    def __init__(self, channel, worker_id, heartbeat_interval):
        self.channel = channel
        self.worker_id = worker_id
        self.heartbeat_interval = heartbeat_interval
        self.selector = selectors.DefaultSelector()
        self.clients = {}  # fd -> Client
        self.outbox = []  # encoded messages the channel could not take yet
        self.draining = False
        self.drain_deadline = None
        self.debug = os.environ.get("HERD_LOG_LEVEL") in ("trace", "debug")
        self.stats = {"connections": 0, "active_connections": 0, "requests": 0,
                      "responses": {"2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0},
                      "bytes_in": 0, "bytes_out": 0}
        self.latency_buckets, self.latency_max, self.latency_sum = {}, 0, 0

    # ---- the channel -------------------------------------------------------

    def send(self, message):
        if self.channel is None:
            return
        self.outbox.append(json.dumps(message, separators=(",", ":")).encode())
        self.flush_outbox()

    def flush_outbox(self):
        while self.channel is not None and self.outbox:
            try:
                self.channel.send(self.outbox[0])
            except BlockingIOError:
                break
            except OSError:  # EPIPE, ECONNRESET: the master is gone
                return self.master_gone()
            self.outbox.pop(0)
        if self.channel is not None:
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if self.outbox else 0)
            self.selector.modify(self.channel, events, self.on_channel)

    def on_channel(self, events):
        if events & selectors.EVENT_WRITE:
            self.flush_outbox()
        if events & selectors.EVENT_READ:
            self.read_channel()

    def read_channel(self):
        """Reads every queued message, then acks adopted connections in one message."""
        adopted, refused = [], []
        for _ in range(256):
            if self.channel is None:
                break
            try:  # room for a few descriptors, so that extra ones are seen (and closed)
                data, ancillary, flags, _ = self.channel.recvmsg(
                    MAX_MESSAGE_BYTES, socket.CMSG_SPACE(4 * array.array("i").itemsize),
                    CMSG_CLOEXEC)
            except BlockingIOError:
                break
            except OSError as error:
                log(f"recvmsg() on the channel failed: {error}")
                self.master_gone()
                break
            fds = array.array("i")
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
            if not data and not fds:  # end of file: the master is gone
                self.master_gone()
                break
            self.handle_message(data, list(fds), flags, adopted, refused)
        if adopted:
            self.send({"type": "ack", "seqs": adopted, "accepted": True})
        if refused:
            self.send({"type": "ack", "seqs": refused, "accepted": False})

    @staticmethod
    def decode(data, flags):
        """The message as a dict, or None if it is not one the master may send."""
        if flags & socket.MSG_TRUNC:
            return None
        try:
            message = json.loads(data)
        except ValueError:
            return None
        required = {"conn": "seq", "drain": "deadline_ms", "ping": None}
        if not isinstance(message, dict) or message.get("type") not in required:
            return None
        field = required[message["type"]]
        if field is not None and type(message.get(field)) is not int:  # bool is no int here
            return None
        return message

    def handle_message(self, data, fds, flags, adopted, refused):
        message = self.decode(data, flags)
        kind = message["type"] if message else None
        if message is None:
            log(f"malformed message from the master ({data[:100]!r}); ignored")
        expected = 1 if kind == "conn" else 0
        if len(fds) != expected or flags & socket.MSG_CTRUNC:
            for fd in fds:  # close every descriptor we did not expect
                os.close(fd)
            if fds or kind == "conn":
                log(f"'{kind}' came with {len(fds)} descriptors instead of {expected}; closed them")
            if kind == "conn":
                refused.append(message["seq"])  # the master re-dispatches it
                return
        if kind == "conn":
            if not self.draining and self.adopt(fds[0]):
                adopted.append(message["seq"])
            else:
                refused.append(message["seq"])
        elif kind == "drain":
            # Exit a little before the master's SIGKILL, so the exit is a clean 0.
            self.begin_drain(max(0.0, message["deadline_ms"] / 1000.0 - 0.1))
        elif kind == "ping":
            self.send({"type": "pong"})

    def send_heartbeat(self):
        if self.outbox:  # a master that is not reading needs no stale backlog
            return
        self.stats["active_connections"] = len(self.clients)
        buckets = [[index, count] for index, count in sorted(self.latency_buckets.items())]
        stats = dict(self.stats, latency_us={"buckets": buckets, "max": self.latency_max,
                                                  "sum": self.latency_sum})
        self.send({"type": "heartbeat", "stats": stats})

    def master_gone(self):
        if self.channel is None:
            return
        self.selector.unregister(self.channel)
        self.channel.close()
        self.channel, self.outbox = None, []
        self.begin_drain(ORPHAN_DRAIN_SECONDS)

    # ---- client connections -----------------------------------------------

    def adopt(self, fd):
        """Takes ownership of `fd` (closing it on failure); False if it is no usable socket."""
        try:
            sock = socket.socket(fileno=fd)  # family and type come from the fd itself
            sock.setblocking(False)
        except OSError as error:
            log(f"cannot adopt descriptor {fd}: {error}")
            os.close(fd)
            return False
        client = Client(sock)
        client.callback = lambda events: self.on_client(client, events)
        self.clients[sock.fileno()] = client
        self.selector.register(sock, selectors.EVENT_READ, client.callback)
        self.stats["connections"] += 1
        self.stats["active_connections"] = len(self.clients)
        return True

    def on_client(self, client, events):
        if client.closed:  # closed earlier in this same round of events
            return
        if events & selectors.EVENT_READ:
            try:
                data = client.sock.recv(65536)
            except BlockingIOError:
                data = None
            except OSError:
                return self.close(client)
            if data == b"":
                return self.close(client)
            if data:
                if not client.inbuf:
                    client.request_started = time.monotonic_ns()
                client.inbuf += data
                self.stats["bytes_in"] += len(data)
                self.serve(client)
        self.flush(client)

    def serve(self, client):
        """Answers every complete request in the input buffer, in order (pipelining)."""
        while client.inbuf and not client.close_when_flushed:
            end = client.inbuf.find(b"\r\n\r\n")
            if end < 0:
                if len(client.inbuf) > MAX_HEADER_BYTES:
                    self.respond(client, "GET", 431, b"Request Header Fields Too Large", "1.1", False)
                return
            if end > MAX_HEADER_BYTES:
                return self.respond(client, "GET", 431, b"Request Header Fields Too Large", "1.1", False)
            request = self.parse_head(bytes(client.inbuf[:end]))
            if isinstance(request, int):
                return self.respond(client, "GET", request, REASONS[request].encode(), "1.1", False)
            method, target, version, keep_alive, body_length = request
            if body_length > MAX_BODY_BYTES:
                return self.respond(client, method, 413, b"Payload Too Large", version, False)
            if len(client.inbuf) < end + 4 + body_length:
                return  # the body is still on its way
            del client.inbuf[:end + 4 + body_length]
            status, body = hello_world_app(method, target.split("?", 1)[0])
            self.respond(client, method, status, body, version, keep_alive and not self.draining)
            if client.inbuf:
                client.request_started = time.monotonic_ns()

    @staticmethod
    def parse_head(head):
        """(method, target, version, keep_alive, body_length), or an error status."""
        try:
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ")
        except ValueError:
            return 400
        if version not in ("HTTP/1.0", "HTTP/1.1"):
            return 505 if version.startswith("HTTP/") else 400
        if not TOKEN.fullmatch(method) or not target.startswith(("/", "*", "http")):
            return 400
        headers = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon or not TOKEN.fullmatch(name):
                return 400  # also rejects obsolete line folding and "Name :"
            headers.setdefault(name.lower(), []).append(value.strip())
        if "transfer-encoding" in headers:
            return 501 if "content-length" not in headers else 400
        lengths = set(headers.get("content-length", ["0"]))
        if len(lengths) != 1 or not DIGITS.fullmatch(next(iter(lengths))):
            return 400
        tokens = {t.strip().lower() for v in headers.get("connection", []) for t in v.split(",")}
        keep_alive = "keep-alive" in tokens if version == "HTTP/1.0" else "close" not in tokens
        return method, target, version[5:], keep_alive, int(lengths.pop())

    def respond(self, client, method, status, body, version, keep_alive):
        head = [f"HTTP/{version} {status} {REASONS[status]}",
                "Content-Type: text/html; charset=utf-8",
                f"Content-Length: {len(body)}",
                f"Date: {email.utils.formatdate(usegmt=True)}"]
        if not keep_alive:
            head.append("Connection: close")
        elif version == "1.0":
            head.append("Connection: keep-alive")
        client.outbuf += ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        if method != "HEAD":
            client.outbuf += body
        client.served = True
        client.close_when_flushed = not keep_alive
        self.record(status, client.request_started)

    def record(self, status, started_ns):
        self.stats["requests"] += 1
        self.stats["responses"][f"{min(status // 100, 5)}xx"] += 1
        micros = max(0, (time.monotonic_ns() - started_ns) // 1000)
        index = bucket_index(micros)
        self.latency_buckets[index] = self.latency_buckets.get(index, 0) + 1
        self.latency_max = max(self.latency_max, micros)
        self.latency_sum += micros
        if self.debug:
            log(f"Request handled by worker {self.worker_id}")

    def flush(self, client):
        if client.outbuf:
            try:
                sent = client.sock.send(client.outbuf)
            except BlockingIOError:
                sent = 0
            except OSError:
                return self.close(client)
            del client.outbuf[:sent]
            self.stats["bytes_out"] += sent
        if not client.outbuf and client.close_when_flushed:
            return self.close(client)
        # Stop reading while a response waits to go out: a slow reader cannot pile up output.
        events = selectors.EVENT_WRITE if client.outbuf else selectors.EVENT_READ
        self.selector.modify(client.sock, events, client.callback)

    def close(self, client):
        client.closed = True
        self.clients.pop(client.sock.fileno(), None)
        self.selector.unregister(client.sock)
        client.sock.close()
        self.stats["active_connections"] = len(self.clients)

    # ---- draining ------------------------------------------------------------

    def begin_drain(self, seconds):
        """Stop adopting, answer what is in flight (with Connection: close), then exit."""
        if self.draining:
            return
        self.draining = True
        self.drain_deadline = time.monotonic() + seconds
        for client in list(self.clients.values()):
            # A connection not answered yet may still have its request on the
            # wire, and one with a partial request is in flight: both get their
            # response (with Connection: close). An idle one gets a short grace
            # for a request the client may already have sent.
            if client.served and not client.inbuf and not client.outbuf:
                client.idle_deadline = time.monotonic() + DRAIN_IDLE_GRACE
            elif client.outbuf and not client.inbuf:
                client.close_when_flushed = True

    def run(self):
        wakeup_read, wakeup_write = socket.socketpair()
        for end in (wakeup_read, wakeup_write):
            end.setblocking(False)
        signal.set_wakeup_fd(wakeup_write.fileno())
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: None)  # the wakeup fd carries the signal number
        self.selector.register(wakeup_read, selectors.EVENT_READ, None)
        self.selector.register(self.channel, selectors.EVENT_READ, self.on_channel)
        self.send({"type": "hello", "proto": 1, "pid": os.getpid()})
        self.send({"type": "ready"})
        next_heartbeat = time.monotonic() + self.heartbeat_interval
        while not (self.draining and not self.clients):
            now = time.monotonic()
            wake_at = [next_heartbeat] + ([self.drain_deadline] if self.draining else [])
            wake_at += [c.idle_deadline for c in self.clients.values() if c.idle_deadline]
            for key, events in self.selector.select(max(0.0, min(wake_at) - now)):
                if key.data is None:
                    if wakeup_read.recv(64):
                        self.begin_drain(ORPHAN_DRAIN_SECONDS)
                else:
                    key.data(events)
            now = time.monotonic()
            if now >= next_heartbeat:
                self.send_heartbeat()
                next_heartbeat += self.heartbeat_interval
                if next_heartbeat <= now:  # the loop fell behind: do not send a burst
                    next_heartbeat = now + self.heartbeat_interval
            for client in [c for c in self.clients.values() if c.idle_deadline and now >= c.idle_deadline]:
                self.close(client)
            if self.draining and now >= self.drain_deadline:
                log(f"drain deadline reached with {len(self.clients)} connections open; closing them")
                break
        return 0


def main():
    try:
        channel_fd = int(os.environ["HERD_CHANNEL_FD"])
        channel = socket.socket(fileno=channel_fd)  # family and type come from the fd
    except (KeyError, ValueError, OSError):
        print("python_worker.py: no channel to a herd master (HERD_CHANNEL_FD is unset or not "
              "an open socket); start it with: herd --exec /usr/bin/python3 -- python_worker.py",
              file=sys.stderr)
        return 2
    channel.setblocking(False)
    worker_id = int(os.environ.get("HERD_WORKER_ID", "0"))
    interval_ms = int(os.environ.get("HERD_HEARTBEAT_INTERVAL_MS", "1000"))
    return Worker(channel, worker_id, interval_ms / 1000.0).run()


if __name__ == "__main__":
    sys.exit(main())
