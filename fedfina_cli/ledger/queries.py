"""Figures for `fedfina stats` and the record for `fedfina show`, read from the ledger."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from fedfina_cli.core.errors import FedfinaError, UsageError
from fedfina_cli.core.object_keys import STAGES
from fedfina_cli.core.timefmt import utc_text
from fedfina_cli.ledger import daily
from fedfina_cli.ledger.ledger import Ledger
from fedfina_cli.ledger.rows import ConversationRow, Row


def parse_since(value: str | None) -> str | None:
    """A --since DATE (2026-11-01, or a full ISO time) as the ledger's ISO-8601 UTC text."""
    if value is None:
        return None
    try:
        if len(value) == 10:
            moment = datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
        else:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except ValueError:
        raise UsageError(f"--since {value!r}: expected a date like 2026-11-01 or 2026-11-01T09:30") from None
    return utc_text(moment)


def percentile(histogram: list[tuple[int, int]], fraction: float) -> int | None:
    """Nearest-rank percentile of (value, how many) pairs; None for none."""
    total = sum(n for _, n in histogram)
    if not total:
        return None
    rank, seen = max(1, math.ceil(fraction * total)), 0
    for value_, n in sorted(histogram):
        seen += n
        if seen >= rank:
            return value_
    return None  # not reached


def collect_stats(ledger: Ledger, since: str | None) -> dict[str, Any]:
    """`fedfina stats`, counted in the database: at a million conversations and four million
    audit lines it read them all into Python (1.5 GB, 10 s). Durations come back as a histogram
    (each value and how often), from a covering index; pruned days from their totals (ledger_days)."""
    sql = ledger.sql
    cutoff = since or ""
    day = cutoff[:10]
    # Raw rows after the last day in the totals; the totals up to it (whole days: a --since with
    # a time of day counts that day whole once it is rolled up).
    stage_last, api_last = daily.last_day(ledger, "stage") or "", daily.last_day(ledger, "api") or ""
    stage_raw = max(cutoff, daily.day_after(stage_last)) if stage_last else cutoff
    api_raw = max(cutoff, daily.day_after(api_last)) if api_last else cutoff
    # Each status's count from the (status, updated_at) index: the statuses found by stepping
    # through the status index (neither database skips through an index by itself), then a range
    # of the other for each. A month of a million-row ledger: 4-7 ms on SQLite and 17-27 ms on
    # PostgreSQL, against 52-93 and 70 ms or more reading the whole table; the whole year no
    # slower (46-77 against 80-204 ms on SQLite, about 190 ms either way on PostgreSQL).
    statuses = {row["status"]: row["n"] for row in sql.rows(
        "with recursive statuses(status) as ("
        "select min(status) from conversation_processing union all "
        "select (select min(status) from conversation_processing where status > statuses.status) "
        "from statuses where statuses.status is not null) "
        "select status, (select count(*) from conversation_processing as c "
        "where c.status = statuses.status and c.updated_at >= ?) as n from statuses where status is not null",
        [cutoff])}
    completed, failed = statuses.get("completed", 0), statuses.get("failed", 0)
    stage_histograms: dict[str, list[tuple[int, int]]] = {stage: [] for stage in STAGES}
    stage_counts: dict[str, int] = dict.fromkeys(STAGES, 0)
    for row in sql.rows("select step as key, duration_ms, count(*) as n from processing_audit_log "
                        "where event = 'completed' and created_at >= ? group by step, duration_ms "
                        "union all select key, duration_ms, sum(calls) as n from ledger_days "
                        "where kind = 'stage' and day >= ? and day <= ? group by key, duration_ms",
                        [stage_raw, day, stage_last]):
        stage_counts[row["key"]] = stage_counts.get(row["key"], 0) + int(row["n"])
        if row["duration_ms"] is not None:
            stage_histograms.setdefault(row["key"], []).append((int(row["duration_ms"]), int(row["n"])))
    services: dict[str, dict[str, Any]] = {}
    tokens = 0
    for row in sql.rows("select service as key, duration_ms, count(*) as n, "
                        "sum(case when status_code >= 400 then 1 else 0 end) as errors, "
                        "coalesce(sum(tokens), 0) as tokens from api_usage_metrics where created_at >= ? "
                        "group by service, duration_ms "
                        "union all select key, duration_ms, sum(calls), sum(errors), sum(tokens) from ledger_days "
                        "where kind = 'api' and day >= ? and day <= ? group by key, duration_ms",
                        [api_raw, day, api_last]):
        entry = services.setdefault(row["key"], {"calls": 0, "errors": 0, "histogram": []})
        entry["calls"] += int(row["n"])
        entry["errors"] += int(row["errors"] or 0)
        tokens += int(row["tokens"] or 0)
        if row["duration_ms"] is not None:
            entry["histogram"].append((int(row["duration_ms"]), int(row["n"])))
    # Failed with no HTTP status (a timeout, a refused connection): the partial index has them.
    for row in sql.rows("select service, count(*) as n from api_usage_metrics where error is not null "
                        "and created_at >= ? and coalesce(status_code, 0) < 400 group by service", [api_raw]):
        services.setdefault(row["service"], {"calls": 0, "errors": 0, "histogram": []})["errors"] += int(row["n"])
    # Stored: still there; purged: deleted past retention (the rows stay, marked).
    stored = sql.rows("select count(case when deleted_at is null then 1 end) as files, "
                      "coalesce(sum(case when deleted_at is null then size_bytes end), 0) as bytes, "
                      "count(deleted_at) as purged from conversation_files where created_at >= ?", [cutoff])[0]
    return {
        "since": since,
        "conversations": {status: statuses.get(status, 0)
                          for status in ("completed", "queued", "pending", "processing", "failed")},
        "success_rate": round(completed / (completed + failed), 4) if completed + failed else None,
        "stages": {stage: {"count": stage_counts.get(stage, 0), "p50_ms": percentile(histogram, 0.5),
                           "p95_ms": percentile(histogram, 0.95)}
                   for stage, histogram in stage_histograms.items()},
        "api": {service: {"calls": entry["calls"], "errors": entry["errors"],
                          "p50_ms": percentile(entry["histogram"], 0.5),
                          "p95_ms": percentile(entry["histogram"], 0.95)}
                for service, entry in sorted(services.items())},
        "files_stored": int(stored["files"]),
        "bytes_stored": int(stored["bytes"]),
        "files_purged": int(stored["purged"]),
        "tokens_used": tokens,
    }


def one_conversation(ledger: Ledger, conversation_id: str, account_id: str | None) -> ConversationRow | None:
    """The conversation's row (None: not in the ledger); a UsageError when it is recorded under
    several accounts and ``account_id`` does not say which (`show`, `hold`)."""
    rows = ledger.rows_for(conversation_id, account_id)
    if len(rows) > 1:
        accounts = ", ".join(sorted(r["account_id"] or "(unknown)" for r in rows))
        raise UsageError(f"{conversation_id} is recorded under several accounts ({accounts}); "
                         "pass --account-id")
    return rows[0] if rows else None


def not_in_ledger(ledger: Ledger, conversation_id: str, account_id: str | None) -> str:
    where = f" for account {account_id}" if account_id else ""
    return f"{conversation_id} is not in the ledger {ledger.description}{where}"


def conversation_record(ledger: Ledger, conversation_id: str, account_id: str | None,
                        locate: Callable[[str, str | None], str]) -> dict[str, Any]:
    """Everything the ledger knows of one conversation; ``locate(key, storage)`` gives a file's
    location from the storage the ledger recorded it in (None: recorded before that was)."""
    row = one_conversation(ledger, conversation_id, account_id)
    if row is None:
        raise FedfinaError(f"{not_in_ledger(ledger, conversation_id, account_id)}; run "
                           f"`fedfina run -c {conversation_id}`, or pass --db to read another ledger")
    return row_record(ledger, row, locate)


def row_record(ledger: Ledger, row: ConversationRow, locate: Callable[[str, str | None], str]) -> dict[str, Any]:
    """What `show` and the console say of one conversation's row: its stages, files and audit log."""
    conversation_id = row["conversation_id"]
    log = ledger.audit_log(row["processing_id"])
    stages = []
    for stage in STAGES:
        events = [e for e in log if e["step"] == stage]
        if not events:
            continue
        last = events[-1]
        starts = [e for e in events if e["event"] == "started"]
        stages.append({
            "stage": stage,
            "state": last["event"],
            "attempts": len(starts),
            "started_at": starts[-1]["created_at"] if starts else None,
            "finished_at": last["created_at"] if last["event"] in ("completed", "failed", "skipped") else None,
            "duration_ms": last["duration_ms"],
            "message": last["message"],
        })
    files = []
    for f in ledger.files_for(conversation_id, row["account_id"]):
        # .get: a ledger read before its migrations ran (reading never migrates) has no storage column.
        deleted = f.get("deleted_at")
        files.append({**{k: f.get(k) for k in ("file_type", "object_key", "size_bytes", "sha256", "content_type",
                                                "storage", "created_at", "deleted_at")},
                      "location": f"deleted {deleted}" if deleted else locate(f["object_key"], f.get("storage"))})
    return {"conversation": row, "stages": stages, "files": files, "audit_log": log,
            "last_error": row["error_message"], "retention": retention_state(row, log)}


@dataclass(frozen=True)
class Retention:
    """Whether a conversation is held or its files purged, and since when (ledger times)."""

    held: bool
    held_since: str | None  # None: held before the hold's audit line was recorded
    hold_reason: str | None
    purged_at: str | None


def retention_of(row: Mapping[str, Any], log: list[Row]) -> Retention | None:
    """The hold and the purge of one conversation, or None when it has neither."""
    if not row.get("legal_hold") and not row.get("purged_at"):
        return None
    placed = next((e for e in reversed(log) if e["step"] == "hold" and e["event"] == "placed"), None)
    held = bool(row.get("legal_hold"))
    return Retention(held=held, held_since=placed["created_at"] if held and placed else None,
                     hold_reason=placed["message"] if held and placed else None, purged_at=row.get("purged_at"))


def retention_state(row: Mapping[str, Any], log: list[Row]) -> str | None:
    """"purged on …", "on legal hold since … (reason)", both, or None (SPEC "Retention and legal hold").
    The console says the same in its reader's language, from retention_of."""
    state = retention_of(row, log)
    if state is None:
        return None
    said = []
    if state.held:
        said.append(f"on legal hold since {state.held_since} ({state.hold_reason})" if state.held_since
                    else "on legal hold")
    if state.purged_at:
        said.append(f"files purged on {state.purged_at} (past the account's retention)")
    return "; ".join(said)
