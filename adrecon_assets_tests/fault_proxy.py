"""A fault-injecting HTTP proxy in front of the test S3 server, on 127.0.0.1 and a free port.

Each request is forwarded to the upstream server unless a fault is drawn: a `503 SlowDown`
answer or a dropped connection (closed without an answer), for a share of requests, or for
every request during an outage. The faults are what object stores do when they are busy or
failing over (contract 2's transient faults), so a lake read through the proxy must come out
exact, only later.
"""

from __future__ import annotations

import http.client
import random
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)
# Headers that belong to one hop, not to the request or answer forwarded.
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "proxy-connection"}


@dataclass
class FaultPlan:
    """What the proxy does to the next requests; changed by the test while it runs."""

    share: float = 0.0  # of requests that fail, half with a 503, half dropped
    outage_until: float = 0.0  # time.monotonic() before which every request fails
    seed: int = 7
    forwarded: int = 0
    failed: int = 0
    _random: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def outage(self, seconds: float) -> None:
        """Every request fails for the next `seconds` (then the store is back)."""
        self.outage_until = time.monotonic() + seconds

    def draw(self) -> str | None:
        """None (forward), "503" or "drop"."""
        with self._lock:
            roll = self._random.random()
            if time.monotonic() < self.outage_until or roll < self.share:
                self.failed += 1
                return "503" if self._random.random() < 0.5 else "drop"
            self.forwarded += 1
            return None


def handler_for(upstream: str, plan: FaultPlan) -> type[BaseHTTPRequestHandler]:
    parts = urlsplit(upstream)

    class FaultyProxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # one line per request otherwise

        def relay(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            fault = plan.draw()
            if fault == "drop":
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            if fault == "503":
                self.send_response(503, "Service Unavailable")
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(SLOW_DOWN)))
                self.end_headers()
                self.wfile.write(SLOW_DOWN)
                return
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
                connection.request(self.command, self.path, body=body, headers=headers)
                answer = connection.getresponse()
                payload = answer.read()
            finally:
                connection.close()
            self.send_response(answer.status, answer.reason)
            for name, value in answer.getheaders():
                if name.lower() not in HOP_HEADERS and name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = relay

    return FaultyProxy


@contextmanager
def fault_proxy(upstream: str, plan: FaultPlan) -> Iterator[str]:
    """A proxy to `upstream` on 127.0.0.1 (a free port) following `plan`; yields its URL and
    stops on exit."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(upstream, plan))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
