"""Total deadlines for HTTP calls and SMTP sends (FEDFINA_HTTP_TIMEOUT), which the clients lack.

requests, urllib3 (under minio) and httpx (under openai) time out each socket
operation, not a call: a server dripping one byte every two seconds never
trips a 30-second read timeout and holds a run forever. Here a call made
inside ``limit(seconds)`` must be over within that many seconds, connect to
last byte; with ``window=True`` (streams of unknown length: the recording)
it fails when any stretch of that length brings less than 64 KB.

How: before every read or write on the connection's socket, the socket's
timeout is cut to what is left of the call's deadline, so a stalled call
ends within the deadline, not one read after it. Each request binds a fresh
deadline to its own connection when it starts, so a stream being read (the
recording) and other calls made in between (its upload) keep separate
clocks.

smtplib's socket is TLS-wrapped by smtplib itself, so a send is bounded by an
alarm instead (``alarm``), which shuts its socket down when it rings.
"""

from __future__ import annotations

import heapq
import io
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

WINDOW_BYTES = 64 * 1024


@dataclass(frozen=True)
class Limit:
    seconds: float
    window: bool = False


class Deadline:
    """One call's clock: fixed, or (window) pushed forward by every 64 KB moved."""

    def __init__(self, limit: Limit):
        self.limit = limit
        self.expires = time.monotonic() + limit.seconds
        self._moved = 0

    def remaining(self) -> float:
        return self.expires - time.monotonic()

    def moved(self, nbytes: int) -> None:
        if self.limit.window and nbytes > 0:
            self._moved += nbytes
            if self._moved >= WINDOW_BYTES:
                self._moved = 0
                self.expires = time.monotonic() + self.limit.seconds

    def timeout(self, base: float | None) -> float:
        """The socket timeout for the next operation; raises socket.timeout when none is left."""
        left = self.remaining()
        if left <= 0:
            raise TimeoutError(self.message())
        return left if base is None else min(base, left)

    def message(self) -> str:
        if self.limit.window:
            return f"less than 64 KB in {self.limit.seconds:g} s"
        return f"no complete answer within {self.limit.seconds:g} s"


_local = threading.local()


@contextmanager
def limit(seconds: float, window: bool = False) -> Iterator[None]:
    """Calls started in this block (this thread) get a deadline of ``seconds`` each."""
    previous = getattr(_local, "limit", None)
    _local.limit = Limit(seconds, window)
    _local.deadline = Deadline(_local.limit)
    try:
        yield
    finally:
        _local.limit = previous
        _local.deadline = Deadline(previous) if previous is not None else None


def new_deadline() -> Deadline | None:
    """A deadline for a request starting now under this thread's limit, if any."""
    current = getattr(_local, "limit", None)
    return Deadline(current) if current is not None else None


def block_deadline() -> Deadline | None:
    """The deadline of the current ``limit`` block, started when the block was entered."""
    return getattr(_local, "deadline", None)


# --- urllib3 (requests, minio) ----------------------------------------------------------


class DeadlineSocket:
    """A socket whose every operation is bounded by the deadline of the request using it."""

    def __init__(self, sock: socket.socket, deadline: Deadline | None):
        self._sock = sock
        self.deadline = deadline
        self._timeout = sock.gettimeout()

    def __getattr__(self, name):
        return getattr(self._sock, name)

    def settimeout(self, value: float | None) -> None:
        self._timeout = value
        self._sock.settimeout(value)

    def gettimeout(self) -> float | None:
        return self._timeout

    def _arm(self) -> None:
        if self.deadline is not None:
            self._sock.settimeout(self.deadline.timeout(self._timeout))

    def _moved(self, nbytes: int) -> None:
        if self.deadline is not None:
            self.deadline.moved(nbytes)

    def recv(self, size: int, *flags) -> bytes:
        self._arm()
        data = self._sock.recv(size, *flags)
        self._moved(len(data))
        return data

    def recv_into(self, buffer, size: int = 0, *flags) -> int:
        self._arm()
        count = self._sock.recv_into(buffer, size, *flags)
        self._moved(count)
        return count

    def send(self, data, *flags) -> int:
        self._arm()
        count = self._sock.send(data, *flags)
        self._moved(count)
        return count

    def sendall(self, data, *flags) -> None:
        # In pieces, so that each is bounded by what is left (and moves a window).
        view = memoryview(data).cast("B")
        while view:
            sent = self.send(view[:WINDOW_BYTES], *flags)
            view = view[sent:]

    def makefile(self, mode: str = "r", buffering: int | None = None, **kwargs):
        # As socket.makefile, but reading through this object so every read is bounded.
        if mode not in ("rb", "r", "wb", "w"):
            raise ValueError(f"unsupported mode {mode!r}")
        raw = socket.SocketIO(self, mode.replace("b", ""))
        self._sock._io_refs += 1
        if buffering == 0:
            return raw
        size = io.DEFAULT_BUFFER_SIZE if buffering in (None, -1) else buffering
        buffered = io.BufferedReader(raw, size) if "r" in mode else io.BufferedWriter(raw, size)
        return buffered if "b" in mode else io.TextIOWrapper(buffered, **kwargs)

    def _decref_socketios(self) -> None:
        self._sock._decref_socketios()


def urllib3_pools():
    """Connection-pool classes for urllib3's PoolManager: {"http": ..., "https": ...}."""
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class _Bounded:
        def connect(self) -> None:
            deadline = new_deadline()
            if deadline is not None and isinstance(self.timeout, (int, float)):
                self.timeout = deadline.timeout(self.timeout)
            super().connect()
            self.sock = DeadlineSocket(self.sock, deadline)

        def request(self, *args, **kwargs):
            # Every request on a kept-alive connection gets its own fresh deadline.
            if isinstance(self.sock, DeadlineSocket):
                self.sock.deadline = new_deadline()
            return super().request(*args, **kwargs)

    class BoundedHTTPConnection(_Bounded, HTTPConnection):
        pass

    class BoundedHTTPSConnection(_Bounded, HTTPSConnection):
        pass

    class BoundedHTTPConnectionPool(HTTPConnectionPool):
        ConnectionCls = BoundedHTTPConnection

    class BoundedHTTPSConnectionPool(HTTPSConnectionPool):
        ConnectionCls = BoundedHTTPSConnection

    return {"http": BoundedHTTPConnectionPool, "https": BoundedHTTPSConnectionPool}


def bound_pool_manager(manager):
    """``manager`` (a urllib3 PoolManager or ProxyManager), its new pools bounded."""
    manager.pool_classes_by_scheme = urllib3_pools()
    return manager


# --- httpcore2 (openai) ------------------------------------------------------------------


def httpx_transport():
    """An httpx2 transport whose calls are bounded by the current ``limit`` block."""
    import httpcore2
    import httpx2

    def left(timeout: float | None, error) -> float | None:
        """The timeout for the next operation under this block's deadline (httpcore2's error when none is left)."""
        deadline = block_deadline()
        if deadline is None:
            return timeout
        try:
            return deadline.timeout(timeout)
        except TimeoutError as exc:
            raise error(str(exc)) from None

    class BoundedStream(httpcore2.NetworkStream):
        def __init__(self, inner):
            self._inner = inner

        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            data = self._inner.read(max_bytes, left(timeout, httpcore2.ReadTimeout))
            if block_deadline() is not None:
                block_deadline().moved(len(data))
            return data

        def write(self, buffer: bytes, timeout: float | None = None) -> None:
            self._inner.write(buffer, left(timeout, httpcore2.WriteTimeout))

        def close(self) -> None:
            self._inner.close()

        def start_tls(self, ssl_context, server_hostname=None, timeout=None):
            return BoundedStream(self._inner.start_tls(ssl_context, server_hostname,
                                                       left(timeout, httpcore2.ConnectTimeout)))

        def get_extra_info(self, info: str):
            return self._inner.get_extra_info(info)

    class BoundedBackend(httpcore2.NetworkBackend):
        def __init__(self, inner):
            self._inner = inner

        def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
            return BoundedStream(self._inner.connect_tcp(host, port, left(timeout, httpcore2.ConnectTimeout),
                                                         local_address, socket_options))

        def connect_unix_socket(self, path, timeout=None, socket_options=None):
            return BoundedStream(self._inner.connect_unix_socket(path, timeout, socket_options))

        def sleep(self, seconds: float) -> None:
            self._inner.sleep(seconds)

    transport = httpx2.HTTPTransport()
    # httpx2 builds its httpcore2 pool without a way to pass a network
    # backend; the pool keeps it here (checked by tests/test_deadlines.py).
    transport._pool._network_backend = BoundedBackend(transport._pool._network_backend)
    return transport


# --- alarms (smtplib) --------------------------------------------------------------------


class Alarm:
    """Rings once (calls ``ring``) when its time comes, unless it was cancelled first."""

    def __init__(self, ring):
        self._ring = ring
        self._lock = threading.Lock()
        self.rang = False
        self.cancelled = False

    def cancel(self) -> None:
        """Once this returns, the alarm does not ring (if it is ringing, after it has)."""
        with self._lock:
            self.cancelled = True

    def fire(self) -> None:
        with self._lock:
            if self.cancelled:
                return
            self.rang = True
            self._ring()


class _Alarms:
    """One thread that rings each alarm at its time unless it was cancelled: an alarm per email
    sent without a thread per email (a threading.Timer cost 0.15 ms of CPU and a thread switch)."""

    def __init__(self):
        self._due: list[tuple[float, int, Alarm]] = []  # a heap: the next alarm first
        self._order = itertools.count()  # ties in time ring in the order set
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def set(self, seconds: float, ring) -> Alarm:
        alarm = Alarm(ring)
        with self._changed:
            heapq.heappush(self._due, (time.monotonic() + seconds, next(self._order), alarm))
            if self._thread is None or not self._thread.is_alive():  # the first, or in a forked child
                self._thread = threading.Thread(target=self._run, name="fedfina-alarms", daemon=True)
                self._thread.start()
            elif self._due[0][2] is alarm:
                self._changed.notify()  # sooner than the one the thread waits for
        return alarm

    def _run(self) -> None:
        with self._changed:
            while True:
                while self._due and self._due[0][2].cancelled:
                    heapq.heappop(self._due)
                if not self._due:
                    self._changed.wait()
                    continue
                left = self._due[0][0] - time.monotonic()
                if left > 0:
                    self._changed.wait(left)
                    continue
                alarm = heapq.heappop(self._due)[2]
                self._changed.release()  # ringing (a socket shutdown) must not hold up set()
                try:
                    alarm.fire()
                finally:
                    self._changed.acquire()


_alarms = _Alarms()


def alarm(seconds: float, ring) -> Alarm:
    """Call ``ring`` (on another thread) in ``seconds``, unless the alarm is cancelled first."""
    return _alarms.set(seconds, ring)
