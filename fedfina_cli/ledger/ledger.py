"""The SQLite ledger (SPEC "Ledger"): what was done, when, with which files and calls.

One connection per process, guarded by a lock, so that worker threads write
consistently; WAL and a busy timeout let `status` read while a run writes.
Every free-text value passes through ``redact`` before it is stored.
"""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database, Migrations

from fedfina_cli.core.config import Settings
from fedfina_cli.core.errors import LedgerError
from fedfina_cli.core.files import private_dir, private_file
from fedfina_cli.core.metrics import ApiCall, elapsed_ms
from fedfina_cli.core.objects import StoredObject
from fedfina_cli.core.timefmt import seconds_between, utc_now
from fedfina_cli.ledger.database import Sql, SqliteSql, one, quoted, value

migrations = Migrations("fedfina")
# The same list, for PostgreSQL (ledger/schema.py runs it there).
MIGRATIONS: list[tuple[str, Callable[[Database], None]]] = []


def migration(function: Callable[[Database], None]) -> Callable[[Database], None]:
    MIGRATIONS.append((function.__name__, function))
    return migrations()(function)


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


def explain(exc: BaseException, path: Path | None) -> LedgerError:
    """One line for a user: which file, what is wrong with it, what to do."""
    where = f"the ledger {path}" if path is not None else "the ledger"
    message = str(exc)
    lowered = message.lower()
    if isinstance(exc, OSError):
        return LedgerError(f"cannot create the folder for {where}: {exc.strerror or exc}; "
                           "create it, or set FEDFINA_DB to a file in a writable folder")
    if "not a database" in lowered or "malformed" in lowered or "file is encrypted" in lowered:
        return LedgerError(f"{where} is damaged or is not a fedfina ledger ({message}); restore it from "
                           "a backup, or set FEDFINA_DB to another file")
    if "locked" in lowered or "busy" in lowered:
        return LedgerError(f"{where} is locked by another program ({message}); close it and try again")
    if "disk is full" in lowered or "disk i/o error" in lowered:
        return LedgerError(f"cannot write {where}: {message}; free some space and run again "
                           "(finished stages are kept)")
    if "readonly" in lowered or "read-only" in lowered:
        return LedgerError(f"{where} is read-only ({message}); make the file and its folder writable, "
                           "or set FEDFINA_DB to a writable file")
    if "unable to open" in lowered:
        return LedgerError(f"cannot open {where} ({message}); check that its folder exists and is "
                           "writable, or set FEDFINA_DB")
    return LedgerError(f"{where} failed: {message}")


@migration
def m007_privacy_and_trust(db: Database) -> None:
    # SPEC "Privacy": an account's redaction mode, and how many identifiers of each
    # type were masked in a conversation (a JSON object, type -> count).
    # SPEC "Trust": how many of the summary's figures the call does not support.
    db.table("account_settings").add_column("redact", str)
    db.table("conversation_processing").add_column("redactions", str)
    db.table("conversation_processing").add_column("unsupported_figures", int)


def _is_postgres_error(exc: BaseException) -> bool:
    module = type(exc).__module__
    return module.startswith("psycopg")


def explain_postgres(exc: BaseException, where: str, password: str | None = None) -> LedgerError:
    """One line for a user about a PostgreSQL ledger: what is wrong and what to do; never the password."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    if password:
        message = message.replace(password, "***")
    lowered = message.lower()
    ledger = f"the ledger database {where}"
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        return LedgerError(f"{ledger} refused the user name or password in DATABASE_URL; check them")
    if "does not exist" in lowered and "database" in lowered:
        return LedgerError(f"{ledger} does not exist; create it (createdb) or fix the name in DATABASE_URL")
    if "refused" in lowered or "could not translate host name" in lowered or "name or service not known" in lowered \
            or "timeout expired" in lowered or "no route to host" in lowered:
        return LedgerError(f"cannot reach {ledger} ({message}); check the host and port in DATABASE_URL "
                           "and that PostgreSQL is running")
    if "invalid dsn" in lowered or "invalid connection option" in lowered or "missing \"=\"" in lowered \
            or "invalid integer value" in lowered or "invalid port" in lowered:
        return LedgerError(f"DATABASE_URL is not a valid PostgreSQL URL ({message}); expected "
                           "postgresql://user:password@host:5432/database")
    if type(exc).__name__ == "PoolTimeout" or "server closed the connection" in lowered \
            or "terminating connection" in lowered or "connection is lost" in lowered \
            or "consuming input failed" in lowered or "the connection is closed" in lowered:
        return LedgerError(f"{ledger} is not answering ({message}); check that PostgreSQL is running, then run "
                           "again (finished stages are kept)", retryable=True)
    if "read-only transaction" in lowered:
        return LedgerError(f"{ledger} was opened read-only ({message})")
    return LedgerError(f"{ledger} failed: {message}")


@contextmanager
def _migration_lock(path: Path | None) -> Iterator[None]:
    """Setting up a new ledger (WAL, migrations) runs once, under a short exclusive lock:
    processes that open a new ledger together would otherwise each create its tables."""
    if path is None:
        yield
        return
    import fcntl
    import os

    fd = os.open(path.with_name(path.name + ".migrate.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # the kernel drops it if the process dies
        yield
    finally:
        os.close(fd)


def _translated(method):
    """A Ledger method whose database failures become one LedgerError naming the ledger."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise explain(exc, self.path) from exc
        except Exception as exc:
            if _is_postgres_error(exc):
                raise explain_postgres(exc, self.sql.description) from exc
            raise

    return wrapper


class Ledger:
    # How long a write waits for another program's lock before giving up.
    busy_timeout_ms = 30_000

    def __init__(self, path: Path | None, redact: Callable[[str], str] = lambda s: s, *,
                 read_only: bool = False, url: str | None = None, pool_size: int = 8):
        """``path`` None: an empty ledger in memory (read-only commands before the first run).

        ``url``: a PostgreSQL ledger (DATABASE_URL) instead of the SQLite file ``path``,
        with a pool of ``pool_size`` connections.
        ``read_only``: for `status`, `show` and `stats`, which never migrate or write
        (the file may be read-only, or another process's to change).
        """
        self.path = None if url else path
        self.read_only = read_only
        self._redact = redact
        self.db: Database | None = None  # sqlite-utils, on SQLite only (migrations, tests)
        self.sql: Sql
        if url:
            self._open_postgres(url, read_only, pool_size)
        else:
            self._open_sqlite(path, read_only)

    def _open_postgres(self, url: str, read_only: bool, pool_size: int) -> None:
        from fedfina_cli.core.config import without_password
        from fedfina_cli.ledger.database import PostgresSql
        from fedfina_cli.ledger.schema import migrate_postgres, pending_postgres

        try:
            self.sql = PostgresSql(url, pool_size, read_only=read_only)
        except Exception as exc:
            raise explain_postgres(exc, without_password(url)) from None
        try:
            if not read_only:
                migrate_postgres(self.sql.pool, MIGRATIONS)
            elif len(pending_postgres(self.sql.pool, MIGRATIONS)) == len(MIGRATIONS):
                self.sql.close()
                raise LedgerError(f"no ledger in {self.sql.description}: nothing was processed with it yet "
                                  "(fedfina creates its tables on the first run); check DATABASE_URL")
        except LedgerError:
            raise
        except Exception as exc:
            self.sql.close()
            if _is_postgres_error(exc):
                raise explain_postgres(exc, self.sql.description) from None
            raise

    def _open_sqlite(self, path: Path | None, read_only: bool) -> None:
        try:
            if path is None:
                conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
            elif read_only:
                conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, check_same_thread=False,
                                       timeout=self.busy_timeout_ms / 1000, isolation_level=None)
            else:
                private_dir(path.parent)
                private_file(path)  # the ledger names applicants and officers: not for every user
                conn = sqlite3.connect(str(path), check_same_thread=False,
                                       timeout=self.busy_timeout_ms / 1000, isolation_level=None)
            self.sql = SqliteSql(conn, str(path) if path is not None else "(no ledger yet)")
            db = self.db = Database(conn)
            with self.sql.lock:
                db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
                if read_only and path is not None:
                    db.execute("select count(*) from sqlite_master")  # a damaged file says so here
                    return
                if path is not None and db.journal_mode != "wal":
                    with _migration_lock(path):
                        self._enable_wal(db)
                # With WAL, NORMAL loses nothing when the process dies (kill -9): only
                # a power cut can drop the last commits. It saves an fsync per write.
                db.execute("PRAGMA synchronous = NORMAL")
                if migrations.pending(db):
                    with _migration_lock(path):
                        migrations.apply(db)  # re-checks: another process may have applied them
        except (sqlite3.Error, OSError) as exc:
            raise explain(exc, path) from exc

    def _enable_wal(self, db: Database) -> None:
        """Switch a new ledger to WAL. SQLite answers "database is locked" at once, without
        waiting its busy timeout, while another process reads the file: try again until it
        has looked away (processes that open a new ledger together all get here)."""
        deadline = time.monotonic() + self.busy_timeout_ms / 1000
        while True:
            try:
                db.enable_wal()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    @property
    def description(self) -> str:
        """Which ledger, for people: the file, or the database URL without its password."""
        return self.sql.description

    def ping(self) -> None:
        """Raise LedgerError unless the ledger answers (doctor, /readyz)."""
        self.sql.rows("select 1 as ok")

    def close(self) -> None:
        self.sql.close()

    # --- conversations -------------------------------------------------

    def fetched(self) -> set[str]:
        return {row["conversation_id"] for row in self.sql.rows(
            "select distinct conversation_id from conversation_processing "
            "where conversation_key is not null and transcript_key is not null")}

    def rows_for(self, conversation_id: str, account_id: str | None = None) -> list[dict]:
        where, args = "conversation_id = ?", [conversation_id]
        if account_id is not None:
            where, args = where + " and account_id = ?", args + [account_id]
        return self.sql.rows(f"select * from conversation_processing where {where} order by processing_id", args)

    def get(self, processing_id: int) -> dict:
        row = one(self.sql, "select * from conversation_processing where processing_id = ?", [processing_id])
        if row is None:
            raise KeyError(f"no conversation_processing row {processing_id}")
        return row

    def open_conversation(self, conversation_id: str, account_id: str, email_id: str | None) -> dict:
        """The conversation's row, created when new; marks it processing (no claim: a failure
        recorded before the account is known, or a test)."""
        processing_id = self._ensure_row(conversation_id, account_id)
        now = utc_now()
        changes = {"status": "processing", "started_at": now, "error_message": None, "retryable": None}
        if email_id:
            changes["email_id"] = email_id
        return self.update(processing_id, **changes)

    def claim(self, conversation_id: str, account_id: str, email_id: str | None, owner: str,
              expires_at: str) -> tuple[dict, bool]:
        """Claim the conversation for ``owner`` until ``expires_at``: (its row, claimed?).

        Atomic across processes: one conditional UPDATE takes the row only when it is
        unclaimed, already ``owner``'s, or its claim expired (its process died). When
        another live process holds it, the row is returned unchanged, naming the holder.
        """
        processing_id = self._ensure_row(conversation_id, account_id)
        now = utc_now()
        email = ", email_id = ?" if email_id else ""
        changed = self.sql.run(
            "update conversation_processing set claimed_by = ?, claim_expires_at = ?, status = 'processing', "
            f"started_at = ?, updated_at = ?, error_message = null, retryable = null{email} "
            "where processing_id = ? and (claimed_by is null or claimed_by = ? or claim_expires_at < ?)",
            [owner, expires_at, now, now, *([email_id] if email_id else []), processing_id, owner, now])
        return self.get(processing_id), changed == 1

    def renew_claims(self, owner: str, expires_at: str) -> int:
        """Push back the expiry of every claim ``owner`` holds (its heartbeat)."""
        return self.sql.run("update conversation_processing set claim_expires_at = ? where claimed_by = ?",
                            [expires_at, owner])

    def holds_claim(self, processing_id: int, owner: str) -> bool:
        """Whether ``owner`` still holds this conversation (checked before the email goes out)."""
        return bool(self.sql.rows(
            "select 1 as held from conversation_processing where processing_id = ? and claimed_by = ? "
            "and claim_expires_at >= ?", [processing_id, owner, utc_now()]))

    def release(self, processing_id: int, owner: str) -> None:
        self.sql.run("update conversation_processing set claimed_by = null, claim_expires_at = null "
                     "where processing_id = ? and claimed_by = ?", [processing_id, owner])

    # --- the queue (serve, worker) --------------------------------------------

    def enqueue(self, conversation_id: str, account_id: str, email_id: str | None,
                source: str) -> tuple[dict, bool]:
        """Queue the conversation for the workers: (its row, whether it was queued now).

        A conversation already completed, queued, or being processed is left as it is
        (a duplicate webhook or request is processed once); any other is queued,
        a failed one included (asking again is how a failure is retried).
        """
        processing_id = self._ensure_row(conversation_id, account_id)
        now = utc_now()
        email = ", email_id = ?" if email_id else ""
        changed = self.sql.run(
            f"update conversation_processing set status = 'queued', queued_at = ?, source = ?, "
            f"updated_at = ?, error_message = null, retryable = null{email} "
            "where processing_id = ? and status not in ('completed', 'queued') "
            "and not (status = 'processing' and claimed_by is not null and claim_expires_at >= ?)",
            [now, source, now, *([email_id] if email_id else []), processing_id, now])
        return self.get(processing_id), changed == 1

    def claim_next_queued(self, owner: str, expires_at: str) -> dict | None:
        """Claim the oldest queued conversation for ``owner`` (None: the queue is empty).

        A conversation a dead worker held (its claim expired, ``queued_at`` still set)
        is taken over like a queued one. One UPDATE picks and claims, so two workers
        never take the same row; on PostgreSQL the pick skips rows another worker
        is claiming at that moment instead of waiting for it.
        """
        now = utc_now()
        unclaimed = "(claimed_by is null or claim_expires_at < ?)"
        skip_locked = " for update skip locked" if self.sql.dialect == "postgresql" else ""
        row = one(self.sql,
                  "update conversation_processing set claimed_by = ?, claim_expires_at = ?, status = 'processing', "
                  "started_at = ?, updated_at = ?, error_message = null, retryable = null "
                  "where processing_id = (select processing_id from conversation_processing "
                  f"where queued_at is not null and queued_at <= ? and status in ('queued', 'processing') "
                  f"and {unclaimed} order by queued_at, processing_id limit 1{skip_locked}) and {unclaimed} "
                  "returning processing_id",
                  [owner, expires_at, now, now, now, now, now])
        return None if row is None else self.get(row["processing_id"])

    def retry_later(self, processing_id: int, not_before: str, reason: str) -> None:
        """Put a conversation that failed for a passing reason back on the queue, not before then."""
        changed = self.sql.run(
            "update conversation_processing set status = 'queued', queued_at = ?, updated_at = ? "
            "where processing_id = ? and status = 'failed'", [not_before, utc_now(), processing_id])
        if changed:
            self.audit(self.get(processing_id), "queue", "retry", "queued", reason)

    def queue_retries(self, processing_id: int) -> int:
        return int(value(self.sql, "select count(*) as n from processing_audit_log where processing_id = ? "
                                   "and step = 'queue' and event = 'retry'", [processing_id]))

    def queue_depth(self) -> int:
        """Conversations queued and not yet claimed by a worker."""
        return int(value(self.sql, "select count(*) as n from conversation_processing where status = 'queued'"))

    def recent_seconds(self, limit: int = 20) -> float | None:
        """Mean processing time of the last ``limit`` conversations completed (an estimate's base)."""
        rows = self.sql.rows(
            "select started_at, completed_at from conversation_processing where completed_at is not null "
            "and started_at is not null order by completed_at desc limit ?", [limit])
        spans = [s for r in rows if (s := seconds_between(r["started_at"], r["completed_at"])) is not None
                 and s >= 0]
        return sum(spans) / len(spans) if spans else None

    def _ensure_row(self, conversation_id: str, account_id: str) -> int:
        """The row's processing_id, inserted (pending) when new. Race-free across processes:
        the unique (account_id, conversation_id) index lets only one insert win."""
        now = utc_now()
        if account_id:
            # A failure recorded before the account was known is adopted, once.
            self.sql.run(
                "update conversation_processing set account_id = ?, updated_at = ? "
                "where conversation_id = ? and account_id = '' and claimed_by is null and not exists "
                "(select 1 from conversation_processing where conversation_id = ? and account_id = ?)",
                [account_id, now, conversation_id, conversation_id, account_id])
        self.sql.run(
            "insert into conversation_processing (conversation_id, account_id, status, created_at, updated_at) "
            "values (?, ?, 'pending', ?, ?) on conflict (account_id, conversation_id) do nothing",
            [conversation_id, account_id, now, now])
        return int(value(self.sql, "select processing_id from conversation_processing "
                                   "where conversation_id = ? and account_id = ?", [conversation_id, account_id]))

    def record_unresolved_failure(self, conversation_id: str, email_id: str | None, step: str,
                                  message: str, retryable: bool) -> None:
        """A conversation that failed before its account was known (account_id '')."""
        row = self.open_conversation(conversation_id, "", email_id)
        self.update(row["processing_id"], status="failed", current_step=step,
                    error_message=message, retryable=int(retryable))
        self.audit(row, step, "failed", "failed", message)

    def update(self, processing_id: int, **changes: object) -> dict:
        changes["updated_at"] = utc_now()
        message = changes.get("error_message")
        if isinstance(message, str):
            changes["error_message"] = self._redact(message)
        assignments = ", ".join(f"{quoted(column)} = ?" for column in changes)
        # The row as changed, in the same round trip (a conversation makes over a dozen updates).
        row = one(self.sql, f"update conversation_processing set {assignments} where processing_id = ? "
                            "returning *", [*changes.values(), processing_id])
        if row is None:
            raise KeyError(f"no conversation_processing row {processing_id}")
        return row

    def record_file(self, row: dict, file_type: str, obj: StoredObject) -> None:
        # One row per object key (a unique index): a re-stored object updates its row.
        self.insert("conversation_files", {
            "conversation_id": row["conversation_id"],
            "account_id": row["account_id"],
            "file_type": file_type,
            "object_key": obj.key,
            "size_bytes": obj.size_bytes,
            "sha256": obj.sha256,
            "content_type": obj.content_type,
            "created_at": utc_now(),
        }, conflict="object_key")

    def files_for(self, conversation_id: str, account_id: str) -> list[dict]:
        return self.sql.rows("select * from conversation_files where conversation_id = ? and account_id = ? "
                             "order by id", [conversation_id, account_id])

    def account_settings(self, account_id: str) -> dict | None:
        return one(self.sql, "select * from account_settings where account_id = ?", [account_id])

    def conversations(self, account_id: str | None = None, status: str | None = None,
                      limit: int | None = None) -> list[dict]:
        """Newest first, optionally filtered (for `status` and `run --failed`)."""
        where: list[str] = []
        args: list[object] = []
        if account_id is not None:
            where.append("account_id = ?")
            args.append(account_id)
        if status is not None:
            where.append("status = ?")
            args.append(status)
        sql = "select * from conversation_processing"
        if where:
            sql += " where " + " and ".join(where)
        sql += " order by updated_at desc, processing_id desc"
        if limit is not None:
            sql += " limit ?"
            args.append(limit)
        return self.sql.rows(sql, args)

    def set_account_settings(self, account_id: str, values: dict) -> dict:
        now = utc_now()
        row = {"account_id": account_id, **values, "created_at": now, "updated_at": now}
        # One statement: created_at is written only by the insert, the rest by either.
        self.insert("account_settings", row, conflict="account_id", keep=("created_at",))
        settings = self.account_settings(account_id)
        assert settings is not None
        return settings

    def all_account_settings(self) -> list[dict]:
        return self.sql.rows("select * from account_settings order by account_id")

    # --- sync watermark ----------------------------------------------------

    def watermark(self, agent_id: str) -> int | None:
        return value(self.sql, "select watermark_unix from sync_state where agent_id = ?", [agent_id])

    def set_watermark(self, agent_id: str, watermark_unix: int) -> None:
        """Only ever forward: two syncs of one agent may finish in either order."""
        self.sql.run(
            "insert into sync_state (agent_id, watermark_unix, updated_at) values (?, ?, ?) "
            "on conflict (agent_id) do update set watermark_unix = case "
            "when excluded.watermark_unix > sync_state.watermark_unix then excluded.watermark_unix "
            "else sync_state.watermark_unix end, updated_at = excluded.updated_at",
            [agent_id, watermark_unix, utc_now()])

    # --- audit log -----------------------------------------------------

    @contextmanager
    def stage(self, row: dict, step: str) -> Iterator[StageLog]:
        """Record one attempt of a stage: started, then completed or failed."""
        log = StageLog(self, row, step, self._attempts(row["processing_id"], step) + 1)
        self.update(row["processing_id"], current_step=step, status="processing")
        log.event("started", "processing")
        started = time.monotonic()
        try:
            yield log
        except BaseException as exc:
            log.event("failed", "failed", str(exc) or type(exc).__name__, elapsed_ms(started))
            raise
        log.event("completed", "completed", log.summary, elapsed_ms(started))

    def _attempts(self, processing_id: int, step: str) -> int:
        return int(value(self.sql, "select count(*) as n from processing_audit_log "
                                   "where processing_id = ? and step = ? and event = 'started'",
                         [processing_id, step]))

    def mark_interrupted(self) -> int:
        """Mark conversations left `processing` by a process that died as failed and retryable.

        Only those whose claim expired (or that have none: a ledger from before
        claims): a live claim is another process at work. Queued work a dead worker
        held is not marked: the queue's workers take it over (claim_next_queued).
        `run --failed` and `status --status failed` then find them; the stages they
        finished are kept and skipped when they are resumed.
        """
        return self.sql.run(
            "update conversation_processing set status = 'failed', retryable = 1, updated_at = ?, "
            "claimed_by = null, claim_expires_at = null, "
            "error_message = 'interrupted: the process working on it stopped before finishing; "
            "run again to resume (finished stages are kept)' "
            "where status = 'processing' and queued_at is null "
            "and (claimed_by is null or claim_expires_at < ?)",
            [utc_now(), utc_now()])

    def audit(self, row: dict, step: str, event: str, status: str, message: str | None = None,
              duration_ms: int | None = None, attempt: int | None = None) -> None:
        self.insert("processing_audit_log", {
            "processing_id": row["processing_id"],
            "conversation_id": row["conversation_id"],
            "step": step,
            "event": event,
            "status": status,
            "duration_ms": duration_ms,
            "attempt": attempt,
            "message": self._redact(message) if message else None,
            "created_at": utc_now(),
        })

    def audit_log(self, processing_id: int) -> list[dict]:
        return self.sql.rows("select * from processing_audit_log where processing_id = ? order by id",
                             [processing_id])

    # --- API usage and runs ----------------------------------------------

    def record_api_call(self, call: ApiCall) -> None:
        self.insert("api_usage_metrics", {
            "service": call.service,
            "operation": call.operation,
            "status_code": call.status_code,
            "duration_ms": call.duration_ms,
            "bytes": call.bytes,
            "tokens": call.tokens,
            "conversation_id": call.conversation_id,
            "error": self._redact(call.error) if call.error else None,
            "created_at": utc_now(),
        })

    def insert(self, table: str, row: dict, conflict: str | tuple[str, ...] | None = None,
               keep: tuple[str, ...] = (), if_new: bool = False) -> bool:
        """Insert ``row``; True when a row was written.

        With ``conflict`` (a unique column or columns): the row that has those values is
        updated (all columns but ``keep``), or, ``if_new``, left as it is.
        """
        columns = ", ".join(quoted(column) for column in row)
        sql = f"insert into {quoted(table)} ({columns}) values ({', '.join('?' * len(row))})"
        if conflict:
            unique = (conflict,) if isinstance(conflict, str) else conflict
            sql += f" on conflict ({', '.join(quoted(c) for c in unique)}) do "
            sql += "nothing" if if_new else "update set " + ", ".join(
                f"{quoted(c)} = excluded.{quoted(c)}" for c in row if c not in unique and c not in keep)
        return self.sql.run(sql, list(row.values())) == 1

    def start_run(self, command: str, backends: str, pid: int) -> int:
        return int(value(self.sql, "insert into runs (command, backends, pid, started_at) values (?, ?, ?, ?) "
                                   "returning run_id", [command, backends, pid, utc_now()]))

    def finish_run(self, run_id: int, succeeded: int, failed: int, exit_code: int) -> None:
        self.sql.run("update runs set finished_at = ?, succeeded = ?, failed = ?, exit_code = ? where run_id = ?",
                     [utc_now(), succeeded, failed, exit_code, run_id])


def open_ledger(settings: Settings, *, read_only: bool = False, pool_size: int = 8) -> Ledger:
    """The ledger the settings name: PostgreSQL with DATABASE_URL, else the SQLite file FEDFINA_DB."""
    if settings.database_url:
        return Ledger(None, settings.redact, read_only=read_only, url=settings.database_url, pool_size=pool_size)
    return Ledger(settings.db_path, settings.redact, read_only=read_only)


def ledger_exists(settings: Settings) -> bool:
    """Whether there is a ledger to read (a PostgreSQL ledger is asked when opened)."""
    return bool(settings.database_url) or settings.db_path.exists()


def fetched_conversations(settings: Settings, conversation_ids: set[str]) -> set[str]:
    """Which of these conversations the ledger has fetched (read-only; none without a ledger)."""
    if not conversation_ids or not (settings.database_url or settings.db_path.is_file()):
        return set()
    ledger = open_ledger(settings, read_only=True, pool_size=1)
    try:
        return conversation_ids & ledger.fetched()
    finally:
        ledger.close()


for _name, _method in list(vars(Ledger).items()):
    if callable(_method) and not _name.startswith("__") and _name != "stage":
        setattr(Ledger, _name, _translated(_method))


class StageLog:
    """Handle given to the code inside ``Ledger.stage`` for notes and a result line."""

    def __init__(self, ledger: Ledger, row: dict, step: str, attempt: int):
        self._ledger = ledger
        self.row = row
        self.step = step
        self.attempt = attempt
        self.summary: str | None = None

    def event(self, event: str, status: str, message: str | None = None,
              duration_ms: int | None = None) -> None:
        self._ledger.audit(self.row, self.step, event, status, message, duration_ms, self.attempt)

    def note(self, message: str) -> None:
        self.event("note", "note", message)

