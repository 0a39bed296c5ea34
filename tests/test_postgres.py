"""The ledger on a real PostgreSQL server (DATABASE_URL): the same commands, many processes, restarts."""

import json
import signal
import threading
import time

from fedfina_cli.pipeline.slots import threads_for

from .conftest import emails_per_conversation, hindi_variant, start_fedfina, wait_for, words, write_json
from .postgres import PASSWORD
from .serving import API_KEY, KEY, POSTPROCESS, WEBHOOK_SECRET, transcription


def _csv(workspace, numbers) -> str:
    path = workspace.root / "calls.csv"
    path.write_text("conversation_id\n" + "".join(f"conv_bulk{n:08d}\n" for n in numbers))
    return str(path)


def _everything(postgres) -> str:
    """Every table of the ledger as text (to look for what must not be there)."""
    tables = ["conversation_processing", "conversation_files", "processing_audit_log", "api_usage_metrics",
              "account_settings", "runs", "sync_state", "fedfina_migrations"]
    return json.dumps({t: postgres.query(postgres.database, f"select * from {t}") for t in tables}, default=str)


def test_a_csv_run_writes_its_rows_to_postgresql_and_no_sqlite_file(installed, postgres, elevenlabs, workspace):
    for n in range(3):
        elevenlabs.add(hindi_variant(n))
    result = installed("run", "--csv", _csv(workspace, range(3)))
    assert result.exit_code == 0, result.stderr
    rows = postgres.query(postgres.database, "select conversation_id, status, claimed_by from conversation_processing "
                                             "order by conversation_id")
    assert rows == [{"conversation_id": f"conv_bulk{n:08d}", "status": "completed", "claimed_by": None}
                    for n in range(3)]
    assert postgres.query(postgres.database, "select count(*) as n from conversation_files")[0]["n"] == 12
    assert not workspace.db.exists() and not list(workspace.root.rglob("*.db"))
    assert len(workspace.emails()) == 3
    assert PASSWORD not in result.stdout + result.stderr


def test_the_read_commands_accounts_and_doctor_work_on_postgresql(installed, postgres, elevenlabs, workspace):
    elevenlabs.add(hindi_variant(7))
    assert installed("run", "-c", "conv_bulk00000007").exit_code == 0
    shown = installed("status")
    assert shown.exit_code == 0 and "conv_bulk00000007" in shown.stdout and "completed" in shown.stdout
    assert f"127.0.0.1:{postgres.port}/{postgres.database}" in shown.stdout + shown.stderr
    record = json.loads(installed("show", "conv_bulk00000007", "--format", "json").stdout)
    assert record["conversation"]["status"] == "completed" and len(record["files"]) == 4
    stats = json.loads(installed("stats", "--format", "json").stdout)
    assert stats["conversations"]["completed"] == 1 and stats["files_stored"] == 4
    assert installed("accounts", "set", "acc123", "--timezone", "Asia/Kolkata").exit_code == 0
    listed = installed("accounts", "list")
    assert "acc123" in listed.stdout and "Asia/Kolkata" in listed.stdout
    doctor = installed("doctor")
    assert "PostgreSQL answers; 13 migrations applied" in words(doctor.stdout)
    for output in (shown, listed, doctor):
        assert PASSWORD not in output.stdout + output.stderr


def test_connection_problems_are_one_line_exit_2_and_never_show_the_password(installed, postgres, monkeypatch,
                                                                            workspace):
    port = postgres.port
    saved = write_json(workspace.root / "call.json", hindi_variant(1))
    cases = {
        "refused": (f"postgresql://fedfina:{PASSWORD}@127.0.0.1:1/x", "cannot reach the ledger database"),
        "bad password": (f"postgresql://fedfina:wrong-{PASSWORD}@127.0.0.1:{port}/{postgres.database}",
                         "refused the user name or password"),
        "missing database": (f"postgresql://fedfina:{PASSWORD}@127.0.0.1:{port}/no_such_db", "does not exist"),
        "not a URL": (f"postgresql://fedfina:{PASSWORD}@127.0.0.1:notaport/x", "not a valid PostgreSQL URL"),
        "not postgresql": (f"mysql://fedfina:{PASSWORD}@127.0.0.1/x", "is not a PostgreSQL URL"),
    }
    for name, (url, expected) in cases.items():
        monkeypatch.setenv("DATABASE_URL", url)
        result = installed("run", "--from-file", saved, timeout=60)
        assert result.exit_code == 2, (name, result.stderr)
        lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and expected in lines[0], (name, result.stderr)
        assert PASSWORD not in result.stdout + result.stderr, name
        status = installed("status", timeout=60)
        assert status.exit_code == 2 and PASSWORD not in status.stdout + status.stderr, name


def test_workers_and_a_server_share_one_postgresql_ledger_and_one_bucket(
        fedfina_exe, installed, postgres, s3, smtp_server, workspace, monkeypatch, tmp_path):
    """Three workers and a server on one ledger, 200 conversations; one worker killed mid-way."""
    from .serving import Server

    monkeypatch.setenv("FEDFINA_API_KEY", API_KEY)
    monkeypatch.setenv("ELEVENLABS_WEBHOOK_SECRET", WEBHOOK_SECRET)
    monkeypatch.setenv("FEDFINA_CLAIM_SECONDS", "2")
    server = Server(fedfina_exe, tmp_path / "serve.log", "--concurrency", "2")
    workers = [Server(fedfina_exe, tmp_path / f"worker-{i}.log", "--concurrency", "4", command="worker")
               for i in range(3)]
    try:
        total = 200
        senders = [threading.Thread(target=lambda part: [server.webhook(transcription(1000 + n)) for n in part],
                                    args=(range(i, total, 4),)) for i in range(4)]
        for sender in senders:
            sender.start()
        wait_for(lambda: len(smtp_server.messages) >= 40, timeout=120)
        workers[0].process.send_signal(signal.SIGKILL)  # mid-way: its claims expire, the others take them
        workers[0].process.wait()
        for sender in senders:
            sender.join()

        def settled() -> list[dict]:
            return postgres.query(postgres.database, "select conversation_id, status, email_state, error_message "
                                                     "from conversation_processing where status in "
                                                     "('completed', 'failed')")

        # On the ledger, not on the mailbox: a held conversation may never send its message.
        wait_for(lambda: len(settled()) >= total, timeout=240)
        time.sleep(1)
        rows = settled()
        # The one window plain SMTP cannot close (README, "Crash safety"): the killed worker
        # wrote "sending" and died before the server's answer to ".", for each message it was
        # handing over (several at once: it emails from threads_for(4) threads). Each such
        # conversation is held for a person to check and never sent again; its message may or
        # may not have arrived (killed after "sending" was written but before "." was sent).
        held = {r["conversation_id"] for r in rows if r["status"] != "completed"}
        assert len(held) <= threads_for(4) and all(
            r["email_state"] == "sending" and "may have been delivered" in r["error_message"]
            for r in rows if r["conversation_id"] in held), held
        sent = emails_per_conversation(smtp_server)
        assert {c: n for c, n in sent.items() if c not in held} == {
            f"conv_bulk{1000 + n:08d}": 1 for n in range(total) if f"conv_bulk{1000 + n:08d}" not in held}
        assert all(sent.get(c, 0) <= 1 for c in held), sent
        done_by = postgres.query(postgres.database, "select count(distinct pid) as n from runs "
                                                    "where command in ('worker', 'serve')")
        assert done_by[0]["n"] == 4
        assert len([k for k in s3.object_keys() if k.endswith(".pdf")]) == total
        for process in (server, *workers[1:]):
            assert process.stop() == 0
        logs = "".join(p.log() for p in (server, *workers))
        assert PASSWORD not in logs and PASSWORD not in _everything(postgres)
    finally:
        for process in (server, *workers):
            if process.process.poll() is None:
                process.process.kill()


def test_a_database_restart_mid_run_is_recovered(fedfina_exe, installed, postgres, elevenlabs,
                                                           smtp_server, workspace, monkeypatch):
    monkeypatch.setenv("FEDFINA_CLAIM_SECONDS", "2")
    n = 30
    elevenlabs.delay = 0.1
    for i in range(n):
        elevenlabs.add(hindi_variant(i))
    csv_file = _csv(workspace, range(n))
    run = start_fedfina(fedfina_exe, "run", "--csv", csv_file, "--concurrency", "4")
    wait_for(lambda: len(smtp_server.messages) >= 5 or run.poll() is not None)
    postgres.restart()
    stdout, stderr = run.communicate(timeout=180)
    # The pool reconnects and the statements the restart cut off are tried again: the run goes on.
    assert run.returncode == 0, stderr
    assert PASSWORD not in stdout + stderr
    again = installed("run", "--csv", csv_file, "--concurrency", "4")
    assert again.exit_code == 0, again.stderr
    assert emails_per_conversation(smtp_server) == {f"conv_bulk{i:08d}": 1 for i in range(n)}


def test_postprocess_api_on_postgresql(fedfina_exe, postgres, elevenlabs, smtp_server, monkeypatch, tmp_path):
    from .serving import Server

    monkeypatch.setenv("FEDFINA_API_KEY", API_KEY)
    elevenlabs.add(hindi_variant(9))
    server = Server(fedfina_exe, tmp_path / "serve.log")
    try:
        status, body = server.json("POST", POSTPROCESS, {"conversation_id": "conv_bulk00000009",
                                                         "account_id": "acc123",
                                                         "email_id": "loans.officer@example.com"}, KEY)
        assert status == 202, body
        wait_for(lambda: len(smtp_server.messages) >= 1, timeout=30)
        wait_for(lambda: server.json("GET", f"{POSTPROCESS}/conv_bulk00000009", headers=KEY)[1]["data"]["status"]
                 == "completed", timeout=30)
        status, raw = server.get("/readyz")
        assert status == 200, raw
        assert server.stop() == 0
    finally:
        if server.process.poll() is None:
            server.process.kill()


def test_ledger_copy_moves_a_sqlite_ledger_into_postgresql_and_is_idempotent(
        installed, postgres_server, elevenlabs, workspace, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    for n in range(4):
        elevenlabs.add(hindi_variant(n))
    assert installed("run", "--csv", _csv(workspace, range(4))).exit_code == 0
    assert installed("accounts", "set", "acc123", "--timezone", "Asia/Kolkata").exit_code == 0
    database = postgres_server.new_database()
    url = postgres_server.url(database)

    first = installed("ledger", "copy", "--to", url)
    assert first.exit_code == 0, first.stderr
    assert "conversation_processing        4 copied       0 already there" in first.stdout
    second = installed("ledger", "copy", "--to", url)
    assert second.exit_code == 0
    assert all(" 0 copied" in line for line in second.stdout.splitlines()), second.stdout
    assert PASSWORD not in first.stdout + first.stderr + second.stdout + second.stderr

    source = workspace.rows("select conversation_id, account_id, status, email_state, email_message_id "
                            "from conversation_processing order by conversation_id")
    target = postgres_server.query(database, "select conversation_id, account_id, status, email_state, "
                                             "email_message_id from conversation_processing order by conversation_id")
    assert target == source
    for table in ("conversation_files", "processing_audit_log", "api_usage_metrics", "runs", "account_settings"):
        assert postgres_server.query(database, f"select count(*) as n from {table}")[0]["n"] == \
            workspace.rows(f"select count(*) as n from {table}")[0]["n"], table
    # The copied ledger carries on where the old one stopped: nothing is sent again.
    monkeypatch.setenv("DATABASE_URL", url)
    again = installed("run", "--csv", _csv(workspace, range(4)))
    assert again.exit_code == 0
    assert again.stdout.count("skipped fetch,summarize,report,email (done before)") == 4
    assert len(workspace.emails()) == 4


def test_reading_an_empty_database_says_there_is_no_ledger_yet(installed, postgres):
    result = installed("status")
    assert result.exit_code == 2 and "no ledger in postgresql://fedfina:***@" in result.stderr
    assert "nothing was processed with it yet" in result.stderr and PASSWORD not in result.stderr
    doctor = installed("doctor")
    assert "PostgreSQL answers; 13 migrations will run on the first run" in words(doctor.stdout)
    # Reading created nothing: the first run does.
    assert postgres.query(postgres.database, "select to_regclass('fedfina_migrations') is null as empty") == [
        {"empty": True}]


def test_a_worker_is_woken_at_once_by_a_conversation_another_process_queued(postgres, elevenlabs, smtp_server,
                                                                            workspace):
    """Workers found work queued by other processes only by polling (every second, so each
    round of a busy queue could start a second late): on PostgreSQL the enqueue NOTIFYs and each
    worker LISTENs. Here the worker polls every 60 s and must still start within seconds."""
    import fedfina_cli
    from fedfina_cli.ledger.ledger import open_ledger
    from fedfina_cli.pipeline.queue import QueueWorkers
    from fedfina_cli.pipeline.run_context import RunContext

    elevenlabs.add(hindi_variant(1))
    settings = fedfina_cli.load_settings()
    with RunContext(settings, "worker", 2) as session:
        workers = QueueWorkers(session, 2, poll_seconds=60).start()
        try:
            time.sleep(1.5)  # every thread has looked, found nothing, and sleeps its 60 s
            elsewhere = open_ledger(settings)  # another process's ledger connection
            try:
                elsewhere.queue.enqueue("conv_bulk00000001", "acc123", "officer@example.com", "api")
            finally:
                elsewhere.close()
            wait_for(lambda: len(smtp_server.messages) == 1, timeout=15)
        finally:
            workers.stop()


def test_a_recording_that_comes_before_its_transcription_is_handed_over_on_postgresql(
        postgres, serving, smtp_server, workspace):
    """The held-audio hand-over (incoming_audio: recorded after the bytes are written, taken by one,
    deleted once moved) on PostgreSQL; its SQLite twin is in test_serve.py."""
    from .serving import audio_event

    def query(sql: str) -> list[dict]:
        return postgres.query(postgres.database, sql)

    server = serving()
    audio = b"ID3" + bytes(range(256)) * 40
    assert server.webhook(audio_event(20, audio))[0] == 200
    assert query("select conversation_id, size_bytes, taken_by from incoming_audio") == [
        {"conversation_id": "conv_bulk00000020", "size_bytes": len(audio), "taken_by": None}]
    assert server.webhook(transcription(20))[0] == 200
    wait_for(lambda: query("select status from conversation_processing where conversation_id = "
                           "'conv_bulk00000020'") == [{"status": "completed"}], timeout=30)
    assert workspace.object("acc123", "audio", "conv_bulk00000020.mp3").read_bytes() == audio
    assert not (workspace.data / "_incoming" / "audio" / "conv_bulk00000020.mp3").exists()
    assert query("select * from incoming_audio") == []
    assert query("select audio_key from conversation_processing") == [
        {"audio_key": "acc123/audio/conv_bulk00000020.mp3"}]
    assert emails_per_conversation(smtp_server) == {"conv_bulk00000020": 1}
    assert server.stop() == 0


def test_a_roll_up_tells_postgresqls_planner_how_many_totals_there_are(postgres):
    """Planned as an empty table, the year's totals were sorted on disk by `stats` (373 ms, not 73)."""
    import os
    from datetime import UTC, datetime, timedelta

    from fedfina_cli.ledger import daily
    from fedfina_cli.ledger.ledger import Ledger

    ledger = Ledger(None, url=os.environ["DATABASE_URL"], pool_size=1)
    try:
        for day in range(2, 32):
            stamp = (datetime.now(UTC) - timedelta(days=day)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            for step in ("fetch", "summarize"):
                ledger.sql.run("insert into processing_audit_log (processing_id, conversation_id, step, event, "
                               "status, duration_ms, created_at) values (1, 'conv_a', ?, 'completed', "
                               "'completed', ?, ?)", [step, 100 + day, stamp])
        assert daily.roll_up(ledger)["stage"] == 60
        tuples = ledger.sql.rows("select reltuples from pg_class where relname = 'ledger_days'")[0]["reltuples"]
        assert tuples == 60  # -1 (never analysed) without the roll-up's ANALYZE
        assert daily.roll_up(ledger) == {"stage": 0, "api": 0}
    finally:
        ledger.close()
