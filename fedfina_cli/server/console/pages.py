"""What the console's pages show, read from the ledger and storage (blocking; the routes run
these in a thread). No HTTP here: routes.py decides who may ask, templates/ how it looks."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fedfina_cli.core import accounts
from fedfina_cli.core.conversation import Conversation, applicant_phone, parse_conversation
from fedfina_cli.core.errors import FedfinaError
from fedfina_cli.core.figures import to_check
from fedfina_cli.core.jsonio import loads
from fedfina_cli.core.redaction import redact_conversation
from fedfina_cli.core.summary import SummaryDocument
from fedfina_cli.core.timefmt import clock
from fedfina_cli.core.wording import masked_phone
from fedfina_cli.ledger.console import PAGE_SIZE, Listing
from fedfina_cli.ledger.queries import Retention, retention_of, row_record
from fedfina_cli.ledger.rows import ConversationRow, Row
from fedfina_cli.pipeline.purge import storage_of
from fedfina_cli.pipeline.run_context import RunContext
from fedfina_cli.services.storage import Storage

STATUSES = ("queued", "processing", "completed", "failed", "pending")


@dataclass
class ListPage:
    rows: list[ConversationRow]
    next_after: str | None  # the cursor of the next page ("created_at|processing_id"), None on the last


def list_page(session: RunContext, listing: Listing) -> ListPage:
    rows = session.ledger.console.conversations(listing)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    after = f"{rows[-1]['created_at']}|{rows[-1]['processing_id']}" if more and rows else None
    return ListPage(rows, after)


@dataclass
class TurnView:
    speaker: str
    role: str
    text: str
    seconds: int
    at: str  # mm:ss
    tools: list[str] = field(default_factory=list)
    failed_tools: list[str] = field(default_factory=list)


@dataclass
class ConversationPage:
    row: ConversationRow
    record: dict[str, Any]
    retention: Retention | None
    phone: str | None
    turns: list[TurnView]
    transcript_note: str | None  # why there is no transcript, when there is none
    figures: list[str]  # the summary's figures the call does not support, as the report words them
    overview: str | None
    report_available: bool
    audio_available: bool
    audio_type: str


def conversation_page(session: RunContext, row: ConversationRow) -> ConversationPage:
    ledger, storage = session.ledger, session.backends.storage
    record = row_record(ledger, row, lambda key, where: "")
    live = {f["file_type"]: f for f in ledger.files_for(row["conversation_id"], row["account_id"])
            if not f.get("deleted_at")}
    # Masked as the account's report is: FEDFINA_REDACT, unless the account chose otherwise.
    masked = accounts.defaults(session.settings).overridden(
        accounts.from_row(ledger.account_settings(row["account_id"]))).masks_documents
    conversation, note = _conversation(storage, live.get("conversation"), masked)
    summary = _summary(storage, live.get("summary"))
    audio = live.get("audio")
    return ConversationPage(
        row=row, record=record, retention=retention_of(row, record["audit_log"]),
        phone=masked_phone(applicant_phone(conversation)) if conversation else None,
        turns=_turns(conversation) if conversation else [],
        transcript_note=note,
        figures=to_check(summary) if summary else [],
        overview=summary.summary.overview if summary else None,
        report_available="report" in live, audio_available=audio is not None,
        audio_type=str(audio.get("content_type") or "audio/mpeg") if audio else "audio/mpeg")


def _read(storage: Storage, file: Row | None) -> bytes | None:
    if file is None:
        return None
    holder = storage_of(file, storage)
    if holder is None:
        return None
    try:
        return holder.get_bytes(file["object_key"])
    except FedfinaError:
        return None


def _conversation(storage: Storage, file: Row | None, masked: bool) -> tuple[Conversation | None, str | None]:
    raw = _read(storage, file)
    if raw is None:
        return None, "The call's transcript is not in storage (not fetched yet, purged, or in storage these " \
                     "settings cannot reach)."
    try:
        conversation = parse_conversation(loads(raw))
    except (FedfinaError, ValueError) as exc:
        return None, f"The stored conversation could not be read: {exc}"
    # As the account's report shows it (AccountSettings.masks_documents).
    return (redact_conversation(conversation)[0] if masked else conversation), None


def _summary(storage: Storage, file: Row | None) -> SummaryDocument | None:
    raw = _read(storage, file)
    if raw is None:
        return None
    try:
        return SummaryDocument.from_json(raw)
    except ValueError:
        return None


def _turns(conversation: Conversation) -> list[TurnView]:
    turns = []
    for turn in conversation.turns:
        if not turn.text and not turn.tool_results:
            continue
        turns.append(TurnView(
            speaker=turn.speaker or turn.role, role=turn.role, text=turn.text, seconds=turn.time_in_call_secs,
            at=clock(turn.time_in_call_secs),
            tools=[str(r) for r in turn.tool_results if not r.failed],
            failed_tools=[str(r) for r in turn.tool_results if r.failed]))
    return turns


# A failure's message names its conversation, long numbers and keys: grouped by what is left
# (an HTTP status stays: a 404 and a 503 are different reasons).
_PARTICULARS = re.compile(r"conv_[A-Za-z0-9]+|\b[0-9a-f]{16,}\b|\d{4,}|\d+\.\d+")


def reason_of(message: str | None) -> str:
    if not message:
        return "(no message)"
    return _PARTICULARS.sub("…", message)[:200]


@dataclass
class OperationsPage:
    queued: int
    in_flight: int
    failures: list[tuple[str, int, str]]  # (reason, how many, one example's message)
    hours: list[tuple[str, int]]  # (YYYY-MM-DDTHH, calls), 24 of them, oldest first
    busiest: int
    workers: list[Row]
    calls: list[Row]
    throttles: list[tuple[str, str]]
    now: str


def operations_page(session: RunContext) -> OperationsPage:
    found = session.ledger.console.operations()
    grouped: Counter[str] = Counter()
    example: dict[str, str] = {}
    for row in found["failures"]:
        reason = reason_of(row["error_message"])
        grouped[reason] += int(row["n"])
        example.setdefault(reason, row["error_message"] or "")
    counts = {str(r["hour"]): int(r["n"]) for r in found["hours"]}
    hours = [(hour, counts.get(hour, 0)) for hour in _last_hours(found["now"], 24)]
    return OperationsPage(
        queued=found["queued"], in_flight=found["in_flight"],
        failures=[(reason, n, example[reason]) for reason, n in grouped.most_common(20)],
        hours=hours, busiest=max([n for _, n in hours] or [0]), workers=found["workers"], calls=found["calls"],
        throttles=_throttles(session), now=found["now"])


def _last_hours(now: str, n: int) -> list[str]:
    end = datetime.strptime(now[:13], "%Y-%m-%dT%H")
    return [(end - timedelta(hours=i)).strftime("%Y-%m-%dT%H") for i in range(n - 1, -1, -1)]


def _throttles(session: RunContext) -> list[tuple[str, str]]:
    """Each provider's pace as this process's throttle holds it (SPEC: provider rates)."""
    said = []
    for name, client in (("ElevenLabs", session.backends.elevenlabs), ("Model", session.backends.summarizer)):
        throttle = getattr(client, "throttle", None)
        if throttle is None:
            continue
        rate = throttle.rate
        said.append((name, "not paced (no 429 seen)" if rate is None else f"{rate:.1f} requests a second"))
    return said
