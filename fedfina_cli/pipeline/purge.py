"""Retention (SPEC "Retention and legal hold"): the files of conversations past their account's
retention are deleted from storage, the ledger row stays and says so.

For each conversation due, oldest first: each file not yet deleted is deleted from the
storage that holds it, then its row is marked deleted with an audit line; then the outbox's
.eml; then the conversation is marked purged. The hold is checked again before every
object, and purged_at is set only where no hold is: a hold placed while a purge runs stops
it at the next object. A purge killed at any point (kill -9) leaves a conversation without
purged_at, which the next purge takes again: deleting an object already gone is no error,
so it finishes what was started and deletes nothing it should not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fedfina_cli.core import accounts
from fedfina_cli.core.config import Settings
from fedfina_cli.core.object_keys import outbox_path
from fedfina_cli.core.timefmt import utc_text
from fedfina_cli.ledger import daily
from fedfina_cli.ledger.ledger import Ledger
from fedfina_cli.ledger.rows import ConversationRow, Row
from fedfina_cli.services.storage import Storage, is_bucket
from fedfina_cli.services.storage.local import LocalStorage

BATCH = 500  # conversations read from the ledger at a time


@dataclass
class Purged:
    """What one purge did (or, dry, would do)."""

    conversations: list[dict[str, object]] = field(default_factory=list)  # one per conversation: id, account, files
    objects: int = 0
    bytes: int = 0
    held_back: list[str] = field(default_factory=list)  # files in a bucket these settings cannot reach
    interrupted: bool = False  # a hold came, or the run was stopped, part-way
    pruned: dict[str, int] = field(default_factory=dict)  # ledger table -> rows older than the keep days
    retention_set: bool = True  # False: no account and no default has a retention (nothing can be due)


def cutoffs(ledger: Ledger, settings: Settings,
            now: datetime | None = None) -> tuple[dict[str, str | None], str | None]:
    """Each account with a retention of its own -> the time before which its conversations are due
    (None: it keeps them), and the cutoff of every other account (FEDFINA_RETENTION_DAYS; None: keep)."""
    now = now or datetime.now(UTC)

    def before(days: int | None) -> str | None:
        return utc_text(now - timedelta(days=days)) if days else None

    own = {}
    for row in ledger.all_account_settings():
        days = row.get("retention_days")
        if days is not None:
            own[str(row["account_id"])] = before(int(days)) if int(days) != accounts.KEEP else None
    return own, before(settings.retention_days)


def purge(ledger: Ledger, storage: Storage, settings: Settings, *, account_id: str | None = None,
          dry_run: bool = False, now: datetime | None = None,
          stopping: Callable[[], bool] = lambda: False) -> Purged:
    """Delete the files of every conversation past retention (``account_id``: its only)."""
    own, default = cutoffs(ledger, settings, now)
    result = Purged(retention_set=default is not None or any(
        cutoff is not None for account, cutoff in own.items() if account_id in (None, account)))
    seen: set[int] = set()
    while not stopping():
        due = [row for row in ledger.retention.due(own, default, BATCH, account_id)
               if row["processing_id"] not in seen]
        if not due:
            break
        for row in due:
            seen.add(row["processing_id"])
            if stopping():
                result.interrupted = True
                break
            _purge_one(ledger, storage, settings, row, dry_run, result)
        if dry_run and len(due) < BATCH:
            break
    if not dry_run and not stopping():
        # The ledger too: complete days into their totals, then raw rows past FEDFINA_LEDGER_KEEP_DAYS.
        daily.roll_up(ledger)
        result.pruned = daily.prune(ledger, settings.ledger_keep_days)
    return result


def _purge_one(ledger: Ledger, storage: Storage, settings: Settings, row: ConversationRow, dry_run: bool,
               result: Purged) -> None:
    conversation_id, account = row["conversation_id"], row["account_id"]
    files = ledger.retention.files_left(conversation_id, account)
    eml = outbox_path(settings.outbox_dir, account, conversation_id)
    listed: list[str] = []
    for file in files:
        place = storage_of(file, storage)
        if place is None:
            result.held_back.append(f"{conversation_id}: {file['object_key']} in {file['storage']}")
            continue
        listed.append(str(file["object_key"]))
        result.objects += 1
        result.bytes += int(file.get("size_bytes") or 0)
        if dry_run:
            continue
        if not ledger.retention.still_purgeable(row["processing_id"]):
            result.interrupted = True
            return  # held (or taken for a retry) since it was picked: nothing more is deleted
        place.delete(str(file["object_key"]))
        ledger.retention.audit_once(row, "deleted",
                                    f"{file['file_type']} {file['object_key']} deleted: past the account's retention")
        ledger.retention.mark_file_deleted(file["id"])
    if eml.exists():
        listed.append(str(eml))
        result.objects += 1
        result.bytes += eml.stat().st_size
        if not dry_run:
            if not ledger.retention.still_purgeable(row["processing_id"]):
                result.interrupted = True
                return
            # The line first: the .eml has no row to mark, only its absence, so a purge killed
            # after the unlink and before the line would never write it (1 line lost in 234).
            ledger.retention.audit_once(row, "deleted", f"email {eml.name} deleted from the outbox")
            eml.unlink(missing_ok=True)
    result.conversations.append({"conversation_id": conversation_id, "account_id": account, "files": listed})
    if dry_run or any(storage_of(f, storage) is None for f in files):
        return  # a file this run could not reach: not purged, so a later run with its settings finishes
    ledger.retention.audit_once(row, "purged", f"{len(listed)} objects deleted; the ledger row is kept")
    ledger.retention.mark_purged(row["processing_id"])


def storage_of(file: Row, storage: Storage) -> Storage | None:
    """The storage that holds a file: today's, or the folder it was written to; None for a
    bucket these settings do not name (its credentials are not here)."""
    where = file.get("storage")
    if where is None or where == storage.location:
        return storage
    return None if is_bucket(str(where)) else LocalStorage(Path(str(where)))
