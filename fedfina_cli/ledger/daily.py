"""Per-day totals of the audit log's stage durations and of the API calls (``ledger_days``).

`stats` over a year read four million audit lines and two million API-call rows; with the
totals it reads a few hundred rows a day for every day rolled up, and raw rows only after
the last one. Totals keep, per day, stage or service, and duration to two significant figures
(1234 ms counts as 1200: percentiles from totals are within 5 %), how many, how many failed,
and the tokens used. `purge` rolls up complete days and then prunes raw rows older than
FEDFINA_LEDGER_KEEP_DAYS, never a row whose day is not in the totals yet.

Kill-safe: each kind's roll-up is one INSERT … SELECT of every complete day not yet rolled
up, so a day is in the totals whole or not at all; a roll-up run again adds nothing twice
(ON CONFLICT DO NOTHING, and it starts after the last day rolled up).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from fedfina_cli.ledger.database import value

if TYPE_CHECKING:
    from fedfina_cli.ledger.ledger import Ledger

# 0-99 ms exact, then two significant figures.
_BUCKET = ("case when duration_ms < 100 then duration_ms when duration_ms < 1000 then duration_ms / 10 * 10 "
           "when duration_ms < 10000 then duration_ms / 100 * 100 when duration_ms < 100000 "
           "then duration_ms / 1000 * 1000 else duration_ms / 10000 * 10000 end")
_SOURCES = {
    # kind: (table, key column, which rows, failed, tokens)
    "stage": ("processing_audit_log", "step", "event = 'completed'", "0", "0"),
    "api": ("api_usage_metrics", "service", "1 = 1",
            "case when status_code >= 400 or error is not null then 1 else 0 end", "coalesce(tokens, 0)"),
}


def last_day(ledger: Ledger, kind: str) -> str | None:
    """The newest day in the totals for ``kind`` ("2026-12-04"), None when none is."""
    found = value(ledger.sql, "select max(day) as day from ledger_days where kind = ?", [kind])
    return str(found) if found else None


def day_after(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


def roll_up(ledger: Ledger, today: date | None = None) -> dict[str, int]:
    """Add every complete day not yet in the totals (up to the day before yesterday, UTC: a host
    whose clock is behind may still write yesterday's rows). Returns rows added per kind."""
    until = ((today or datetime.now(UTC).date()) - timedelta(days=1)).isoformat()  # exclusive
    added = {}
    for kind, (table, key, rows, failed, tokens) in _SOURCES.items():
        since = day_after(last) if (last := last_day(ledger, kind)) else ""
        added[kind] = ledger.sql.run(
            f"insert into ledger_days (day, kind, key, duration_ms, calls, errors, tokens) "
            f"select substr(created_at, 1, 10), '{kind}', {key}, {_BUCKET}, count(*), sum({failed}), "
            f"sum({tokens}) from {table} where {rows} and created_at >= ? and created_at < ? "
            f"group by substr(created_at, 1, 10), {key}, {_BUCKET} "
            "on conflict (day, kind, key, duration_ms) do nothing", [since, until])
    if ledger.sql.dialect == "postgresql" and any(added.values()):
        # The planner must know the totals grew (by a year's, at the first roll-up) now, not when
        # autovacuum comes by: with the statistics of an empty table, `stats` sorted 285,618 rows
        # on disk (373 ms) instead of adding them up in memory (73 ms). A few hundred ms at most.
        ledger.sql.run("analyze ledger_days")
    return added


def prune(ledger: Ledger, keep_days: int, today: date | None = None) -> dict[str, int]:
    """Delete audit lines and API-call rows older than ``keep_days`` whose day is in the totals;
    rows deleted per table."""
    cutoff = ((today or datetime.now(UTC).date()) - timedelta(days=keep_days)).isoformat()
    deleted = {}
    for kind, (table, _, _, _, _) in _SOURCES.items():
        last = last_day(ledger, kind)
        if last is None:
            deleted[table] = 0
            continue
        before = min(cutoff, day_after(last))  # never a day not rolled up
        # A legal hold's lines are kept: its reason and time are read from them.
        kept = " and step != 'hold'" if table == "processing_audit_log" else ""
        deleted[table] = ledger.sql.run(f"delete from {table} where created_at < ?{kept}", [before])
    return deleted
