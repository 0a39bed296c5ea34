"""A year of calls in the ledger: 1,000,000 conversations, 4,000,000 audit lines and 2,000,000
API-call rows, each table filled by one INSERT … SELECT (a recursive CTE on SQLite,
generate_series on PostgreSQL), then `status`, `show`, `stats` and the queue's pick timed.

The rows look like a year of production: 95 % completed, 3 % failed, 1 % queued (10,000),
1 % pending; 50 accounts; one call every 31.5 s through the year; four stage lines and two
API calls per conversation.
"""

from __future__ import annotations

import time
from pathlib import Path

YEAR_START = int(time.time()) - 365 * 86400  # the year that ends now
SPACING = 31.536  # seconds between two calls: a million in a year


def _conversations_sql(n: int, clock: str, series: str) -> str:
    """The SELECT that makes ``n`` conversation rows; ``clock(expr)`` is the dialect's ISO time of
    a Unix time, ``series`` the dialect's numbers 1..n as ``i``."""
    when = clock(f"{YEAR_START} + i * {SPACING}")
    later = clock(f"{YEAR_START} + i * {SPACING} + 40")
    return (
        "insert into conversation_processing (conversation_id, account_id, email_id, status, current_step, "
        "error_message, transcript_key, summary_key, report_key, email_message_id, email_sent_at, model, "
        "summary_method, started_at, completed_at, created_at, updated_at, queued_at, source, applicant_name, "
        "phone_last4) "
        f"select 'conv_' || lpad_id, 'acc' || (i % 50), 'officer' || (i % 200) || '@fedfina.example', "
        "case when i % 100 < 95 then 'completed' when i % 100 < 98 then 'failed' when i % 100 = 98 then 'queued' "
        "else 'pending' end, "
        "case when i % 100 < 95 then 'email' when i % 100 < 98 then 'summarize' else null end, "
        "case when i % 100 between 95 and 97 then 'OpenAI answered 503 after 5 attempts' else null end, "
        "'acc' || (i % 50) || '/transcripts/conv_' || lpad_id || '.txt', "
        "'acc' || (i % 50) || '/summaries/conv_' || lpad_id || '.json', "
        "'acc' || (i % 50) || '/reports/conv_' || lpad_id || '.pdf', "
        "'<' || i || '.conv@fedfina.invalid>', "
        f"case when i % 100 < 95 then {later} else null end, 'gpt-4.1-mini', 'openai', {when}, "
        f"case when i % 100 < 95 then {later} else null end, {when}, {later}, "
        f"case when i % 100 = 98 then {when} else null end, 'webhook', 'Applicant ' || i, "
        "substr(lpad_id, 25, 4) "
        f"from {series}")


def build_sqlite(path: Path, n: int = 1_000_000) -> float:
    """A ledger file of ``n`` conversations (migrated by fedfina itself); seconds taken."""
    from fedfina_cli.ledger.ledger import Ledger

    Ledger(path).close()  # the tables, by fedfina's own migrations
    import sqlite3

    started = time.perf_counter()
    conn = sqlite3.connect(path)
    conn.execute("pragma journal_mode = wal")
    conn.execute("pragma synchronous = off")

    def clock(seconds: str) -> str:
        return f"strftime('%Y-%m-%dT%H:%M:%fZ', {seconds}, 'unixepoch')"

    series = (f"(with recursive n(i) as (select 1 union all select i + 1 from n where i < {n}) "
              "select i, printf('%028d', i) as lpad_id from n)")
    with conn:
        conn.execute(_conversations_sql(n, clock, series))
        conn.execute(_audit_sql(clock))
        conn.execute(_api_sql(clock))
    conn.close()
    return time.perf_counter() - started


def build_postgres(url: str, n: int = 1_000_000) -> float:
    import psycopg

    from fedfina_cli.ledger.ledger import Ledger

    Ledger(None, url=url, pool_size=1).close()
    started = time.perf_counter()

    def clock(seconds: str) -> str:
        return f"to_char(to_timestamp({seconds}) at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

    series = f"(select i, lpad(i::text, 28, '0') as lpad_id from generate_series(1, {n}) as i) as n"
    with psycopg.connect(url, autocommit=False) as conn:
        conn.execute(_conversations_sql(n, clock, series))
        conn.execute(_audit_sql(clock))
        conn.execute(_api_sql(clock))
        conn.commit()
        conn.autocommit = True
        conn.execute("vacuum analyze")
        # A ledger that grew over a year has been vacuumed by autovacuum all along. Straight
        # after this one bulk insert, the first VACUUM left most pages not marked all-visible:
        # count(*)'s index-only scan then fetched 850,048 heap rows (250 ms instead of 35-50),
        # and `status` and `stats` measured that, by 0.2-0.5 s, from run to run. A second sets them.
        conn.execute("vacuum")
    return time.perf_counter() - started


def _audit_sql(clock) -> str:
    # Four stage lines a conversation: their durations spread as real ones are (tens of ms to seconds).
    return (
        "insert into processing_audit_log (processing_id, conversation_id, step, event, status, duration_ms, "
        "attempt, message, created_at) "
        "select c.processing_id, c.conversation_id, s.step, 'completed', 'completed', "
        "(c.processing_id * 7919 + s.k * 104729) % (s.k * 900 + 100), 1, 'done', c.updated_at "
        "from conversation_processing c cross join "
        "(select 'fetch' as step, 1 as k union all select 'summarize', 2 union all select 'report', 3 "
        "union all select 'email', 4) s")


def _api_sql(clock) -> str:
    return (
        "insert into api_usage_metrics (service, operation, status_code, duration_ms, bytes, tokens, "
        "conversation_id, created_at) "
        "select s.service, s.operation, case when c.processing_id % 50 = 0 then 503 else 200 end, "
        "(c.processing_id * 31 + s.k * 17) % (s.k * 1200 + 50), 4096 * s.k, "
        "case when s.k = 2 then 1500 + c.processing_id % 700 else null end, c.conversation_id, c.updated_at "
        "from conversation_processing c cross join "
        "(select 'elevenlabs' as service, 'get_conversation' as operation, 1 as k "
        "union all select 'openai', 'chat.completions', 2) s")


def timed(run, repeats: int = 5) -> float:
    """The median of ``repeats`` runs, seconds."""
    import statistics

    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def queue_pick_ms(settings, repeats: int = 200) -> float:
    """claim_next_queued with 10,000 queued among a million: the median of ``repeats`` picks, ms
    (each pick claims one, as a worker does; the claims are released after)."""
    import statistics

    from fedfina_cli.ledger.ledger import open_ledger
    from fedfina_cli.pipeline.claims import Claims

    ledger = open_ledger(settings)
    try:
        with Claims(ledger) as claims:
            times, picked = [], []
            for _ in range(repeats):
                started = time.perf_counter()
                got = claims.claim_next_queued()
                times.append(time.perf_counter() - started)
                assert got is not None, "the queue is empty"
                picked.append(got)
            for row, token in picked:
                claims.release(row, token)
        return statistics.median(times) * 1000
    finally:
        ledger.close()


def console_pages_ms(settings) -> list[tuple[str, float]]:
    """The console's list (ledger/console.py) on a million rows: one page (51 rows) for each
    kind of visit, the median of 5, ms; and the operations page's queries."""
    from fedfina_cli.ledger.console import Listing
    from fedfina_cli.ledger.ledger import open_ledger

    ledger = open_ledger(settings)
    try:
        store = ledger.console
        half = ledger.sql.rows("select max(processing_id) as n from conversation_processing")[0]["n"] // 2
        middle = ledger.get(half)
        visits = {
            "first page (admin)": Listing(),
            "a page half a year back (admin)": Listing(after=(middle["created_at"], middle["processing_id"])),
            "an officer's first page": Listing(viewer="officer7@fedfina.example"),
            "an officer's page half a year back": Listing(viewer="officer7@fedfina.example",
                                                          after=(middle["created_at"], middle["processing_id"])),
            "failed only": Listing(status="failed"),
            "one account": Listing(account_id="acc7"),
            "one day": Listing(day_from=middle["created_at"][:10], day_to=middle["created_at"][:10]),
            "search: an id": Listing(search="conv_" + "424242".rjust(28, "0")),
            "search: the start of an id (scans)": Listing(search="conv_" + "4242".rjust(28, "0")[:26]),
            "search: the phone's last four": Listing(search="4242"),
            "search: part of a name (scans)": Listing(search="applicant 424242"),
        }
        found = [(name, timed(lambda listing=listing: store.conversations(listing)) * 1000)
                 for name, listing in visits.items()]
        found.append(("operations page", timed(store.operations) * 1000))
        return found
    finally:
        ledger.close()


def _median_run(fedfina: str, args: list[str], env: dict, repeats: int = 5) -> float:
    import subprocess

    def run() -> None:
        done = subprocess.run([fedfina, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert done.returncode == 0, done.stderr.decode()[-500:]

    return timed(run, repeats)


def measure(label: str, fedfina: str, env: dict, peak_rss_mb) -> list[tuple[str, str, str]]:
    """The figures for one ledger (``env`` names it): commands against --help, memory, the pick."""
    from fedfina_cli.core.config import load_settings
    from fedfina_cli.ledger import daily
    from fedfina_cli.ledger.ledger import open_ledger

    settings = load_settings(environ=env)
    help_s = _median_run(fedfina, ["--help"], env)
    raw_stats = _median_run(fedfina, ["stats"], env, repeats=1)
    ledger = open_ledger(settings)
    try:
        started = time.perf_counter()
        daily.roll_up(ledger)
        roll_up_s = time.perf_counter() - started
    finally:
        ledger.close()
    show_id = "conv_" + "500000".rjust(28, "0")
    figures = {name: _median_run(fedfina, args, env) for name, args in (
        ("status", ["status"]), ("status --status failed", ["status", "--status", "failed"]),
        ("show", ["show", show_id]), ("stats", ["stats"]))}
    rss, _ = peak_rss_mb(["stats"], env)
    rows = [(f"{label}: fedfina --help (median of 5)", f"{help_s:.2f} s", "(the base)")]
    for name in ("status", "status --status failed", "show"):
        rows.append((f"{label}: {name}", f"{figures[name]:.2f} s (+{figures[name] - help_s:.2f})", "<= +0.3 s"))
    rows += [(f"{label}: stats", f"{figures['stats']:.2f} s (+{figures['stats'] - help_s:.2f})", "<= +1 s"),
             (f"{label}: stats peak RSS", f"{rss:.0f} MB", "< 150 MB"),
             (f"{label}: stats before the first roll-up", f"{raw_stats:.2f} s", "(once)"),
             (f"{label}: first roll-up of a year into per-day totals", f"{roll_up_s:.1f} s", "(once)"),
             (f"{label}: claim_next_queued, 10,000 queued", f"{queue_pick_ms(settings):.2f} ms", "< 5 ms")]
    for name, ms in console_pages_ms(settings):
        target = "(a scan)" if "scans" in name else "< 100 ms"
        rows.append((f"{label}: console, {name}", f"{ms:.1f} ms", target))
    return rows
