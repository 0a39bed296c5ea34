"""This process's claims on conversations (SPEC "Many processes, one ledger").

A process that works on conversations registers as a worker in the ledger and
beats a heartbeat every third of a claim's lifetime. Before a conversation is
processed its row is claimed with a token of this claim's own; the heartbeat
renews the worker row and exactly the claims this process holds in memory, and
the claim is released at the end. The SQL is ledger/queue.py; this module is
the process's side: the heartbeat thread, the tokens, and what to do when the
ledger does not answer.

- A process that dies stops beating: once its worker row is stale, any process
  prunes it and releases its claims. On this host a dead process is seen at
  once (its pid is gone, or is another process's: the start time differs), so a
  cron run killed and started again finishes the work without waiting.
- A claim this process lost track of (its release failed) is not renewed: it
  expires.
- A heartbeat that fails is logged; once none has succeeded for a claim's
  lifetime, this process takes no new work until one does (its claims may have
  passed to others: it must not work unowned).
- The email goes out only while this claim holds: one statement checks the token
  and marks the email "sending" (mark_sending).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid

from fedfina_cli.core import processes
from fedfina_cli.core.errors import ClaimLost, LedgerError
from fedfina_cli.core.timefmt import utc_in
from fedfina_cli.ledger.ledger import Ledger
from fedfina_cli.ledger.rows import ConversationRow

DEFAULT_CLAIM_SECONDS = 60.0

log = logging.getLogger("fedfina.claims")


def owner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Claims:
    """This process's worker record, its claims, and the heartbeat that keeps both."""

    def __init__(self, ledger: Ledger, seconds: float = DEFAULT_CLAIM_SECONDS, owner: str | None = None):
        self.ledger = ledger
        self.seconds = seconds
        self.owner = owner or owner_name()
        self.host = socket.gethostname()
        self.worker_id: int | None = None
        self._held: set[str] = set()  # the tokens of the claims this process works on: the heartbeat renews them
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._last_beat = time.monotonic()
        self._failing = False  # the heartbeat's last attempt failed (logged once per spell)

    def __enter__(self) -> Claims:
        self.worker_id = self.ledger.queue.register(self.host, os.getpid(), processes.started(os.getpid()),
                                                   utc_in(self.seconds))
        self._last_beat = time.monotonic()
        self.prune()  # a run killed on this host a moment ago: its claims are free now
        self._heartbeat = threading.Thread(target=self._beat_forever, name="fedfina-claims", daemon=True)
        self._heartbeat.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
        if self.worker_id is not None:
            try:
                self.ledger.queue.unregister(self.worker_id)
            except LedgerError as exc:  # it goes stale and is pruned; nothing is lost
                log.warning("could not remove this process's worker record: %s", exc)

    # --- claiming ---------------------------------------------------------------

    def claim(self, conversation_id: str, account_id: str,
              email_id: str | None) -> tuple[ConversationRow, str | None]:
        """(the conversation's row, this claim's token); the token is None when another live
        process holds the conversation."""
        self._check_alive()
        assert self.worker_id is not None, "claims are made inside `with Claims(...)`"
        for _ in range(2):
            token = self._hold()
            try:
                row, claimed = self.ledger.queue.claim(conversation_id, account_id, email_id, self.owner,
                                                       self.worker_id, token, utc_in(self.seconds))
            except BaseException:
                self._forget(token)
                raise
            if claimed:
                return row, token
            self._forget(token)
            # Its holder may be a process that has just died on this host: prune, and try again once.
            if not (row.get("claim_worker") and self.prune()):
                break
        return row, None

    def claim_to_purge(self, row: ConversationRow) -> str | None:
        """A claim on a finished conversation for `purge`, its status left as it is: the token, or
        None when another live process holds it or it is no longer purgeable (held, purged)."""
        self._check_alive()
        assert self.worker_id is not None, "claims are made inside `with Claims(...)`"
        token = self._hold()
        try:
            claimed = self.ledger.retention.claim(row["processing_id"], self.owner, self.worker_id, token,
                                                  utc_in(self.seconds))
        except BaseException:
            self._forget(token)
            raise
        if not claimed:
            self._forget(token)
            return None
        return token

    def claim_next_queued(self) -> tuple[ConversationRow, str] | None:
        """The oldest queued conversation, claimed for this process, and the claim's token
        (None: the queue is empty)."""
        self._check_alive()
        assert self.worker_id is not None, "claims are made inside `with Claims(...)`"
        token = self._hold()
        try:
            row = self.ledger.queue.claim_next(self.owner, self.worker_id, token, utc_in(self.seconds))
        except BaseException:
            self._forget(token)
            raise
        if row is None:
            self._forget(token)
            return None
        return row, token

    def mark_sending(self, row: ConversationRow, token: str, message_id: str, resend: bool) -> ConversationRow:
        """The row marked "sending", in the same statement that checks this claim still holds;
        ClaimLost (send nothing) when it does not."""
        marked = self.ledger.queue.mark_sending(row["processing_id"], token, message_id, resend)
        if marked is None:
            raise ClaimLost(row["conversation_id"])
        return marked

    def release(self, row: ConversationRow, token: str) -> None:
        try:
            self.ledger.queue.release(row["processing_id"], token)
        finally:
            self._forget(token)  # released, or left to expire: never renewed again

    def prune(self) -> int:
        """Remove workers that stopped (stale heartbeat, or gone from this host) and free their claims."""
        pruned = self.ledger.queue.prune(self.host, self.worker_id, processes.alive)
        for worker in pruned:
            log.warning("released the claims of worker %s (%s:%s): its heartbeat stopped at %s or its process "
                        "is gone", worker["worker_id"], worker["host"], worker["pid"], worker["heartbeat_at"])
        return len(pruned)

    @property
    def healthy(self) -> bool:
        """Whether the heartbeat succeeded within a claim's lifetime (else this process takes no new work)."""
        return time.monotonic() - self._last_beat < self.seconds

    # --- the heartbeat ------------------------------------------------------------

    def _beat_forever(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            self.beat()

    def beat(self) -> None:
        """Renew this worker and exactly the claims it holds; then prune workers that stopped."""
        try:
            with self._lock:
                tokens = list(self._held)
            assert self.worker_id is not None
            if not self.ledger.queue.beat(self.worker_id, utc_in(self.seconds), tokens):
                # Pruned by another process while this one stalled: its claims were released
                # (their sends will find the token gone). Register again to take new work.
                log.warning("this process's worker record %s was removed by another process (it stalled "
                            "past %g s); its claims were released; registering again", self.worker_id,
                            self.seconds)
                self.worker_id = self.ledger.queue.register(self.host, os.getpid(),
                                                            processes.started(os.getpid()), utc_in(self.seconds))
            self._last_beat = time.monotonic()
            if self._failing:
                log.warning("the heartbeat reaches the ledger again")
                self._failing = False
            self.prune()
        except Exception as exc:  # noqa: BLE001 - any failure: logged, and tried again at the next beat
            if not self._failing:
                log.error("the heartbeat could not reach the ledger (%s); trying again every %g s; no new work "
                          "is taken after %g s without one", exc, self.seconds / 3, self.seconds)
            self._failing = True

    def _check_alive(self) -> None:
        if not self.healthy:
            raise LedgerError(f"this process's heartbeat has not reached the ledger for "
                              f"{time.monotonic() - self._last_beat:.0f} s; it takes no new work until it does "
                              f"({self.ledger.description})", retryable=True)

    def _hold(self) -> str:
        token = uuid.uuid4().hex
        with self._lock:
            self._held.add(token)  # renewed from the moment the claim may exist
        return token

    def _forget(self, token: str) -> None:
        with self._lock:
            self._held.discard(token)
