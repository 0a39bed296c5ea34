"""Crash-safe resume after SIGKILL, exactly-once email, and the run lock."""

import json
import os
import random
import signal
import time
from pathlib import Path

import pytest

from .conftest import hindi_variant, start_fedfina, wait_for

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
        fedfina_exe, installed, workspace, elevenlabs, smtp_server, accept_delay):
    smtp_server.accept_delay = accept_delay
    elevenlabs.delay = 0.15  # keep the batch long enough to be killed in the middle
    for n in range(N):
        elevenlabs.add(hindi_variant(n), audio=b"ID3" + bytes([n]) * 20_000)
    csv_file = workspace.root / "calls.csv"
    csv_file.write_text("conversation_id\n" + "".join(f"conv_bulk{n:08d}\n" for n in range(N)))

    killed_at = []
    for target in (3, 10):  # kill twice, at different depths of the batch
        process = start_fedfina(fedfina_exe, "run", "--csv", str(csv_file), "--concurrency", "4")
        wait_for(lambda: len(smtp_server.messages) >= target or process.poll() is not None)  # noqa: B023
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

    final = installed("run", "--csv", csv_file, "--concurrency", "4")
    assert "stopped without finishing" in final.stderr  # the dead run's lock was taken over

    per_conversation = {}
    for message in smtp_server.messages:
        key = message.message["X-FedFina-Conversation"]
        per_conversation[key] = per_conversation.get(key, 0) + 1
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


def test_a_second_run_on_the_same_ledger_exits_3_naming_the_holder(fedfina_exe, installed, workspace, elevenlabs):
    elevenlabs.add(hindi_variant(1))
    elevenlabs.delay = 1.5  # under FEDFINA_HTTP_TIMEOUT, long enough to overlap
    first = start_fedfina(fedfina_exe, "run", "-c", "conv_bulk00000001")
    try:
        lock_file = workspace.root / "fedfina.db.lock"
        wait_for(lambda: lock_file.exists() and lock_file.read_text())
        holder = json.loads(lock_file.read_text())
        second = installed("run", "-c", "conv_bulk00000001")
        assert second.exit_code == 3
        assert f"pid {first.pid}, started {holder['started_at']}" in second.stderr
        assert "another fedfina run (run) is using this ledger" in second.stderr
        assert installed("status").exit_code == 0  # reading the ledger needs no lock
    finally:
        first.wait(timeout=60)
    assert first.returncode == 0
    assert lock_file.read_text() == ""  # a clean exit leaves no holder behind
    assert installed("run", "-c", "conv_bulk00000001").exit_code == 0


def test_a_stale_lock_from_a_dead_process_is_taken_over(cli, workspace):
    from .conftest import HINDI

    (workspace.root / "fedfina.db.lock").write_text(json.dumps(
        {"pid": 999999, "started_at": "2026-11-20T03:15:00.000Z", "command": "run"}))
    result = cli("run", "--from-file", HINDI)
    assert result.exit_code == 0, result.output
    assert "the previous run (pid 999999, started 2026-11-20T03:15:00.000Z) stopped without finishing" \
        in result.output
