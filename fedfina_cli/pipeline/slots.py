"""Provider slots: what ``--concurrency`` bounds.

A conversation spends most of its time waiting on ElevenLabs and the model;
those waits are what concurrency is for, and what providers limit. Its own
work afterwards (the report, five uploads, the email, the ledger) takes tens
of milliseconds and needs no provider: holding a slot through it would keep
the next conversation from starting its fetch. So a conversation holds one of
``concurrency`` slots from its fetch to the end of its summary, and the
pipeline runs a few more threads than slots (``threads_for``) to make reports
and send emails alongside.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def threads_for(concurrency: int) -> int:
    """Worker threads for ``concurrency`` slots: half again, to finish conversations alongside."""
    return concurrency + max(1, concurrency // 2)


class ProviderSlots:
    def __init__(self, concurrency: int | None):
        """``concurrency`` None: no bound (a pipeline whose caller bounds its threads itself)."""
        self._slots = threading.BoundedSemaphore(concurrency) if concurrency else None

    @contextmanager
    def held(self) -> Iterator[Callable[[], None]]:
        """Hold a slot; the yielded function gives it back early (idempotent)."""
        slots = self._slots
        if slots is None:
            yield lambda: None
            return
        slots.acquire()
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                slots.release()

        try:
            yield release
        finally:
            release()
