"""Exit statuses and the exceptions a user can act on.

Every exception here carries a one-line message that says what went wrong and
what to do; the CLI prints it without a traceback (unless --debug).
"""

from __future__ import annotations

import errno
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # at least one conversation failed; the others are done
    USAGE = 2  # bad usage or configuration; nothing was processed
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT): run the same command again to finish
    TERMINATED = 143  # SIGTERM (128 + SIGTERM): likewise


class FedfinaError(Exception):
    """A failure with a message fit to show a user as is."""

    exit_code = ExitCode.FAILED


class UsageError(FedfinaError):
    """Bad flags, input values or configuration: exit 2 before any work."""

    exit_code = ExitCode.USAGE


class InvalidValue(UsageError):
    """An identifier or address that fails validation."""

    def __init__(self, field: str, value: object, reason: str):
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"invalid {field} {shown(value)}: {reason}")


class LedgerError(UsageError):
    """The ledger cannot be opened, read or written: the run stops (exit 2), naming the file.

    ``retryable``: the database went away for a while (a restart): trying again may succeed.
    """

    def __init__(self, message: str, *, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


class StageError(FedfinaError):
    """One conversation's stage failed; the batch goes on.

    ``retryable`` tells a later run (or `run --failed`) that trying again may
    succeed, e.g. a conversation that ElevenLabs has not finished processing.
    """

    def __init__(self, message: str, *, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


class DiskFull(StageError):
    """No space (ENOSPC) or quota (EDQUOT) left where a file was being written: a passing
    state, retried (from the queue, or by `run --failed`), never a conversation's end.
    The server answers 503 to what it cannot record meanwhile."""

    def __init__(self, message: str):
        super().__init__(message, retryable=True)


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


class ClaimLost(StageError):
    """This process no longer holds the conversation's claim (it stalled past it, and another process
    took the conversation over): it writes nothing more on the row and sends nothing."""

    def __init__(self, conversation_id: str):
        super().__init__(f"this process's claim on {conversation_id} expired and another process took it "
                         "over; it is finishing the conversation (nothing was sent from here)", retryable=True)


class NotReady(StageError):
    def __init__(self, message: str):
        super().__init__(message, retryable=True)


class MissingArtifact(StageError):
    """A stage command ran before the stage that produces its input."""


def shown(value: object) -> str:
    """Quote a user-supplied value so control characters stay visible."""
    text = str(value)
    escaped = text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text
    if len(escaped) > 120:
        escaped = escaped[:117] + "..."
    return f"'{escaped}'"
