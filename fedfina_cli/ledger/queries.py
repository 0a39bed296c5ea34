"""Figures for `fedfina stats` and the record for `fedfina show`, read from the ledger."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from fedfina_cli.core.errors import FedfinaError, UsageError
from fedfina_cli.core.object_keys import STAGES
from fedfina_cli.core.timefmt import utc_text
from fedfina_cli.ledger.ledger import Ledger
from fedfina_cli.ledger.rows import Row


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


def percentile(values: list[int], fraction: float) -> int | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def collect_stats(ledger: Ledger, since: str | None) -> dict[str, Any]:
    sql = ledger.sql
    cutoff = since or ""
    statuses = {row["status"]: row["n"] for row in sql.rows(
        "select status, count(*) as n from conversation_processing where updated_at >= ? group by status",
        [cutoff])}
    completed, failed = statuses.get("completed", 0), statuses.get("failed", 0)
    stage_durations: dict[str, list[int]] = {stage: [] for stage in STAGES}
    for row in sql.rows("select step, duration_ms from processing_audit_log "
                        "where event = 'completed' and created_at >= ?", [cutoff]):
        stage_durations.setdefault(row["step"], []).append(row["duration_ms"])
    services: dict[str, dict[str, Any]] = {}
    for row in sql.rows("select service, status_code, duration_ms, error from api_usage_metrics "
                        "where created_at >= ?", [cutoff]):
        entry = services.setdefault(row["service"], {"calls": 0, "errors": 0, "durations": []})
        entry["calls"] += 1
        entry["errors"] += bool(row["error"]) or (row["status_code"] or 0) >= 400
        entry["durations"].append(row["duration_ms"])
    stored = sql.rows("select count(*) as files, coalesce(sum(size_bytes), 0) as bytes from conversation_files "
                      "where created_at >= ?", [cutoff])[0]
    tokens = sql.rows("select coalesce(sum(tokens), 0) as tokens from api_usage_metrics where created_at >= ?",
                      [cutoff])[0]["tokens"]
    return {
        "since": since,
        "conversations": {status: statuses.get(status, 0)
                          for status in ("completed", "queued", "pending", "processing", "failed")},
        "success_rate": round(completed / (completed + failed), 4) if completed + failed else None,
        "stages": {stage: {"count": len(values), "p50_ms": percentile(values, 0.5),
                           "p95_ms": percentile(values, 0.95)}
                   for stage, values in stage_durations.items()},
        "api": {service: {"calls": entry["calls"], "errors": entry["errors"],
                          "p50_ms": percentile(entry["durations"], 0.5),
                          "p95_ms": percentile(entry["durations"], 0.95)}
                for service, entry in sorted(services.items())},
        "files_stored": int(stored["files"]),
        "bytes_stored": int(stored["bytes"]),
        "tokens_used": int(tokens),
    }


def conversation_record(ledger: Ledger, conversation_id: str, account_id: str | None,
                        locate: Callable[[str, str | None], str]) -> dict[str, Any]:
    """Everything the ledger knows of one conversation; ``locate(key, storage)`` gives a file's
    location from the storage the ledger recorded it in (None: recorded before that was)."""
    rows = [r for r in ledger.rows_for(conversation_id, account_id)]
    if not rows:
        where = f" for account {account_id}" if account_id else ""
        raise FedfinaError(f"{conversation_id} is not in the ledger {ledger.description}{where}; run "
                           f"`fedfina run -c {conversation_id}`, or pass --db to read another ledger")
    if len(rows) > 1:
        accounts = ", ".join(sorted(r["account_id"] or "(unknown)" for r in rows))
        raise UsageError(f"{conversation_id} is recorded under several accounts ({accounts}); "
                         "pass --account-id")
    row = rows[0]
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


def retention_state(row: Mapping[str, Any], log: list[Row]) -> str | None:
    """"purged on …", "on legal hold since … (reason)", both, or None (SPEC "Retention and legal hold")."""
    said = []
    if row.get("legal_hold"):
        placed = next((e for e in reversed(log) if e["step"] == "hold" and e["event"] == "placed"), None)
        said.append(f"on legal hold since {placed['created_at']} ({placed['message']})" if placed
                    else "on legal hold")
    if row.get("purged_at"):
        said.append(f"files purged on {row['purged_at']} (past the account's retention)")
    return "; ".join(said) or None
