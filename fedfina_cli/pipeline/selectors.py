"""Turning the selector flags into validated jobs, before any network call.

Flags with bad values are usage errors (exit 2). CSV rows are checked one by
one: a bad row is reported with its row number, field and reason and left
out, and the rest go on.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fedfina_cli.core import validation
from fedfina_cli.core.conversation import load_conversation_file
from fedfina_cli.core.errors import InvalidValue, UsageError
from fedfina_cli.ledger.ledger import Ledger
from fedfina_cli.pipeline.jobs import Job


@dataclass(frozen=True)
class Rejected:
    where: str  # "row 7" of the CSV
    field: str
    value: str
    reason: str
    duplicate: bool = False  # a repeated row is processed once; not a failure
    # The row's conversation and account as written (for the failures table,
    # even when it is another field that was bad).
    conversation_id: str = ""
    account_id: str = ""

    def __str__(self) -> str:
        return f"{self.where}: {self.field} {self.value!r}: {self.reason}"


@dataclass(frozen=True)
class Selection:
    jobs: list[Job]
    rejected: list[Rejected]
    empty_csv: str | None = None  # why the CSV selected nothing (an empty export is not an error)


ALL_SELECTORS = ("--conversation-id/-c", "--csv FILE", "--from-file FILE", "--failed")


def select(conversation_ids: list[str] | None = None, email: str | None = None,
           account_id: str | None = None, csv_path: Path | None = None,
           from_files: list[Path] | None = None, required: bool = True,
           selectors: tuple[str, ...] = ALL_SELECTORS) -> Selection:
    """``required``: no selector at all is a usage error (not so with `run --failed`).

    ``selectors``: the options the command takes, for the hint when none was given.
    """
    if email is not None:
        validation.email_address(email)
    if account_id is not None:
        validation.account_id(account_id)
    jobs = [Job(validation.conversation_id(c), email, account_id) for c in conversation_ids or []]
    for path in from_files or []:
        conversation, raw = load_conversation_file(path)
        try:
            validation.conversation_id(conversation.conversation_id)
        except InvalidValue as exc:
            raise UsageError(f"--from-file {path}: {exc}") from None
        jobs.append(Job(conversation.conversation_id, email, account_id, payload=raw, label=str(path)))
    rejected: list[Rejected] = []
    empty_csv = None
    if csv_path is not None:
        csv_jobs, rejected = _read_csv(csv_path, email, account_id)
        if not csv_jobs and not rejected:
            empty_csv = (f"--csv {csv_path}: the file is empty" if csv_path.stat().st_size == 0
                         else f"--csv {csv_path}: the file has a header but no rows")
        jobs += csv_jobs
    if required and not jobs and not rejected and empty_csv is None:
        raise UsageError(f"nothing to process: pass {', '.join(selectors[:-1])} or {selectors[-1]}")
    unique, duplicates = _dedupe(jobs)
    return Selection(unique, rejected + duplicates, empty_csv)


# Python's csv module refuses a field over 128 KB and gives up on the whole
# file; a row with one is reported on its own instead (an id or address that
# long is invalid anyway), and the other rows go on.
FIELD_LIMIT = 16 * 1024 * 1024


def with_failed(selection: Selection, ledger: Ledger, account_id: str | None) -> tuple[Selection, int]:
    """`run --failed`: the selection plus every conversation the ledger has as failed (optionally one
    account's), each once; and how many failed ones the ledger has."""
    known = {(job.conversation_id, job.account_id) for job in selection.jobs}
    rows = ledger.conversations(account_id, "failed")
    failed = [Job(r["conversation_id"], r["email_id"], r["account_id"] or None, label="--failed")
              for r in rows if (r["conversation_id"], r["account_id"] or None) not in known]
    return Selection(selection.jobs + failed, selection.rejected), len(rows)


@contextmanager
def _field_limit(limit: int) -> Iterator[None]:
    previous = csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _read_csv(path: Path, default_email: str | None, default_account: str | None
              ) -> tuple[list[Job], list[Rejected]]:
    with _field_limit(FIELD_LIMIT):
        return _read_rows(path, default_email, default_account)


def _read_rows(path: Path, default_email: str | None, default_account: str | None
               ) -> tuple[list[Job], list[Rejected]]:
    try:
        if path.stat().st_size == 0:
            return [], []  # an empty export: nothing to do, and not an error (cron)
        with path.open(newline="", encoding=_encoding(path)) as handle:
            header = handle.readline()
            handle.seek(0)
            reader = csv.DictReader(handle, delimiter=_delimiter(header))
            columns = {_column_name(c): c for c in reader.fieldnames or []}
            if "conversation_id" not in columns:
                read = ", ".join(repr(c) for c in reader.fieldnames or []) or "nothing"
                raise UsageError(f"--csv {path}: the header row has no conversation_id column (it reads {read}); "
                                 "name the columns conversation_id, email_id or email, account_id")
            email_column = columns.get("email_id") or columns.get("email")
            jobs, rejected = [], []
            for row in reader:
                where = f"row {reader.line_num}"
                values = {
                    "conversation_id": (row.get(columns["conversation_id"]) or "").strip(),
                    "email_id": (row.get(email_column) or "").strip() if email_column else "",
                    "account_id": (row.get(columns.get("account_id", "")) or "").strip(),
                }
                if not any(values.values()):
                    continue  # blank line
                try:
                    jobs.append(Job(
                        conversation_id=validation.conversation_id(values["conversation_id"]),
                        email_id=validation.email_address(values["email_id"]) if values["email_id"]
                        else default_email,
                        account_id=validation.account_id(values["account_id"]) if values["account_id"]
                        else default_account,
                        label=where,
                    ))
                except InvalidValue as exc:
                    rejected.append(Rejected(where, exc.field, _clip(str(exc.value)), exc.reason,
                                             conversation_id=_clip(values["conversation_id"], 40),
                                             account_id=_clip(values["account_id"], 40)))
            return jobs, rejected
    except FileNotFoundError:
        raise UsageError(f"--csv {path}: no such file") from None
    except UnicodeDecodeError:
        raise UsageError(f"--csv {path}: not UTF-8 text; save the sheet as CSV UTF-8") from None
    except csv.Error as exc:
        raise UsageError(f"--csv {path}: not a readable CSV file ({exc})") from None


# What spreadsheets and people call the columns -> the SPEC's names (after _column_name).
COLUMN_ALIASES = {
    "conversation": "conversation_id", "conv_id": "conversation_id", "call_id": "conversation_id",
    "e_mail": "email", "email_address": "email", "recipient": "email",
    "account": "account_id", "account_no": "account_id", "account_number": "account_id",
}


def _column_name(header: str | None) -> str:
    """`Conversation ID`, `conversation-id`, ` EMAIL ` -> conversation_id, email."""
    name = re.sub(r"[\s\-.]+", "_", (header or "").strip().lower()).strip("_")
    return COLUMN_ALIASES.get(name, name)


def _delimiter(header: str) -> str:
    """The header row's separator: a spreadsheet in a comma-decimal locale saves `;`,
    "Unicode text" tabs. Counted outside quotes; a comma when the header has none."""
    unquoted = re.sub(r'"[^"]*"', "", header)
    counts = {d: unquoted.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _encoding(path: Path) -> str:
    """utf-8-sig (a byte-order mark is dropped: Excel's "CSV UTF-8" writes one), or
    UTF-16 for Excel's "Unicode text", which begins with its own mark."""
    with path.open("rb") as raw:
        start = raw.read(2)
    return "utf-16" if start in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"


def _clip(value: str, limit: int = 120) -> str:
    """A rejected value as shown (a 200 KB cell must not fill the terminal)."""
    return value if len(value) <= limit else f"{value[:limit - 1]}… ({len(value)} characters)"


def _dedupe(jobs: list[Job]) -> tuple[list[Job], list[Rejected]]:
    seen: dict[tuple[str, str | None], Job] = {}
    duplicates = []
    for job in jobs:
        key = (job.conversation_id, job.account_id)
        if key in seen:
            first = seen[key]
            where = first.label or "an earlier selector"
            if job.email_id != first.email_id:
                # Not a harmless repeat: one of the two recipients would not get the report.
                duplicates.append(Rejected(
                    job.label or "selector", "email_id", job.email_id or "",
                    f"conflicts with {where}, which names {first.email_id or 'no recipient'} for "
                    f"{job.conversation_id}; only {where} is processed: fix the sheet",
                    conversation_id=job.conversation_id, account_id=job.account_id or ""))
                continue
            duplicates.append(Rejected(job.label or "selector", "conversation_id", job.conversation_id,
                                       f"duplicate of {where}; processed once", duplicate=True,
                                       conversation_id=job.conversation_id, account_id=job.account_id or ""))
            continue
        seen[key] = job
    return list(seen.values()), duplicates
