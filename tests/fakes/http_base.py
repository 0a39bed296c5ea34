"""A threaded loopback HTTP server with scriptable faults, for the fake APIs.

``fault(route, ...)`` queues answers that replace the normal ones: a status
with a body and headers, a delay, or a body that is not JSON. Every request is
logged with its headers, so tests can assert what the client sent.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Fault:
    status: int = 500
    body: bytes | dict | None = None
    headers: dict = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (slow mode)
    passthrough: bool = False  # after the delay, answer normally
    drip: float = 0.0  # seconds between single bytes of the whole answer (a stalled server)


@dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes
    at: float = field(default_factory=time.monotonic)  # arrival, for backoff timing


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    chunks: object = None  # an iterable of bytes, streamed after the headers


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # A real API's listen backlog, not socketserver's 5: with 16 clients
    # connecting at once, a full backlog drops SYNs and the client retries
    # after a second, which the benchmark would count against fedfina.
    request_queue_size = 128


class FakeHTTPServer:
    def __init__(self):
        self.requests: list[Request] = []
        self._faults: dict[str, list[Fault]] = {}
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                fake._handle(self)

            def do_POST(self):
                fake._handle(self)

            def do_PUT(self):
                fake._handle(self)

            def do_HEAD(self):
                fake._handle(self)

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHTTPServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fault(self, route: str, times: int = 1, **kwargs) -> None:
        """Answer the next ``times`` requests for exactly this path with this fault."""
        with self._lock:
            self._faults.setdefault(route, []).extend(Fault(**kwargs) for _ in range(times))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def count(self, path: str) -> int:
        """Requests received for exactly this path."""
        return sum(1 for r in self.requests if r.path == path)

    def route(self, request: Request) -> Response:  # overridden by the fakes
        return Response(404, b'{"detail": "not found"}')

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            faults = self._faults.get(path)
            if faults:
                return faults.pop(0)
        return None

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        request = Request(handler.command, parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()},
                          {k.lower(): v for k, v in handler.headers.items()},
                          handler.rfile.read(length) if length else b"")
        with self._lock:
            self.requests.append(request)
        fault = self._take_fault(parts.path)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.drip:
                self._drip(handler, fault)
                return
            if not fault.passthrough:
                body = fault.body
                if isinstance(body, dict):
                    body = json.dumps(body).encode()
                self._send(handler, Response(fault.status, body or b"", {"Content-Type": "application/json",
                                                                         **fault.headers}))
                return
        self._send(handler, self.route(request))

    def _drip(self, handler: BaseHTTPRequestHandler, fault: Fault) -> None:
        """The answer a byte at a time, headers included: every read succeeds, none completes."""
        body = fault.body if isinstance(fault.body, bytes) else json.dumps(fault.body or {}).encode()
        head = f"HTTP/1.1 {fault.status} OK\r\nContent-Type: application/json\r\n" \
               f"Content-Length: {len(body)}\r\n\r\n".encode()
        handler.close_connection = True
        try:
            for byte in head + body:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
                time.sleep(fault.drip)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should

    def _send(self, handler: BaseHTTPRequestHandler, response: Response) -> None:
        try:
            handler.send_response(response.status)
            for name, value in response.headers.items():
                handler.send_header(name, value)
            if response.chunks is None:
                handler.send_header("Content-Length", str(len(response.body)))
                handler.end_headers()
                if handler.command != "HEAD":
                    handler.wfile.write(response.body)
                return
            handler.end_headers()
            for chunk in response.chunks:
                handler.wfile.write(chunk)
                handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up, or the fake drops the connection on purpose.
            handler.close_connection = True


def json_response(payload, status: int = 200, headers: dict | None = None) -> Response:
    return Response(status, json.dumps(payload, ensure_ascii=False).encode("utf-8"),
                    {"Content-Type": "application/json", **(headers or {})})
