"""A real webhook sink for alert tests (also PagerDuty's Events API v2, which is a JSON POST
too): an HTTP server on 127.0.0.1 in a thread."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Webhook:
    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    # Status codes for the next requests (then 200), to simulate a flaky sink.
    failures: list[int] = field(default_factory=list)
    # Every request's path and body, answered or not (what reached the sink).
    attempts: list[tuple[str, bytes]] = field(default_factory=list)


@contextmanager
def webhook_server(path: str = "alerts") -> Iterator[Webhook]:
    """Collects every JSON POST; shut down and closed when the block ends."""
    state = Webhook(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.attempts.append((self.path, body))
            status = state.failures.pop(0) if state.failures else 200
            if status == 200:
                state.received.append(json.loads(body))
            self.send_response(status)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/{path}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on (now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def closed_port_url(path: str = "alerts") -> str:
    """A URL on 127.0.0.1 where nothing listens: a sink that is down."""
    return f"http://127.0.0.1:{free_port()}/{path}"
