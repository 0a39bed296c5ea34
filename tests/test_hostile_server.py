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
