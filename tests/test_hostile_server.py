"""Hostile input and exhausted resources at the server (issue 24), against the real
`fedfina serve` on loopback."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from fedfina_cli.server.signature import sign

from .serving import WEBHOOK, WEBHOOK_SECRET, transcription

MB = 1024 * 1024


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _post_raw(port: int, size: int, headers: dict[str, str], results: list) -> None:
    """POST ``size`` bytes, streaming, as a client that does not wait for an early answer."""
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    try:
        sock.sendall(f"POST {WEBHOOK} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {size}\r\n{head}\r\n".encode())
        chunk = b"x" * MB
        sent = 0
        try:
            while sent < size:
                sock.sendall(chunk[:size - sent])
                sent += min(len(chunk), size - sent)
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered and closed before the body was all sent: what we want
        reply = sock.recv(200).decode(errors="replace")
        results.append(reply.split(" ", 2)[1] if reply.startswith("HTTP/1.1") else reply)
    finally:
        sock.close()


@pytest.mark.parametrize("header", [None, "t=123", "t=²,v0=abc", "v0=abc"])
def test_unsigned_45_mb_bodies_are_refused_unread(serving, header):
    server = serving()
    before = _rss_mb(server.process.pid)
    peak, results = [before], []
    headers = {"ElevenLabs-Signature": header} if header else {}
    threads = [threading.Thread(target=_post_raw, args=(server.port, 45 * MB, headers, results)) for _ in range(8)]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        peak.append(_rss_mb(server.process.pid))
        time.sleep(0.01)
    assert results == ["401"] * 8
    # Before: 66 -> 695 MB for 8 such posts. Now nothing of them is held.
    assert max(peak) - before < 40, (before, max(peak))
    assert server.get("/healthz")[0] == 200


def _signed_raw(server, body: bytes) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json",
               "ElevenLabs-Signature": sign(WEBHOOK_SECRET, body, int(time.time()))}
    status, raw = server.request("POST", WEBHOOK, body, headers)
    return status, json.loads(raw)


@pytest.mark.parametrize("body, why", [
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (json.dumps(transcription(1)).replace('"event_timestamp": ', '"event_timestamp": NaN, "x": ').encode(),
     "NaN is not a JSON number"),
    (b'{"type": "post_call_transcription", "data": {"x": "\xff"}}', "not UTF-8"),
])
def test_signed_bodies_that_are_not_json_are_a_422_naming_why(serving, workspace, body, why):
    server = serving()
    status, answer = _signed_raw(server, body)
    assert status == 422 and why in answer["message"], answer
    assert not workspace.db.exists() or not workspace.rows("select * from conversation_processing")


def test_a_signed_lone_surrogate_is_repaired_and_recorded(serving, workspace, smtp_server):
    from .conftest import wait_for

    server = serving()
    event = transcription(3)
    event["data"]["transcript"][0]["message"] = "namaste \ud83d"  # half an emoji
    body = json.dumps(event).encode()  # ensure_ascii: the surrogate travels as \\ud83d
    status, answer = _signed_raw(server, body)
    assert status == 200, answer
    wait_for(lambda: workspace.rows("select status from conversation_processing")[0]["status"] == "completed",
             timeout=30)
    transcript = workspace.object("acc123", "transcripts", "conv_bulk00000003.txt").read_text()
    assert "namaste \ufffd" in transcript


PASSWORD = "hunter2-Secret"
DOWN = [  # nothing listens on port 1; each form libpq takes a password in
    f"postgresql://fedfina@127.0.0.1:1/fedfina?password={PASSWORD}",
    f"postgresql://fedfina:{PASSWORD}@127.0.0.1:1/fedfina",
    f"postgresql://fedfina@127.0.0.1:1/fedfina?sslmode=disable&password={PASSWORD}&connect_timeout=2",
]


@pytest.mark.parametrize("url", DOWN)
def test_a_postgresql_password_in_any_form_is_never_shown(cli, workspace, url):
    for args in (("doctor",), ("status",), ("--db", url, "status")):
        result = cli(*args, env={"DATABASE_URL": url})
        assert result.exit_code in (1, 2), (args, result.output)
        assert PASSWORD not in result.output and "hunter2" not in result.output, (args, result.output)
        assert "***" in result.output or "127.0.0.1" in result.output


def test_a_keyword_connection_string_is_refused_without_showing_its_password(cli, workspace):
    result = cli("status", env={"DATABASE_URL": f"host=db user=fedfina password='{PASSWORD}'"})
    assert result.exit_code == 2 and PASSWORD not in result.output and "password=***" in result.output


def test_pgpassword_is_scrubbed_too(workspace):
    from fedfina_cli.core.config import load_settings

    settings = load_settings(environ={"PGPASSWORD": PASSWORD})
    assert settings.redact(f"connection failed for {PASSWORD}") == "connection failed for ***"


@pytest.mark.parametrize("url", DOWN)
def test_readyz_names_what_failed_and_never_a_connection_string(workspace, url):
    from types import SimpleNamespace

    from fedfina_cli.core.config import load_settings
    from fedfina_cli.server.routes.ops import _readiness

    settings = load_settings(environ={"DATABASE_URL": url, "FEDFINA_DATA_DIR": str(workspace.data)})
    failed = _readiness(SimpleNamespace(settings=settings))
    text = json.dumps(failed)
    assert [f["backend"] for f in failed] == ["ledger"], failed
    assert PASSWORD not in text and "postgresql://" not in text and "fedfina@" not in text, text
    assert "DATABASE_URL" in text


def test_a_data_collection_amount_of_1e30_gives_a_report(cli, workspace, tmp_path):
    from .conftest import HINDI, load_sample

    payload = load_sample(HINDI)
    results = payload["analysis"].setdefault("data_collection_results", {})
    results["loan_amount"] = {"data_collection_id": "loan_amount", "value": 1e30, "rationale": "said so",
                              "json_schema": {"type": "number", "description": "Loan amount in INR"}}
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(payload))
    result = cli("run", "--from-file", path)
    assert result.exit_code == 0, result.output
    assert workspace.object("acc123", "reports", f"{payload['conversation_id']}.pdf").exists()


# --- recordings: the hand-over with the transcription ------------------------------------

def test_audio_and_transcription_racing_leave_no_recording_behind(serving, workspace, smtp_server, s3):
    import random

    from .serving import audio_event

    server = serving("--concurrency", "4")
    audio = b"ID3" + bytes(range(256)) * (24 * 1024)  # 6 MB: its upload takes a while, as a real one's does
    rng = random.Random(24)
    numbers = range(100, 116)

    def deliver(number: int) -> None:
        delay = rng.uniform(0.02, 0.3)
        sender = threading.Thread(target=server.webhook, args=(audio_event(number, audio),))
        sender.start()
        time.sleep(delay)  # the transcription 20-300 ms after the audio (seen from ElevenLabs: 24-260 ms)
        assert server.webhook(transcription(number))[0] == 200
        sender.join()

    threads = [threading.Thread(target=deliver, args=(n,)) for n in numbers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [f"conv_bulk{n:08d}" for n in numbers]

    def waiting() -> list[tuple]:
        rows = {r["conversation_id"]: r for r in workspace.rows(
            "select conversation_id, status, audio_key from conversation_processing")}
        return [(i, rows.get(i, {}).get("status"), rows.get(i, {}).get("audio_key")) for i in ids
                if not (rows.get(i, {}).get("status") == "completed" and rows[i]["audio_key"])]

    deadline = time.monotonic() + 90
    while waiting() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not waiting(), (waiting(), workspace.rows("select * from incoming_audio"), server.log()[-4000:])
    for conversation_id in ids:
        assert s3.get(f"acc123/audio/{conversation_id}.mp3") == audio
    assert not [key for key in s3.object_keys() if key.startswith("_incoming/")]
    assert workspace.rows("select * from incoming_audio") == []


def test_a_recording_whose_transcription_never_comes_is_discarded_after_a_day(workspace):
    from fedfina_cli.core.config import load_settings
    from fedfina_cli.ledger.ledger import open_ledger
    from fedfina_cli.pipeline import intake
    from fedfina_cli.services.storage.local import LocalStorage

    ledger = open_ledger(load_settings())
    storage = LocalStorage(workspace.data)
    try:
        assert intake.accept_audio(ledger, storage, "conv_lonely12345", b"ID3 x") == [
            "_incoming/audio/conv_lonely12345.mp3"]
        assert intake.discard_stale_audio(ledger, storage) == 0  # not a day old yet
        ledger.sql.run("update incoming_audio set received_at = '2026-01-01T00:00:00.000Z'")
        assert intake.discard_stale_audio(ledger, storage) == 1
        assert not (workspace.data / "_incoming" / "audio" / "conv_lonely12345.mp3").exists()
        [line] = ledger.sql.rows("select * from processing_audit_log where conversation_id = 'conv_lonely12345'")
        assert line["event"] == "discarded" and "no transcription for it: deleted" in line["message"]
    finally:
        ledger.close()


def test_an_empty_recording_is_noted_not_kept(cli, workspace, elevenlabs):
    from .conftest import HINDI, HINDI_ID, load_sample

    elevenlabs.add(load_sample(HINDI), audio=b"")
    assert cli("run", "-c", HINDI_ID).exit_code == 0
    [row] = workspace.rows("select audio_key from conversation_processing")
    assert row["audio_key"] is None
    assert not workspace.rows("select * from conversation_files where file_type = 'audio'")
    notes = [r["message"] for r in workspace.rows("select message from processing_audit_log where event = 'note'")]
    assert "no recording (empty file)" in notes


# --- a full disk -------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs (a real ENOSPC); grown with grow(). Needs root with mount rights, as CI has."""
    import subprocess

    folder = tmp_path / "small-disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()}): needs root with mount rights")

    def grow() -> None:
        subprocess.run(["mount", "-o", "remount,size=64m", str(folder)], check=True)

    try:
        yield folder, grow
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_a_full_disk_is_a_503_and_a_retry_not_a_failure_for_good(serving, workspace, monkeypatch, small_disk, cli):
    from .conftest import wait_for

    folder, grow = small_disk
    monkeypatch.setenv("FEDFINA_DATA_DIR", str(folder))
    monkeypatch.setenv("FEDFINA_QUEUE_RETRY_SECONDS", "0.25")
    server = serving("--concurrency", "2")
    answers = {n: server.webhook(transcription(n))[0] for n in range(200, 240)}

    def full() -> bool:  # the reports and emails of 40 calls do not fit in 3 MB
        return bool(workspace.rows("select 1 from processing_audit_log where message like '%disk full%' "
                                   "or message like '%No space left%' limit 1"))

    wait_for(full, timeout=60)
    answers.update({n: server.webhook(transcription(n))[0] for n in range(240, 250)})
    assert set(answers.values()) <= {200, 503}, answers  # never 500 "internal error"
    assert 503 in answers.values(), "no webhook met the full disk: the test proves nothing"
    status, raw = server.get("/readyz")
    assert status == 503 and "disk full" in raw.decode(), raw
    doctor = cli("doctor")
    assert doctor.exit_code == 1 and "disk full" in doctor.stdout
    grow()
    for number, status in answers.items():  # ElevenLabs (or the sweep) delivers what was refused again
        if status == 503:
            assert server.webhook(transcription(number))[0] == 200
    ids = [f"conv_bulk{n:08d}" for n in answers]

    def all_done() -> bool:
        rows = {r["conversation_id"]: r["status"] for r in workspace.rows(
            "select conversation_id, status from conversation_processing")}
        assert not [i for i in ids if rows.get(i) == "failed"], rows  # no failure for good on the way
        return all(rows.get(i) == "completed" for i in ids)

    wait_for(all_done, timeout=120)
    emails = sorted(p.name for p in (folder / "outbox" / "acc123").glob("*.eml"))
    assert emails == sorted(f"{i}.eml" for i in ids)


def test_the_api_answers_422_to_a_body_that_is_not_json_it_accepts(serving):
    from .serving import KEY, POSTPROCESS

    server = serving()
    for body, why in ((b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
                      (b'{"conversation_id": NaN}', "NaN is not a JSON number")):
        status, raw = server.request("POST", POSTPROCESS, body, {"Content-Type": "application/json", **KEY})
        assert status == 422 and why in raw.decode(), raw


def test_taking_a_held_recording_is_safe_to_repeat_after_a_lost_reply(workspace, monkeypatch):
    """Every ledger statement may run twice (a reply lost, the pool retries): the take marks the
    row, so the repeat finds its own mark; a delete-and-return lost the recording."""
    import uuid

    from fedfina_cli.core.config import load_settings
    from fedfina_cli.ledger.ledger import open_ledger

    ledger = open_ledger(load_settings())
    try:
        ledger.hold_audio("conv_heldaudio1", "_incoming/audio/conv_heldaudio1.mp3", 10)
        fixed = uuid.uuid4()
        monkeypatch.setattr(uuid, "uuid4", lambda: fixed)  # the same statement, run twice
        assert ledger.take_held_audio("conv_heldaudio1") == "_incoming/audio/conv_heldaudio1.mp3"
        assert ledger.take_held_audio("conv_heldaudio1") == "_incoming/audio/conv_heldaudio1.mp3"
        monkeypatch.undo()
        assert ledger.take_held_audio("conv_heldaudio1") is None  # another taker: not it
        ledger.release_held_audio("conv_heldaudio1")
        assert ledger.sql.rows("select * from incoming_audio") == []
    finally:
        ledger.close()
