"""What clients report about each external call; the pipeline stores it in the ledger."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ApiCall:
    service: str  # elevenlabs | openai | storage | smtp
    operation: str
    status_code: int | None
    duration_ms: int
    bytes: int | None = None
    tokens: int | None = None
    error: str | None = None
    conversation_id: str | None = None


Metrics = Callable[[ApiCall], None]


def elapsed_ms(started: float) -> int:
    """Milliseconds since a time.monotonic() reading."""
    return int((time.monotonic() - started) * 1000)
