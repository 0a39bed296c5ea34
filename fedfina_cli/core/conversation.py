"""ElevenLabs conversations, parsed once and leniently into small typed values.

The API adds fields over time and leaves many optional or null, so every
accessor here tolerates missing keys, nulls and unexpected types; the raw JSON
is kept in storage untouched for anything this model does not carry.
"""

from __future__ import annotations

import logging
import math
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedfina_cli.core import validation
from fedfina_cli.core.errors import InvalidValue, NotReady, StageError, UsageError
from fedfina_cli.core.jsonio import BadJSON, loads
from fedfina_cli.core.timefmt import clock
from fedfina_cli.core.wording import collected_value, readable_name

READY_STATUS = "done"
_unknown_statuses_seen: set[str | None] = set()

log = logging.getLogger("fedfina.conversation")
NOT_READY_STATUSES = ("initiated", "in-progress", "processing")
FINAL_FAILED_STATUS = "failed"

SPEAKER_LABELS = {"agent": "AI", "user": "User"}


@dataclass(frozen=True)
class ToolResult:
    """What one of the agent's tools returned during the call (a credit-bureau lookup, a GST
    check), as an officer reads it: "CIBIL score: 742", or failed with its reason."""

    tool: str  # the tool's name as a person says it: "Lookup CIBIL score"
    text: str  # the result, one line ("" when it returned nothing)
    failed: bool = False

    def __str__(self) -> str:
        if self.failed:
            return f"{self.tool} — failed" + (f": {self.text}" if self.text else "")
        return f"{self.tool} — {self.text or 'done, nothing returned'}"


@dataclass(frozen=True)
class Turn:
    role: str
    text: str  # "" for tool-only turns
    time_in_call_secs: int
    tool_names: tuple[str, ...] = ()
    tool_results: tuple[ToolResult, ...] = ()
    interrupted: bool = False  # the applicant cut the agent off: the text is what was said

    @property
    def speaker(self) -> str | None:
        return SPEAKER_LABELS.get(self.role)


@dataclass(frozen=True)
class PhoneCall:
    type: str | None
    direction: str | None
    agent_number: str | None
    external_number: str | None
    call_result: str | None = None  # answered | voicemail | busy | no_answer | failed (SDK: CallResult)


# A call whose result is one of these reached nobody: a notice, not a loan summary, and no model call.
UNANSWERED = {"voicemail": "The call reached voicemail", "no_answer": "Nobody answered the call",
              "busy": "The line was busy", "failed": "The call could not be connected"}


@dataclass(frozen=True)
class Feedback:
    """The applicant's own verdict on the call (SDK: ConversationHistoryFeedbackCommonModel)."""

    rating: int | None = None  # 1-5
    liked: bool | None = None  # overall_score like / dislike
    comment: str | None = None


@dataclass(frozen=True)
class Metadata:
    start_time_unix_secs: int | None = None
    call_duration_secs: int | None = None
    termination_reason: str | None = None
    main_language: str | None = None
    timezone: str | None = None
    phone_call: PhoneCall | None = None
    feedback: Feedback | None = None

    @property
    def unanswered(self) -> str | None:
        """Why nobody was interviewed (voicemail, no answer, busy, failed), in words; None if answered."""
        result = self.phone_call.call_result if self.phone_call else None
        return UNANSWERED.get(result or "")


@dataclass(frozen=True)
class CollectedValue:
    id: str
    value: Any
    rationale: str | None
    description: str | None


@dataclass(frozen=True)
class CriterionResult:
    id: str
    result: str | None
    rationale: str | None
    score: int | None = None  # scored criteria (SDK: score, max_score)
    max_score: int | None = None


@dataclass(frozen=True)
class Analysis:
    call_successful: str | None = None
    transcript_summary: str | None = None
    call_summary_title: str | None = None
    evaluation: tuple[CriterionResult, ...] = ()
    data_collection: tuple[CollectedValue, ...] = ()


@dataclass(frozen=True)
class Conversation:
    conversation_id: str
    agent_id: str | None
    agent_name: str | None
    status: str | None
    turns: tuple[Turn, ...]
    metadata: Metadata
    analysis: Analysis | None
    dynamic_variables: dict[str, str] = field(default_factory=dict)
    has_audio: bool = False

    @property
    def spoken_turns(self) -> tuple[Turn, ...]:
        return tuple(t for t in self.turns if t.text and t.speaker)

    @property
    def incomplete(self) -> str | None:
        """Why this copy cannot be processed as it is and must be read again from the API, or None.

        A post-call webhook sent with the agent's "exclude transcript" setting carries no
        turns; one sent (or a file saved) before the call was `done` is an early state.
        """
        if not self.turns:
            return "it carries no transcript (the agent's post-call webhook excludes it)"
        if self.status != READY_STATUS:
            return f"its status is {self.status!r}, not done"
        return None

    def dynamic(self, *names: str) -> str | None:
        """The first non-empty dynamic variable among ``names``."""
        for name in names:
            value = self.dynamic_variables.get(name)
            if value:
                return value
        return None


@dataclass(frozen=True)
class FetchedConversation:
    conversation: Conversation
    raw: bytes  # the JSON exactly as stored under conversations/


class AudioUnavailable(Exception):
    """The audio could not be fetched; the report and email still go out."""

def unwrap(payload: Any) -> dict[str, Any]:
    """The conversation object of a GET response or a post-call webhook envelope."""
    if not isinstance(payload, dict):
        raise StageError("conversation JSON is not an object")
    if isinstance(payload.get("conversations"), list):
        raise StageError(
            "this is a page of the conversation list, not one conversation; "
            "use `fedfina sync --agent-id ...` for lists"
        )
    data = payload.get("data")
    if "type" in payload and isinstance(data, dict):
        if payload["type"] != "post_call_transcription":
            raise StageError(
                f"webhook payload of type {payload['type']!r} carries no transcript; "
                "use the post_call_transcription payload"
            )
        return data
    return payload


def parse_conversation(payload: Any) -> Conversation:
    data = unwrap(payload)
    conversation_id = _str(data.get("conversation_id"))
    if not conversation_id:
        raise StageError("conversation JSON has no conversation_id")
    analysis = data.get("analysis")
    client_data = _dict(data.get("conversation_initiation_client_data"))
    return Conversation(
        conversation_id=conversation_id,
        agent_id=_str(data.get("agent_id")),
        agent_name=_str(data.get("agent_name")),
        status=_str(data.get("status")),
        turns=tuple(_turn(t) for t in _list(data.get("transcript")) if isinstance(t, dict)),
        metadata=_metadata(_dict(data.get("metadata"))),
        analysis=_analysis(analysis) if isinstance(analysis, dict) else None,
        dynamic_variables={
            str(k): str(v).strip()
            for k, v in _dict(client_data.get("dynamic_variables")).items()
            if isinstance(v, (str, int, float)) and not isinstance(v, bool)
        },
        has_audio=data.get("has_audio") is True,
    )


def load_conversation_file(path: Path) -> tuple[Conversation, dict[str, Any]]:
    """Read a saved conversation or webhook payload; returns the parsed value and the raw object."""
    try:
        payload = loads(path.read_bytes())
    except (FileNotFoundError, IsADirectoryError):
        raise UsageError(f"--from-file {path}: no such file") from None
    except BadJSON as exc:
        raise UsageError(f"--from-file {path}: {exc}") from None
    try:
        return parse_conversation(payload), unwrap(payload)
    except StageError as exc:
        raise UsageError(f"--from-file {path}: {exc}") from None


def routing_variable(conversation: Conversation, field_name: str) -> str | None:
    """The conversation's own account_id or email_id (its dynamic variables), validated.

    None when absent; StageError naming the variable when it is there but invalid.
    """

    names, check = {"account_id": (("account_id", "account"), validation.account_id),
                    "email_id": (("email_id", "email"), validation.email_address)}[field_name]
    value = conversation.dynamic(*names)
    if value is None:
        return None
    try:
        return check(value)
    except InvalidValue as exc:
        raise StageError(f"the conversation's dynamic variable {field_name}: {exc}") from None


def applicant_name(conversation: Conversation) -> str | None:
    """The applicant's name when the widget or the agent's data collection gives it."""
    names = ("applicant_name", "customer_name", "name", "user_name")
    value = conversation.dynamic(*names)
    if value:
        return value
    if conversation.analysis:
        for item in conversation.analysis.data_collection:
            if item.id in names and isinstance(item.value, str) and item.value.strip():
                return item.value.strip()
    return None


def named_applicant(conversation: Conversation, said: str | None) -> str | None:
    """The name the report, the subject and the attachment use: the call's data (its data
    collection or the widget's variables), else the name the summary took from the call
    (its ``applicant_name``). None: the masked phone stands in."""
    return applicant_name(conversation) or (said.strip() if said and said.strip() else None)


def applicant_phone(conversation: Conversation) -> str | None:
    """The applicant's number as given (mask it before showing): the widget's variables,
    else the phone call's other party (the caller inbound, the called outbound)."""
    number = conversation.dynamic("applicant_phone", "phone_number", "phone", "mobile", "system__caller_id")
    if number:
        return number
    call = conversation.metadata.phone_call
    return call.external_number if call else None


def check_ready(conversation: Conversation) -> None:
    """Only `done` conversations are complete; earlier states are retried by a later run."""
    status = conversation.status
    if status == READY_STATUS:
        return
    if status in NOT_READY_STATUSES:
        raise NotReady(
            f"conversation is not ready yet (status {status}); a later run will pick it up"
        )
    if status == FINAL_FAILED_STATUS:
        raise StageError("ElevenLabs reports this conversation as failed; there is nothing to process")
    # ElevenLabs' status list is open (its SDK's enum accepts any value): a status this fedfina does
    # not know yet is an early state until shown otherwise, retried like one (the queue's retries are
    # bounded), and said once in the log.
    if status not in _unknown_statuses_seen:
        _unknown_statuses_seen.add(status)
        log.warning("ElevenLabs gave a conversation status fedfina does not know: %r; treated as not ready yet",
                    status)
    raise NotReady(f"conversation has a status fedfina does not know ({status!r}); taken as not ready yet, "
                   "a later run will pick it up")


def transcript_text(conversation: Conversation) -> str:
    """SPEC transcript: `AI: ...` / `User: ...`, one turn a line, tool-only turns left out."""
    return "".join(f"{t.speaker}: {t.text}\n" for t in conversation.spoken_turns)


def tool_results_text(conversation: Conversation) -> str:
    """What the agent's tools returned, a line each with its time, for the summariser (after
    the transcript) and the figure check: "" when no tool returned anything."""
    lines = [f"[{clock(t.time_in_call_secs)}] {result}" for t in conversation.turns for result in t.tool_results]
    if not lines:
        return ""
    return "\nWhat the agent's tools returned during the call:\n" + "\n".join(lines) + "\n"


# A tool's result as shown: at most this long.
_RESULT_CHARS = 300


def _tool_result(raw: dict[str, Any]) -> ToolResult | None:
    name = _str(raw.get("tool_name"))
    if not name:
        return None
    value = raw.get("result_value")
    if isinstance(value, str):
        with suppress(BadJSON):
            value = loads(value)  # tools answer JSON text, usually
    # Worded as a collected value is: named fields, lists, yes/no, rupees for amounts.
    shown = _one_line(collected_value(name, None, value)) if value is not None else ""
    return ToolResult(readable_name(name), _clipped(shown, _RESULT_CHARS), failed=raw.get("is_error") is True)


def _clipped(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _turn(raw: dict[str, Any]) -> Turn:
    text = _one_line(raw.get("message"))
    if not text:
        # Multi-voice agents put the spoken text in parts and leave message null.
        parts = _list(_dict(raw.get("multivoice_message")).get("parts"))
        text = " ".join(p for p in (_one_line(_dict(part).get("text")) for part in parts) if p)
    tools = tuple(
        name
        for call in _list(raw.get("tool_calls"))
        if (name := _str(_dict(call).get("tool_name")))
    )
    return Turn(
        role=_str(raw.get("role")) or "",
        text=text,
        time_in_call_secs=_int(raw.get("time_in_call_secs")) or 0,
        tool_names=tools,
        tool_results=tuple(result for item in _list(raw.get("tool_results"))
                           if (result := _tool_result(_dict(item))) is not None),
        interrupted=raw.get("interrupted") is True,
    )


def _metadata(raw: dict[str, Any]) -> Metadata:
    phone = raw.get("phone_call")
    return Metadata(
        start_time_unix_secs=_int(raw.get("start_time_unix_secs")),
        call_duration_secs=_int(raw.get("call_duration_secs")),
        termination_reason=_str(raw.get("termination_reason")),
        main_language=_str(raw.get("main_language")),
        timezone=_str(raw.get("timezone")),
        phone_call=PhoneCall(
            type=_str(phone.get("type")),
            direction=_str(phone.get("direction")),
            agent_number=_str(phone.get("agent_number")),
            external_number=_str(phone.get("external_number")),
            call_result=_str(phone.get("call_result")),
        )
        if isinstance(phone, dict)
        else None,
        feedback=_feedback(_dict(raw.get("feedback"))),
    )


def _feedback(raw: dict[str, Any]) -> Feedback | None:
    rating = raw.get("rating")
    rating = rating if isinstance(rating, int) and not isinstance(rating, bool) and 1 <= rating <= 5 else None
    score = raw.get("overall_score")
    liked = True if score == "like" else False if score == "dislike" else None
    comment = _one_line(raw.get("comment"))[:300] or None
    if rating is None and liked is None and comment is None:
        return None
    return Feedback(rating, liked, comment)


def _analysis(raw: dict[str, Any]) -> Analysis:
    return Analysis(
        call_successful=_str(raw.get("call_successful")),
        transcript_summary=_str(raw.get("transcript_summary")),
        call_summary_title=_str(raw.get("call_summary_title")),
        evaluation=tuple(
            CriterionResult(
                id=_str(v.get("criteria_id")) or str(k),
                result=_str(v.get("result")),
                rationale=_str(v.get("rationale")),
                score=_int(v.get("score")),
                max_score=_int(v.get("max_score")),
            )
            for k, v in _results(raw, "evaluation_criteria_results", "criteria_id")
        ),
        data_collection=tuple(
            CollectedValue(
                id=_str(v.get("data_collection_id")) or str(k),
                value=v.get("value"),
                rationale=_str(v.get("rationale")),
                description=_str(_dict(v.get("json_schema")).get("description")),
            )
            for k, v in _results(raw, "data_collection_results", "data_collection_id")
        ),
    )


def _results(raw: dict[str, Any], name: str, id_field: str) -> list[tuple[str, dict[str, Any]]]:
    """An analysis' results as (id, result): the object form, else the `{name}_list` form newer
    agents send (the SDK has both); each id once."""
    found = [(str(k), v) for k, v in _dict(raw.get(name)).items() if isinstance(v, dict)]
    seen = {k for k, _ in found}
    for item in _list(raw.get(f"{name}_list")):
        key = _str(_dict(item).get(id_field))
        if key and key not in seen and isinstance(item, dict):
            found.append((key, item))
            seen.add(key)
    return found


def _one_line(value: Any) -> str:
    # A transcript line is one turn: fold any line breaks inside a message.
    return " ".join(value.split()) if isinstance(value, str) else ""


def _str(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    return None


# Start times and offsets beyond this (the year 9999) are nonsense that would
# overflow date arithmetic: treated as absent.
MAX_SECONDS = 253_402_300_799


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return int(value) if 0 <= value <= MAX_SECONDS else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
