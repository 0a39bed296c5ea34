"""The API-call rows (``api_usage_metrics``), written in batches.

A conversation makes about eleven calls to the providers (two fetches, a summary, five
uploads, two signed links, a send). A row each, in a statement and a commit each, was a
quarter of the ledger's statements and more than a millisecond of CPU a conversation.
They are written together instead: when a hundred are waiting, when the oldest has waited
a second (a background thread looks), before this process reads them (the console's
operations page) and when the ledger closes.

What that costs: another process (`stats`, another host's console) sees a call at most a
second late, and a process killed with SIGKILL loses the rows of its last second. Nothing
that decides what happens next is written this way: a conversation's state, its files, its
audit lines and an email's hand-over are written at once, as before. A database that
refuses the rows (down, read-only) keeps them waiting, up to ``KEPT`` of them, and is said
once in the log; a conversation never fails for its metrics.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from fedfina_cli.core.api_calls import ApiCall
from fedfina_cli.core.errors import LedgerError
from fedfina_cli.core.timefmt import utc_now
from fedfina_cli.ledger.database import Sql

log = logging.getLogger("fedfina")

COLUMNS = ("service", "operation", "status_code", "duration_ms", "bytes", "tokens", "conversation_id", "error",
           "created_at")
BATCH = 100  # rows in one statement
DELAY = 1.0  # seconds the oldest row waits at most
KEPT = 10_000  # rows kept while the database refuses them; older ones are dropped, and counted


class ApiCallLog:
    def __init__(self, sql: Sql, redact: Callable[[str], str]):
        self._sql = sql
        self._redact = redact
        self._pending: list[tuple[object, ...]] = []
        self._lock = threading.Lock()  # guards _pending
        self._writing = threading.Lock()  # one write at a time: rows reach the table in order
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False  # said in the log once per outage
        self.dropped = 0

    def record(self, call: ApiCall) -> None:
        row = (call.service, call.operation, call.status_code, call.duration_ms, call.bytes, call.tokens,
               call.conversation_id, self._redact(call.error) if call.error else None, utc_now())
        with self._lock:
            self._pending.append(row)
            full = len(self._pending) >= BATCH
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._every_second, name="fedfina-api-calls", daemon=True)
                self._thread.start()
        if full:
            self.flush(quiet=True)

    def flush(self, quiet: bool = False) -> None:
        """Write every waiting row. ``quiet``: a refusal is logged (once), not raised."""
        with self._writing:
            with self._lock:
                rows, self._pending = self._pending, []
            for start in range(0, len(rows), BATCH):
                batch = rows[start:start + BATCH]
                try:
                    self._insert(batch)
                except LedgerError as exc:
                    self._keep(rows[start:])
                    if not self._failing:
                        self._failing = True
                        log.warning("API-call rows wait to be written to the ledger: %s", exc)
                    if quiet:
                        return
                    raise
            if self._failing and rows:
                self._failing = False
                log.warning("API-call rows written to the ledger again")

    def close(self) -> None:
        """Stop the thread and write what waits; what cannot be written is said, not raised."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            self.flush()
        except LedgerError as exc:
            with self._lock:
                lost, self._pending = len(self._pending), []
            log.warning("%d API-call rows not written to the ledger: %s", lost, exc)
        if self.dropped:
            log.warning("%d API-call rows dropped while the ledger refused them", self.dropped)

    def _insert(self, rows: list[tuple[object, ...]]) -> None:
        one = "(" + ", ".join("?" * len(COLUMNS)) + ")"
        self._sql.run(f"insert into api_usage_metrics ({', '.join(COLUMNS)}) values {', '.join([one] * len(rows))}",
                      [value for row in rows for value in row])

    def _keep(self, rows: list[tuple[object, ...]]) -> None:
        with self._lock:
            self._pending[:0] = rows  # before what came in meanwhile: the order stays
            excess = len(self._pending) - KEPT
            if excess > 0:
                del self._pending[:excess]
                self.dropped += excess

    def _every_second(self) -> None:
        while not self._stop.wait(DELAY):
            self.flush(quiet=True)
