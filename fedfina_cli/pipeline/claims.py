"""Per-conversation claims: how many processes share one ledger (SPEC "Many processes, one ledger").

Before a conversation is processed its ledger row is claimed for this process
(``claimed_by`` = host and pid) until ``claim_expires_at``. A heartbeat thread
pushes the expiry back while the work runs, and the claim is released at the
end. A process that dies stops renewing: once its claims expire, any other
process takes them over. The ledger's conditional UPDATE makes a claim atomic.
"""

from __future__ import annotations

import os
import socket
import threading
from datetime import datetime, timedelta, timezone

from fedfina_cli.core.errors import StageError
from fedfina_cli.core.timefmt import utc_text
from fedfina_cli.ledger.ledger import Ledger

DEFAULT_CLAIM_SECONDS = 60.0


class ClaimLost(StageError):
    """Another process took this conversation over (this one stalled past its claim)."""

    def __init__(self, conversation_id: str):
        super().__init__(f"this process's claim on {conversation_id} expired and another process took it "
                         "over; it is finishing the conversation (nothing was sent from here)", retryable=True)


def owner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _expiry(seconds: float) -> str:
    return utc_text(datetime.now(timezone.utc) + timedelta(seconds=seconds))


class Claims:
    """This process's claims on one ledger, renewed every third of their lifetime."""

    def __init__(self, ledger: Ledger, seconds: float = DEFAULT_CLAIM_SECONDS, owner: str | None = None):
        self.ledger = ledger
        self.seconds = seconds
        self.owner = owner or owner_name()
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def __enter__(self) -> Claims:
        self._heartbeat = threading.Thread(target=self._renew, name="fedfina-claims", daemon=True)
        self._heartbeat.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()

    def claim(self, conversation_id: str, account_id: str, email_id: str | None) -> tuple[dict, bool]:
        """(the conversation's row, whether this process now holds it)."""
        return self.ledger.claim(conversation_id, account_id, email_id, self.owner, _expiry(self.seconds))

    def claim_next_queued(self) -> dict | None:
        """The oldest queued conversation, claimed for this process (None: the queue is empty)."""
        return self.ledger.claim_next_queued(self.owner, _expiry(self.seconds))

    def check(self, row: dict) -> None:
        """Raise ClaimLost unless this process still holds ``row`` (before an irreversible step)."""
        if not self.ledger.holds_claim(row["processing_id"], self.owner):
            raise ClaimLost(row["conversation_id"])

    def release(self, row: dict) -> None:
        self.ledger.release(row["processing_id"], self.owner)

    def _renew(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                self.ledger.renew_claims(self.owner, _expiry(self.seconds))
            except Exception:  # noqa: BLE001 - a failed renewal is retried; the claim has slack
                pass
