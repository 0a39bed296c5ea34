"""Nothing twice, nothing stuck: the faults production has, at the moments that matter.

A ledger that stops answering as the mail server accepts; a process stopped
between its claim and its send; a claim whose release failed; a worker thread
hit by a bug; a run killed and started again on the same host; a summary that
takes longer than a claim's lifetime while another worker watches.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from fedfina_cli.core import processes
from fedfina_cli.ledger.ledger import Ledger

from .conftest import (
    HINDI,
    HINDI_ID,
    emails_per_conversation,
    hindi_variant,
    ledger_for,
    start_fedfina,
    wait_for,
    write_json,
)


def _row(workspace, conversation_id: str = HINDI_ID) -> dict:
    row, = workspace.rows("select status, email_state, claimed_by, claim_token from conversation_processing "
                          "where conversation_id = ?", conversation_id)
    return row


# --- after the 250, nothing undoes "sent" ------------------------------------------------------


@pytest.mark.parametrize("held_seconds", [0.45, 2.0])
def test_a_sqlite_ledger_locked_as_the_mail_server_accepts_sends_one_email(cli, workspace, smtp_server, monkeypatch,
                                                                          held_seconds):
    """Another program holds the ledger locked from the moment the message is in: recording the
    delivery fails for a while. (0.45 s: the old code cleared "sending" once the lock was gone, and
    the next run sent again; 2 s: it stopped with the ledger's error.)"""
    monkeypatch.setattr(Ledger, "busy_timeout_ms", 300)

    def lock_the_ledger(peer):
        holder = sqlite3.connect(workspace.db, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN EXCLUSIVE")
        threading.Timer(held_seconds, lambda: (holder.execute("ROLLBACK"), holder.close())).start()

    smtp_server.on_message = lock_the_ledger
    first = cli("run", "--from-file", HINDI)
    smtp_server.on_message = None
    time.sleep(held_seconds)  # whatever the first run did, the lock is gone before the next
    again = cli("run", "--from-file", HINDI)
    assert emails_per_conversation(smtp_server) == {HINDI_ID: 1}
    assert first.exit_code == 0, first.output
    assert again.exit_code == 0, again.output
    assert _row(workspace) == {"status": "completed", "email_state": "sent", "claimed_by": None, "claim_token": None}


def test_postgresql_stopped_as_the_mail_server_accepts_sends_one_email(cli, workspace, postgres, smtp_server,
                                                                       monkeypatch):
    """PostgreSQL stops when the message is in (a fail-over) and comes back 11 s later: longer than
    the pool waits for a connection (10 s), so recording the delivery fails before it is back. (The
    old code then cleared "sending" once it was back, and the next run sent the email again.)"""
    down_seconds = 11.0
    from fedfina_cli.ledger.database import PostgresSql

    monkeypatch.setattr(PostgresSql, "reconnect_seconds", 1.0)  # the ledger gives up on a statement after 1 s
    restarted = threading.Event()

    def stop_postgresql(peer):
        postgres.stop(mode="immediate")

        def come_back():
            time.sleep(down_seconds)
            postgres.start()
            restarted.set()

        threading.Thread(target=come_back, daemon=True).start()

    smtp_server.on_message = stop_postgresql
    try:
        first = cli("run", "--from-file", HINDI)
    finally:
        smtp_server.on_message = None
        restarted.wait(60)
    again = cli("run", "--from-file", HINDI)
    assert emails_per_conversation(smtp_server) == {HINDI_ID: 1}
    assert first.exit_code == 0, first.output
    assert again.exit_code == 0, again.output
    rows = postgres.query(postgres.database, "select status, email_state, claimed_by from conversation_processing")
    assert rows == [{"status": "completed", "email_state": "sent", "claimed_by": None}]


# --- a process stopped between its claim and its send ------------------------------------------------


def test_two_runs_stopped_before_their_sends_send_one_email(fedfina_exe, workspace, smtp_server, monkeypatch):
    """The first run is stopped (SIGSTOP) as it talks to the mail server, before the message; its
    claim goes stale; a second run prunes it, takes the conversation over, and is stopped at the same
    point. The first goes on: its claim is gone, so at the hand-over it sends nothing, and the second
    sends once. (Had the first sent, it is stopped again between the server's 250 and recording it,
    and the second, whose claim is valid, must still not send: the test would count two.)"""
    monkeypatch.setenv("FEDFINA_CLAIM_SECONDS", "1.5")
    monkeypatch.setenv("FEDFINA_HTTP_TIMEOUT", "30")  # the mail server's answers wait out the stops
    saved = write_json(workspace.root / "call.json", hindi_variant(7))
    runs: list[subprocess.Popen] = []
    stopped: list[int] = []
    phase = {"running": "first"}

    def stop_at_rcpt(peer):
        pid = runs[len(stopped)].pid  # the first connection is the first run's, the next the second's
        _stop_outside_a_write(pid, workspace.db)
        stopped.append(pid)

    def stop_the_first_after_its_message(peer):
        if phase["running"] == "first":
            os.kill(runs[0].pid, signal.SIGSTOP)

    smtp_server.on_rcpt = stop_at_rcpt
    smtp_server.on_message = stop_the_first_after_its_message
    runs.append(start_fedfina(fedfina_exe, "run", "--from-file", saved))
    try:
        wait_for(lambda: len(stopped) == 1, timeout=60)
        time.sleep(2.0)  # past its claim: its worker row is stale
        runs.append(start_fedfina(fedfina_exe, "run", "--from-file", saved))
        wait_for(lambda: len(stopped) == 2 or runs[1].poll() is not None, timeout=60)
        assert len(stopped) == 2, runs[1].communicate()
        smtp_server.on_rcpt = None
        os.kill(runs[0].pid, signal.SIGCONT)
        wait_for(lambda: runs[0].poll() is not None or smtp_server.messages, timeout=60)
        phase["running"] = "second"
        os.kill(runs[1].pid, signal.SIGCONT)
        second_out, second_err = runs[1].communicate(timeout=60)
        assert runs[1].returncode == 0, second_err
    finally:
        for run in runs:
            if run.poll() is None:
                os.kill(run.pid, signal.SIGCONT)
    first_out, first_err = runs[0].communicate(timeout=60)
    assert emails_per_conversation(smtp_server) == {"conv_bulk00000007": 1}
    assert runs[0].returncode == 0, first_err  # "in progress elsewhere" is not a failure
    assert "took it over" in first_out and "nothing was sent from here" in first_out
    assert "completed conv_bulk00000007" in second_out
    row = _row(workspace, "conv_bulk00000007")
    assert (row["status"], row["email_state"]) == ("completed", "sent")


def _stop_outside_a_write(pid: int, db) -> None:
    """SIGSTOP the process at a moment its other threads (the heartbeat) hold no write lock on the
    SQLite ledger: a process stopped inside a write blocks every other writer until it goes on,
    which is SQLite's nature, not what this test is about."""
    for _ in range(200):
        os.kill(pid, signal.SIGSTOP)
        while Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "Tt":
            time.sleep(0.001)
        probe = sqlite3.connect(db, timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return
        except sqlite3.OperationalError:
            os.kill(pid, signal.SIGCONT)
            time.sleep(0.005)
        finally:
            probe.close()
    raise AssertionError("the process held the ledger's write lock at every try")


def test_the_sending_mark_holds_only_for_the_claims_holder_and_never_overwrites_sent(tmp_path):
    ledger = Ledger(tmp_path / "l.db")
    try:
        queue = ledger.queue
        worker = queue.register("h", 1, None, "2999-01-01T00:00:00.000Z")
        row, claimed = queue.claim(HINDI_ID, "acc123", "a@b.example", "h:1", worker, "mine", "2999-01-01T00:00:00.000Z")
        assert claimed
        pid = row["processing_id"]
        assert queue.mark_sending(pid, "someone-else", "<m1>", resend=False) is None
        assert queue.mark_sending(pid, "mine", "<m1>", resend=False)["email_state"] == "sending"
        ledger.update(pid, email_state="sent")
        assert queue.mark_sending(pid, "mine", "<m2>", resend=False) is None  # never over "sent"
        assert queue.mark_sending(pid, "mine", "<m2>", resend=True)["email_message_id"] == "<m2>"  # --resend
        ledger.update(pid, claim_expires_at="2000-01-01T00:00:00.000Z", email_state=None)
        assert queue.mark_sending(pid, "mine", "<m3>", resend=False) is None  # an expired claim sends nothing
    finally:
        ledger.close()


# --- nothing stuck -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_queue_claim_run_twice_after_a_lost_reply_claims_one_row(kind, tmp_path, request):
    """PostgresSql runs a statement again when its reply was lost: the claim must find its own row."""
    ledger = ledger_for(kind, tmp_path, request)
    try:
        queue = ledger.queue
        for n in range(2):
            queue.enqueue(f"conv_bulk{n:08d}", "acc123", "a@b.example", "api")
        worker = queue.register("h", 1, None, "2999-01-01T00:00:00.000Z")
        first = queue.claim_next("h:1", worker, "token-1", "2999-01-01T00:00:00.000Z")
        repeated = queue.claim_next("h:1", worker, "token-1", "2999-01-01T00:00:00.000Z")
        assert first is not None and repeated is not None
        assert repeated["processing_id"] == first["processing_id"]
        statuses = sorted(r["status"] for r in ledger.conversations())
        assert statuses == ["processing", "queued"]  # the other is still there for the next worker
        other = queue.claim_next("h:1", worker, "token-2", "2999-01-01T00:00:00.000Z")
        assert other is not None and other["processing_id"] != first["processing_id"]
    finally:
        ledger.close()


def test_a_claim_whose_release_failed_expires_while_its_process_lives(workspace, monkeypatch):
    """One ledger error on the release (a database blip): the heartbeat of the process, which lives
    on, must not keep that claim alive; it expires and another process takes the conversation."""
    from fedfina_cli.core.errors import LedgerError
    from fedfina_cli.ledger.queue import Queue
    from fedfina_cli.pipeline.claims import Claims

    original_release = Queue.release
    failures: list[str] = []

    def failing_once(self, processing_id, token):
        if not failures:
            failures.append(token)
            raise LedgerError("the ledger database is not answering (injected)", retryable=True)
        return original_release(self, processing_id, token)

    monkeypatch.setattr(Queue, "release", failing_once)
    ledger, other = Ledger(workspace.db), Ledger(workspace.db)
    try:
        with Claims(ledger, seconds=1.0) as claims:  # beats every third of a second while we watch
            row, token = claims.claim(HINDI_ID, "acc123", None)
            assert token is not None
            with pytest.raises(LedgerError):
                claims.release(row, token)
            time.sleep(2.5)
            assert _row(workspace)["claim_token"] == token  # never released ...
            with Claims(other, seconds=1.0) as elsewhere:
                taken, taken_token = elsewhere.claim(HINDI_ID, "acc123", None)
                assert taken_token is not None, f"the claim was kept alive: {taken['claim_expires_at']}"
                elsewhere.release(taken, taken_token)
    finally:
        ledger.close()
        other.close()


def test_a_worker_thread_hit_by_a_bug_goes_on(workspace, elevenlabs, smtp_server, monkeypatch, caplog):
    """A bug (not a FedfinaError) in every worker thread's first conversation: the pool keeps its
    threads, logs the traceback, and the queue still drains."""
    import fedfina_cli
    from fedfina_cli.pipeline import queue as queue_module
    from fedfina_cli.pipeline.conversation_pipeline import Pipeline
    from fedfina_cli.pipeline.queue import QueueWorkers
    from fedfina_cli.pipeline.run_context import RunContext

    monkeypatch.setattr(queue_module, "LEDGER_RETRY_SECONDS", 0.05)
    original = Pipeline.process_one
    hit: set[str] = set()

    def buggy(self, job, claim=None, slot=None):
        name = threading.current_thread().name
        if name not in hit:
            hit.add(name)
            raise KeyError("no conversation_processing row 42")  # before the pipeline takes the slot
        return original(self, job, claim, slot)

    monkeypatch.setattr(Pipeline, "process_one", buggy)
    for n in range(6):
        elevenlabs.add(hindi_variant(n))
    with RunContext(fedfina_cli.load_settings(), "worker", 2) as session:
        for n in range(6):
            session.ledger.queue.enqueue(f"conv_bulk{n:08d}", "acc123", "officer@example.com", "api")
        workers = QueueWorkers(session, 2, poll_seconds=0.05).start()
        try:
            wait_for(lambda: len(smtp_server.messages) >= 6, timeout=60)
        finally:
            workers.stop()
    assert len(hit) == len(workers._threads) >= 2
    assert emails_per_conversation(smtp_server) == {f"conv_bulk{n:08d}": 1 for n in range(6)}
    assert "a worker thread failed" in caplog.text and "KeyError" in caplog.text


def test_a_run_killed_on_this_host_is_taken_over_at_once(fedfina_exe, installed, workspace, elevenlabs, smtp_server,
                                                        openai_server):
    """kill -9 a run mid-summary, with the default 60 s claims; the re-run does not wait for them."""
    openai_server.delay = 30.0  # the summary never finishes before the kill
    elevenlabs.add(hindi_variant(3))
    first = start_fedfina(fedfina_exe, "run", "-c", "conv_bulk00000003")
    wait_for(lambda: len(openai_server.completions()) >= 1, timeout=60)
    first.kill()
    first.wait()
    openai_server.delay = 0.0
    started = time.monotonic()
    again = installed("run", "-c", "conv_bulk00000003", timeout=60)
    assert again.exit_code == 0, again.output
    assert "in progress elsewhere" not in again.output
    assert time.monotonic() - started < 30  # not the claim's 60 s
    assert emails_per_conversation(smtp_server) == {"conv_bulk00000003": 1}
    released = workspace.rows("select message from processing_audit_log where step = 'claim' order by id")
    assert released and "its process is gone" in released[0]["message"]


def test_a_summary_longer_than_a_claim_completes_once_while_another_worker_watches(
        fedfina_exe, workspace, elevenlabs, smtp_server, openai_server, monkeypatch):
    """The heartbeat renews the claim of work in flight: a second worker never takes it over."""
    from .serving import Server

    monkeypatch.setenv("FEDFINA_CLAIM_SECONDS", "1")
    monkeypatch.setenv("FEDFINA_HTTP_TIMEOUT", "20")
    openai_server.delay = 4.0  # four claims' lifetimes
    elevenlabs.add(hindi_variant(5))
    ledger = Ledger(workspace.db)
    ledger.queue.enqueue("conv_bulk00000005", "acc123", "officer@example.com", "api")
    ledger.close()
    first = Server(fedfina_exe, workspace.root / "worker-1.log", "--concurrency", "1", command="worker")
    wait_for(lambda: len(openai_server.completions()) >= 1, timeout=60)
    second = Server(fedfina_exe, workspace.root / "worker-2.log", "--concurrency", "1", command="worker")
    try:
        wait_for(lambda: len(smtp_server.messages) >= 1, timeout=60)
        time.sleep(1.5)  # the second worker has looked at the queue several times
    finally:
        assert second.stop() == 0
        assert first.stop() == 0
    assert emails_per_conversation(smtp_server) == {"conv_bulk00000005": 1}
    assert len(openai_server.completions()) == 1, "the summary was written twice: the claim was taken over"
    assert _row(workspace, "conv_bulk00000005")["status"] == "completed"


def test_a_dead_or_reused_pid_is_not_alive():
    me = os.getpid()
    assert processes.alive(me, processes.started(me))
    assert not processes.alive(me, (processes.started(me) or 0) + 1)  # the same pid, another process
    finished = subprocess.Popen(["true"])
    finished.wait()
    assert not processes.alive(finished.pid)


# --- the queue's own rules ------------------------------------------------------------------------


def test_a_conversation_being_processed_is_not_queued_again_and_a_dead_claim_is_taken_over(tmp_path):
    ledger = Ledger(tmp_path / "l.db")
    try:
        queue = ledger.queue
        worker = queue.register("h", 1, None, "2999-01-01T00:00:00.000Z")
        queued, now_queued = queue.enqueue(HINDI_ID, "acc123", "a@b.example", "api")
        assert now_queued and queued["status"] == "queued"
        claimed = queue.claim_next("h:1", worker, "t1", "2999-01-01T00:00:00.000Z")
        assert claimed is not None and claimed["status"] == "processing"
        again, now_queued = queue.enqueue(HINDI_ID, "acc123", "a@b.example", "webhook")  # a duplicate webhook
        assert not now_queued
        assert (again["status"], again["claim_token"], again["source"]) == ("processing", "t1", "api")
        # Its worker dies (its claim expires): the webhook's retry queues it again, for another worker.
        ledger.update(claimed["processing_id"], claim_expires_at="2000-01-01T00:00:00.000Z")
        again, now_queued = queue.enqueue(HINDI_ID, "acc123", "a@b.example", "webhook")
        assert now_queued and again["status"] == "queued"
    finally:
        ledger.close()


def test_interrupted_run_work_is_marked_failed_but_queued_work_waits_for_a_worker(tmp_path):
    ledger = Ledger(tmp_path / "l.db")
    try:
        queue = ledger.queue
        worker = queue.register("h", 1, None, "2999-01-01T00:00:00.000Z")
        expired = "2000-01-01T00:00:00.000Z"
        _run_row, _ = queue.claim("conv_run00000001", "acc123", None, "h:1", worker, "run", expired)
        queue.enqueue("conv_queue0000001", "acc123", "a@b.example", "api")
        queued_row = queue.claim_next("h:1", worker, "queue", expired)  # a worker that died mid-way
        assert queued_row is not None
        assert queue.mark_interrupted() == 1
        after = {r["conversation_id"]: r for r in ledger.conversations()}
        assert after["conv_run00000001"]["status"] == "failed" and after["conv_run00000001"]["retryable"] == 1
        assert after["conv_queue0000001"]["status"] == "processing"  # still the queue's: not failed
        assert queue.claim_next("h:2", worker, "taken", "2999-01-01T00:00:00.000Z")["conversation_id"] == \
            "conv_queue0000001"
    finally:
        ledger.close()
