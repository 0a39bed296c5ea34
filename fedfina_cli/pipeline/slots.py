"""Provider slots: what ``--concurrency`` bounds.

A conversation spends most of its time waiting on ElevenLabs and the model;
those waits are what concurrency is for, and what providers limit. Its own
work afterwards (the report, five uploads, the email, the ledger) takes tens
of milliseconds and needs no provider: holding a slot through it would keep
the next conversation from starting its fetch. So a conversation holds one of
``concurrency`` slots from its fetch until the model has answered and its
recording is stored (the two run side by side), and the
pipeline runs a few more threads than slots (``threads_for``) to make reports
and send emails alongside.

A queue's worker takes its slot before it claims a conversation (``take``) and
hands it to the pipeline: a worker that claimed first held conversations it
could not start, while other workers on the same ledger found the queue empty
(8 workers were 4.5x one instead of 7x).
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

    def take(self, timeout: float | None) -> Callable[[], None] | None:
        """A slot, and the function that gives it back (idempotent, from any thread); None if none
        came free within ``timeout`` seconds (None: wait for one)."""
        slots = self._slots
        if slots is None:
            return lambda: None
        if not slots.acquire(timeout=timeout):
            return None
        once = threading.Lock()  # given back from any thread: the audio fetch's may be the last to finish

        def release() -> None:
            if once.acquire(blocking=False):
                slots.release()

        return release

    @contextmanager
    def held(self, taken: Callable[[], None] | None = None) -> Iterator[Callable[[], None]]:
        """Hold a slot (``taken``: one the caller took already); the yielded function gives it
        back early (idempotent)."""
        release = taken or self.take(timeout=None)
        assert release is not None  # no timeout: it waited for one
        try:
            yield release
        finally:
            release()
