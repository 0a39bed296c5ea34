"""Bulk runs: CSV batches, concurrency, --failed, and the status/show/stats views."""

import csv
import gc
import io
import json
import os

import pytest

from .conftest import hindi_variant

GOOD = 32


def _csv(path, rows):
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def batch(elevenlabs, smtp_server, workspace):
    """32 conversations on the fake API and a CSV naming them, with bad rows mixed in."""
    for n in range(GOOD):
        elevenlabs.add(hindi_variant(n), audio=b"ID3" + bytes([n]) * 1000)
    rows = ["conversation_id,email,account_id,notes"]
    rows += [f"conv_bulk{n:08d},officer{n}@fedfina.example,branch-{n % 3}," for n in range(GOOD)]
    rows[5:5] = ["../etc/passwd,a@fedfina.example,acc1,bad id"]
    rows[9:9] = ["conv_bulk00000040,not-an-email,acc1,bad email"]
    rows[12:12] = ["conv_bulk00000041,a@fedfina.example,a/b,bad account"]
    rows[15:15] = ["conv_bulk00000003,officer3@fedfina.example,branch-0,duplicate"]
    rows[20:20] = [",,,"]  # blank row
    return _csv(workspace.root / "calls.csv", rows)


def test_csv_batch_with_bad_rows(cli, workspace, batch, smtp_server):
    result = cli("run", "--csv", batch, "--concurrency", "8")
    assert result.exit_code == 1  # invalid rows make the run fail, after the rest went on
    err = result.stderr
    assert "invalid row 6: conversation_id '../etc/passwd': expected conv_" in err
    assert "invalid row 10: email_id 'not-an-email'" in err
    assert "invalid row 13: account_id 'a/b'" in err
    assert "duplicate row 16: conversation_id 'conv_bulk00000003': duplicate of row 5; processed once" in err
    # The result (failures and counts) is on stdout; the warnings before the run on stderr.
    assert f"{GOOD} completed, 3 invalid rows skipped, 1 duplicates" in result.stdout
    assert "Failures" in result.stdout and "input" in result.stdout
    rows = workspace.rows("select conversation_id, account_id, email_id, status from conversation_processing")
    assert len(rows) == GOOD and all(r["status"] == "completed" for r in rows)
    assert {r["account_id"] for r in rows} == {"branch-0", "branch-1", "branch-2"}
    by_recipient = sorted(m.rcpt_tos[0] for m in smtp_server.messages)
    assert by_recipient == sorted(f"officer{n}@fedfina.example" for n in range(GOOD))


def test_a_batch_s_emails_share_smtp_connections(cli, workspace, batch, smtp_server):
    from fedfina_cli.pipeline.slots import threads_for

    cli("run", "--csv", batch, "--concurrency", "1")
    assert len(smtp_server.messages) == GOOD
    # At most one connection per thread that may send at once (two at --concurrency 1), not
    # a connect, EHLO and login for each of the 32 emails.
    assert len({m.peer for m in smtp_server.messages}) <= threads_for(1) == 2


def test_csv_header_without_conversation_id_is_a_usage_error(cli, workspace):
    path = _csv(workspace.root / "x.csv", ["id,email", "conv_12345678,a@fedfina.example"])
    result = cli("run", "--csv", path)
    assert result.exit_code == 2 and "no conversation_id column" in result.output
    assert not workspace.db.exists()


def test_csv_with_a_byte_order_mark_and_email_id_column(cli, workspace, elevenlabs, smtp_server):
    elevenlabs.add(hindi_variant(1))
    path = workspace.root / "bom.csv"
    path.write_bytes("\ufeffconversation_id,email_id\r\nconv_bulk00000001,x@fedfina.example\r\n".encode())
    result = cli("run", "--csv", path)
    assert result.exit_code == 0, result.output
    assert smtp_server.messages[0].rcpt_tos == ["x@fedfina.example"]


def _snapshot(workspace) -> dict:
    """What a run leaves behind, without the parts that carry times or random ids."""
    processing = workspace.rows(
        "select conversation_id, account_id, email_id, status, current_step, error_message, conversation_key, "
        "transcript_key, audio_key, summary_key, report_key, email_state, summary_method "
        "from conversation_processing order by conversation_id")
    files = workspace.rows("select conversation_id, account_id, file_type, object_key, content_type, "
                           "case when file_type in ('conversation', 'transcript', 'audio') then sha256 end as sha "
                           "from conversation_files order by object_key")
    # Per step in order; the steps of a conversation interleave (its audio
    # downloads while the summary is written).
    audit = workspace.rows("select conversation_id, step, event, status from processing_audit_log "
                           "order by conversation_id, step, id")
    stored = sorted(str(p.relative_to(workspace.data)) for p in workspace.data.rglob("*") if p.is_file())
    return {"processing": processing, "files": files, "audit": audit, "stored": stored}


def test_concurrency_gives_the_same_ledger_and_objects_as_one_worker(cli, workspace, batch, smtp_server,
                                                                     tmp_path, monkeypatch):
    assert cli("run", "--csv", batch, "--concurrency", "1").exit_code == 1
    sequential = _snapshot(workspace)
    sequential_mail = sorted((m.rcpt_tos[0], m.message["X-FedFina-Conversation"]) for m in smtp_server.messages)

    other = tmp_path / "parallel"
    monkeypatch.setenv("FEDFINA_DB", str(other / "fedfina.db"))
    monkeypatch.setenv("FEDFINA_DATA_DIR", str(other / "data"))
    smtp_server.messages.clear()
    assert cli("run", "--csv", batch, "--concurrency", "16").exit_code == 1
    workspace.root = other
    assert _snapshot(workspace) == sequential
    assert sorted((m.rcpt_tos[0], m.message["X-FedFina-Conversation"]) for m in smtp_server.messages) \
        == sequential_mail
    assert len(sequential["processing"]) == GOOD


def test_run_failed_reprocesses_only_failed_conversations(cli, workspace, elevenlabs, smtp_server):
    for n in range(4):
        elevenlabs.add(hindi_variant(n, status="processing" if n < 2 else "done",
                                     account="acc-a" if n % 2 else "acc-b"))
    ids = [f"conv_bulk{n:08d}" for n in range(4)]
    result = cli("run", *[a for i in ids for a in ("-c", i)])
    assert result.exit_code == 1 and "2 completed, 2 failed" in result.output
    for n in range(2):
        elevenlabs.add(hindi_variant(n, account="acc-a" if n % 2 else "acc-b"))

    result = cli("run", "--failed", "--account-id", "acc-a")
    assert result.exit_code == 0, result.output
    assert "1 failed conversations to reprocess" in result.output
    statuses = {r["conversation_id"]: r["status"] for r in workspace.rows(
        "select conversation_id, status from conversation_processing")}
    assert statuses == {ids[0]: "failed", ids[1]: "completed", ids[2]: "completed", ids[3]: "completed"}

    result = cli("run", "--failed")
    assert result.exit_code == 0 and "ran fetch,summarize,report,email" in result.output
    assert len(smtp_server.messages) == 4
    result = cli("run", "--failed")
    assert result.exit_code == 0 and "0 failed conversations to reprocess" in result.output


def test_status_in_every_format(cli, workspace, batch):
    cli("run", "--csv", batch)
    table = cli("status", "--limit", "5")
    assert table.exit_code == 0 and "5 of 32 conversations in" in table.stdout and "conversation" in table.stdout
    rows = json.loads(cli("status", "--json", "--account-id", "branch-1").stdout)
    assert len(rows) == 11 and all(r["account_id"] == "branch-1" and r["status"] == "completed" for r in rows)
    assert set(rows[0]) == {"conversation_id", "account_id", "status", "current_step", "email_id", "updated_at",
                            "error_message"}
    parsed = list(csv.DictReader(io.StringIO(cli("status", "--format", "csv", "--limit", "100").stdout)))
    assert len(parsed) == GOOD and parsed[0]["status"] == "completed"
    # --csv, the SPEC's older spelling, still works (users' scripts).
    assert cli("status", "--csv", "--limit", "100").stdout == cli("status", "--format", "csv", "--limit", "100").stdout
    assert json.loads(cli("status", "--format", "json", "-a", "branch-1").stdout) == rows
    assert json.loads(cli("status", "--status", "failed", "--json").stdout) == []
    assert cli("status", "--json", "--csv").exit_code == 2
    assert cli("status", "--json", "--format", "csv").exit_code == 2
    assert cli("status", "--json", "--format", "json").exit_code == 0  # the same format twice is fine
    assert cli("status", "--status", "weird").exit_code == 2


def test_show_in_table_and_json(cli, workspace, batch):
    cli("run", "--csv", batch)
    record = json.loads(cli("show", "conv_bulk00000004", "--json").stdout)
    assert record["conversation"]["account_id"] == "branch-1"
    assert [s["stage"] for s in record["stages"]] == ["fetch", "summarize", "report", "email"]
    assert all(s["state"] == "completed" and s["attempts"] == 1 for s in record["stages"])
    files = {f["file_type"]: f for f in record["files"]}
    assert set(files) == {"conversation", "transcript", "audio", "summary", "report"}
    assert files["report"]["location"].endswith("branch-1/reports/conv_bulk00000004.pdf")
    assert record["audit_log"][0]["event"] == "started" and record["last_error"] is None
    text = cli("show", "conv_bulk00000004")
    assert text.exit_code == 0
    for title in ("conversation", "stages", "files", "audit log"):
        assert title in text.stdout
    missing = cli("show", "conv_notthere000")
    assert missing.exit_code == 1 and "is not in the ledger" in missing.stderr
    assert cli("show", "../x").exit_code == 2


def test_show_gives_fresh_presigned_links_for_minio(cli, workspace, elevenlabs, s3):
    import requests

    elevenlabs.add(hindi_variant(1), audio=b"ID3 minio audio")
    assert cli("run", "-c", "conv_bulk00000001").exit_code == 0
    record = json.loads(cli("show", "conv_bulk00000001", "--json").stdout)
    audio = next(f for f in record["files"] if f["file_type"] == "audio")
    assert "X-Amz-Signature=" in audio["location"]
    assert requests.get(audio["location"], timeout=10).content == b"ID3 minio audio"


def test_stats_in_table_and_json(cli, workspace, batch, elevenlabs):
    elevenlabs.add(hindi_variant(99, status="processing"))
    cli("run", "--csv", batch)
    cli("run", "-c", "conv_bulk00000099")
    figures = json.loads(cli("stats", "--json").stdout)
    assert figures["conversations"] == {"completed": GOOD, "queued": 0, "pending": 0, "processing": 0, "failed": 1}
    assert figures["success_rate"] == round(GOOD / (GOOD + 1), 4)
    assert figures["stages"]["report"]["count"] == GOOD
    assert figures["stages"]["report"]["p50_ms"] <= figures["stages"]["report"]["p95_ms"]
    assert figures["api"]["elevenlabs"]["calls"] == 2 * GOOD + 1  # conversation + audio, and the failure
    assert figures["api"]["smtp"] == {"calls": GOOD, "errors": 0, "p50_ms": figures["api"]["smtp"]["p50_ms"],
                                      "p95_ms": figures["api"]["smtp"]["p95_ms"]}
    assert figures["bytes_stored"] > 0 and figures["files_stored"] == 5 * GOOD
    table = cli("stats")
    assert table.exit_code == 0 and "success rate" in table.stdout and "97.0%" in table.stdout
    future = json.loads(cli("stats", "--since", "2999-01-01", "--json").stdout)
    assert future["conversations"]["completed"] == 0 and future["success_rate"] is None
    assert cli("stats", "--since", "last tuesday").exit_code == 2


def test_plain_lines_for_cron_and_a_progress_bar_for_people(elevenlabs, workspace):
    """The same run prints one line per conversation off a terminal, and a bar on one."""
    from fedfina_cli.cli.output import Terminal
    from fedfina_cli.pipeline.jobs import Outcome

    class TTY(io.StringIO):
        def isatty(self):
            return True

    plain, tty = io.StringIO(), TTY()
    for stream in (plain, tty):
        terminal = Terminal(stdout=stream, stderr=stream)
        terminal.start(3)
        for n in range(3):
            terminal.finished(Outcome(f"conv_bulk{n:08d}", "acc1", status="completed" if n else "failed",
                                      error="boom" if not n else None, failed_stage="fetch"))
        terminal.stop()
    lines = plain.getvalue().splitlines()
    assert len(lines) == 3 and lines[0].startswith("failed conv_bulk00000000")
    assert "processing" in tty.getvalue() and "3/3" in tty.getvalue() and "1 failed" in tty.getvalue()
    assert "failed conv_bulk00000000" in tty.getvalue()  # printed above the bar


def test_read_only_commands_before_the_first_run_create_nothing(cli, workspace):
    for args in (["status"], ["status", "--json"], ["stats", "--json"], ["show", "conv_12345678"]):
        result = cli(*args)
        # An empty table would hide a wrong --db or FEDFINA_DB: say where it looked.
        assert result.exit_code == 2 and f"no ledger at {workspace.db}" in result.stderr, args
        assert result.stdout == "" and len(result.stderr.splitlines()) == 1
    for args in (["accounts", "list"], ["accounts", "show", "acc1"]):  # the defaults, without a ledger
        assert cli(*args).exit_code == 0, args
    assert not workspace.db.exists() and list(workspace.root.iterdir()) == []


def test_reports_rendered_in_worker_processes_match_in_process_ones():
    from fedfina_cli.core.collector import THRESHOLDS
    from fedfina_cli.core.conversation import parse_conversation
    from fedfina_cli.report.layout import ReportInput
    from fedfina_cli.report.render_pool import InProcessRenderer, PoolRenderer, renderer_for
    from fedfina_cli.services.summarizers.offline import OfflineSummarizer

    from .conftest import pdf_text

    assert isinstance(renderer_for(jobs=1, concurrency=8), InProcessRenderer)
    assert isinstance(renderer_for(jobs=5, concurrency=1), InProcessRenderer)
    if (os.cpu_count() or 1) > 1:  # one worker per 32 concurrent conversations, a core left for the rest
        for concurrency, workers in ((16, 1), (33, 2)):
            pool = renderer_for(jobs=100, concurrency=concurrency)
            try:
                assert pool.workers == min(workers, os.cpu_count() - 1)
            finally:
                pool.close()
    conversation = parse_conversation(hindi_variant(1))
    data = ReportInput(conversation, OfflineSummarizer().summarize(conversation, "", "English"), "acc1", None)
    pool = PoolRenderer(2)
    try:
        pooled = pool(data)
        # Each worker keeps its modules and parsed fonts out of the garbage collector's sight.
        assert pool._pool.submit(gc.get_freeze_count).result() > 10_000
        # ...and collect less often than Python's default (core/collector.py).
        assert pool._pool.submit(gc.get_threshold).result() == THRESHOLDS
    finally:
        pool.close()
    in_process = InProcessRenderer()(data)
    assert pdf_text(pooled.pdf) == pdf_text(in_process.pdf) and pooled.missing == in_process.missing == ()


def test_concurrency_bounds_the_conversations_at_the_providers_not_their_reports_and_emails(
        cli, workspace, elevenlabs, smtp_server, openai_server):
    """--concurrency 1: one conversation at a time at ElevenLabs and the model, while the
    one before it is still being emailed (pipeline/slots.py)."""
    for n in range(4):
        elevenlabs.add(hindi_variant(n), audio=b"ID3" + bytes([n]) * 1000)
    openai_server.delay = 0.3
    smtp_server.accept_delay = 1.0
    calls = _csv(workspace.root / "calls.csv", ["conversation_id"] + [f"conv_bulk{n:08d}" for n in range(4)])
    result = cli("run", "--csv", calls, "--concurrency", "1")
    assert result.exit_code == 0, result.output
    assert len(smtp_server.messages) == 4
    assert openai_server.most_in_flight == 1
    asked = [r.at for r in openai_server.requests if r.path.endswith("/chat/completions")]
    # An email takes a second to be accepted; a summary was asked for meanwhile.
    assert any(accepted - 1.0 < at < accepted for accepted in (m.at for m in smtp_server.messages) for at in asked)


def _conversation_gets(elevenlabs) -> dict[str, float]:
    """When each conversation was first asked for (its provider slot taken)."""
    gets: dict[str, float] = {}
    for r in elevenlabs.requests:
        if "/conversations/conv_" in r.path and not r.path.endswith("/audio"):
            gets.setdefault(r.path.rsplit("/", 1)[1], r.at)
    return gets


def test_the_provider_slot_comes_back_when_the_model_has_answered(
        cli, workspace, elevenlabs, smtp_server, openai_server, slow_disk):
    """--concurrency 1: the next conversation is fetched while this one's summary is still being
    stored (a slow disk), not after: the providers are done with it (pipeline/slots.py)."""
    for n in range(2):
        elevenlabs.add(hindi_variant(n), audio=b"ID3" + bytes([n]) * 1000)
    openai_server.delay = 0.1
    slow_disk.delays["summaries"] = 0.6
    calls = _csv(workspace.root / "calls.csv", ["conversation_id", "conv_bulk00000000", "conv_bulk00000001"])
    result = cli("run", "--csv", calls, "--concurrency", "1")
    assert result.exit_code == 0, result.output
    first_summary = slow_disk.write_of("/summaries/conv_bulk00000000")
    # (It may even come before that write began: the figure check runs after the slot is given back.)
    assert _conversation_gets(elevenlabs)["conv_bulk00000001"] < first_summary.ended
    assert openai_server.most_in_flight == 1 and len(smtp_server.messages) == 2


def test_the_provider_slot_is_held_until_the_recording_is_in(cli, workspace, elevenlabs, smtp_server,
                                                             openai_server):
    """The model answers before the recording has downloaded: the slot waits for the download
    (it is a provider call too)."""
    for n in range(2):
        elevenlabs.add(hindi_variant(n), audio=b"ID3" + bytes([n]) * 1000)
    openai_server.delay, elevenlabs.audio_delay = 0.05, 0.6
    calls = _csv(workspace.root / "calls.csv", ["conversation_id", "conv_bulk00000000", "conv_bulk00000001"])
    result = cli("run", "--csv", calls, "--concurrency", "1")
    assert result.exit_code == 0, result.output
    first_audio = next(r.at for r in elevenlabs.requests if r.path.endswith("conv_bulk00000000/audio"))
    assert _conversation_gets(elevenlabs)["conv_bulk00000001"] >= first_audio + 0.6
    assert len(smtp_server.messages) == 2
