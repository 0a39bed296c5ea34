"""Nothing lost, nothing twice: duplicates in one run, stage commands out of order, signals."""

import signal
import subprocess

from fedfina_cli.core.files import atomic_write

from .conftest import HINDI, HINDI_ID, emails_per_conversation, hindi_variant, start_fedfina, wait_for


def _csv(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_conversation_listed_twice_with_and_without_its_account_sends_one_email(
        cli, workspace, elevenlabs, smtp_server):
    smtp_server.accept_delay = 0.3  # a slow server widens the race the two copies used to lose
    for n in range(10):
        elevenlabs.add(hindi_variant(n), audio=b"ID3" + bytes([n]) * 5000)
    # Each conversation twice: the account left blank (it comes from the dynamic
    # variables) and filled in. Only resolving the first shows they are the same.
    lines = ["conversation_id,email_id,account_id"]
    lines += [f"conv_bulk{n:08d},," for n in range(10)]
    lines += [f"conv_bulk{n:08d},,acc123" for n in range(10)]
    result = cli("run", "--csv", _csv(workspace.root / "calls.csv", lines), "--concurrency", "8")
    assert result.exit_code == 0, result.output
    assert emails_per_conversation(smtp_server) == {f"conv_bulk{n:08d}": 1 for n in range(10)}
    assert "10 completed, 10 duplicates" in result.output
    assert "same conversation as row" in result.output
    assert "FileNotFoundError" not in result.output
    rows = workspace.rows("select account_id, status from conversation_processing")
    assert rows == [{"account_id": "acc123", "status": "completed"}] * 10


def test_temporary_files_of_live_writers_survive_the_sweep(workspace):
    target = workspace.root / "objects" / "report.pdf"
    target.parent.mkdir()
    sleeper = subprocess.Popen(["sleep", "30"])
    finished = subprocess.Popen(["true"])
    finished.wait()
    try:
        live = target.parent / f".report.pdf.{sleeper.pid}.abc123.part"
        dead = target.parent / f".report.pdf.{finished.pid}.def456.part"
        legacy = target.parent / ".report.pdf.k3j4h5.part"  # written before the pid was in the name
        for leftover in (live, dead, legacy):
            leftover.write_bytes(b"partial")
        atomic_write(target, [b"%PDF-1.7 complete"])
        assert target.read_bytes() == b"%PDF-1.7 complete"
        assert live.exists()  # another writer is still filling it
        assert not dead.exists() and not legacy.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_stage_commands_before_fetch_leave_no_ghost_row_and_email_finds_the_recipient(cli, workspace):
    # A stage command before anything was fetched: a clear hint, and nothing recorded under no account.
    result = cli("report", "-c", HINDI_ID)
    assert result.exit_code == 1 and f"run `fedfina fetch -c {HINDI_ID}` first" in result.output
    assert workspace.rows("select * from conversation_processing where account_id = ''") == []
    result = cli("report", "-c", HINDI_ID, "-a", "acc123")
    assert result.exit_code == 1 and "first" in result.output
    assert workspace.rows("select * from conversation_processing where account_id = ''") == []

    for step in (("fetch", "--from-file", HINDI), ("summarize", "-c", HINDI_ID), ("report", "-c", HINDI_ID)):
        result = cli(*step)
        assert result.exit_code == 0, (step, result.output)
    # The recipient comes from the stored conversation's dynamic variables.
    result = cli("email", "-c", HINDI_ID, "-a", "acc123")
    assert result.exit_code == 0, result.output
    assert len(workspace.emails()) == 1
    row, = workspace.rows("select account_id, email_id, status from conversation_processing")
    assert row == {"account_id": "acc123", "email_id": "loans.officer@example.com", "status": "completed"}


def test_a_missing_account_and_recipient_are_reported_together(cli, workspace):
    payload = hindi_variant(1, account=None, email=None)
    path = workspace.root / "bare.json"
    import json

    path.write_text(json.dumps(payload), encoding="utf-8")
    result = cli("run", "--from-file", path)
    assert result.exit_code == 1
    assert "no account id" in result.output and "no recipient" in result.output


def _statuses(workspace) -> list[str] | None:
    import sqlite3

    try:
        return [r["status"] for r in workspace.rows("select status from conversation_processing")]
    except sqlite3.OperationalError:  # the run has not created its tables yet
        return None


def test_sigterm_finishes_the_conversations_in_flight_and_leaves_none_processing(
        fedfina_exe, installed, workspace, elevenlabs, smtp_server):
    elevenlabs.delay = 0.3
    for n in range(12):
        elevenlabs.add(hindi_variant(n), audio=b"ID3" + bytes([n]) * 5000)
    csv_file = _csv(workspace.root / "calls.csv",
                    ["conversation_id"] + [f"conv_bulk{n:08d}" for n in range(12)])
    process = start_fedfina(fedfina_exe, "run", "--csv", csv_file, "--concurrency", "2")
    wait_for(lambda: len(smtp_server.messages) >= 2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    rows = workspace.rows("select status from conversation_processing")
    assert rows and all(r["status"] == "completed" for r in rows)  # nothing left `processing`
    assert len(rows) < 12

    final = installed("run", "--csv", csv_file)
    assert final.exit_code == 0, final.stderr
    assert emails_per_conversation(smtp_server) == {f"conv_bulk{n:08d}": 1 for n in range(12)}


def test_a_conversation_left_processing_by_a_killed_run_is_interrupted_and_resumed(
        fedfina_exe, installed, workspace, elevenlabs, smtp_server, monkeypatch):
    monkeypatch.setenv("FEDFINA_CLAIM_SECONDS", "1")
    elevenlabs.audio_delay = 1.0  # killed while downloading the recording
    elevenlabs.add(hindi_variant(1), audio=b"ID3" + b"\x01" * 5000)
    process = start_fedfina(fedfina_exe, "run", "-c", "conv_bulk00000001")
    wait_for(lambda: _statuses(workspace) == ["processing"])
    process.send_signal(signal.SIGKILL)
    process.wait()

    elevenlabs.audio_delay = 0
    import time

    time.sleep(1.2)  # its claim expires
    # Any run marks it: here one that selects nothing else; `run --failed` resumes it.
    result = installed("run", "--failed")
    assert "1 conversations were left unfinished by a process that stopped" in result.output
    assert result.exit_code == 0, result.stderr
    row, = workspace.rows("select status, error_message from conversation_processing")
    assert row == {"status": "completed", "error_message": None}
    assert emails_per_conversation(smtp_server) == {"conv_bulk00000001": 1}


def test_ctrl_c_at_a_terminal_stops_cleanly_without_a_worker_traceback(fedfina_exe, workspace, elevenlabs):
    """A terminal's Ctrl-C signals the whole process group, the report workers too."""
    import os

    elevenlabs.delay = 0.2
    for n in range(12):
        elevenlabs.add(hindi_variant(n), audio=b"ID3" + bytes([n]) * 5000)
    csv_file = _csv(workspace.root / "calls.csv",
                    ["conversation_id"] + [f"conv_bulk{n:08d}" for n in range(12)])
    process = subprocess.Popen([fedfina_exe, "run", "--csv", csv_file, "--concurrency", "2", "-e",
                                "officer@example.com"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=dict(os.environ), start_new_session=True)
    wait_for(lambda: len(workspace.emails()) >= 2)  # reports are being rendered by the workers
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
