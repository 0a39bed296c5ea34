"""Crash-safe resume after SIGKILL, exactly-once email, and many processes on one ledger (claims)."""

import json
import os
import random
import signal
import time
from pathlib import Path

import pytest

from .conftest import emails_per_conversation, hindi_variant, start_fedfina, wait_for

N = 24


def _children(pid: int) -> set[int]:
    kids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == pid:
            kids.add(int(stat.parent.name))
    return kids


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


@pytest.mark.parametrize("accept_delay", [0.0, 0.3])  # 0.3 s: a server slow to answer the final "."
def test_sigkill_mid_batch_then_rerun_finishes_with_exactly_one_email_each(
        fedfina_exe, installed, workspace, elevenlabs, smtp_server, accept_delay, monkeypatch):
    monkeypatch.setenv("FEDFINA_CLAIM_SECONDS", "2")  # a killed run's claims expire in 2 s
    smtp_server.accept_delay = accept_delay
    elevenlabs.delay = 0.15  # keep the batch long enough to be killed in the middle
    for n in range(N):
        elevenlabs.add(hindi_variant(n), audio=b"ID3" + bytes([n]) * 20_000)
    csv_file = workspace.root / "calls.csv"
    csv_file.write_text("conversation_id\n" + "".join(f"conv_bulk{n:08d}\n" for n in range(N)))

    killed_at = []
    for target in (3, 6):  # kill twice, at different depths of the batch
        # Counted from this run's start: the first run may have sent more than its
        # target before the kill, and the second must be killed mid-way, not at start-up.
        sent_before = len(smtp_server.messages)
        process = start_fedfina(fedfina_exe, "run", "--csv", str(csv_file), "--concurrency", "4")
        wait_for(lambda: len(smtp_server.messages) - sent_before >= target  # noqa: B023
                 or process.poll() is not None)  # noqa: B023
        time.sleep(random.uniform(0, 0.3))
        workers = _children(process.pid)  # the report worker (and multiprocessing's tracker)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert process.returncode == -signal.SIGKILL
        killed_at.append(len(smtp_server.messages))
        assert workers or (os.cpu_count() or 1) < 2 or process.returncode is None
        # They leave with their parent instead of waiting on its queue forever.
        wait_for(lambda: not any(_running(pid) for pid in workers), timeout=10)  # noqa: B023
    assert killed_at[-1] < N, "the batch finished before it could be killed; raise N or the delay"

    time.sleep(2.2)  # the killed runs' claims expire
    final = installed("run", "--csv", csv_file, "--concurrency", "4")
    # The dead runs' conversations were taken over: none is "in progress elsewhere".
    assert "elsewhere" not in final.stdout

    per_conversation = emails_per_conversation(smtp_server)
    rows = workspace.rows("select conversation_id, status, email_state, error_message from conversation_processing")
    unfinished = [r for r in rows if r["status"] != "completed"]
    # The one window plain SMTP cannot close (README, "Crash safety"): killed after
    # the final "." went out, before the server's answer came back. Such a
    # conversation is held for a person to check and never re-sent; whether the
    # server kept the message is unknowable (this one drops it when the client
    # vanishes before its answer), so it arrived at most once.
    assert all(r["email_state"] == "sending" and "may have been delivered" in r["error_message"]
               for r in unfinished), unfinished
    held = {r["conversation_id"] for r in unfinished}
    assert {c: n for c, n in per_conversation.items() if c not in held} == {
        f"conv_bulk{n:08d}": 1 for n in range(N) if f"conv_bulk{n:08d}" not in held}
    assert all(per_conversation.get(c, 0) <= 1 for c in held)  # no one got two
    if not accept_delay:
        # An immediate 250 leaves almost no window: none is ever lost, at most held.
        assert set(per_conversation) == {f"conv_bulk{n:08d}" for n in range(N)}
    assert final.exit_code == (1 if unfinished else 0), final.stderr
    assert len(rows) == N
    # A write killed half-way left a temporary file; its stage was redone and swept it up.
    assert list(workspace.data.rglob("*.part")) == []


def test_two_runs_over_the_same_csv_at_once_send_each_email_once(
        fedfina_exe, installed, workspace, elevenlabs, smtp_server):
    n = 30
    elevenlabs.delay = 0.05  # both runs overlap for the whole batch
    for i in range(n):
        elevenlabs.add(hindi_variant(i), audio=b"ID3" + bytes([i]) * 5000)
    csv_file = workspace.root / "calls.csv"
    csv_file.write_text("conversation_id\n" + "".join(f"conv_bulk{i:08d}\n" for i in range(n)))
    runs = [start_fedfina(fedfina_exe, "run", "--csv", csv_file, "--concurrency", "4") for _ in range(2)]
    outputs = [run.communicate(timeout=120) for run in runs]
    for run, (_, stderr) in zip(runs, outputs):
        assert run.returncode == 0, stderr  # "in progress elsewhere" is not a failure
    assert emails_per_conversation(smtp_server) == {f"conv_bulk{i:08d}": 1 for i in range(n)}
    rows = workspace.rows("select status, claimed_by from conversation_processing")
    assert len(rows) == n and all(r == {"status": "completed", "claimed_by": None} for r in rows)
    # Each conversation was done by one run; the other saw it done or in progress elsewhere.
    stdout = outputs[0][0] + outputs[1][0]
    assert stdout.count("ran fetch,summarize,report,email") == n
    assert all(f"conv_bulk{i:08d}" in outputs[0][0] and f"conv_bulk{i:08d}" in outputs[1][0] for i in range(n))


def test_a_claim_held_by_a_live_process_is_left_alone_and_an_expired_one_is_taken_over(cli, workspace):
    from .conftest import HINDI, HINDI_ID

    assert cli("fetch", "--from-file", HINDI).exit_code == 0
    workspace_rows = workspace.rows("select processing_id from conversation_processing")
    assert len(workspace_rows) == 1
    import sqlite3

    def hold(expires_at: str) -> None:
        conn = sqlite3.connect(workspace.db)
        conn.execute("update conversation_processing set status = 'processing', claimed_by = 'other-host:4242', "
                     "claim_expires_at = ?", [expires_at])
        conn.commit()
        conn.close()

    hold("2999-01-01T00:00:00.000Z")  # another host is working on it right now
    result = cli("run", "-c", HINDI_ID)
    assert result.exit_code == 0, result.output
    assert f"in progress elsewhere {HINDI_ID}" in result.stdout and "1 in progress elsewhere" in result.stdout
    assert workspace.rows("select status, claimed_by from conversation_processing") == [
        {"status": "processing", "claimed_by": "other-host:4242"}]
    assert workspace.emails() == []

    hold("2020-01-01T00:00:00.000Z")  # that host died long ago
    result = cli("run", "-c", HINDI_ID)
    assert result.exit_code == 0, result.output
    assert "1 completed" in result.stdout
    assert workspace.rows("select status, claimed_by from conversation_processing") == [
        {"status": "completed", "claimed_by": None}]
    assert len(workspace.emails()) == 1


def test_status_during_a_run_reads_a_read_only_ledger_without_changing_a_byte(
        fedfina_exe, installed, workspace, elevenlabs):
    import hashlib

    for i in range(6):
        elevenlabs.add(hindi_variant(i))
    elevenlabs.delay = 0.3
    csv_file = workspace.root / "calls.csv"
    csv_file.write_text("conversation_id\n" + "".join(f"conv_bulk{i:08d}\n" for i in range(6)))
    run = start_fedfina(fedfina_exe, "run", "--csv", csv_file, "--concurrency", "2")
    wait_for(lambda: workspace.db.exists() and bool(_statuses(workspace)))
    during = installed("status", "--format", "json")
    assert during.exit_code == 0, during.stderr
    assert {row["conversation_id"] for row in json.loads(during.stdout)} <= {f"conv_bulk{i:08d}" for i in range(6)}
    assert run.wait(timeout=60) == 0

    before = hashlib.sha256(workspace.db.read_bytes()).hexdigest()
    os.chmod(workspace.db, 0o444)
    try:
        for args in (["status"], ["show", "conv_bulk00000001"], ["stats"], ["status", "--format", "csv"]):
            result = installed(*args)
            assert result.exit_code == 0, (args, result.stderr)
    finally:
        os.chmod(workspace.db, 0o644)
    assert hashlib.sha256(workspace.db.read_bytes()).hexdigest() == before


def _statuses(workspace):
    import sqlite3

    try:
        return [r["status"] for r in workspace.rows("select status from conversation_processing")]
    except sqlite3.OperationalError:
        return None


def test_read_commands_never_migrate_an_older_ledger(cli, workspace):
    """A ledger from an older fedfina: reading it must not upgrade it under the running version."""
    import hashlib

    from fedfina_cli.ledger.ledger import Ledger
    from fedfina_cli.ledger.migrations import sqlite_migrations

    from .conftest import HINDI

    assert cli("run", "--from-file", HINDI).exit_code == 0
    ledger = Ledger(workspace.db)
    ledger.db.execute("delete from _sqlite_migrations where name = 'm005_claims'")
    ledger.db.execute("drop index if exists idx_conversation_processing_claimed_by")
    ledger.db.execute("alter table conversation_processing drop column claimed_by")
    ledger.db.execute("alter table conversation_processing drop column claim_expires_at")
    ledger.db.execute("pragma wal_checkpoint(truncate)")
    ledger.close()
    before = hashlib.sha256(workspace.db.read_bytes()).hexdigest()
    for args in (["status"], ["show", "conv_7201k4b3qz9fe8st0m5xkcw2hj4n"], ["stats"]):
        assert cli(*args).exit_code == 0, args
    assert hashlib.sha256(workspace.db.read_bytes()).hexdigest() == before
    assert [m.name for m in sqlite_migrations().pending(Ledger(workspace.db, read_only=True).db)] == ["m005_claims"]


def test_a_process_that_lost_its_claim_leaves_the_row_to_the_process_that_took_it(workspace, monkeypatch):
    """Stalled past its claim at the email's handover: it sends nothing and writes nothing on the row."""
    import fedfina_cli
    from fedfina_cli.ledger.ledger import Ledger
    from fedfina_cli.pipeline.claims import Claims

    from .conftest import HINDI, HINDI_ID, load_sample

    original = Claims.mark_sending

    def taken_over(self, row, *args):
        other = Ledger(workspace.db)  # another process, after this one's claim expired
        other.update(row["processing_id"], claimed_by="elsewhere:1", claim_token="theirs", claim_worker=999,
                     claim_expires_at="2999-01-01T00:00:00.000Z", status="completed", email_state="sent")
        other.close()
        return original(self, row, *args)

    monkeypatch.setattr(Claims, "mark_sending", taken_over)
    outcomes = fedfina_cli.process([fedfina_cli.Job(HINDI_ID, payload=load_sample(HINDI))], fedfina_cli.load_settings())
    assert outcomes[0].status == "elsewhere" and "took it over" in outcomes[0].error
    assert workspace.emails() == []
    assert workspace.rows("select status, email_state, claimed_by, claim_token from conversation_processing") == [
        {"status": "completed", "email_state": "sent", "claimed_by": "elsewhere:1", "claim_token": "theirs"}]
