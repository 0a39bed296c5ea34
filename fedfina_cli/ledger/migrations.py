"""The ledger's tables, as a list of migrations (SPEC "Ledger").

Written against sqlite-utils' table API: on SQLite its ``Migrations`` runs them;
on PostgreSQL ledger/schema.py runs the same functions as PostgreSQL DDL. A
migration is never edited once released: a change is a new one at the end.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlite_utils import Database, Migrations

MIGRATION_SET = "fedfina"  # sqlite-utils' name for this list, in _sqlite_migrations
MIGRATIONS: list[tuple[str, Callable[[Database], None]]] = []  # in order; ledger/schema.py runs them on PostgreSQL


def migration(function: Callable[[Database], None]) -> Callable[[Database], None]:
    MIGRATIONS.append((function.__name__, function))
    return function


@cache
def sqlite_migrations() -> Migrations:
    """sqlite-utils' runner of the list, for a SQLite ledger. (Imported only then: sqlite-utils
    is 30 ms of a `fedfina status` that reads PostgreSQL.)"""
    from sqlite_utils import Migrations  # noqa: PLC0415 - only for SQLite

    runner = Migrations(MIGRATION_SET)
    for _, function in MIGRATIONS:
        runner()(function)
    return runner


def sqlite_pending(conn: sqlite3.Connection) -> list[str]:
    """The migrations a SQLite ledger lacks, read with its own connection: a process opening
    an up-to-date ledger (every one but the first) never imports sqlite-utils (40 ms)."""
    if conn.execute("select 1 from sqlite_master where type = 'table' and name = '_sqlite_migrations'").fetchone() \
            is None:
        return [name for name, _ in MIGRATIONS]
    applied = {row[0] for row in conn.execute("select name from _sqlite_migrations where migration_set = ?",
                                              [MIGRATION_SET])}
    return [name for name, _ in MIGRATIONS if name not in applied]


@migration
def m001_initial(db: Database) -> None:
    db.table("conversation_processing").create(
        {
            "processing_id": int,
            "conversation_id": str,
            "account_id": str,
            "email_id": str,
            "status": str,
            "current_step": str,
            "error_message": str,
            "conversation_key": str,
            "transcript_key": str,
            "audio_key": str,
            "summary_key": str,
            "report_key": str,
            "email_message_id": str,
            "email_sent_at": str,
            "email_state": str,  # "sending" then "sent": see pipeline.py, email stage
            "model": str,
            "prompt_sha256": str,
            "summary_method": str,
            "retryable": int,
            "started_at": str,
            "completed_at": str,
            "created_at": str,
            "updated_at": str,
        },
        pk="processing_id",
        not_null={"conversation_id", "account_id", "status"},
        defaults={"status": "pending"},
    )
    db.table("conversation_processing").create_index(["account_id", "conversation_id"], unique=True)
    db.table("conversation_processing").create_index(["status"])
    db.table("conversation_files").create(
        {
            "id": int,
            "conversation_id": str,
            "account_id": str,
            "file_type": str,
            "object_key": str,
            "size_bytes": int,
            "sha256": str,
            "content_type": str,
            "created_at": str,
        },
        pk="id",
        not_null={"conversation_id", "account_id", "file_type", "object_key"},
    )
    db.table("conversation_files").create_index(["object_key"], unique=True)
    db.table("processing_audit_log").create(
        {
            "id": int,
            "processing_id": int,
            "conversation_id": str,
            "step": str,
            "event": str,
            "status": str,
            "duration_ms": int,
            "attempt": int,
            "message": str,
            "created_at": str,
        },
        pk="id",
    )
    db.table("processing_audit_log").create_index(["processing_id"])
    db.table("api_usage_metrics").create(
        {
            "id": int,
            "service": str,
            "operation": str,
            "status_code": int,
            "duration_ms": int,
            "bytes": int,
            "tokens": int,
            "conversation_id": str,
            "error": str,
            "created_at": str,
        },
        pk="id",
    )
    db.table("api_usage_metrics").create_index(["service", "created_at"])
    db.table("account_settings").create(
        {
            "account_id": str,
            "timezone": str,
            "cc_addresses": str,
            "bcc_addresses": str,
            "email_subject_template": str,
            "prompt_file": str,
            "summary_language": str,
            "link_expiry_seconds": int,
            "attachment_limit_bytes": int,
            "created_at": str,
            "updated_at": str,
        },
        pk="account_id",
    )


@migration
def m002_runs(db: Database) -> None:
    db.table("runs").create(
        {
            "run_id": int,
            "command": str,
            "backends": str,
            "pid": int,
            "started_at": str,
            "finished_at": str,
            "succeeded": int,
            "failed": int,
            "exit_code": int,
        },
        pk="run_id",
    )


@migration
def m003_sync_state(db: Database) -> None:
    # sync's watermark: conversations that started at or before it are finished.
    db.table("sync_state").create(
        {"agent_id": str, "watermark_unix": int, "updated_at": str},
        pk="agent_id",
    )


@migration
def m004_lookup_indexes(db: Database) -> None:
    # Every conversation from a CSV without account ids is looked up by its id
    # alone, and `show` lists its files: without these, both scanned the whole
    # table, a cost that grew with every run a cron ledger kept.
    db.table("conversation_processing").create_index(["conversation_id"])
    db.table("conversation_files").create_index(["conversation_id", "account_id"])


@migration
def m005_claims(db: Database) -> None:
    # Per-conversation claims (SPEC "Many processes, one ledger"): which process
    # works on a conversation, and until when its claim holds without renewal.
    db.table("conversation_processing").add_column("claimed_by", str)
    db.table("conversation_processing").add_column("claim_expires_at", str)
    db.table("conversation_processing").create_index(["claimed_by"])


@migration
def m006_queue(db: Database) -> None:
    # The queue of `serve` and `worker` (SPEC "Serving"): a conversation accepted over
    # HTTP is recorded `queued` before the reply; ``queued_at`` orders the queue and
    # stays set until a worker finishes it, so work a dead worker held is resumed.
    # ``source``: where the conversation comes from (api: the ElevenLabs API;
    # webhook: its post-call webhook put it in storage, no API call needed).
    db.table("conversation_processing").add_column("queued_at", str)
    db.table("conversation_processing").add_column("source", str)
    db.table("conversation_processing").create_index(["queued_at"])



@migration
def m007_privacy_and_trust(db: Database) -> None:
    # SPEC "Privacy": an account's redaction mode, and how many identifiers of each
    # type were masked in a conversation (a JSON object, type -> count).
    # SPEC "Trust": how many of the summary's figures the call does not support.
    db.table("account_settings").add_column("redact", str)
    db.table("conversation_processing").add_column("redactions", str)
    db.table("conversation_processing").add_column("unsupported_figures", int)


@migration
def m008_workers(db: Database) -> None:
    # Claims owned by registered workers (SPEC "Many processes, one ledger"): each
    # process that claims registers itself and beats a heartbeat; a claim names its
    # worker (claim_worker) and carries a token of its own (claim_token), so a
    # statement repeated after a lost reply finds its own claim, and a process that
    # lost a claim can tell: its token is gone. A worker whose heartbeat stopped, or
    # whose process is gone from its host, is pruned and its claims released.
    db.table("workers").create(
        {
            "worker_id": int,
            "host": str,
            "pid": int,
            "process_started": int,  # the process's start (clock ticks since boot, Linux): pid reuse
            "started_at": str,
            "heartbeat_at": str,
            "expires_at": str,  # heartbeat_at + this worker's claim lifetime: stale after it
        },
        pk="worker_id",
        not_null={"host", "pid", "started_at", "heartbeat_at", "expires_at"},
    )
    db.table("workers").create_index(["host"])
    db.table("conversation_processing").add_column("claim_worker", int)
    db.table("conversation_processing").add_column("claim_token", str)
    db.table("conversation_processing").create_index(["claim_token"], unique=True)
    db.table("conversation_processing").create_index(["claim_worker"])


@migration
def m009_storage(db: Database) -> None:
    # Where each file was stored (a folder's absolute path, or s3://endpoint/bucket),
    # and where a conversation's were last stored: `show` and `doctor` find the
    # files wherever the settings of the day point (SPEC "Configuration mistakes").
    db.table("conversation_files").add_column("storage", str)
    db.table("conversation_processing").add_column("storage", str)


@migration
def m010_incoming_audio(db: Database) -> None:
    # A post_call_audio webhook's recording waiting for its transcription (which names the
    # account): written to storage first, then recorded here. Whoever marks the row taken
    # (the audio webhook, once the conversation is known, or the worker that fetches it)
    # moves the recording, then deletes the row: exactly one, however the two webhooks
    # interleave, and a statement repeated after a lost reply finds its own mark (taken_by).
    db.table("incoming_audio").create(
        {"conversation_id": str, "object_key": str, "size_bytes": int, "received_at": str, "taken_by": str},
        pk="conversation_id", not_null={"object_key", "received_at"})
    db.table("incoming_audio").create_index(["received_at"])


@migration
def m011_retention(db: Database) -> None:
    # SPEC "Retention and legal hold": how long an account's files are kept (days; 0 keeps
    # them), when a conversation's files were purged (the row stays), whether it is under
    # legal hold (the reason and time are in the audit log), and which file rows were
    # deleted. The index serves purge's pick: conversations not yet purged, oldest first.
    db.table("account_settings").add_column("retention_days", int)
    db.table("conversation_processing").add_column("purged_at", str)
    db.table("conversation_processing").add_column("legal_hold", int)
    db.table("conversation_files").add_column("deleted_at", str)
    db.table("conversation_processing").create_index(["purged_at", "completed_at"])


@migration
def m012_ledger_at_scale(db: Database) -> None:
    # A year of calls (a million conversations, four million audit lines): `status` read the
    # whole table to sort it (SCAN + TEMP B-TREE), and `stats` read every audit line and API
    # call into Python (1.5 GB). These let `status` walk an index newest first and `stats`
    # count in the database from covering indexes.
    db.table("conversation_processing").create_index(["updated_at", "processing_id"])
    db.table("conversation_processing").create_index(["status", "updated_at", "processing_id"])
    # The queue's pick, one status at a time (ledger/queue.py): with only the index above SQLite
    # sorted every queued row for each pick (19 ms with 10,000 queued among a million).
    db.table("conversation_processing").create_index(["status", "queued_at", "processing_id"])
    # By time first: `stats` reads raw rows only after the last day in the totals (ledger/daily.py),
    # and the roll-up and the prune take ranges of days.
    db.table("processing_audit_log").create_index(["created_at", "event", "step", "duration_ms"])
    db.table("api_usage_metrics").create_index(["created_at", "service", "duration_ms", "status_code", "tokens"])
    db.table("conversation_files").create_index(["created_at", "size_bytes", "deleted_at"])
    # API calls that failed without an HTTP status (a timeout): counted without reading the table.
    db.execute("create index idx_api_usage_metrics_failed on api_usage_metrics (service, created_at) "
               "where error is not null")
    # Audit lines and API calls older than FEDFINA_LEDGER_KEEP_DAYS are pruned by `purge`; their
    # per-day totals stay here so `stats` over a year still answers: per day, stage or service,
    # and duration (to two significant figures: 1234 ms is 1200), how many, failed, tokens.
    db.table("ledger_days").create(
        {"day": str, "kind": str, "key": str, "duration_ms": int, "calls": int, "errors": int, "tokens": int},
        not_null={"day", "kind", "key", "calls"})
    db.table("ledger_days").create_index(["day", "kind", "key", "duration_ms"], unique=True)


@migration
def m013_console(db: Database) -> None:
    # SPEC "The console". Who a conversation is about, for its search (the name as the report shows
    # it, masked where the report masks it; the phone's last four digits), and the officer's view:
    # an officer's conversations newest first, by address as the console compares it (lowercase).
    db.table("conversation_processing").add_column("applicant_name", str)
    db.table("conversation_processing").add_column("phone_last4", str)
    # The console lists newest calls first (created_at: when the call came in), whole or by status,
    # account or recipient (an officer's own, compared in lowercase), a page at a time.
    db.table("conversation_processing").create_index(["created_at", "processing_id"])
    db.table("conversation_processing").create_index(["status", "created_at", "processing_id"])
    db.table("conversation_processing").create_index(["account_id", "created_at", "processing_id"])
    db.execute("create index idx_conversation_processing_recipient on conversation_processing "
               "(lower(email_id), created_at, processing_id)")
    db.table("conversation_processing").create_index(["phone_last4"])
    # The operations page's failures by reason, from the index alone (30,000 failed among a million).
    db.table("conversation_processing").create_index(["status", "error_message"])
    # Sign-in links and sessions: only the SHA-256 of each token is kept (a copy of the ledger
    # signs nobody in). A link is used once (used_at); a session ends at expires_at or ended_at.
    db.table("console_links").create(
        {"token_sha256": str, "email": str, "created_at": str, "expires_at": str, "used_at": str},
        pk="token_sha256", not_null={"email", "created_at", "expires_at"})
    db.table("console_sessions").create(
        {"session_sha256": str, "email": str, "is_admin": int, "via": str, "client": str,
         "created_at": str, "expires_at": str, "ended_at": str},
        pk="session_sha256", not_null={"email", "created_at", "expires_at"})
    # Sign-in requests, for the limits per address (its SHA-256: any text anyone typed) and per client.
    db.table("console_signin_requests").create(
        {"id": int, "address_sha256": str, "client": str, "created_at": str},
        pk="id", not_null={"address_sha256", "created_at"})
    db.table("console_signin_requests").create_index(["address_sha256", "created_at"])
    db.table("console_signin_requests").create_index(["client", "created_at"])


@contextmanager
def migration_lock(path: Path | None) -> Iterator[None]:
    """Setting up a new ledger (WAL, migrations) runs once, under a short exclusive lock:
    processes that open a new ledger together would otherwise each create its tables.

    The lock is a file beside the ledger, removed by its holder when done (it was left
    behind in the working folder). Not the ledger itself: closing any descriptor of
    the ledger would drop SQLite's own locks held by this process. A process that
    waited on a file its holder has since removed sees that the path no longer names
    what it locked, and locks the new one instead (two holders otherwise)."""
    if path is None:
        yield
        return
    lock_path = path.with_name(path.name + ".migrate.lock")
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)  # the kernel drops it if the process dies
        try:
            held, named = os.fstat(fd), os.stat(lock_path)
            if (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino):
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        yield
    finally:
        with suppress(FileNotFoundError):
            os.unlink(lock_path)  # before unlocking: a waiter then finds the path gone, and retries
        os.close(fd)
