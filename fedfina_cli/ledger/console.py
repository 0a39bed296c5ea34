"""The ledger's side of the console (SPEC "The console"): sign-in links, sessions, the limits
on sign-in requests, and the queries its pages make.

Tokens are never stored: a link's and a session's SHA-256 is (console/auth.py makes them).
Every statement is safe to run twice: a link is used by one statement that also checks it is
unused and unexpired; a session ends by setting ended_at.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fedfina_cli.core.timefmt import utc_in, utc_now
from fedfina_cli.core.validation import CONVERSATION_ID
from fedfina_cli.ledger.daily import day_after
from fedfina_cli.ledger.database import one, value
from fedfina_cli.ledger.rows import ConversationRow, Row, conversation_or_none, conversations

if TYPE_CHECKING:
    from fedfina_cli.ledger.ledger import Ledger

PAGE_SIZE = 50


@dataclass(frozen=True)
class Listing:
    """What the conversation list asks for: filters, a search, and where the page starts."""

    viewer: str | None = None  # an officer's address (lowercase): only theirs; None: an admin, all
    status: str | None = None
    account_id: str | None = None
    day_from: str | None = None  # YYYY-MM-DD, of created_at (UTC)
    day_to: str | None = None
    search: str | None = None
    after: tuple[str, int] | None = None  # the last row of the page before: (created_at, processing_id)


class ConsoleStore:
    def __init__(self, ledger: Ledger):
        self._ledger = ledger
        self.sql = ledger.sql

    # --- sign-in ---------------------------------------------------------------

    def count_requests(self, address_sha256: str, client: str, since: str) -> tuple[int, int]:
        """Sign-in requests since then: (for this address, from this client)."""
        by_address = value(self.sql, "select count(*) as n from console_signin_requests "
                                     "where address_sha256 = ? and created_at >= ?", [address_sha256, since])
        by_client = value(self.sql, "select count(*) as n from console_signin_requests "
                                    "where client = ? and created_at >= ?", [client, since])
        return int(by_address), int(by_client)

    def record_request(self, address_sha256: str, client: str) -> None:
        self.sql.run("insert into console_signin_requests (address_sha256, client, created_at) values (?, ?, ?)",
                     [address_sha256, client, utc_now()])

    def may_sign_in(self, email: str, admins: tuple[str, ...]) -> bool:
        """An admin, or the recipient of some conversation (SPEC: who gets a link)."""
        if email in admins:
            return True
        return one(self.sql, "select 1 as yes from conversation_processing where lower(email_id) = ? limit 1",
                   [email]) is not None

    def create_link(self, token_sha256: str, email: str, lifetime_seconds: float) -> None:
        self.sql.run("insert into console_links (token_sha256, email, created_at, expires_at) values (?, ?, ?, ?)",
                     [token_sha256, email, utc_now(), utc_in(lifetime_seconds)])

    def link_is_usable(self, token_sha256: str) -> bool:
        return one(self.sql, "select 1 as yes from console_links where token_sha256 = ? and used_at is null "
                             "and expires_at > ?", [token_sha256, utc_now()]) is not None

    def use_link(self, token_sha256: str) -> str | None:
        """The link's address, marking it used; None when it is unknown, used or expired."""
        row = one(self.sql, "update console_links set used_at = ? where token_sha256 = ? and used_at is null "
                            "and expires_at > ? returning email", [utc_now(), token_sha256, utc_now()])
        return None if row is None else str(row["email"])

    def start_session(self, session_sha256: str, email: str, is_admin: bool, via: str, client: str,
                      lifetime_seconds: float) -> None:
        self.sql.run("insert into console_sessions (session_sha256, email, is_admin, via, client, created_at, "
                     "expires_at) values (?, ?, ?, ?, ?, ?, ?)",
                     [session_sha256, email, int(is_admin), via, client, utc_now(), utc_in(lifetime_seconds)])

    def session(self, session_sha256: str) -> Row | None:
        """The live session (not ended, not expired) with this hash, or None."""
        return one(self.sql, "select * from console_sessions where session_sha256 = ? and ended_at is null "
                             "and expires_at > ?", [session_sha256, utc_now()])

    def end_session(self, session_sha256: str) -> None:
        self.sql.run("update console_sessions set ended_at = ? where session_sha256 = ? and ended_at is null",
                     [utc_now(), session_sha256])

    def prune(self, older_than_seconds: float = 86400.0) -> int:
        """Used and expired links, ended and expired sessions, and old requests: deleted a day on."""
        cutoff = utc_in(-older_than_seconds)
        return (self.sql.run("delete from console_links where expires_at < ?", [cutoff])
                + self.sql.run("delete from console_sessions where coalesce(ended_at, expires_at) < ?", [cutoff])
                + self.sql.run("delete from console_signin_requests where created_at < ?", [cutoff]))

    def audit(self, event: str, message: str, row: ConversationRow | None = None) -> None:
        """A console event in the audit log, with who did it in its message; a sign-in names no
        conversation (its processing_id is empty)."""
        self._ledger.audit(row or {"processing_id": None, "conversation_id": None}, "console", event,
                           "completed", message)

    # --- pages -----------------------------------------------------------------

    def conversations(self, listing: Listing) -> list[ConversationRow]:
        """A page of conversations, newest call first (created_at, then processing_id)."""
        search = listing.search
        if search and CONVERSATION_ID.fullmatch(search):
            # A whole id, by its index; only when there is none, the ids that start so (a scan).
            exact = self._page(listing, ("conversation_id = ?", [search]))
            if exact:
                return exact
        return self._page(listing, _search(search) if search else None)

    def _page(self, listing: Listing, search: tuple[str, list[object]] | None) -> list[ConversationRow]:
        where: list[str] = []
        args: list[object] = []
        for clause, given in (("lower(email_id) = ?", listing.viewer), ("status = ?", listing.status),
                              ("account_id = ?", listing.account_id), ("created_at >= ?", listing.day_from),
                              ("created_at < ?", listing.day_to and day_after(listing.day_to))):
            if given:
                where.append(clause)
                args.append(given)
        if search is not None:
            where.append(search[0])
            args += search[1]
        if listing.after is not None:
            # The bare range first: the index walks from there (with only the OR, both databases
            # read the newer half of the table to find the page: 42 ms and 167 ms at a million).
            where.append("created_at <= ? and (created_at < ? or processing_id < ?)")
            args += [listing.after[0], listing.after[0], listing.after[1]]
        sql = ("select * from conversation_processing" + (" where " + " and ".join(where) if where else "")
               + " order by created_at desc, processing_id desc limit ?")
        return conversations(self.sql.rows(sql, [*args, PAGE_SIZE + 1]))

    def conversation(self, processing_id: int, viewer: str | None) -> ConversationRow | None:
        """One conversation, if this viewer may see it (an officer: only one emailed to them)."""
        row = conversation_or_none(one(self.sql, "select * from conversation_processing where processing_id = ?",
                                       [processing_id]))
        if row is None or (viewer is not None and (row["email_id"] or "").lower() != viewer):
            return None
        return row

    def accounts(self) -> list[str]:
        return [r["account_id"] for r in self.sql.rows(
            "select account_id from account_settings union select distinct account_id from conversation_processing "
            "order by 1 limit 500")]

    def operations(self) -> dict[str, Any]:
        """The operations page's figures: the queue, failures by reason, calls per hour, workers,
        providers' recent calls."""
        now = utc_now()
        since_day = utc_in(-24 * 3600)
        queued = value(self.sql, "select count(*) as n from conversation_processing where status = 'queued'")
        in_flight = value(self.sql, "select count(*) as n from conversation_processing where status = 'processing' "
                                    "and claimed_by is not null and claim_expires_at >= ?", [now])
        failures = self.sql.rows("select error_message, count(*) as n from conversation_processing "
                                 "where status = 'failed' group by error_message order by n desc limit 2000")
        hours = self.sql.rows("select substr(created_at, 1, 13) as hour, count(*) as n from conversation_processing "
                              "where created_at >= ? group by substr(created_at, 1, 13) order by hour", [since_day])
        # One line per process: serve's purge round registers a worker row of its own for a while.
        workers = self.sql.rows("select host, pid, min(started_at) as started_at, max(heartbeat_at) as heartbeat_at, "
                                "max(expires_at) as expires_at from workers group by host, pid, process_started "
                                "order by 4 desc limit 100")
        # Grouped by an expression, not the column: SQLite otherwise walked the (service, created_at)
        # index to group, reading all two million rows (134 ms) instead of the last five minutes.
        self._ledger.api_calls.flush(quiet=True)  # this process's calls of the last second too
        calls = self.sql.rows("select service || '' as service, count(*) as n, "
                              "sum(case when status_code = 429 then 1 else 0 end) as limited, "
                              "sum(case when error is not null or status_code >= 400 then 1 else 0 end) as failed "
                              "from api_usage_metrics where created_at >= ? group by service || '' order by 1",
                              [utc_in(-300)])
        return {"queued": int(queued), "in_flight": int(in_flight), "failures": failures, "hours": hours,
                "workers": workers, "calls": calls, "now": now}


def _search(text: str) -> tuple[str, list[object]]:
    """The start of a conversation id, the phone's last four digits, or part of the applicant's
    name (the first and the last read the whole table: 0.6 s on SQLite, 0.25 s on PostgreSQL at a
    million)."""
    if text.startswith("conv_"):
        return "conversation_id like ? escape '\\'", [_escaped(text) + "%"]
    if len(text) == 4 and text.isascii() and text.isdigit():
        return "phone_last4 = ?", [text]
    return "lower(applicant_name) like ? escape '\\'", ["%" + _escaped(text.lower()) + "%"]


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


__all__ = ["PAGE_SIZE", "ConsoleStore", "Listing"]
