"""Delivering the report email: to the outbox folder, or by SMTP.

Exactly-once delivery works with the pipeline: ``send`` calls ``on_handover``
at the last moment before the message can no longer be taken back (before the
rename into the outbox; before the final "." of SMTP DATA). The pipeline marks
the ledger "sending" there, and "sent" when ``send`` returns. A run that finds
"sending" asks ``was_delivered``; see the README, "Crash safety".
"""

from __future__ import annotations

from dataclasses import dataclass
from email import message_from_binary_file
from email.message import EmailMessage
from pathlib import Path
from typing import Callable, Protocol

from .keys import outbox_path
from .storage.local import atomic_write

OUTBOX_SENDER = "reports@fedfina.invalid"


@dataclass(frozen=True)
class Delivery:
    message_id: str
    location: str  # the .eml path, or the SMTP server that accepted it


class Mailer(Protocol):
    description: str
    sender: str

    def send(self, message: EmailMessage, account_id: str, conversation_id: str,
             on_handover: Callable[[], None]) -> Delivery: ...

    def was_delivered(self, message_id: str, account_id: str, conversation_id: str) -> bool | None:
        """True/False when the mailer can tell; None when it cannot (plain SMTP)."""
        ...


class OutboxMailer:
    """Writes standards-compliant .eml files instead of sending (no SMTP configured)."""

    def __init__(self, outbox_dir: Path, sender: str | None = None):
        self.outbox_dir = outbox_dir
        self.sender = sender or OUTBOX_SENDER
        self.description = f"outbox({outbox_dir})"

    def path(self, account_id: str, conversation_id: str) -> Path:
        return outbox_path(self.outbox_dir, account_id, conversation_id)

    def send(self, message: EmailMessage, account_id: str, conversation_id: str,
             on_handover: Callable[[], None]) -> Delivery:
        target = self.path(account_id, conversation_id)
        atomic_write(target, [message.as_bytes()], before_rename=on_handover)
        return Delivery(message_id=message["Message-ID"], location=str(target))

    def was_delivered(self, message_id: str, account_id: str, conversation_id: str) -> bool:
        target = self.path(account_id, conversation_id)
        if not target.is_file():
            return False
        with target.open("rb") as handle:
            return message_from_binary_file(handle)["Message-ID"] == message_id
