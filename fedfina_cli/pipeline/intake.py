"""Taking conversations in for the queue (SPEC "Serving").

A post-call webhook, the server's sweep and `POST /api/v1/postprocess/conversation`
all end here: what they bring is recorded durably (the conversation in storage,
the ledger row `queued`) before anyone is told it was accepted, so nothing
accepted is lost when a process dies. The workers (pipeline/queue.py) do the rest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fedfina_cli.core import validation
from fedfina_cli.core.conversation import Conversation, parse_conversation, routing_variable
from fedfina_cli.core.errors import InvalidValue, StageError
from fedfina_cli.core.object_keys import content_type, incoming_audio_key, object_key
from fedfina_cli.core.timefmt import utc_in
from fedfina_cli.ledger.ledger import Ledger
from fedfina_cli.ledger.rows import ConversationRow
from fedfina_cli.services.storage import Storage

# Not the pipeline's NO_ACCOUNT/NO_RECIPIENT (conversation_pipeline.py): a conversation brought in by a webhook or a
# request has no command line to pass --account-id on, so these say where else the value comes from.
UNROUTED_ACCOUNT = ("no account id: the conversation's dynamic variables have no account_id (or account); "
                    "set it in the agent's call, or run `fedfina run -c {id} --account-id A --email E`")
UNROUTED_RECIPIENT = ("no recipient: the conversation's dynamic variables have no email_id (or email); "
                      "set it in the agent's call, or run `fedfina run -c {id} --email E`")


@dataclass(frozen=True)
class Intake:
    """What became of one conversation brought in."""

    conversation_id: str
    status: str  # queued | completed | processing | failed
    message: str
    row: ConversationRow | None = None  # its ledger row (None: it failed before an account was known)
    queued_now: bool = False


def accept_request(ledger: Ledger, conversation_id: str, account_id: str, email_id: str) -> Intake:
    """`POST /api/v1/postprocess/conversation`: queue it; the workers fetch it from the API."""
    row, queued = ledger.queue.enqueue(conversation_id, account_id, email_id, "api")
    return _intake(row, queued)


def accept_conversation(ledger: Ledger, storage: Storage, payload: dict[str, Any], source: str) -> Intake:
    """A whole conversation (a post_call_transcription webhook's ``data``, or one the sweep
    fetched): store it and queue it, so no worker asks the API for it again.

    Raises FedfinaError (StageError, InvalidValue) when the payload is not a usable
    conversation; one without an account or recipient is recorded failed, with the reason.
    """
    conversation = parse_conversation(payload)
    conversation_id = validation.conversation_id(conversation.conversation_id)
    known = [r for r in ledger.rows_for(conversation_id) if r["account_id"]]
    account = _routing(conversation, "account_id") \
        or (known[0]["account_id"] if len(known) == 1 else None)
    email = _routing(conversation, "email_id") \
        or (known[0]["email_id"] if len(known) == 1 else None)
    if account is None:
        message = UNROUTED_ACCOUNT.format(id=conversation_id)
        ledger.record_unresolved_failure(conversation_id, email, "resolve", message, retryable=False)
        return Intake(conversation_id, "failed", message)
    current = ledger.rows_for(conversation_id, account)
    if current and in_hand(current[0]):
        return _intake(current[0], False)  # a duplicate delivery: processed once
    raw = json.dumps(payload, ensure_ascii=False, indent=2).encode("utf-8")
    stored = storage.put_bytes(object_key(account, conversation_id, "conversation"), raw,
                               content_type("conversation"))
    if email is None:
        row = ledger.open_conversation(conversation_id, account, None)
        ledger.record_file(row, "conversation", stored)
        message = UNROUTED_RECIPIENT.format(id=conversation_id)
        row = ledger.update(row["processing_id"], status="failed", current_step="resolve",
                            error_message=message, retryable=0)
        ledger.audit(row, "resolve", "failed", "failed", message)
        return Intake(conversation_id, "failed", message, row)
    row, queued = ledger.queue.enqueue(conversation_id, account, email, source)
    ledger.record_file(row, "conversation", stored)
    if queued:
        ledger.audit(row, "queue", "queued", "queued", f"from {source}")
    return _intake(row, queued)


EMPTY_AUDIO = "no recording (empty file)"


def accept_audio(ledger: Ledger, storage: Storage, conversation_id: str, audio: bytes) -> list[str]:
    """A post_call_audio webhook's recording: stored as the conversation's audio object.

    The hand-over with the transcription, which may arrive at the same moment: the
    recording is written to a holding area (core/object_keys.incoming_audio_key), then
    recorded in the ledger as held, then the conversation is looked for. Found, this
    webhook moves it; not found, the transcription's worker will, for it looks for the
    held recording after its row exists. Taking the held row is one statement that one
    caller wins, so whichever lands second attaches the audio and none is left behind
    (3 to 24 of 40 were, when the webhook looked for the conversation first).
    Returns the keys written.
    """
    if not audio:  # a 0-byte "recording" is none: said, not stored
        for row in (r for r in ledger.rows_for(conversation_id) if r["account_id"]):
            ledger.audit(row, "fetch", "note", "note", f"{EMPTY_AUDIO} from the post_call_audio webhook")
        return []
    held = incoming_audio_key(conversation_id)
    storage.put_bytes(held, audio, content_type("audio"))
    ledger.hold_audio(conversation_id, held, len(audio))
    rows = [r for r in ledger.rows_for(conversation_id) if r["account_id"]]  # after the hold: see above
    if not rows or ledger.take_held_audio(conversation_id) is None:
        return [held]  # the transcription's worker moves it (or has just taken it)
    keys = []
    for row in rows:
        key = object_key(row["account_id"], conversation_id, "audio")
        stored = storage.put_bytes(key, audio, content_type("audio"))
        ledger.record_file(row, "audio", stored)
        ledger.update(row["processing_id"], audio_key=key)
        ledger.audit(row, "fetch", "note", "note", f"audio from the post_call_audio webhook: {len(audio)} bytes")
        keys.append(key)
    storage.delete(held)
    ledger.release_held_audio(conversation_id)
    return keys


def discard_stale_audio(ledger: Ledger, storage: Storage, max_age_seconds: float = 86400) -> int:
    """Recordings held longer than a day with no transcription come for them: deleted, each
    with an audit line (the transcription webhook may be off, or the call's was refused)."""
    cutoff = utc_in(-max_age_seconds)
    discarded = 0
    for held in ledger.held_audio_before(cutoff):
        # A day old, taken or not: a taker that died between taking and moving left it.
        storage.delete(held["object_key"])
        ledger.release_held_audio(held["conversation_id"])
        ledger.audit({"processing_id": None, "conversation_id": held["conversation_id"]}, "intake", "discarded",
                     "discarded", f"recording held since {held['received_at']} ({held['size_bytes']} bytes) "
                     "with no transcription for it: deleted")
        discarded += 1
    return discarded


def record_initiation_failure(ledger: Ledger, data: dict[str, Any]) -> str | None:
    """A call_initiation_failure webhook: the call never started. Recorded as a failed
    conversation (nothing to process, nothing to retry) where it names a valid id."""
    try:
        conversation_id = validation.conversation_id(str(data.get("conversation_id") or ""))
    except InvalidValue:
        return None
    reason = str(data.get("failure_reason") or "no reason given")[:500]
    account = ""
    client_data = data.get("conversation_initiation_client_data")
    variables = client_data.get("dynamic_variables") if isinstance(client_data, dict) else None
    if isinstance(variables, dict):
        for name in ("account_id", "account"):
            try:
                account = validation.account_id(str(variables[name]))
                break
            except (KeyError, InvalidValue):
                continue
    message = f"the call never started (call_initiation_failure: {reason})"
    row = ledger.open_conversation(conversation_id, account, None)
    row = ledger.update(row["processing_id"], status="failed", current_step="call", error_message=message,
                        retryable=0)
    ledger.audit(row, "call", "call_initiation_failure", "failed", message)
    return conversation_id


def in_hand(row: ConversationRow) -> bool:
    """Completed, or already on the queue: a second delivery changes nothing."""
    return row["status"] in ("completed", "queued", "processing") and (
        row["status"] != "processing" or row.get("claimed_by") is not None)


def _intake(row: ConversationRow, queued_now: bool) -> Intake:
    status = row["status"]
    message = {"queued": "Conversation processing started" if queued_now else "Conversation already queued",
               "processing": "Conversation is being processed",
               "completed": "Conversation already processed"}.get(status, f"Conversation is {status}")
    return Intake(row["conversation_id"], status, message, row, queued_now)


def _routing(conversation: Conversation, field_name: str) -> str | None:
    """The conversation's own account or recipient; an invalid one counts as missing (recorded as such)."""
    try:
        return routing_variable(conversation, field_name)
    except StageError:
        return None
