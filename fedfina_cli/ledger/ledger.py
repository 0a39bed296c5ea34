"""The SQLite ledger (SPEC "Ledger"): what was done, when, with which files and calls.

One connection per process, guarded by a lock, so that worker threads write
consistently; WAL and a busy timeout let `status` read while a run writes.
Every free-text value passes through ``redact`` before it is stored. The claim
and queue statements are ``ledger.queue`` (ledger/queue.py); the tables are made
by ledger/migrations.py; a database failure reaches callers as one LedgerError
(ledger/errors.py, raised by the Sql classes).
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fedfina_cli.core.api_calls import ApiCall, elapsed_ms
from fedfina_cli.core.config import Settings, password_of, without_password
from fedfina_cli.core.errors import ClaimLost, LedgerError
from fedfina_cli.core.files import private_dir, private_file
from fedfina_cli.core.object_keys import StoredObject
from fedfina_cli.core.timefmt import seconds_between, utc_now
from fedfina_cli.ledger import rows
from fedfina_cli.ledger.api_calls import ApiCallLog
from fedfina_cli.ledger.console import ConsoleStore
from fedfina_cli.ledger.database import PostgresSql, Sql, SqliteSql, one, quoted, value
from fedfina_cli.ledger.errors import explain, explain_postgres
from fedfina_cli.ledger.migrations import MIGRATIONS, migration_lock, sqlite_migrations, sqlite_pending
from fedfina_cli.ledger.queue import Queue
from fedfina_cli.ledger.retention import Retention
from fedfina_cli.ledger.rows import ConversationRow, Row
from fedfina_cli.ledger.schema import migrate_postgres, pending_postgres

if TYPE_CHECKING:
    from sqlite_utils import Database


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
        self.sql: Sql
        if url:
            self._open_postgres(url, read_only, pool_size)
        else:
            self._open_sqlite(path, read_only)
        self.api_calls = ApiCallLog(self.sql, redact)  # written in batches (ledger/api_calls.py)
        self.queue = Queue(self)  # claims, workers and the queue of serve and worker
        self.retention = Retention(self)  # purge and legal hold
        self.console = ConsoleStore(self)  # the console's sign-ins, sessions and pages

    def _open_postgres(self, url: str, read_only: bool, pool_size: int) -> None:

        try:
            self.sql = PostgresSql(url, pool_size, read_only=read_only)
        except Exception as exc:  # noqa: BLE001 - whatever the driver raises on connecting: one line
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
        except Exception as exc:  # noqa: BLE001 - whatever the driver raises migrating: one line
            self.sql.close()
            raise explain_postgres(exc, self.sql.description) from None

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
            with self.sql.lock:
                conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
                if read_only and path is not None:
                    conn.execute("select count(*) from sqlite_master")  # a damaged file says so here
                    return
                if path is not None and conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    with migration_lock(path):
                        self._enable_wal(conn)
                # With WAL, NORMAL loses nothing when the process dies (kill -9): only
                # a power cut can drop the last commits. It saves an fsync per write.
                conn.execute("PRAGMA synchronous = NORMAL")
                if sqlite_pending(conn):
                    with migration_lock(path):
                        sqlite_migrations().apply(self.db)  # re-checks: another process may have applied them
        except (sqlite3.Error, OSError) as exc:
            raise explain(exc, path) from exc

    @cached_property
    def db(self) -> Database:
        """sqlite-utils over a SQLite ledger's connection: its migrations, and tests. Made when
        first asked for: a process opening an up-to-date ledger does not import sqlite-utils."""
        from sqlite_utils import Database  # noqa: PLC0415 - only for SQLite (ledger/migrations.py)

        if not isinstance(self.sql, SqliteSql):
            raise TypeError(f"{self.sql.description} is a PostgreSQL ledger: sqlite-utils is for SQLite")
        return Database(self.sql.conn)

    def _enable_wal(self, conn: sqlite3.Connection) -> None:
        """Switch a new ledger to WAL. SQLite answers "database is locked" at once, without
        waiting its busy timeout, while another process reads the file: try again until it
        has looked away (processes that open a new ledger together all get here)."""
        deadline = time.monotonic() + self.busy_timeout_ms / 1000
        while True:
            try:
                conn.execute("PRAGMA journal_mode = wal")
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    @property
    def description(self) -> str:
        """Which ledger, for people: the file, or the database URL without its password."""
        return self.sql.description

    def close(self) -> None:
        self.api_calls.close()
        self.sql.close()

    # --- conversations -------------------------------------------------

    def fetched(self) -> set[str]:
        return {row["conversation_id"] for row in self.sql.rows(
            "select distinct conversation_id from conversation_processing "
            "where conversation_key is not null and transcript_key is not null")}

    def rows_for(self, conversation_id: str, account_id: str | None = None) -> list[ConversationRow]:
        where, args = "conversation_id = ?", [conversation_id]
        if account_id is not None:
            where, args = where + " and account_id = ?", [*args, account_id]
        return rows.conversations(
            self.sql.rows(f"select * from conversation_processing where {where} order by processing_id", args))

    def get(self, processing_id: int) -> ConversationRow:
        row = one(self.sql, "select * from conversation_processing where processing_id = ?", [processing_id])
        if row is None:
            raise KeyError(f"no conversation_processing row {processing_id}")
        return rows.conversation(row)

    def open_conversation(self, conversation_id: str, account_id: str, email_id: str | None) -> ConversationRow:
        """The conversation's row, created when new; marks it processing (no claim: a failure
        recorded before the account is known, or a test)."""
        processing_id = self.row_id(conversation_id, account_id)
        now = utc_now()
        changes = {"status": "processing", "started_at": now, "error_message": None, "retryable": None}
        if email_id:
            changes["email_id"] = email_id
        return self.update(processing_id, **changes)

    def recent_seconds(self, limit: int = 20) -> float | None:
        """Mean processing time of the last ``limit`` conversations completed (an estimate's base)."""
        rows = self.sql.rows(
            "select started_at, completed_at from conversation_processing where completed_at is not null "
            "and started_at is not null order by completed_at desc limit ?", [limit])
        spans = [s for r in rows if (s := seconds_between(r["started_at"], r["completed_at"])) is not None
                 and s >= 0]
        return sum(spans) / len(spans) if spans else None

    def row_id(self, conversation_id: str, account_id: str) -> int:
        """The row's processing_id, inserted (pending) when new. Race-free across processes:
        the unique (account_id, conversation_id) index lets only one insert win."""
        now = utc_now()
        with self.sql.together():  # one commit on SQLite, not two
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

    def update(self, processing_id: int, *, claimed_with: str | None = None,
               **changes: object) -> ConversationRow:
        """Change the row; the row as changed. With ``claimed_with`` (a claim's token): only while that claim holds
        it, else ClaimLost (a process that stalled past its claim writes nothing more)."""
        changes["updated_at"] = utc_now()
        message = changes.get("error_message")
        if isinstance(message, str):
            changes["error_message"] = self._redact(message)
        assignments = ", ".join(f"{quoted(column)} = ?" for column in changes)
        held = " and claim_token = ?" if claimed_with is not None else ""
        # The row as changed, in the same round trip (a conversation makes over a dozen updates).
        row = one(self.sql, f"update conversation_processing set {assignments} where processing_id = ?{held} "
                            "returning *", [*changes.values(), processing_id,
                                            *([claimed_with] if claimed_with is not None else [])])
        if row is None:
            if claimed_with is not None:
                raise ClaimLost(self.get(processing_id)["conversation_id"])
            raise KeyError(f"no conversation_processing row {processing_id}")
        return rows.conversation(row)

    def record_file(self, row: ConversationRow, file_type: str, obj: StoredObject) -> None:
        # One row per object key (a unique index): a re-stored object updates its row.
        self.insert("conversation_files", {
            "conversation_id": row["conversation_id"],
            "account_id": row["account_id"],
            "file_type": file_type,
            "object_key": obj.key,
            "size_bytes": obj.size_bytes,
            "sha256": obj.sha256,
            "content_type": obj.content_type,
            "storage": obj.storage,
            "created_at": utc_now(),
            "deleted_at": None,  # stored again after a purge (run --force): it is there again
        }, conflict="object_key")
        if row.get("purged_at"):  # ...and the conversation's files are purged again in their time
            self.sql.run("update conversation_processing set purged_at = null where processing_id = ?",
                         [row["processing_id"]])
            row["purged_at"] = None
        if obj.storage is not None and row.get("storage") != obj.storage:  # once per conversation and run
            self.sql.run("update conversation_processing set storage = ? where processing_id = ?",
                             (obj.storage, row["processing_id"]))
            row["storage"] = obj.storage

    # --- a recording waiting for its transcription (SPEC "Serving") ------

    def hold_audio(self, conversation_id: str, object_key: str, size_bytes: int) -> None:
        """Record a recording written to the holding area (after it is written, never before)."""
        self.insert("incoming_audio", {"conversation_id": conversation_id, "object_key": object_key,
                                       "size_bytes": size_bytes, "received_at": utc_now()},
                    conflict="conversation_id")

    def take_held_audio(self, conversation_id: str) -> str | None:
        """The held recording's key, taken: one caller gets it, the others None. Safe to run
        twice (a reply lost after the update): the caller's own mark is found again. The
        taker deletes the row once the recording is moved (release_held_audio)."""
        mark = uuid.uuid4().hex
        taken = self.sql.rows("update incoming_audio set taken_by = ? where conversation_id = ? "
                              "and (taken_by is null or taken_by = ?) returning object_key",
                              [mark, conversation_id, mark])
        return str(taken[0]["object_key"]) if taken else None

    def release_held_audio(self, conversation_id: str) -> None:
        self.sql.run("delete from incoming_audio where conversation_id = ?", [conversation_id])

    def held_audio_before(self, cutoff: str) -> list[Row]:
        return self.sql.rows("select * from incoming_audio where received_at < ? order by received_at",
                             [cutoff])

    def storage_counts(self) -> dict[str, int]:
        """Where conversations' files were stored (folder or bucket) -> how many conversations."""
        return {row["storage"]: row["n"] for row in self.sql.rows(
            "select storage, count(*) as n from conversation_processing where storage is not null "
            "group by storage order by n desc")}

    def files_for(self, conversation_id: str, account_id: str) -> list[Row]:
        return self.sql.rows("select * from conversation_files where conversation_id = ? and account_id = ? "
                             "order by id", [conversation_id, account_id])

    def account_settings(self, account_id: str) -> Row | None:
        return one(self.sql, "select * from account_settings where account_id = ?", [account_id])

    def conversations(self, account_id: str | None = None, status: str | None = None,
                      limit: int | None = None) -> list[ConversationRow]:
        """Newest first, optionally filtered (for `status` and `run --failed`)."""
        where, args = _filters(account_id, status)
        sql = "select * from conversation_processing" + where
        sql += " order by updated_at desc, processing_id desc"
        if limit is not None:
            sql += " limit ?"
            args.append(limit)
        return rows.conversations(self.sql.rows(sql, args))

    def count_conversations(self, account_id: str | None = None, status: str | None = None) -> int:
        """How many `conversations()` would list without a limit (`status --limit`: "2 of 12")."""
        where, args = _filters(account_id, status)
        return int(self.sql.rows("select count(*) as n from conversation_processing" + where, args)[0]["n"])

    def set_account_settings(self, account_id: str, values: Row) -> Row:
        now = utc_now()
        row = {"account_id": account_id, **values, "created_at": now, "updated_at": now}
        # One statement: created_at is written only by the insert, the rest by either.
        self.insert("account_settings", row, conflict="account_id", keep=("created_at",))
        settings = self.account_settings(account_id)
        assert settings is not None
        return settings

    def all_account_settings(self) -> list[Row]:
        return self.sql.rows("select * from account_settings order by account_id")

    # --- sync watermark ----------------------------------------------------

    def watermark(self, agent_id: str) -> int | None:
        found = value(self.sql, "select watermark_unix from sync_state where agent_id = ?", [agent_id])
        return None if found is None else int(found)

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
    def stage(self, row: ConversationRow, step: str, claim_token: str | None = None) -> Iterator[StageLog]:
        """Record one attempt of a stage: started, then completed or failed.

        What the stage leaves in ``log.changes`` (its objects' keys) is written with its
        completion, while the claim holds (else ClaimLost, recorded as its failure); the row as
        changed is then ``log.completed_row``."""
        with self.sql.together():
            self.update(row["processing_id"], claimed_with=claim_token, current_step=step, status="processing")
            log = StageLog(self, row, step, self._started(row, step))
        started = time.monotonic()
        try:
            yield log
            with self.sql.together():
                if log.changes:
                    log.completed_row = self.update(row["processing_id"], claimed_with=claim_token, **log.changes)
                log.event("completed", "completed", log.summary, elapsed_ms(started))
        except BaseException as exc:
            log.event("failed", "failed", str(exc) or type(exc).__name__, elapsed_ms(started))
            raise

    def _started(self, row: ConversationRow, step: str) -> int:
        """Audit a stage's start; its attempt number (one more than its starts before), from the
        same statement (a count, then the insert, was a second round trip for every stage)."""
        return int(value(self.sql,
                         "insert into processing_audit_log (processing_id, conversation_id, step, event, status, "
                         "attempt, created_at) select ?, ?, ?, 'started', 'processing', count(*) + 1, ? "
                         "from processing_audit_log where processing_id = ? and step = ? and event = 'started' "
                         "returning attempt",
                         [row["processing_id"], row["conversation_id"], step, utc_now(), row["processing_id"], step]))

    def audit(self, row: Mapping[str, Any], step: str, event: str, status: str, message: str | None = None,
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

    def scrubbed(self, text: str) -> str:
        """``text`` without the secrets of these settings, as every free text is stored."""
        return self._redact(text)

    def audit_log(self, processing_id: int) -> list[Row]:
        return self.sql.rows("select * from processing_audit_log where processing_id = ? order by id",
                             [processing_id])

    # --- API usage and runs ----------------------------------------------

    def record_api_call(self, call: ApiCall) -> None:
        self.api_calls.record(call)

    def insert(self, table: str, row: Mapping[str, Any], conflict: str | tuple[str, ...] | None = None,
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


def _filters(account_id: str | None, status: str | None) -> tuple[str, list[object]]:
    """A where clause (or nothing) for an account and a status, and its arguments."""
    where: list[str] = []
    args: list[object] = []
    if account_id is not None:
        where.append("account_id = ?")
        args.append(account_id)
    if status is not None:
        where.append("status = ?")
        args.append(status)
    return (" where " + " and ".join(where) if where else ""), args


def open_ledger(settings: Settings, *, read_only: bool = False, pool_size: int = 8) -> Ledger:
    """The ledger the settings name: PostgreSQL with DATABASE_URL, else the SQLite file FEDFINA_DB."""
    if settings.database_url:
        return Ledger(None, settings.redact, read_only=read_only, url=settings.database_url, pool_size=pool_size)
    return Ledger(settings.db_path, settings.redact, read_only=read_only)


def ledger_exists(settings: Settings) -> bool:
    """Whether there is a ledger to read (a PostgreSQL ledger is asked when opened)."""
    return bool(settings.database_url) or settings.db_path.exists()


def pending_migrations(settings: Settings) -> tuple[list[str], int]:
    """The ledger's health for `doctor`: (the migrations its first run will apply, how many there are).
    Read-only; a ledger that cannot be read raises LedgerError. (No SQLite file yet: all of them.)"""
    names = [name for name, _ in MIGRATIONS]
    if settings.database_url:

        where = without_password(settings.database_url)
        try:
            sql = PostgresSql(settings.database_url, 1, read_only=True)
        except Exception as exc:  # noqa: BLE001 - every failure to connect becomes one line
            raise explain_postgres(exc, where, password_of(settings.database_url)) from None
        try:
            return pending_postgres(sql.pool, MIGRATIONS), len(names)
        except Exception as exc:  # noqa: BLE001
            raise explain_postgres(exc, where) from None
        finally:
            sql.close()
    if not settings.db_path.exists():
        return names, len(names)
    try:
        conn = sqlite3.connect(f"{settings.db_path.absolute().as_uri()}?mode=ro", uri=True)
        try:
            return sqlite_pending(conn), len(names)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise explain(exc, settings.db_path) from None


def fetched_conversations(settings: Settings, conversation_ids: set[str]) -> set[str]:
    """Which of these conversations the ledger has fetched (read-only; none without a ledger)."""
    if not conversation_ids or not (settings.database_url or settings.db_path.is_file()):
        return set()
    ledger = open_ledger(settings, read_only=True, pool_size=1)
    try:
        return conversation_ids & ledger.fetched()
    finally:
        ledger.close()


class StageLog:
    """Handle given to the code inside ``Ledger.stage`` for notes and a result line."""

    def __init__(self, ledger: Ledger, row: ConversationRow, step: str, attempt: int):
        self._ledger = ledger
        self.row = row
        self.step = step
        self.attempt = attempt
        self.summary: str | None = None
        self.changes: dict[str, object] = {}  # for the row, written with the completion
        self.completed_row: ConversationRow | None = None  # the row with ``changes``, once written

    def event(self, event: str, status: str, message: str | None = None,
              duration_ms: int | None = None) -> None:
        self._ledger.audit(self.row, self.step, event, status, message, duration_ms, self.attempt)

    def note(self, message: str) -> None:
        self.event("note", "note", message)

