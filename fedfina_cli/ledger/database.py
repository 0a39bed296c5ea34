"""The ledger's two databases behind one small interface: SQLite (embedded) and PostgreSQL.

The ledger's SQL is written once, in the subset both understand: ``?``
placeholders, ``insert … on conflict … do``, ``update … returning``, ``case``.
What differs is said here and nowhere else: how to connect, placeholders
(``%s`` for psycopg), the one clause only PostgreSQL has (``for update skip
locked``), and the DDL the migrations produce (ledger/schema.py).

Every failure of the database leaves here as one LedgerError naming the ledger
(ledger/errors.py), so no caller needs to know which database it talks to.

SQLite: one connection per process, guarded by a lock; WAL lets readers in.
PostgreSQL: a pool of connections, sized to the work's concurrency. A statement
that fails on a connection the server dropped (a restart) is run again on
another: a restart costs a reconnect, not the process. (Not a check query
before every statement: that doubled the ledger's round trips.)
"""

from __future__ import annotations

import functools
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Any, Protocol, TypeVar

from fedfina_cli.core.config import without_password
from fedfina_cli.ledger.errors import translate
from fedfina_cli.ledger.rows import Row

_T = TypeVar("_T")


class Sql(Protocol):
    dialect: str  # "sqlite" | "postgresql"
    description: str  # for messages: a path, or the URL without its password

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Execute; the number of rows changed."""
        ...

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    def together(self) -> AbstractContextManager[None]:
        """Statements run inside are committed together where that saves work (SQLite); a
        group is never what makes them correct: each is safe on its own, as on PostgreSQL."""
        ...

    def notify(self, channel: str) -> None:
        """Tell the other processes' listeners (PostgreSQL's NOTIFY; nothing on SQLite)."""
        ...

    def listen(self, channel: str, on_notify: Callable[[], None], stopping: threading.Event) -> None:
        """Call ``on_notify`` for each notification until ``stopping`` (returns at once on SQLite)."""
        ...

    def close(self) -> None: ...


def quoted(identifier: str) -> str:
    """An identifier (table, column, index) as SQL, on either database."""
    return '"' + identifier.replace('"', '""') + '"'


def one(sql: Sql, statement: str, params: Sequence[Any] = ()) -> Row | None:
    found = sql.rows(statement, params)
    return found[0] if found else None


def value(sql: Sql, statement: str, params: Sequence[Any] = ()) -> Any:
    row = one(sql, statement, params)
    return None if row is None else next(iter(row.values()))


class SqliteSql:
    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection, description: str):
        self.conn = conn
        self.description = description
        self.lock = threading.RLock()
        self._grouping = False  # in together(), on the thread holding the lock

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        try:
            with self.lock:
                return self.conn.execute(sql, list(params)).rowcount
        except sqlite3.Error as exc:
            raise _translated(exc, self.description) from exc

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        try:
            with self.lock:
                cursor = self.conn.execute(sql, list(params))
                names = [column[0] for column in cursor.description or ()]
                return [dict(zip(names, row)) for row in cursor.fetchall()]
        except sqlite3.Error as exc:
            raise _translated(exc, self.description) from exc

    @contextmanager
    def together(self) -> Iterator[None]:
        """One transaction: one commit, and each page the statements change written to the WAL
        once, instead of a commit (locks, WAL frames) for every statement: a stage's start, or its
        result and completion, are three or four statements. The connection is held throughout,
        so nothing slow may happen inside (no network, no files). Inside a group: part of it."""
        with self.lock:
            if self._grouping:
                yield
                return
            self._grouping = True
            try:
                self.run("begin immediate")  # the write lock at once: no deadlock upgrading a read
                yield
                self.conn.execute("commit")
            except BaseException as exc:
                # Whatever stopped the group (even an interrupt right after BEGIN), no transaction
                # is left open: every later statement of this process would be in it, uncommitted.
                if self.conn.in_transaction:
                    with suppress(sqlite3.Error):
                        self.conn.execute("rollback")
                if isinstance(exc, sqlite3.Error):
                    raise _translated(exc, self.description) from exc
                raise
            finally:
                self._grouping = False

    def notify(self, channel: str) -> None:
        pass  # one file, no server to carry it: other processes poll

    def listen(self, channel: str, on_notify: Callable[[], None], stopping: threading.Event) -> None:
        pass

    def close(self) -> None:
        self.conn.close()


class PostgresSql:
    dialect = "postgresql"
    reconnect_seconds = 30.0  # a restart takes seconds; longer is an outage: say so

    def __init__(self, url: str, pool_size: int, read_only: bool = False, connect_timeout: float = 10):
        import psycopg
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool

        self.description = without_password(url)
        self._url = url  # for listen(): never shown (description is)
        self._connect_timeout = connect_timeout
        options = "-c default_transaction_read_only=on" if read_only else None
        # One plain connection first: a wrong URL, password or host fails now with
        # PostgreSQL's own reason (a pool would retry it until its timeout, then say less).
        psycopg.connect(url, connect_timeout=int(connect_timeout)).close()
        self.pool = ConnectionPool(
            url, min_size=1, max_size=max(2, pool_size), open=False, timeout=connect_timeout,
            kwargs={"autocommit": True, "row_factory": dict_row, "connect_timeout": int(connect_timeout),
                    **({"options": options} if options else {})},
            reconnect_timeout=connect_timeout)
        self.pool.open(wait=True, timeout=connect_timeout)

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        from psycopg.rows import tuple_row

        def execute(conn: Any) -> int:
            # A cursor without the pool's dict_row, which reads a result's column names (a Python
            # object per column) even when no row is fetched.
            with conn.cursor(row_factory=tuple_row) as cursor:
                return int(cursor.execute(_placeholders(sql), list(params)).rowcount)

        return self._retrying(execute)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        def query(conn: Any) -> list[Row]:
            cursor = conn.execute(_placeholders(sql), list(params))
            return list(cursor.fetchall()) if cursor.description else []

        return self._retrying(query)

    @contextmanager
    def together(self) -> Iterator[None]:
        """Each statement still commits on its own: on a pooled autocommit connection a transaction
        would add two round trips (BEGIN, COMMIT) to save none, and each statement is written to be
        safe alone and run again after a lost reply (``_retrying``)."""
        yield

    def _retrying(self, call: Callable[[Any], _T]) -> _T:
        """Run ``call`` on a pooled connection; while the server is away (a restart, a
        fail-over) wait and try again on a new connection, for up to ``reconnect_seconds``.

        A statement whose reply was lost may have been done: every statement of the
        ledger is written to be run twice. Updates are conditional or set the same
        values again; a claim carries its token and finds its own row the second time
        (ledger/queue.py); an insert of a row with a key does nothing the second time.
        The worst case is a repeated audit line, or a `runs` or `workers` row of
        which one is never finished (a worker row then goes stale and is pruned).
        """
        import psycopg
        from psycopg_pool import PoolTimeout

        deadline = time.monotonic() + self.reconnect_seconds
        failures = 0
        while True:
            try:
                with self.pool.connection() as conn:  # a broken connection is discarded on its return
                    return call(conn)
            except (psycopg.OperationalError, PoolTimeout) as exc:
                if time.monotonic() > deadline:
                    raise _translated(exc, self.description) from exc
                failures += 1
                # After a restart every idle connection in the pool is dead: try the next
                # at once; once the pool has been gone through, wait for the server.
                if failures > self.pool.max_size:
                    time.sleep(0.5)
            except psycopg.Error as exc:
                raise _translated(exc, self.description) from exc

    def notify(self, channel: str) -> None:
        """Tell every listener on ``channel`` (sent at once: the pool's connections autocommit)."""
        self.run("select pg_notify(?, '')", [channel])

    def listen(self, channel: str, on_notify: Callable[[], None], stopping: threading.Event) -> None:
        """Call ``on_notify`` for each notification on ``channel`` until ``stopping`` is set, on a
        connection of its own (a pooled one goes back to the pool); reconnects after a failure."""
        import psycopg

        while not stopping.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True, connect_timeout=int(self._connect_timeout)) as conn:
                    conn.execute(f"listen {channel}")
                    while not stopping.is_set():
                        for _ in conn.notifies(timeout=1.0):
                            on_notify()
            except psycopg.Error:
                stopping.wait(1.0)  # the server is away (a restart): polling still works meanwhile

    def close(self) -> None:
        self.pool.close()


def _translated(exc: BaseException, where: str) -> BaseException:
    return translate(exc, where) or exc


_QUESTION = re.compile(r"\?")


@functools.lru_cache(maxsize=1024)  # the ledger's statements are a few dozen texts, run over and over
def _placeholders(sql: str) -> str:
    """``?`` (the ledger's SQL) as psycopg's ``%s``; a literal % doubled first."""
    return _QUESTION.sub("%s", sql.replace("%", "%%"))
