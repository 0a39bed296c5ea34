"""A database failure as one line for people: which ledger, what is wrong, what to do.

Classified by the database's own error codes: SQLite's result code
(``sqlite_errorcode``, its primary part) and PostgreSQL's SQLSTATE. Only
libpq's failures to connect carry no code (psycopg raises them as a bare
OperationalError with the client library's text), so those few are told apart by
that text.
"""

from __future__ import annotations

import sqlite3

from fedfina_cli.core.errors import LedgerError


def translate(exc: BaseException, where: str) -> LedgerError | None:
    """The LedgerError for a database failure on the ledger ``where``; None for any other exception."""
    if isinstance(exc, sqlite3.Error):
        return explain(exc, where)
    if type(exc).__module__.startswith(("psycopg", "psycopg_pool")):
        return explain_postgres(exc, where)
    return None


def explain(exc: BaseException, path: object) -> LedgerError:
    """One line about an SQLite ledger (``path``: its file) or the folder it should be in."""
    where = f"the ledger {path}" if path is not None else "the ledger"
    message = str(exc)
    if isinstance(exc, OSError):
        return LedgerError(f"cannot create the folder for {where}: {exc.strerror or exc}; "
                           "create it, or set FEDFINA_DB to a file in a writable folder")
    code = getattr(exc, "sqlite_errorcode", None)
    primary = None if code is None else code & 0xFF  # the extended code's low byte is its primary code
    if primary in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT):
        return LedgerError(f"{where} is damaged or is not a fedfina ledger ({message}); restore it from "
                           "a backup, or set FEDFINA_DB to another file")
    if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return LedgerError(f"{where} is locked by another program ({message}); close it and try again",
                           retryable=True)
    if primary in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR):
        return LedgerError(f"cannot write {where}: {message}; free some space and run again "
                           "(finished stages are kept)", retryable=True)
    if primary == sqlite3.SQLITE_READONLY:
        return LedgerError(f"{where} is read-only ({message}); make the file and its folder writable, "
                           "or set FEDFINA_DB to a writable file")
    if primary == sqlite3.SQLITE_CANTOPEN:
        return LedgerError(f"cannot open {where} ({message}); check that its folder exists and is "
                           "writable, or set FEDFINA_DB")
    return LedgerError(f"{where} failed: {message}")


# SQLSTATE classes and codes (PostgreSQL's Appendix A) that say the server is away or going.
_AWAY_CLASSES = ("08",)  # connection exception
_AWAY_CODES = {"57P01", "57P02", "57P03", "53300"}  # shutdown, crash shutdown, cannot connect now, too many
# libpq's own texts for a connection it could not make (no SQLSTATE exists for these).
_UNREACHABLE = ("connection refused", "could not translate host name", "name or service not known",
                "failed to resolve host", "timeout expired", "no route to host")
_BAD_URL = ("invalid dsn", "invalid connection option", 'missing "="', "invalid integer value", "invalid port")
_CONNECTION_LOST = ("server closed the connection", "connection is lost", "consuming input failed",
                    "the connection is closed")


def explain_postgres(exc: BaseException, where: str, password: str | None = None) -> LedgerError:
    """One line about a PostgreSQL ledger: what is wrong and what to do; never the password."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    if password:
        message = message.replace(password, "***")
    ledger = f"the ledger database {where}"
    state = getattr(exc, "sqlstate", None) or ""
    lowered = message.lower()
    not_answering = LedgerError(f"{ledger} is not answering ({message}); check that PostgreSQL is running, "
                                "then run again (finished stages are kept)", retryable=True)
    if state:
        if state.startswith("28"):  # invalid authorization specification
            return LedgerError(f"{ledger} refused the user name or password in DATABASE_URL; check them")
        if state == "3D000":  # invalid catalog name
            return LedgerError(f"{ledger} does not exist; create it (createdb) or fix the name in DATABASE_URL")
        if state.startswith(_AWAY_CLASSES) or state in _AWAY_CODES:
            return not_answering
        if state == "25006":  # read-only SQL transaction
            return LedgerError(f"{ledger} was opened read-only ({message})")
        if state == "53100":  # disk full
            return LedgerError(f"{ledger} is out of disk space ({message}); free some space, then run again",
                               retryable=True)
        return LedgerError(f"{ledger} failed: {message}")
    if type(exc).__name__ == "PoolTimeout":
        return not_answering
    # A failure to connect: libpq's message is all there is.
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        return LedgerError(f"{ledger} refused the user name or password in DATABASE_URL; check them")
    if "does not exist" in lowered and "database" in lowered:
        return LedgerError(f"{ledger} does not exist; create it (createdb) or fix the name in DATABASE_URL")
    if any(text in lowered for text in _UNREACHABLE):
        return LedgerError(f"cannot reach {ledger} ({message}); check the host and port in DATABASE_URL "
                           "and that PostgreSQL is running", retryable=True)
    if any(text in lowered for text in _BAD_URL):
        return LedgerError(f"DATABASE_URL is not a valid PostgreSQL URL ({message}); expected "
                           "postgresql://user:password@host:5432/database")
    if any(text in lowered for text in _CONNECTION_LOST):
        return not_answering
    return LedgerError(f"{ledger} failed: {message}")
