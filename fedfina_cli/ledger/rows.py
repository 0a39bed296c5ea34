"""The ledger's rows as types: what a statement returns, and a conversation's row by its columns.

A conversation's row crosses the code (ledger -> claims -> pipeline -> show and the
server); its columns are named here once, so a misspelt column is a type error,
not a KeyError at run time. The database hands back plain dicts; these types say
what is in them (``typing.cast``: no copy, no cost).
"""

from __future__ import annotations

from typing import Any, TypedDict, cast

Row = dict[str, Any]  # one row, as the database returns it (column -> value)


class ConversationRow(TypedDict):
    """One row of ``conversation_processing`` (SPEC "Ledger"), every column, in the tables' order."""

    processing_id: int
    conversation_id: str
    account_id: str
    email_id: str | None
    status: str  # pending | queued | processing | completed | failed
    current_step: str | None
    error_message: str | None
    conversation_key: str | None
    transcript_key: str | None
    audio_key: str | None
    summary_key: str | None
    report_key: str | None
    email_message_id: str | None
    email_sent_at: str | None
    email_state: str | None  # None | "sending" | "sent"
    model: str | None
    prompt_sha256: str | None
    summary_method: str | None
    retryable: int | None
    started_at: str | None
    completed_at: str | None
    created_at: str | None
    updated_at: str | None
    claimed_by: str | None  # host:pid of the process that holds the claim
    claim_expires_at: str | None
    queued_at: str | None
    source: str | None  # api | webhook | sweep | request (an API request whose call was read to route it)
    redactions: str | None  # JSON: identifier type -> how many were masked
    unsupported_figures: int | None
    claim_worker: int | None
    claim_token: str | None
    storage: str | None  # where its files were last stored: a folder, or s3://endpoint/bucket
    purged_at: str | None  # its files deleted past retention (the row stays)
    legal_hold: int | None  # 1: purge never deletes its files
    applicant_name: str | None  # as the report shows it (the console's search)
    phone_last4: str | None  # the applicant's phone, last four digits (the console's search)


def conversation(row: Row) -> ConversationRow:
    return cast(ConversationRow, row)


def conversation_or_none(row: Row | None) -> ConversationRow | None:
    return None if row is None else cast(ConversationRow, row)


def conversations(rows: list[Row]) -> list[ConversationRow]:
    return cast(list[ConversationRow], rows)
