"""Stopping on Ctrl-C or SIGTERM: finish what is in flight; a second signal ends the process at once.

Shared by the CLI's runs (which raise on the first signal to stop handing out work)
and by `serve` and `worker` (which record it and stop their workers).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType


@contextmanager
def graceful_stop(on_first: Callable[[int], None]) -> Iterator[list[int]]:
    """While inside: SIGINT and SIGTERM call ``on_first(signum)`` the first time (it may raise, to
    unwind the caller), and end the process at once the second (exit status 128 + signal).
    Yields the signals received, in order. The previous handlers come back on leaving."""
    received: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        if len(received) > 1:
            os._exit(128 + signum)  # nothing is lost: the ledger resumes what was in flight
        on_first(signum)

    previous = {signum: signal.signal(signum, handler) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
