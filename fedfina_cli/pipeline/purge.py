"""Retention (SPEC "Retention and legal hold"): the files of conversations past their account's
retention are deleted from storage, the ledger row stays and says so.

For each conversation due, oldest first: the conversation is claimed, as a run claims it
(a `run --force` or a retry started meanwhile is "in progress elsewhere" until the purge is
done with it, instead of storing files again under the purge's feet); each file not yet
deleted is deleted from the storage that holds it, then its row is marked deleted with an
audit line; then the outbox's .eml; then the conversation is marked purged and the claim
released. The hold and the claim are checked again before every object, and rows are
marked only while the claim holds: a hold placed while a purge runs stops it at the next
object. A purge killed at any point (kill -9) leaves a conversation without purged_at, whose
claim the next purge on this host frees at once (another host's, once it expires); deleting
an object already gone is no error, so it finishes what was started and deletes nothing it
should not.

A post_call_audio webhook stores the recording without a claim (it may come while the
transcription's run holds one). One that lands while the purge deletes leaves its file row as it
wrote it: a row is marked deleted only as the purge listed it (its created_at), and the
conversation marked purged only once no row of it is left undeleted, so the next purge deletes
the recording.

One window is left, as for a run's own uploads: a purge stopped for longer than a claim's
lifetime (FEDFINA_CLAIM_SECONDS) exactly between its check and a delete may, when it goes
on, delete a file that a run has stored again meanwhile; storage has no delete that is
conditional on the ledger. The row then still says the file is there, and a re-run stores it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fedfina_cli.core import accounts
from fedfina_cli.core.config import Settings
from fedfina_cli.core.errors import StageError
from fedfina_cli.core.object_keys import outbox_path
from fedfina_cli.core.timefmt import utc_text
from fedfina_cli.ledger import daily
from fedfina_cli.ledger.ledger import Ledger
from fedfina_cli.ledger.rows import ConversationRow, Row
from fedfina_cli.pipeline.claims import Claims
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
    failed: list[str] = field(default_factory=list)  # "conversation: why" for each one storage would not delete
    interrupted: bool = False  # a hold came, or the run was stopped, part-way
    stopped: list[str] = field(default_factory=list)  # "conversation: why" for each one left with part of its files
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
    if dry_run:
        _each_due(ledger, storage, settings, own, default, account_id, None, stopping, result)
        return result
    # A worker record of its own (in `serve` too): a claim of the purge's is never taken for one
    # of the same process's runs, which may take their own claims back (ledger/queue.py claim).
    with Claims(ledger, settings.claim_seconds) as claims:
        _each_due(ledger, storage, settings, own, default, account_id, claims, stopping, result)
    if not stopping():
        # The ledger too: complete days into their totals, then raw rows past FEDFINA_LEDGER_KEEP_DAYS.
        daily.roll_up(ledger)
        result.pruned = daily.prune(ledger, settings.ledger_keep_days)
    return result


def _each_due(ledger: Ledger, storage: Storage, settings: Settings, own: dict[str, str | None],
              default: str | None, account_id: str | None, claims: Claims | None,
              stopping: Callable[[], bool], result: Purged) -> None:
    """``claims`` None: a dry run (nothing is claimed, nothing deleted)."""
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
            if claims is None:
                _purge_one(ledger, storage, settings, row, None, result)
                continue
            token = claims.claim_to_purge(row)
            if token is None:
                continue  # taken by a run (or held) since it was listed: the next purge sees it again
            try:
                _purge_one(ledger, storage, settings, row, token, result)
            except (StageError, OSError) as exc:
                if isinstance(exc, StageError) and exc.retryable:
                    raise  # the storage does not answer: stop; the next purge goes on from here
                # This conversation's files stay (an object lock, a file the folder will not give
                # up); said once in its audit log, and the purge goes on with the next one.
                why = str(exc) if isinstance(exc, StageError) else \
                    ": ".join(str(part) for part in (exc.strerror or exc, exc.filename) if part)
                result.failed.append(f"{row['conversation_id']}: {why}")
                ledger.retention.audit_once(row, "failed", f"not purged: {why}")
            finally:
                claims.release(row, token)
        if claims is None and len(due) < BATCH:
            break


def _purge_one(ledger: Ledger, storage: Storage, settings: Settings, row: ConversationRow, token: str | None,
               result: Purged) -> None:
    """Delete one conversation's files under the purge's claim ``token`` (None: a dry run)."""
    conversation_id, account = row["conversation_id"], row["account_id"]
    files = ledger.retention.files_left(conversation_id, account)
    eml = outbox_path(settings.outbox_dir, account, conversation_id)
    listed: list[str] = []
    deleted = 0  # by this purge, before a hold or a run may stop it
    for file in files:
        place = storage_of(file, storage)
        if place is None:
            result.held_back.append(f"{conversation_id}: {file['object_key']} in {file['storage']}")
            continue
        listed.append(str(file["object_key"]))
        if token is not None:
            if not ledger.retention.still_purgeable(row["processing_id"], token):
                _stopped_part_way(ledger, row, token, deleted, result)
                return  # held (or queued for a retry) since it was picked: nothing more is deleted
            place.delete(str(file["object_key"]))
            deleted += 1
            ledger.retention.audit_once(row, "deleted", f"{file['file_type']} {file['object_key']} deleted: "
                                                        "past the account's retention")
            ledger.retention.mark_file_deleted(file, row["processing_id"], token)
        result.objects += 1  # deleted (a dry run: would be)
        result.bytes += int(file.get("size_bytes") or 0)
    if eml.exists():
        listed.append(str(eml))
        size = eml.stat().st_size
        if token is not None:
            if not ledger.retention.still_purgeable(row["processing_id"], token):
                _stopped_part_way(ledger, row, token, deleted, result)
                return
            # The line first: the .eml has no row to mark, only its absence, so a purge killed
            # after the unlink and before the line would never write it (1 line lost in 234).
            ledger.retention.audit_once(row, "deleted", f"email {eml.name} deleted from the outbox")
            eml.unlink(missing_ok=True)
        result.objects += 1
        result.bytes += size
    result.conversations.append({"conversation_id": conversation_id, "account_id": account, "files": listed})
    if token is None or any(storage_of(f, storage) is None for f in files):
        return  # a file this run could not reach: not purged, so a later run with its settings finishes
    ledger.retention.audit_once(row, "purged", f"{len(listed)} objects deleted; the ledger row is kept")
    ledger.retention.mark_purged(row["processing_id"], token)


def _stopped_part_way(ledger: Ledger, row: ConversationRow, token: str, deleted: int, result: Purged) -> None:
    """A conversation this purge stopped deleting: a legal hold placed, a retry queued, or its
    claim lost since it was picked. Nothing more of it is deleted; when some of its files already
    were, that is said (the hold's officer must not believe the call kept whole) and audited."""
    result.interrupted = True
    if not deleted:
        return
    why = ledger.retention.why_not_purgeable(row["processing_id"], token)
    said = f"{why} while its files were being deleted: {deleted} deleted before it, the rest kept"
    ledger.retention.audit_once(row, "stopped", f"purge stopped: {said}")
    result.stopped.append(f"{row['conversation_id']}: {said}")


def storage_of(file: Row, storage: Storage) -> Storage | None:
    """The storage that holds a file: today's, or the folder it was written to; None for a
    bucket these settings do not name (its credentials are not here)."""
    where = file.get("storage")
    if where is None or where == storage.location:
        return storage
    return None if is_bucket(str(where)) else LocalStorage(Path(str(where)))
