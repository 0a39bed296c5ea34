"""Fetching from the ElevenLabs API (a loopback server with the real paths and error bodies)."""

import copy

import pytest

from .conftest import ELEVENLABS_KEY, ENGLISH, HINDI, HINDI_ID, PROCESSING, hindi_variant, load_sample

AUDIO = b"ID3\x04" + bytes(range(256)) * 2000  # ~512 KB, streamed in several chunks
CONVERSATION_PATH = f"/v1/convai/conversations/{HINDI_ID}"
AUDIO_PATH = CONVERSATION_PATH + "/audio"


@pytest.fixture
def hindi(elevenlabs):
    elevenlabs.add(load_sample(HINDI), audio=AUDIO)
    return elevenlabs


def _notes(workspace) -> str:
    return " | ".join(r["message"] for r in workspace.rows(
        "select message from processing_audit_log where event = 'note'"))


def test_fetch_from_the_api_stores_json_transcript_and_streamed_audio(cli, workspace, hindi):
    result = cli("run", "-c", HINDI_ID)
    assert result.exit_code == 0, result.output
    assert workspace.object("acc123", "audio", f"{HINDI_ID}.mp3").read_bytes() == AUDIO
    raw = workspace.object("acc123", "conversations", f"{HINDI_ID}.json").read_bytes()
    assert b'"conversation_id": "conv_7201k4b3qz9fe8st0m5xkcw2hj4n"' in raw
    request = next(r for r in hindi.requests if r.path == CONVERSATION_PATH)
    assert request.headers["xi-api-key"] == ELEVENLABS_KEY
    assert hindi.count(AUDIO_PATH) == 1
    row, = workspace.rows("select audio_key, status from conversation_processing")
    assert row == {"audio_key": f"acc123/audio/{HINDI_ID}.mp3", "status": "completed"}
    audio_file, = workspace.rows("select * from conversation_files where file_type = 'audio'")
    assert audio_file["size_bytes"] == len(AUDIO) and audio_file["content_type"] == "audio/mpeg"
    calls = workspace.rows("select operation, status_code, bytes from api_usage_metrics "
                           "where service = 'elevenlabs' order by id")
    assert calls[0]["operation"] == "get_conversation" and calls[0]["status_code"] == 200
    assert {"operation": "get_audio", "status_code": 200, "bytes": len(AUDIO)} in calls


@pytest.mark.parametrize("status", ["initiated", "in-progress", "processing"])
def test_not_ready_conversation_fails_this_run_and_is_picked_up_later(cli, workspace, elevenlabs, status):
    payload = load_sample(HINDI) | {"status": status}
    elevenlabs.add(payload, audio=AUDIO)
    result = cli("run", "-c", HINDI_ID)
    assert result.exit_code == 1
    assert f"not ready yet (status {status})" in result.output
    assert elevenlabs.count(AUDIO_PATH) == 0
    row, = workspace.rows("select status, retryable from conversation_processing")
    assert row == {"status": "failed", "retryable": 1}

    elevenlabs.add(payload | {"status": "done"}, audio=AUDIO)
    assert cli("run", "-c", HINDI_ID).exit_code == 0
    assert workspace.rows("select status from conversation_processing") == [{"status": "completed"}]


def test_failed_conversation_is_final(cli, workspace, elevenlabs):
    elevenlabs.add(load_sample(HINDI) | {"status": "failed"})
    result = cli("run", "-c", HINDI_ID)
    assert result.exit_code == 1 and "reports this conversation as failed" in result.output
    assert workspace.rows("select retryable from conversation_processing") == [{"retryable": 0}]


def test_no_audio_when_has_audio_is_false(cli, workspace, elevenlabs):
    english = load_sample(ENGLISH)
    elevenlabs.add(english)
    result = cli("run", "-c", english["conversation_id"], "-a", "acc9", "-e", "a@example.com")
    assert result.exit_code == 0, result.output
    assert elevenlabs.count(f"/v1/convai/conversations/{english['conversation_id']}") == 1
    assert elevenlabs.count(f"/v1/convai/conversations/{english['conversation_id']}/audio") == 0
    assert "has_audio=false" in _notes(workspace)
    assert len(workspace.emails()) == 1


def test_audio_error_response_is_a_ledger_note_and_the_report_still_goes_out(cli, workspace, elevenlabs):
    elevenlabs.add(load_sample(HINDI))  # has_audio true, but the audio endpoint answers 404
    result = cli("run", "-c", HINDI_ID)
    assert result.exit_code == 0, result.output
    assert "HTTP 404" in _notes(workspace) and "audio_not_found" in _notes(workspace)
    assert not workspace.object("acc123", "audio", f"{HINDI_ID}.mp3").exists()
    assert workspace.object("acc123", "reports", f"{HINDI_ID}.pdf").exists()
    assert len(workspace.emails()) == 1
    assert workspace.rows("select audio_key from conversation_processing") == [{"audio_key": None}]


def test_audio_cut_mid_stream_fails_the_fetch_and_a_rerun_gets_the_recording(cli, workspace, hindi):
    hindi.cut_audio_after = 100_000
    result = cli("run", "-c", HINDI_ID)
    assert result.exit_code == 1, result.output
    assert "download interrupted" in result.output and "a later run fetches it again" in result.output
    audio_dir = workspace.data / "acc123" / "audio"
    assert not audio_dir.exists() or list(audio_dir.iterdir()) == []  # no partial object
    row, = workspace.rows("select status, current_step, retryable, audio_key from conversation_processing")
    assert row == {"status": "failed", "current_step": "fetch", "retryable": 1, "audio_key": None}
    assert workspace.emails() == []  # the report waits for the recording

    hindi.cut_audio_after = None
    assert cli("run", "-c", HINDI_ID).exit_code == 0
    assert workspace.object("acc123", "audio", f"{HINDI_ID}.mp3").read_bytes() == AUDIO
    assert len(workspace.emails()) == 1


@pytest.mark.parametrize("honour_range", [True, False])
def test_a_connection_cut_once_mid_recording_is_resumed_in_the_same_run(cli, workspace, hindi, honour_range):
    """One flaky moment must not fail the conversation until the next run: the download goes on
    from the byte where it broke (Range), or, from a server that ignores Range, skips what it had."""
    # It breaks inside the second 256 KB read: the first read's bytes are stored, the rest asked for again.
    hindi.cut_audio_after, hindi.cut_audio_times, hindi.honour_range = 300_000, 1, honour_range
    result = cli("run", "-c", HINDI_ID)
    assert result.exit_code == 0, result.output
    assert workspace.object("acc123", "audio", f"{HINDI_ID}.mp3").read_bytes() == AUDIO
    asked = [r.headers.get("range") for r in hindi.requests if r.path == AUDIO_PATH]
    assert asked == [None, "bytes=262144-"]
    assert len(workspace.emails()) == 1


@pytest.mark.parametrize("status", [429, 500, 503])
def test_audio_error_that_outlasts_the_retries_is_retryable_not_no_audio(cli, workspace, hindi, status):
    hindi.fault(AUDIO_PATH, times=3, status=status, body={"detail": {"message": "busy"}})
    result = cli("run", "-c", HINDI_ID)
    assert result.exit_code == 1
    assert f"ElevenLabs get_audio failed: HTTP {status} after 3 attempts" in result.output
    row, = workspace.rows("select status, retryable, audio_key from conversation_processing")
    assert row == {"status": "failed", "retryable": 1, "audio_key": None}
    # Not recorded as a completed fetch: the next run fetches again, and gets the audio.
    assert workspace.rows("select count(*) as n from processing_audit_log "
                          "where step = 'fetch' and event = 'completed'") == [{"n": 0}]
    assert cli("run", "-c", HINDI_ID).exit_code == 0
    assert workspace.object("acc123", "audio", f"{HINDI_ID}.mp3").read_bytes() == AUDIO


def test_429_with_retry_after_is_honoured(cli, hindi):
    hindi.fault(CONVERSATION_PATH, status=429, headers={"Retry-After": "1"},
                body={"detail": {"code": "rate_limit_exceeded", "message": "Too many requests"}})
    assert cli("run", "-c", HINDI_ID).exit_code == 0
    first, second = [r.at for r in hindi.requests if r.path == CONVERSATION_PATH]
    assert second - first >= 0.9  # FEDFINA_RETRY_BASE_SECONDS is 0.01: only Retry-After explains this


def test_429_without_retry_after_backs_off_and_retries(cli, hindi):
    hindi.fault(CONVERSATION_PATH, times=2, status=429,
                body={"detail": {"code": "concurrent_limit_exceeded", "message": "Too many concurrent"}})
    assert cli("run", "-c", HINDI_ID).exit_code == 0
    assert hindi.count(CONVERSATION_PATH) == 3


@pytest.mark.parametrize("status", [408, 500, 502, 503])
def test_transient_errors_are_retried(cli, hindi, status):
    hindi.fault(CONVERSATION_PATH, times=2, status=status, body=b"upstream trouble")
    assert cli("run", "-c", HINDI_ID).exit_code == 0
    assert hindi.count(CONVERSATION_PATH) == 3


def test_persistent_5xx_gives_up_with_status_and_detail(cli, workspace, hindi):
    hindi.fault(CONVERSATION_PATH, times=10, status=503,
                body={"detail": {"status": "service_unavailable", "message": "Try again later"}})
    result = cli("run", "-c", HINDI_ID, "-a", "acc123", "-e", "a@example.com")
    assert result.exit_code == 1
    assert hindi.count(CONVERSATION_PATH) == 3  # FEDFINA_RETRY_ATTEMPTS
    assert ("ElevenLabs get_conversation failed: HTTP 503 after 3 attempts: "
            "service_unavailable: Try again later") in result.output
    assert workspace.rows("select retryable from conversation_processing") == [{"retryable": 1}]


def test_401_is_not_retried_and_names_the_fix(cli, workspace, hindi, monkeypatch):
    monkeypatch.setenv("ELEVENLABS_API_KEY", "xi-wrong-key-000111222")
    result = cli("run", "-c", HINDI_ID, "-a", "acc123", "-e", "a@example.com")
    assert result.exit_code == 1
    assert hindi.count(CONVERSATION_PATH) == 1
    assert "HTTP 401: invalid_api_key: Invalid API key (check ELEVENLABS_API_KEY" in result.output
    assert "xi-wrong-key-000111222" not in result.output
    assert "xi-wrong-key-000111222" not in str(workspace.rows("select * from conversation_processing"))


def test_unknown_conversation_404_shows_the_detail(cli, elevenlabs):
    result = cli("run", "-c", "conv_doesnotexist0001", "-a", "acc1", "-e", "a@example.com")
    assert result.exit_code == 1
    assert elevenlabs.count("/v1/convai/conversations/conv_doesnotexist0001") == 1
    assert "HTTP 404: conversation_not_found: Conversation not found" in result.output


@pytest.mark.parametrize("body, shown", [
    ({"detail": {"status": "missing_permissions", "message": "The API key lacks convai_read"}},
     "missing_permissions: The API key lacks convai_read"),
    ({"detail": {"type": "authorization", "code": "missing_permissions", "message": "Needs convai_read",
                 "status": "missing_permissions", "request_id": "r1"}},
     "missing_permissions: Needs convai_read"),
    ({"detail": [{"loc": ["path", "conversation_id"], "msg": "invalid id", "type": "value_error"}]},
     "path.conversation_id: invalid id"),
    (b"<html>Forbidden</html>", "<html>Forbidden</html>"),
])
def test_error_body_shapes(cli, hindi, body, shown):
    hindi.fault(CONVERSATION_PATH, status=403 if isinstance(body, bytes) or ("detail" in body and
                isinstance(body["detail"], dict)) else 422, body=body)
    result = cli("run", "-c", HINDI_ID, "-a", "acc123", "-e", "a@example.com")
    assert result.exit_code == 1 and shown in result.output
    assert hindi.count(CONVERSATION_PATH) == 1


def test_slow_answer_times_out_and_is_retried(cli, hindi):
    hindi.fault(CONVERSATION_PATH, delay=3, passthrough=True)  # FEDFINA_HTTP_TIMEOUT is 2
    result = cli("run", "-c", HINDI_ID)
    assert result.exit_code == 0, result.output
    assert hindi.count(CONVERSATION_PATH) == 2


def test_always_slow_fails_with_a_timeout_message(cli, hindi):
    hindi.fault(CONVERSATION_PATH, times=3, delay=3, passthrough=True)
    result = cli("run", "-c", HINDI_ID, "-a", "acc123", "-e", "a@example.com")
    assert result.exit_code == 1
    assert "ElevenLabs get_conversation: timed out (FEDFINA_HTTP_TIMEOUT is 2 s) at 127.0.0.1" in result.output


def test_invalid_json_body_is_a_clear_failure(cli, hindi):
    hindi.fault(CONVERSATION_PATH, status=200, body=b"{truncated")
    result = cli("run", "-c", HINDI_ID, "-a", "acc123", "-e", "a@example.com")
    assert result.exit_code == 1
    assert "ElevenLabs returned a conversation that cannot be read (HTTP 200): not valid JSON" in result.output


def test_unreachable_api_gives_up_with_a_clear_message(cli, monkeypatch):
    from .fakes.smtp import free_port

    monkeypatch.setenv("ELEVENLABS_API_KEY", ELEVENLABS_KEY)
    monkeypatch.setenv("ELEVENLABS_BASE_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("FEDFINA_RETRY_BASE_SECONDS", "0.01")
    result = cli("run", "-c", HINDI_ID, "-a", "acc123", "-e", "a@example.com")
    assert result.exit_code == 1
    assert "cannot connect at 127.0.0.1" in result.output and "gave up after 5 attempts" in result.output


def test_processing_sample_from_the_api(cli, elevenlabs):
    elevenlabs.add(copy.deepcopy(load_sample(PROCESSING)))
    result = cli("run", "-c", "conv_5501k5n7wq2ab4cd6ef8gh0jk1lm", "-a", "acc9", "-e", "a@example.com")
    assert result.exit_code == 1 and "not ready yet" in result.output


# --- the audio downloads while the summary is written -------------------------------


def _steps(workspace) -> list[tuple[str, str]]:
    return [(r["step"], r["event"]) for r in workspace.rows(
        "select step, event from processing_audit_log where event != 'note' order by id")]


def test_the_audio_downloads_while_the_model_writes_the_summary(cli, workspace, hindi, openai_server):
    hindi.audio_delay = openai_server.delay = 0.6
    result = cli("run", "-c", HINDI_ID)
    assert result.exit_code == 0, result.output
    audio = next(r.at for r in hindi.requests if r.path == AUDIO_PATH)
    completion = next(r.at for r in openai_server.requests if r.path.endswith("/chat/completions"))
    assert completion < audio + 0.5  # asked before the audio (answered after 0.6 s) had arrived
    steps = _steps(workspace)
    # fetch ends (audio stored) only after summarize began; report waits for both.
    assert steps.index(("summarize", "started")) < steps.index(("fetch", "completed"))
    assert steps.index(("fetch", "completed")) < steps.index(("report", "started"))
    assert workspace.object("acc123", "audio", f"{HINDI_ID}.mp3").read_bytes() == AUDIO
    assert workspace.rows("select audio_key from conversation_processing") == [
        {"audio_key": f"acc123/audio/{HINDI_ID}.mp3"}]


def test_the_model_is_asked_while_the_transcript_is_stored_and_the_summary_is_kept_after_it(
        cli, workspace, hindi, openai_server, slow_disk):
    slow_disk.delays["transcripts"] = 0.6
    openai_server.delay = 0.1
    result = cli("run", "-c", HINDI_ID)
    assert result.exit_code == 0, result.output
    transcript, summary = slow_disk.write_of("/transcripts/"), slow_disk.write_of("/summaries/")
    completion = next(r.at for r in openai_server.requests if r.path.endswith("/chat/completions"))
    assert completion < transcript.ended  # asked before the transcript was stored (it may be before it began)
    # The model answered 0.1 s in; its summary waited for the transcript it was made from.
    assert summary.started >= transcript.ended
    assert len(workspace.emails()) == 1


def _fails_to_store(cli, workspace, folder: str, name: str, columns: str) -> dict:
    """Run with a directory where this file should go: the fetch fails; the row's ``columns``."""
    workspace.object("acc123", folder, name).mkdir(parents=True)
    result = cli("run", "-c", HINDI_ID)
    assert result.exit_code == 1
    assert ("fetch", "failed") in _steps(workspace) and ("fetch", "completed") not in _steps(workspace)
    assert workspace.emails() == []
    return workspace.rows(f"select status, current_step, {columns} from conversation_processing")[0]


def _completes_once_stored(cli, workspace, folder: str, name: str) -> bytes:
    workspace.object("acc123", folder, name).rmdir()
    result = cli("run", "-c", HINDI_ID)
    assert result.exit_code == 0, result.output
    assert len(workspace.emails()) == 1
    return workspace.object("acc123", folder, name).read_bytes()


def test_a_transcript_that_cannot_be_stored_fails_the_fetch_and_keeps_no_summary(
        cli, workspace, hindi, openai_server):
    row = _fails_to_store(cli, workspace, "transcripts", f"{HINDI_ID}.txt", "transcript_key, summary_key")
    assert row == {"status": "failed", "current_step": "fetch", "transcript_key": None, "summary_key": None}
    assert not workspace.object("acc123", "summaries", f"{HINDI_ID}.json").exists()
    assert ("summarize", "completed") not in _steps(workspace)
    assert _completes_once_stored(cli, workspace, "transcripts", f"{HINDI_ID}.txt")
    assert workspace.object("acc123", "summaries", f"{HINDI_ID}.json").exists()


def test_failing_to_store_the_audio_during_the_summary_fails_the_fetch_and_sends_nothing(
        cli, workspace, hindi, openai_server):
    # (An audio ElevenLabs does not return is only a note; storing it can fail.)
    row = _fails_to_store(cli, workspace, "audio", f"{HINDI_ID}.mp3", "audio_key, transcript_key")
    assert row == {"status": "failed", "current_step": "fetch", "audio_key": None, "transcript_key": None}
    assert ("summarize", "completed") in _steps(workspace)  # it ran alongside, and is redone next time
    assert _completes_once_stored(cli, workspace, "audio", f"{HINDI_ID}.mp3") == AUDIO


def test_a_summary_failure_waits_for_the_audio_and_keeps_it(cli, workspace, hindi, openai_server):
    hindi.audio_delay = 0.3
    openai_server.fault("/v1/chat/completions", times=10, status=401,
                        body={"error": {"message": "Incorrect API key provided.", "code": "invalid_api_key"}})
    result = cli("run", "-c", HINDI_ID)
    assert result.exit_code == 1
    row = workspace.rows("select status, current_step, audio_key from conversation_processing")[0]
    assert row["status"] == "failed" and row["current_step"] == "summarize"
    assert row["audio_key"] == f"acc123/audio/{HINDI_ID}.mp3"
    assert ("fetch", "completed") in _steps(workspace)

    openai_server.clear_faults()
    result = cli("run", "-c", HINDI_ID)
    assert result.exit_code == 0, result.output
    assert workspace.rows("select step from processing_audit_log where event = 'skipped'") == [{"step": "fetch"}]
    assert hindi.count(AUDIO_PATH) == 1


@pytest.mark.parametrize("bypass", [False, True])
def test_the_environments_proxy_settings_apply_to_every_request(hindi, monkeypatch, bypass):
    # fedfina reads them once per host (requests would on every request): a proxy
    # set in the environment is used, and NO_PROXY still exempts the host.
    from fedfina_cli.services.elevenlabs import ElevenLabsClient

    from .fakes.elevenlabs import FakeElevenLabs

    proxy = FakeElevenLabs(ELEVENLABS_KEY).start()  # answers like the API, and records
    proxy.add(load_sample(HINDI), audio=AUDIO)
    try:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("http_proxy", raising=False)
        if bypass:
            monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        else:
            monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        client = ElevenLabsClient(ELEVENLABS_KEY, hindi.url, metrics=lambda call: None)
        for _ in range(2):
            assert client.get_conversation(HINDI_ID).conversation.conversation_id == HINDI_ID
            assert b"".join(client.audio_chunks(HINDI_ID)) == AUDIO
    finally:
        proxy.stop()
    through_proxy, direct = proxy.count(CONVERSATION_PATH), hindi.count(CONVERSATION_PATH)
    assert (through_proxy, direct) == ((0, 2) if bypass else (2, 0))


def _client(url: str):
    from fedfina_cli.services.elevenlabs import ElevenLabsClient
    from fedfina_cli.services.retry import RetryPolicy

    return ElevenLabsClient(ELEVENLABS_KEY, url, metrics=lambda call: None,
                            retry=RetryPolicy(attempts=2, base_seconds=0.01))


def test_a_proxy_with_credentials_is_sent_them(hindi, monkeypatch):
    import base64

    from .fakes.elevenlabs import FakeElevenLabs

    proxy = FakeElevenLabs(ELEVENLABS_KEY).start()
    proxy.add(load_sample(HINDI), audio=AUDIO)
    try:
        monkeypatch.setenv("HTTP_PROXY", proxy.url.replace("http://", "http://officer:s%40fe@"))
        for name in ("http_proxy", "NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        assert b"".join(_client(hindi.url).audio_chunks(HINDI_ID)) == AUDIO
    finally:
        proxy.stop()
    asked, = proxy.requests
    assert asked.headers["proxy-authorization"] == "Basic " + base64.b64encode(b"officer:s@fe").decode()
    assert hindi.count(AUDIO_PATH) == 0


def test_a_proxy_that_is_not_http_is_a_clear_failure(hindi, monkeypatch):
    from fedfina_cli.services.elevenlabs import ElevenLabsError

    monkeypatch.setenv("HTTP_PROXY", "socks5://127.0.0.1:1080")
    for name in ("http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ElevenLabsError, match=r"not an http:// or https:// proxy; "
                                              r"fix HTTPS_PROXY and HTTP_PROXY, or name the host in NO_PROXY"):
        _client(hindi.url).get_conversation(HINDI_ID)


def test_a_redirect_on_the_same_host_is_followed_with_the_key(hindi):
    moved = CONVERSATION_PATH + "?moved=1"
    hindi.fault(CONVERSATION_PATH, status=307, headers={"Location": moved})
    assert _client(hindi.url).get_conversation(HINDI_ID).conversation.conversation_id == HINDI_ID
    first, second = hindi.requests
    assert second.query == {"moved": "1"}
    assert first.headers["xi-api-key"] == second.headers["xi-api-key"] == ELEVENLABS_KEY


def test_endless_redirects_stop_with_a_clear_message(hindi):
    from fedfina_cli.services.elevenlabs import ElevenLabsError

    hindi.fault(CONVERSATION_PATH, times=40, status=302, headers={"Location": CONVERSATION_PATH})
    with pytest.raises(ElevenLabsError, match=r"redirected more than 30 times; check ELEVENLABS_BASE_URL"):
        _client(hindi.url).get_conversation(HINDI_ID)
    assert hindi.count(CONVERSATION_PATH) == 31


def test_a_compressed_conversation_is_read(hindi):
    import gzip
    import json

    payload = load_sample(HINDI)
    hindi.fault(CONVERSATION_PATH, status=200, body=gzip.compress(json.dumps(payload).encode()),
                headers={"Content-Encoding": "gzip"})
    fetched = _client(hindi.url).get_conversation(HINDI_ID)
    assert fetched.conversation.conversation_id == HINDI_ID and json.loads(fetched.raw) == payload
    asked, = hindi.requests
    assert "gzip" in asked.headers["accept-encoding"]


def test_a_status_fedfina_does_not_know_is_not_ready_yet_and_said_once(cli, workspace, elevenlabs, caplog):
    """ElevenLabs' status list is open (its SDK's enum takes any value): 'queued' is retried, not failed for good."""
    elevenlabs.add(hindi_variant(9, status="queued"))
    for _ in range(2):
        result = cli("run", "-c", "conv_bulk00000009")
        assert result.exit_code == 1 and "status fedfina does not know ('queued')" in result.output
    row, = workspace.rows("select status, retryable from conversation_processing")
    assert row == {"status": "failed", "retryable": 1}
    said = [r for r in caplog.records if "status fedfina does not know" in r.getMessage()]
    assert len(said) <= 1  # once per process (another test in this process may have said it already)
    elevenlabs.add(hindi_variant(9))  # done now
    assert cli("run", "--failed").exit_code == 0



@pytest.mark.parametrize("sample", [HINDI, ENGLISH, PROCESSING])
def test_the_samples_are_conversations_as_the_sdk_defines_them_and_parse_the_same_through_it(sample):
    """ElevenLabs' SDK is the reference for GET /v1/convai/conversations/{id}: the samples (and so the
    fake's answers) validate against its GetConversationResponseModel, and what the SDK serializes
    parses to the same conversation as the sample does."""
    sdk = pytest.importorskip("elevenlabs.types", reason="ElevenLabs' SDK is a test dependency")
    from fedfina_cli.core.conversation import parse_conversation

    payload = load_sample(sample)
    model = sdk.GetConversationResponseModel.model_validate(payload)
    assert model.conversation_id == payload["conversation_id"] and model.status == payload["status"]
    through_the_sdk = model.model_dump(mode="json", by_alias=True, exclude_unset=True)
    assert parse_conversation(through_the_sdk) == parse_conversation(payload)
