"""`fedfina serve` and `fedfina worker`, run for real: uvicorn on a loopback port, the fakes behind it."""

import http.client
import json
import re
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import parse_qs, urlsplit

import pytest

from fedfina_cli.server.signature import sign

from .conftest import SECRETS, emails_per_conversation, hindi_variant, wait_for
from .fakes.smtp import free_port
from .serving import API_KEY, KEY, POSTPROCESS, WEBHOOK, WEBHOOK_SECRET, audio_event, transcription


def _statuses(workspace) -> dict[str, str]:
    if not workspace.db.exists():
        return {}
    return {r["conversation_id"]: r["status"]
            for r in workspace.rows("select conversation_id, status from conversation_processing")}


# --- starting --------------------------------------------------------------------------------------


def test_serve_refuses_to_start_without_an_api_key(installed, monkeypatch, workspace):
    monkeypatch.delenv("FEDFINA_API_KEY", raising=False)
    result = installed("serve", "--port", str(free_port()), timeout=30)
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0 and "FEDFINA_API_KEY is not set" in result.stderr
    assert not workspace.db.exists()


def test_a_port_in_use_is_said_in_one_line_before_anything_starts(installed, monkeypatch, workspace):
    monkeypatch.setenv("FEDFINA_API_KEY", API_KEY)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = installed("serve", "--port", str(taken.getsockname()[1]), timeout=30)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "Address already in use; choose another --port" in result.stderr
    assert not workspace.db.exists()  # no worker started, nothing processed


# --- the seed's API -------------------------------------------------------------------------------


def test_postprocess_queues_processes_and_reports_the_conversation(serving, elevenlabs, smtp_server, workspace):
    elevenlabs.add(hindi_variant(1), audio=b"ID3" + b"\x01" * 4000)
    server = serving("--concurrency", "2")
    request = {"conversation_id": "conv_bulk00000001", "account_id": "acc123",
               "email_id": "loans.officer@example.com"}

    status, body = server.json("POST", POSTPROCESS, request, KEY)
    assert status == 202, body
    assert body["success"] is True and body["message"] == "Conversation processing started"
    data = body["data"]
    # The seed document's shape: proc_<n>, "processing", the estimate to the second.
    assert data["conversation_id"] == "conv_bulk00000001" and data["status"] == "processing"
    assert re.fullmatch(r"proc_\d+", data["processing_id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", data["estimated_completion"])

    wait_for(lambda: _statuses(workspace).get("conv_bulk00000001") == "completed", timeout=30)
    assert emails_per_conversation(smtp_server) == {"conv_bulk00000001": 1}
    status, body = server.json("GET", f"{POSTPROCESS}/conv_bulk00000001", headers=KEY)
    assert status == 200 and body["success"] is True
    view = body["data"]
    assert {k: view[k] for k in ("conversation_id", "account_id", "email_id", "status", "current_step")} == {
        "conversation_id": "conv_bulk00000001", "account_id": "acc123", "email_id": "loans.officer@example.com",
        "status": "completed", "current_step": "email"}
    assert view["processing_id"] == data["processing_id"] and view["error_message"] is None
    assert sorted(f["file_type"] for f in view["files"]) == ["audio", "conversation", "report", "summary",
                                                              "transcript"]
    assert all(f["url"] is None and f["object_key"].startswith("acc123/") for f in view["files"])

    # Asked again: already completed, nothing redone.
    status, body = server.json("POST", POSTPROCESS, request, KEY)
    assert status == 200 and body["data"]["status"] == "completed"
    assert body["message"] == "Conversation already processed"
    time.sleep(0.5)
    assert emails_per_conversation(smtp_server) == {"conv_bulk00000001": 1}
    assert server.stop() == 0


def test_a_request_with_only_the_conversation_id_takes_the_rest_from_the_call(
        serving, elevenlabs, smtp_server, workspace):
    """As `run -c` does: the account and the recipient come from the conversation's dynamic variables."""
    elevenlabs.add(hindi_variant(480))
    elevenlabs.add(hindi_variant(481, account=None, email=None))
    server = serving()
    status, body = server.json("POST", POSTPROCESS, {"conversation_id": "conv_bulk00000480"}, KEY)
    assert status == 202 and body["data"]["status"] == "processing", body
    wait_for(lambda: _statuses(workspace).get("conv_bulk00000480") == "completed", timeout=30)
    assert emails_per_conversation(smtp_server) == {"conv_bulk00000480": 1}
    assert elevenlabs.count("/v1/convai/conversations/conv_bulk00000480") == 1  # read once, kept for the worker
    status, body = server.json("POST", POSTPROCESS, {"conversation_id": "conv_bulk00000481"}, KEY)
    assert status == 422 and [e["field"] for e in body["errors"]] == ["account_id", "email_id"], body
    assert "dynamic variables" in body["message"]
    status, body = server.json("POST", POSTPROCESS, {"conversation_id": "conv_bulk00000482"}, KEY)
    assert status == 404 and "pass account_id and email_id" in body["message"]  # ElevenLabs does not know it
    assert server.stop() == 0


def test_presigned_links_with_minio(serving, elevenlabs, s3, smtp_server, workspace, cli):
    elevenlabs.add(hindi_variant(2))
    server = serving()
    status, _ = server.json("POST", POSTPROCESS, {"conversation_id": "conv_bulk00000002", "account_id": "acc123",
                                                   "email_id": "loans.officer@example.com"}, KEY)
    assert status == 202
    wait_for(lambda: _statuses(workspace).get("conv_bulk00000002") == "completed", timeout=30)
    _, body = server.json("GET", f"{POSTPROCESS}/conv_bulk00000002?account_id=acc123", headers=KEY)
    report = next(f for f in body["data"]["files"] if f["file_type"] == "report")
    assert report["url"].startswith(f"http://{s3.endpoint}/{s3.bucket}/acc123/reports/conv_bulk00000002.pdf?")
    with urllib.request.urlopen(report["url"]) as response:
        assert response.read().startswith(b"%PDF")
    # The links last as long as the account's email links (7 days for every account before),
    # and the raw conversation, never masked, is linked only when asked for.
    assert parse_qs(urlsplit(report["url"]).query)["X-Amz-Expires"] == [str(7 * 24 * 3600)]
    raw = next(f for f in body["data"]["files"] if f["file_type"] == "conversation")
    assert raw["url"] is None and raw["object_key"] == "acc123/conversations/conv_bulk00000002.json"
    assert cli("accounts", "set", "acc123", "--link-expiry-hours", "1").exit_code == 0
    _, body = server.json("GET", f"{POSTPROCESS}/conv_bulk00000002?account_id=acc123&include=conversation",
                          headers=KEY)
    urls = {f["file_type"]: f["url"] for f in body["data"]["files"]}
    assert all(parse_qs(urlsplit(u).query)["X-Amz-Expires"] == ["3600"] for u in urls.values()), urls
    assert urls["conversation"] is not None


def test_the_api_refuses_what_it_must(serving, workspace, monkeypatch):
    monkeypatch.setenv("FEDFINA_MAX_BODY_MB", "0.01")  # about 10 KB
    server = serving()
    good = {"conversation_id": "conv_bulk00000003", "account_id": "acc123", "email_id": "a@example.com"}

    for headers in ({}, {"X-API-Key": "wrong"}, {"X-API-Key": API_KEY + "x"}):
        status, body = server.json("POST", POSTPROCESS, good, headers)
        assert (status, body) == (401, {"success": False, "message": "missing or wrong X-API-Key"})
        status, body = server.json("GET", f"{POSTPROCESS}/conv_bulk00000003", headers=headers)
        assert status == 401 and body["success"] is False

    status, body = server.json("POST", POSTPROCESS, {"conversation_id": "conv_../../etc", "account_id": "../x",
                                                      "email_id": "a@example.com\r\nBcc: b@evil.test"}, KEY)
    assert status == 422 and body["success"] is False and body["message"] == "invalid request"
    assert [e["field"] for e in body["errors"]] == ["conversation_id", "account_id", "email_id"]
    assert all(e["message"] for e in body["errors"])
    status, body = server.json("POST", POSTPROCESS, {"account_id": "acc123"}, KEY)
    assert status == 422 and body["errors"] == [{"field": "conversation_id", "message": "required"}]
    status, body = server.json("POST", POSTPROCESS, {"conversation_id": 42, "email_id": ["a"]}, KEY)
    assert status == 422 and body["errors"] == [{"field": "conversation_id", "message": "must be a string"},
                                                {"field": "email_id", "message": "must be a string"}]
    status, raw = server.request("POST", POSTPROCESS, b"{not json", {**KEY, "Content-Type": "application/json"})
    assert status == 422 and json.loads(raw)["errors"][0]["field"] == "body"

    big = {**good, "padding": "x" * 20_000}
    status, body = server.json("POST", POSTPROCESS, big, KEY)
    assert status == 413 and body["success"] is False and "FEDFINA_MAX_BODY_MB" in body["message"]
    status, body = server.webhook({"type": "post_call_audio", "data": {"full_audio": "A" * 20_000}})
    assert status == 413
    # Streamed without a Content-Length (chunked): counted as it arrives, refused past the limit.
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request("POST", POSTPROCESS, body=(b" " * 1000 for _ in range(20)), encode_chunked=True,
                       headers={**KEY, "Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    refused = connection.getresponse()
    assert refused.status == 413 and "FEDFINA_MAX_BODY_MB" in json.loads(refused.read())["message"]
    connection.close()

    # Without ELEVENLABS_API_KEY the API cannot fetch what it is asked for: said at once, not after a 202.
    status, body = server.json("POST", POSTPROCESS, good, KEY)
    assert status == 503 and "ELEVENLABS_API_KEY is not set" in body["message"]
    status, body = server.json("GET", f"{POSTPROCESS}/conv_bulk00000099", headers=KEY)
    assert status == 404 and body["success"] is False and "conv_bulk00000099" in body["message"]
    status, body = server.json("GET", "/no/such/route")
    assert (status, body) == (404, {"success": False, "message": "not found"})
    assert _statuses(workspace) == {}  # nothing refused was recorded
    assert server.stop() == 0
    log = server.log()
    assert not any(secret in log for secret in (*SECRETS, API_KEY, WEBHOOK_SECRET))
    assert "padding" not in log and "Bcc" not in log  # no bodies in the log
    lines = [json.loads(line) for line in log.splitlines()]
    assert {"method": "POST", "path": POSTPROCESS, "status": 413} in [
        {k: line.get(k) for k in ("method", "path", "status")} for line in lines]


# --- ElevenLabs' webhooks -----------------------------------------------------------------------


def test_a_signed_transcription_is_processed_without_asking_the_api_for_it(
        serving, elevenlabs, smtp_server, workspace):
    server = serving()
    status, body = server.webhook(transcription(4))
    assert status == 200 and body["success"] is True, body
    wait_for(lambda: _statuses(workspace).get("conv_bulk00000004") == "completed", timeout=30)
    assert elevenlabs.count("/v1/convai/conversations/conv_bulk00000004") == 0
    assert emails_per_conversation(smtp_server) == {"conv_bulk00000004": 1}
    stored = json.loads(workspace.object("acc123", "conversations", "conv_bulk00000004.json").read_text())
    assert stored == hindi_variant(4)
    assert "AI:" in workspace.object("acc123", "transcripts", "conv_bulk00000004.txt").read_text()
    assert server.stop() == 0


def test_bad_missing_stale_and_future_signatures_are_refused_and_nothing_is_queued(serving, workspace):
    server = serving()
    now = int(time.time())
    event = transcription(5)
    cases = {
        "missing": dict(signature=""),
        "wrong secret": dict(secret="not-the-secret"),
        "garbage": dict(signature="t=abc,v0=zz"),
        "no timestamp": dict(signature="v0=" + "0" * 64),
        "stale (31 minutes)": dict(timestamp=now - 31 * 60),
        "ahead of this host's clock by 31 minutes": dict(timestamp=now + 31 * 60),
    }
    for name, how in cases.items():
        status, body = server.webhook(event, **how)
        assert status == 401, name
        assert body["success"] is False and body["message"].startswith("invalid webhook signature"), name
    # A body changed after signing: the signature is over the raw bytes.
    body = json.dumps(event).encode()
    header = sign(WEBHOOK_SECRET, body, now)
    status, _ = server.request("POST", WEBHOOK, body.replace(b"acc123", b"acc999"), {"ElevenLabs-Signature": header})
    assert status == 401
    # Within the bounds: 29 minutes old, and 29 minutes ahead (this host's clock behind ElevenLabs').
    assert server.webhook(transcription(6), timestamp=now - 29 * 60)[0] == 200
    assert server.webhook(transcription(7), timestamp=now + 29 * 60)[0] == 200
    assert "conv_bulk00000005" not in _statuses(workspace)
    assert not list(workspace.data.rglob("conv_bulk00000005*"))


def test_a_webhook_without_its_transcript_is_completed_from_the_api(serving, elevenlabs, smtp_server, workspace):
    """The agent's "exclude transcript" setting: the event carries the call without its turns."""
    full = hindi_variant(470)
    elevenlabs.add(full)
    excluded = {key: value for key, value in full.items() if key != "transcript"}
    server = serving()
    event = {"type": "post_call_transcription", "event_timestamp": int(time.time()), "data": excluded}
    assert server.webhook(event)[0] == 200
    wait_for(lambda: _statuses(workspace).get("conv_bulk00000470") == "completed", timeout=30)
    assert elevenlabs.count("/v1/convai/conversations/conv_bulk00000470") == 1
    assert json.loads(workspace.object("acc123", "conversations", "conv_bulk00000470.json").read_text()) == full
    transcript = workspace.object("acc123", "transcripts", "conv_bulk00000470.txt").read_text()
    assert transcript.count("AI: ") >= 3 and transcript.count("User: ") >= 3
    assert emails_per_conversation(smtp_server) == {"conv_bulk00000470": 1}
    assert server.stop() == 0


def test_a_webhook_without_its_transcript_and_no_api_key_fails_with_the_reason(serving, smtp_server, workspace):
    excluded = {key: value for key, value in hindi_variant(471).items() if key != "transcript"}
    server = serving()
    event = {"type": "post_call_transcription", "event_timestamp": int(time.time()), "data": excluded}
    assert server.webhook(event)[0] == 200
    wait_for(lambda: _statuses(workspace).get("conv_bulk00000471") == "failed", timeout=30)
    row, = workspace.rows("select error_message, retryable from conversation_processing")
    assert "carries no transcript" in row["error_message"] and "ELEVENLABS_API_KEY" in row["error_message"]
    assert smtp_server.messages == []  # never an empty report
    assert server.stop() == 0


def test_a_webhook_sent_before_the_call_was_done_is_read_again_from_the_api(
        serving, elevenlabs, smtp_server, workspace):
    elevenlabs.add(hindi_variant(472))  # done, by the time the worker asks
    server = serving()
    event = {"type": "post_call_transcription", "event_timestamp": int(time.time()),
             "data": hindi_variant(472, status="processing")}
    assert server.webhook(event)[0] == 200
    wait_for(lambda: _statuses(workspace).get("conv_bulk00000472") == "completed", timeout=30)
    assert elevenlabs.count("/v1/convai/conversations/conv_bulk00000472") == 1
    assert emails_per_conversation(smtp_server) == {"conv_bulk00000472": 1}
    assert server.stop() == 0


def test_the_webhook_answers_404_without_a_secret(serving, monkeypatch):
    monkeypatch.delenv("ELEVENLABS_WEBHOOK_SECRET")
    server = serving()
    status, body = server.webhook(transcription(8))
    assert status == 404 and "ELEVENLABS_WEBHOOK_SECRET" in body["message"]


def test_a_duplicate_delivery_gives_one_email(serving, smtp_server, workspace):
    server = serving()
    event = transcription(9)
    for _ in range(3):
        assert server.webhook(event)[0] == 200
    wait_for(lambda: _statuses(workspace).get("conv_bulk00000009") == "completed", timeout=30)
    assert server.webhook(event) == (200, {"success": True,
                                           "message": "conv_bulk00000009: Conversation already processed"})
    time.sleep(1)
    assert emails_per_conversation(smtp_server) == {"conv_bulk00000009": 1}


@pytest.mark.parametrize("audio_first", [True, False])
def test_an_audio_webhook_stores_its_bytes_before_or_after_the_transcription(
        serving, smtp_server, workspace, audio_first):
    server = serving()
    audio = b"ID3" + bytes(range(256)) * 40
    if audio_first:
        assert server.webhook(audio_event(10, audio))[0] == 200
        assert (workspace.data / "_incoming" / "audio" / "conv_bulk00000010.mp3").read_bytes() == audio
    assert server.webhook(transcription(10))[0] == 200
    wait_for(lambda: _statuses(workspace).get("conv_bulk00000010") == "completed", timeout=30)
    if not audio_first:
        assert server.webhook(audio_event(10, audio))[0] == 200
    assert workspace.object("acc123", "audio", "conv_bulk00000010.mp3").read_bytes() == audio
    assert not (workspace.data / "_incoming" / "audio" / "conv_bulk00000010.mp3").exists()
    rows = workspace.rows("select audio_key from conversation_processing where conversation_id = ?",
                          "conv_bulk00000010")
    assert rows == [{"audio_key": "acc123/audio/conv_bulk00000010.mp3"}]
    files = workspace.rows("select file_type, size_bytes from conversation_files where file_type = 'audio'")
    assert files == [{"file_type": "audio", "size_bytes": len(audio)}]


def test_conversation_level_problems_answer_200_and_are_recorded(serving, workspace):
    server = serving()
    no_account = transcription(11, account=None)
    status, body = server.webhook(no_account)
    assert status == 200 and "recorded as failed" in body["message"] and "no account id" in body["message"]
    no_email = transcription(12, email=None)
    status, body = server.webhook(no_email)
    assert status == 200 and "no recipient" in body["message"]
    status, body = server.webhook({"type": "post_call_transcription", "data": {"no": "conversation"}})
    assert status == 200 and "not processed" in body["message"]
    status, body = server.webhook({"type": "call_initiation_failure", "event_timestamp": int(time.time()),
                                   "data": {"agent_id": "agent_x", "conversation_id": "conv_bulk00000013",
                                            "failure_reason": "busy"}})
    assert status == 200
    status, body = server.webhook({"type": "voice_removal_notice", "data": {}})
    assert (status, body["message"]) == (200, "event type ignored")
    status, _ = server.request("POST", WEBHOOK, b"[]", {"ElevenLabs-Signature": sign(WEBHOOK_SECRET, b"[]",
                                                                                     int(time.time()))})
    assert status == 422
    rows = {r["conversation_id"]: r for r in workspace.rows(
        "select conversation_id, account_id, status, error_message from conversation_processing")}
    assert rows["conv_bulk00000011"]["status"] == "failed" and "no account id" in rows["conv_bulk00000011"][
        "error_message"]
    assert rows["conv_bulk00000012"]["status"] == "failed" and rows["conv_bulk00000012"]["account_id"] == "acc123"
    assert "never started" in rows["conv_bulk00000013"]["error_message"]
    audit = workspace.rows("select event from processing_audit_log where conversation_id = 'conv_bulk00000013'")
    assert audit == [{"event": "call_initiation_failure"}]


def test_sixty_webhooks_from_eight_threads_are_answered_before_they_are_processed(
        serving, openai_server, smtp_server, workspace):
    openai_server.delay = 0.3  # 60 summaries over 4 workers: about 5 s of processing
    server = serving("--concurrency", "4")
    answers: list[tuple[int, float]] = []
    lock = threading.Lock()

    def deliver(numbers):
        for n in numbers:
            started = time.monotonic()
            status, _ = server.webhook(transcription(100 + n))
            with lock:
                answers.append((status, time.monotonic() - started))

    threads = [threading.Thread(target=deliver, args=(range(i, 60, 8),)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    emails_when_answered = len(smtp_server.messages)
    assert [status for status, _ in answers] == [200] * 60
    # Answered once recorded, not once processed: most were still waiting for a worker.
    assert emails_when_answered < 30, emails_when_answered
    wait_for(lambda: len(smtp_server.messages) >= 60, timeout=120)
    time.sleep(0.5)
    assert emails_per_conversation(smtp_server) == {f"conv_bulk{100 + n:08d}": 1 for n in range(60)}
    slowest = max(seconds for _, seconds in answers)
    print(f"60 webhooks: slowest answer {slowest * 1000:.0f} ms")
    assert server.stop() == 0


def test_sigkill_right_after_the_last_reply_loses_nothing(serving, openai_server, smtp_server, workspace,
                                                          monkeypatch):
    monkeypatch.setenv("FEDFINA_CLAIM_SECONDS", "2")  # the killed server's claims expire in 2 s
    openai_server.delay = 0.5
    server = serving("--concurrency", "2")
    for n in range(20):
        assert server.webhook(transcription(200 + n))[0] == 200
    server.process.kill()
    server.process.wait()
    assert len(smtp_server.messages) < 20
    statuses = _statuses(workspace)
    assert len(statuses) == 20 and set(statuses.values()) <= {"queued", "processing", "completed"}

    restarted = serving("--concurrency", "4")
    wait_for(lambda: len(smtp_server.messages) >= 20, timeout=120)
    time.sleep(1)
    assert emails_per_conversation(smtp_server) == {f"conv_bulk{200 + n:08d}": 1 for n in range(20)}
    assert set(_statuses(workspace).values()) == {"completed"}
    assert restarted.stop() == 0


def test_sigterm_finishes_the_conversations_in_flight_and_exits_0(serving, openai_server, smtp_server, workspace):
    openai_server.delay = 1.0
    server = serving("--concurrency", "2")
    for n in range(2):
        assert server.webhook(transcription(300 + n))[0] == 200
    wait_for(lambda: len(openai_server.completions()) >= 1)  # a summary is being written
    assert server.stop(signal.SIGTERM) == 0
    rows = workspace.rows("select status, claimed_by from conversation_processing")
    assert rows == [{"status": "completed", "claimed_by": None}] * 2
    assert '"message": "stopped"' in server.log()


def test_a_passing_failure_is_tried_again_from_the_queue(serving, openai_server, smtp_server, workspace,
                                                          monkeypatch):
    monkeypatch.setenv("FEDFINA_QUEUE_RETRY_SECONDS", "0.5")
    # OpenAI answers 503 to every attempt of the first try (FEDFINA_RETRY_ATTEMPTS=3), then recovers.
    openai_server.fault("/v1/chat/completions", times=3, status=503,
                        body={"error": {"message": "overloaded", "type": "server_error"}})
    server = serving()
    assert server.webhook(transcription(450))[0] == 200
    wait_for(lambda: _statuses(workspace).get("conv_bulk00000450") == "completed", timeout=60)
    assert emails_per_conversation(smtp_server) == {"conv_bulk00000450": 1}
    events = workspace.rows("select step, event, message from processing_audit_log "
                            "where step in ('queue', 'summarize') and event in ('retry', 'failed', 'completed')")
    assert [(e["step"], e["event"]) for e in events] == [("summarize", "failed"), ("queue", "retry"),
                                                         ("summarize", "completed")]
    assert events[1]["message"].startswith("retry 1 of 4 in 0.5 s after:")


def test_a_failure_that_keeps_passing_is_retried_four_times_backing_off_then_stays_failed(
        serving, elevenlabs, smtp_server, workspace, monkeypatch):
    """FEDFINA_QUEUE_RETRY_SECONDS x 1, 4, 16, 64 between the tries; after the fourth retry fails, it
    stays failed for `run --failed` (not queued a fifth time)."""
    monkeypatch.setenv("FEDFINA_QUEUE_RETRY_SECONDS", "0.1")  # the least it takes: 8.5 s of waits in all
    elevenlabs.add(hindi_variant(460))
    elevenlabs.fault("/v1/convai/conversations/conv_bulk00000460", times=1000, status=503,
                     body={"detail": {"message": "temporarily unavailable"}})
    server = serving()
    good = {"conversation_id": "conv_bulk00000460", "account_id": "acc123", "email_id": "a@example.com"}
    assert server.json("POST", POSTPROCESS, good, KEY)[0] == 202

    def failures() -> int:
        return len(workspace.rows("select id from processing_audit_log where step = 'resolve' or "
                                  "(step = 'fetch' and event = 'failed')")) if workspace.db.exists() else 0

    wait_for(lambda: failures() >= 5 and _statuses(workspace).get("conv_bulk00000460") == "failed", timeout=60)
    time.sleep(0.5)  # a fifth retry, were there one, is recorded as the fifth failure is
    retries = workspace.rows("select message, created_at from processing_audit_log where step = 'queue' "
                             "and event = 'retry' order by id")
    assert [r["message"].split(" after:")[0] for r in retries] == [
        "retry 1 of 4 in 0.1 s", "retry 2 of 4 in 0.4 s", "retry 3 of 4 in 1.6 s", "retry 4 of 4 in 6.4 s"]
    row, = workspace.rows("select status, queued_at, retryable from conversation_processing")
    assert row == {"status": "failed", "queued_at": None, "retryable": 1}
    assert server.stop() == 0


def test_metrics_parse_with_prometheus_clients_parser(serving, smtp_server, workspace):
    from prometheus_client.parser import text_string_to_metric_families

    server = serving()
    assert server.webhook(transcription(400))[0] == 200
    server.webhook(transcription(401), secret="wrong")
    wait_for(lambda: _statuses(workspace).get("conv_bulk00000400") == "completed", timeout=30)
    status, raw = server.get("/metrics")
    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(raw.decode())}
    assert {"fedfina_conversations", "fedfina_queue_depth", "fedfina_stage_seconds", "fedfina_api_calls",
            "fedfina_webhooks"} <= set(families)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert samples[("fedfina_conversations_total", (("status", "completed"),))] == 1
    assert samples[("fedfina_queue_depth", ())] == 0
    assert samples[("fedfina_stage_seconds_count", (("stage", "report"),))] == 1
    assert samples[("fedfina_api_calls_total", (("service", "smtp"), ("status", "250")))] >= 1
    assert samples[("fedfina_webhooks_total", (("result", "bad_signature"), ("type", "unknown")))] == 1
    assert samples[("fedfina_webhooks_total", (("result", "recorded"), ("type", "post_call_transcription")))] == 1


def test_readyz_says_which_backend_does_not_answer(serving, monkeypatch):
    server = serving()
    assert server.json("GET", "/readyz") == (200, {"status": "ready"})
    assert server.json("GET", "/healthz") == (200, {"status": "ok"})
    server.stop()
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(free_port()))  # nothing listens there
    monkeypatch.setenv("SMTP_FROM_EMAIL", "reports@fedfina.example")
    server = serving()
    status, body = server.json("GET", "/readyz")
    assert status == 503 and [f["backend"] for f in body["failed"]] == ["smtp"]
    assert server.json("GET", "/healthz")[0] == 200


def test_the_sweep_queues_calls_whose_webhook_never_came(serving, elevenlabs, smtp_server, workspace):
    recent = int(time.time()) - 3600
    for n in range(3):
        elevenlabs.add(hindi_variant(500 + n, start=recent + n * 60))
    elevenlabs.add(hindi_variant(510, start=recent - 3 * 24 * 3600))  # before the server: history, not missed
    smtp_server.accept_delay = 1.5  # the queue is still at work while more sweeps list the calls again
    server = serving("--sweep-agent-id", "agent_4501k2s8yq0efrpt6ah0v7d3m9xw", "--sweep-every", "0.01")
    wait_for(lambda: len(smtp_server.messages) >= 3, timeout=60)
    time.sleep(1.5)  # more sweeps: nothing is queued twice
    assert emails_per_conversation(smtp_server) == {f"conv_bulk{500 + n:08d}": 1 for n in range(3)}
    watermark = workspace.rows("select watermark_unix from sync_state")
    assert watermark == [{"watermark_unix": recent + 2 * 60}]
    # Each conversation was fetched once, by the sweep (not again while on the queue); the
    # workers read it from storage.
    assert [elevenlabs.count(f"/v1/convai/conversations/conv_bulk{500 + n:08d}") for n in range(3)] == [1, 1, 1]
    assert server.stop() == 0


def test_a_worker_without_http_processes_the_queue_and_stops_on_sigterm(serving, elevenlabs, smtp_server,
                                                                       workspace):
    for n in range(5):
        elevenlabs.add(hindi_variant(600 + n))
    server = serving("--concurrency", "1")
    server.stop()  # the ledger now exists; the serve process is gone
    for n in range(5):
        _enqueue(workspace, f"conv_bulk{600 + n:08d}")
    worker = serving("--concurrency", "3", command="worker")
    wait_for(lambda: len(smtp_server.messages) >= 5, timeout=60)
    assert worker.stop(signal.SIGTERM) == 0
    assert emails_per_conversation(smtp_server) == {f"conv_bulk{600 + n:08d}": 1 for n in range(5)}
    assert set(_statuses(workspace).values()) == {"completed"}


def _enqueue(workspace, conversation_id: str) -> None:
    from fedfina_cli.ledger.ledger import Ledger

    ledger = Ledger(workspace.db)
    try:
        ledger.queue.enqueue(conversation_id, "acc123", "loans.officer@example.com", "api")
    finally:
        ledger.close()


def test_a_worker_claims_only_what_it_can_start_so_other_workers_get_the_rest(serving, elevenlabs, openai_server,
                                                                               workspace):
    """At --concurrency 1 a worker has two threads; each claimed a conversation and then waited
    for the one provider slot, so a second conversation sat claimed in a busy worker while
    another worker on the ledger found the queue empty (8 workers scaled 4.5x, not 7x)."""
    openai_server.delay = 3.0  # the first conversation waits on the model
    for n in range(2):
        elevenlabs.add(hindi_variant(700 + n))
    serving("--concurrency", "1").stop()  # the ledger exists
    for n in range(2):
        _enqueue(workspace, f"conv_bulk{700 + n:08d}")
    worker = serving("--concurrency", "1", command="worker")
    wait_for(lambda: openai_server.in_flight == 1, timeout=30)
    time.sleep(0.5)  # the other thread has had its chance to claim
    claimed = workspace.rows("select conversation_id from conversation_processing where claimed_by is not null")
    assert len(claimed) == 1, claimed
    assert workspace.rows("select status from conversation_processing where conversation_id = ?",
                          "conv_bulk00000701") == [{"status": "queued"}]
    assert worker.stop(signal.SIGTERM) == 0
