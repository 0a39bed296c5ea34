"""The ledger over a long time (issue 26): `stats` counted in the database, per-day totals that
answer for pruned days, pruning by FEDFINA_LEDGER_KEEP_DAYS. The million-row figures are
bench/run.py's (`--only ledger`); these tests use 500 days of a few thousand rows."""

import json
from datetime import UTC, datetime, timedelta

import pytest

DAYS = 500


def _fill(ledger, per_day: int = 6) -> None:
    """Conversations, stage lines and API calls spread over the last 500 days (UTC), each day's
    at its midnight: the tests count calendar days, whatever the time now (an hour before now
    put today's lines on yesterday in the first hour after midnight)."""
    now = datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    for day in range(DAYS):
        moment = midnight - timedelta(days=day)
        stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        for n in range(per_day):
            cid = f"conv_day{day:04d}n{n:02d}"
            status = "failed" if n == 0 else "completed"
            ledger.sql.run("insert into conversation_processing (conversation_id, account_id, status, created_at, "
                           "updated_at, completed_at) values (?, 'acc123', ?, ?, ?, ?)",
                           [cid, status, stamp, stamp, stamp if status == "completed" else None])
            pid = ledger.rows_for(cid)[0]["processing_id"]
            for k, step in enumerate(("fetch", "summarize", "report", "email")):
                ledger.sql.run("insert into processing_audit_log (processing_id, conversation_id, step, event, "
                               "status, duration_ms, created_at) values (?, ?, ?, 'completed', 'completed', ?, ?)",
                               [pid, cid, step, 30 + 10 * ((day * 131 + n * 17 + k * 911) % 400), stamp])
            ledger.sql.run("insert into api_usage_metrics (service, operation, status_code, duration_ms, tokens, "
                           "error, created_at) values ('openai', 'chat', ?, ?, 1500, ?, ?)",
                           [503 if n == 1 else 200, 80 + 10 * ((day * 7 + n) % 250), "timeout" if n == 2 else None,
                            stamp])
    ledger.sql.run("insert into processing_audit_log (processing_id, conversation_id, step, event, status, "
                   "message, created_at) values (1, 'conv_day0499n00', 'hold', 'placed', 'held', 'RBI 14', ?)",
                   [(now - timedelta(days=499)).strftime("%Y-%m-%dT%H:%M:%S.000Z")])


@pytest.fixture
def year_ledger(workspace):
    from fedfina_cli.ledger.ledger import Ledger

    ledger = Ledger(workspace.db)
    try:
        _fill(ledger)
    finally:
        ledger.close()
    return workspace


def _stats(installed, *args) -> dict:
    result = installed("stats", "--format", "json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _close(a, b) -> bool:
    return a == b or abs(a - b) <= 0.05 * max(a, b)


def test_stats_answer_the_same_from_per_day_totals_after_pruning(installed, year_ledger, monkeypatch):
    raw = _stats(installed)
    raw_month = _stats(installed, "--since", (datetime.now(UTC) - timedelta(days=30)).strftime("%Y-%m-%d"))
    monkeypatch.setenv("FEDFINA_LEDGER_KEEP_DAYS", "100")
    purged = installed("purge")
    assert purged.exit_code == 0, purged.stderr
    assert "audit lines and" in purged.stdout and "older than 100 days pruned" in purged.stdout
    # Raw rows older than 100 days are gone (the hold's line stays); every day is in the totals.
    left = year_ledger.rows("select min(created_at) as oldest from processing_audit_log where step != 'hold'")
    assert left[0]["oldest"] > (datetime.now(UTC) - timedelta(days=101)).isoformat()
    assert year_ledger.rows("select message from processing_audit_log where step = 'hold'") == [{"message": "RBI 14"}]
    for after, before in ((_stats(installed), raw),
                          (_stats(installed, "--since", raw_month["since"][:10]), raw_month)):
        assert after["conversations"] == before["conversations"]
        assert after["success_rate"] == before["success_rate"]
        assert after["tokens_used"] == before["tokens_used"]
        for stage, figures in before["stages"].items():
            assert after["stages"][stage]["count"] == figures["count"]
            assert _close(after["stages"][stage]["p50_ms"], figures["p50_ms"])
            assert _close(after["stages"][stage]["p95_ms"], figures["p95_ms"])
        api, api_before = after["api"]["openai"], before["api"]["openai"]
        assert (api["calls"], api["errors"]) == (api_before["calls"], api_before["errors"])
        assert _close(api["p95_ms"], api_before["p95_ms"])
    assert raw["stages"]["fetch"]["count"] == DAYS * 6 and raw["api"]["openai"]["errors"] == DAYS * 2


def test_a_roll_up_run_twice_adds_nothing_and_pruning_waits_for_it(year_ledger):
    from fedfina_cli.ledger import daily
    from fedfina_cli.ledger.ledger import Ledger

    ledger = Ledger(year_ledger.db)
    try:
        assert daily.prune(ledger, keep_days=100) == {"processing_audit_log": 0, "api_usage_metrics": 0}
        first = daily.roll_up(ledger)
        assert first["stage"] > 0 and first["api"] > 0
        assert daily.roll_up(ledger) == {"stage": 0, "api": 0}
        totals = ledger.sql.rows("select kind, sum(calls) as n from ledger_days group by kind order by kind")
        # Every day but yesterday and today (not complete everywhere yet).
        assert totals == [{"kind": "api", "n": (DAYS - 2) * 6}, {"kind": "stage", "n": (DAYS - 2) * 6 * 4}]
    finally:
        ledger.close()


def test_stats_reads_no_more_than_a_few_megabytes_of_rows(installed, year_ledger):
    """The durations come back as a histogram: rows out of the database are bounded by distinct
    durations, not by lines (the old stats held every line in Python)."""
    from fedfina_cli.ledger.ledger import Ledger
    from fedfina_cli.ledger.queries import collect_stats

    ledger = Ledger(year_ledger.db)
    fetched = []
    real_rows = ledger.sql.rows

    def counting(sql, params=()):
        rows = real_rows(sql, params)
        fetched.append(len(rows))
        return rows

    ledger.sql.rows = counting
    try:
        figures = collect_stats(ledger, None)
    finally:
        ledger.close()
    assert figures["stages"]["email"]["count"] == DAYS * 6
    assert max(fetched) <= 4 * 400 + 10  # a histogram (400 durations a stage), not 12,000 lines


@pytest.mark.parametrize("days", [None, 30])
def test_stats_count_each_status_as_counting_every_row_would(year_ledger, days):
    from fedfina_cli.ledger.ledger import Ledger
    from fedfina_cli.ledger.queries import collect_stats

    ledger = Ledger(year_ledger.db)
    try:
        since = None if days is None else (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%d")
        ledger.sql.run("update conversation_processing set status = 'queued' where conversation_id like '%n05'")
        counted = {row["status"]: row["n"] for row in ledger.sql.rows(
            "select status, count(*) as n from conversation_processing where updated_at >= ? group by status",
            [since or ""])}
        figures = collect_stats(ledger, since)["conversations"]
    finally:
        ledger.close()
    assert set(counted) == {"completed", "failed", "queued"}
    assert counted["queued"] == (DAYS if days is None else days + 1)  # the days since, both ends counted
    assert {status: n for status, n in figures.items() if n} == counted
