"""What is stored: object keys (SPEC "Object keys", the same layout in MinIO and
local storage), content types, and the record of one stored object."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# The pipeline's stages, in order, as the ledger's audit log names them, and the
# artifact whose presence in storage marks each one done.
STAGES = ("fetch", "summarize", "report", "email")
STAGE_ARTIFACT = {"fetch": "transcript", "summarize": "summary", "report": "report"}


@dataclass(frozen=True)
class StoredObject:
    key: str
    size_bytes: int
    sha256: str
    content_type: str
    # Where it was stored: a folder's absolute path, or s3://endpoint/bucket (the
    # ledger records it: `show` finds the files wherever today's settings point).
    storage: str | None = None

# file_type -> (folder, extension, content type)
LAYOUT = {
    "conversation": ("conversations", "json", "application/json"),
    "transcript": ("transcripts", "txt", "text/plain; charset=utf-8"),
    "audio": ("audio", "mp3", "audio/mpeg"),
    "summary": ("summaries", "json", "application/json"),
    "report": ("reports", "pdf", "application/pdf"),
}


def object_key(account_id: str, conversation_id: str, file_type: str) -> str:
    folder, extension, _ = LAYOUT[file_type]
    return f"{account_id}/{folder}/{conversation_id}.{extension}"


def incoming_audio_key(conversation_id: str) -> str:
    """Where a post_call_audio webhook's recording waits when it came before the transcription
    (whose dynamic variables name the account). No account id starts with "_"."""
    return f"_incoming/audio/{conversation_id}.mp3"


def content_type(file_type: str) -> str:
    return LAYOUT[file_type][2]


def outbox_path(outbox_dir: Path, account_id: str, conversation_id: str) -> Path:
    return outbox_dir / account_id / f"{conversation_id}.eml"
