"""FEDFINA_HTTP_TIMEOUT bounds every attempt of every external call as a whole.

Each stalled server here answers a byte at a time (or not at all), so every
socket read succeeds and only a total deadline ends the call. Without one
each of these runs would take many minutes; the generous bounds below only
catch a hang, they do not time fedfina.
"""

import socket
import threading
import time

import pytest

from .conftest import HINDI, HINDI_ID, hindi_variant, load_sample
from .fakes.elevenlabs import Response

CONVERSATION_PATH = f"/v1/convai/conversations/{HINDI_ID}"
AUDIO_PATH = CONVERSATION_PATH + "/audio"
HANG = 40  # seconds: far above the 2-3 s the stalls below may cost, far below what they cost unbounded


@pytest.fixture
def tight(monkeypatch):
    monkeypatch.setenv("FEDFINA_HTTP_TIMEOUT", "1")
    monkeypatch.setenv("FEDFINA_RETRY_ATTEMPTS", "2")
    monkeypatch.setenv("FEDFINA_RETRY_BASE_SECONDS", "0.01")


def _timed(cli, *args):
    started = time.monotonic()
    result = cli(*args)
    return result, time.monotonic() - started


def test_a_dripping_api_fails_its_conversation_as_retryable_and_the_run_goes_on(cli, workspace, elevenlabs,
                                                                                 tight):
    elevenlabs.add(load_sample(HINDI))
    elevenlabs.add(hindi_variant(1))
    elevenlabs.fault(CONVERSATION_PATH, times=2, drip=0.2, body=load_sample(HINDI))  # ~2 minutes a copy
    result, seconds = _timed(cli, "run", "-c", HINDI_ID, "-c", "conv_bulk00000001")
    assert seconds < HANG
    assert result.exit_code == 1
    assert ("ElevenLabs get_conversation: timed out (FEDFINA_HTTP_TIMEOUT is 1 s) at 127.0.0.1"
            in result.output) and "gave up after 2 attempts" in result.output
    assert "1 completed, 1 failed" in result.output
    failed, = workspace.rows("select retryable from conversation_processing where status = 'failed'")
    assert failed == {"retryable": 1}


def test_a_stalled_recording_fails_the_fetch_but_a_slow_moving_one_arrives(cli, workspace, elevenlabs, tight):
    audio = b"ID3" + bytes(range(256)) * 1000  # 256 KB

    def slow(chunk_bytes, pause):
        def chunks():
            for start in range(0, len(audio), chunk_bytes):
                time.sleep(pause)
                yield audio[start:start + chunk_bytes]
        return Response(200, headers={"Content-Type": "audio/mpeg", "Content-Length": str(len(audio))},
                        chunks=chunks())

    elevenlabs.add(load_sample(HINDI), audio=audio)
    original = elevenlabs._audio
    elevenlabs._audio = lambda conversation_id, range_header=None: slow(1024, 0.2)  # 5 KB/s: under 64 KB a second
    result, seconds = _timed(cli, "run", "-c", HINDI_ID)
    assert seconds < HANG
    assert result.exit_code == 1
    assert "recording download interrupted" in result.output and "timed out" in result.output
    assert "cannot connect" not in result.output  # a read timeout is a timeout

    # 64 KB every 0.6 s: the whole download takes longer than the timeout, but never stalls.
    elevenlabs._audio = lambda conversation_id, range_header=None: slow(64 * 1024, 0.6)
    result = cli("run", "-c", HINDI_ID)
    assert result.exit_code == 0, result.output
    assert workspace.object("acc123", "audio", f"{HINDI_ID}.mp3").read_bytes() == audio
    elevenlabs._audio = original


def test_a_hung_model_costs_two_timeouts_not_minutes(cli, workspace, openai_server, tight):
    openai_server.fault("/v1/chat/completions", times=10, drip=0.2,
                        body={"id": "x", "choices": [], "padding": "x" * 2000})
    result, seconds = _timed(cli, "run", "--from-file", HINDI)
    assert seconds < HANG
    assert result.exit_code == 1
    assert "timed out (FEDFINA_HTTP_TIMEOUT is 1 s)" in result.output
    assert "gave up after 2 attempts" in result.output
    assert openai_server.count("/v1/chat/completions") == 2  # the SDK's own retries are ours
    assert workspace.rows("select retryable from conversation_processing") == [{"retryable": 1}]


def _silent_server():
    """Accepts connections and then says a byte every half second: an SMTP greeting that never ends."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            threading.Thread(target=drip, args=(conn,), daemon=True).start()

    def drip(conn):
        with conn:
            try:
                for byte in b"220 mail.example.com ESMTP" * 100:
                    if stop.is_set():
                        return
                    conn.sendall(bytes([byte]))
                    time.sleep(0.5)
            except OSError:
                pass

    threading.Thread(target=serve, daemon=True).start()
    return listener, stop


def test_a_mail_server_that_never_finishes_its_greeting(cli, workspace, monkeypatch, tight):
    listener, stop = _silent_server()
    try:
        monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("SMTP_PORT", str(listener.getsockname()[1]))
        monkeypatch.setenv("SMTP_FROM_EMAIL", "reports@fedfina.example")
        monkeypatch.setenv("SMTP_SECURITY", "none")
        result, seconds = _timed(cli, "run", "--from-file", HINDI)
        assert seconds < HANG
        assert result.exit_code == 1
        assert "did not accept the message after 2 attempts: timed out (FEDFINA_HTTP_TIMEOUT is 1 s)" \
            in result.output
        row, = workspace.rows("select status, retryable, email_state from conversation_processing")
        assert row == {"status": "failed", "retryable": 1, "email_state": None}  # never handed over
    finally:
        stop.set()
        listener.close()


def test_a_dripping_storage_server_is_a_clear_timeout(cli, monkeypatch, tight):
    from .fakes.http_base import FakeHTTPServer

    class Stalled(FakeHTTPServer):
        def _handle(self, handler):
            from .fakes.http_base import Fault

            self._drip(handler, Fault(status=200, drip=0.3, body=b"<ListBucketResult/>" * 50))

    server = Stalled().start()
    try:
        host, port = server.server.server_address[:2]
        monkeypatch.setenv("MINIO_ENDPOINT", f"{host}:{port}")
        monkeypatch.setenv("MINIO_ACCESS_KEY", "TEST-ACCESS-KEY-FEDFINA-01")
        monkeypatch.setenv("MINIO_SECRET_KEY", "minio-secret-4f2a9c7e1b3d")
        monkeypatch.setenv("MINIO_SECURE", "false")
        result, seconds = _timed(cli, "run", "--from-file", HINDI)
        assert seconds < HANG
        assert result.exit_code == 2
        assert f"MinIO at {host}:{port} timed out (FEDFINA_HTTP_TIMEOUT is 1 s)" in result.output
    finally:
        server.stop()


def test_the_bounded_transport_still_reaches_httpcore():
    """httpx2 gives no public way to pass a network backend; this fails loudly if its layout moves."""
    from fedfina_cli.services.deadline import httpx_transport

    transport = httpx_transport()
    assert type(transport._pool._network_backend).__name__ == "BoundedBackend"


def test_alarms_ring_in_time_order_unless_cancelled_on_one_thread():
    """The SMTP sends' alarms: one thread for all of them, not a timer thread per email."""
    from fedfina_cli.services.deadline import alarm

    rang: list[str] = []
    done = threading.Event()
    alarm(0.3, lambda: rang.append("late"))
    cancelled = alarm(0.2, lambda: rang.append("cancelled"))
    alarm(0.1, lambda: rang.append("sooner, set after a later one"))
    alarm(0.4, done.set)
    cancelled.cancel()
    threads = threading.active_count()
    for _ in range(200):  # as many emails: no thread of their own
        alarm(30, lambda: rang.append("never")).cancel()
    assert threading.active_count() == threads
    assert done.wait(HANG)
    assert rang == ["sooner, set after a later one", "late"]
    assert not cancelled.rang
