"""Everything together: the installed CLI against every loopback service; metrics, doctor, secrets."""

import sqlite3

from .conftest import ELEVENLABS_KEY, ENGLISH, HINDI, HINDI_ID, SECRETS, load_sample, words


def _ledger_dump(path) -> str:
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("select name from sqlite_master where type = 'table'")]
        return "\n".join(repr(row) for table in tables for row in conn.execute(f"select * from [{table}]"))
    finally:
        conn.close()


def test_installed_cli_against_every_service(installed, workspace, services):
    services["elevenlabs"].add(load_sample(HINDI), audio=b"ID3" + b"\x01" * 50_000)
    result = installed("run", "-c", HINDI_ID)
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[0] == (
        f"storage=minio({services['s3'].bucket}) email=smtp(127.0.0.1:{services['smtp'].port}) "
        "summarizer=openai(gpt-test-mini)")
    assert len(services["s3"].object_keys()) == 5 and len(services["smtp"].messages) == 1
    run, = workspace.rows("select backends from runs")
    assert run["backends"] == result.stderr.splitlines()[0]

    by_service = {}
    for call in workspace.rows("select * from api_usage_metrics"):
        by_service.setdefault(call["service"], []).append(call)
    assert set(by_service) == {"elevenlabs", "openai", "storage", "smtp"}
    assert all(c["duration_ms"] is not None and c["created_at"] for calls in by_service.values() for c in calls)
    assert {c["operation"] for c in by_service["elevenlabs"]} == {"get_conversation", "get_audio"}
    assert any(c["operation"] == "get_audio" and c["bytes"] == 50_003 for c in by_service["elevenlabs"])
    assert by_service["openai"][0]["tokens"] == 150
    assert {"make_bucket", "put_object", "put_object_stream", "presign"} <= {c["operation"] for c in
                                                                             by_service["storage"]}
    assert by_service["smtp"][0]["status_code"] == 250


def test_no_secret_appears_anywhere(installed, workspace, services, monkeypatch):
    """Run the happy path and the failure paths, then grep every output for the test keys."""
    services["elevenlabs"].add(load_sample(HINDI), audio=b"ID3 audio")
    outputs = [installed("run", "-c", HINDI_ID), installed("doctor"),
               installed("--debug", "run", "-c", "conv_unknown000000", "-a", "acc1", "-e", "a@example.com")]
    services["openai"].fault("/v1/chat/completions", times=4, status=401,
                             body={"error": {"message": f"Incorrect API key provided: {SECRETS[1]}"}})
    outputs.append(installed("--debug", "run", "--from-file", ENGLISH, "-a", "acc2", "-e", "b@example.com"))
    services["elevenlabs"].fault(f"/v1/convai/conversations/{HINDI_ID}", times=5, status=401,
                                 body={"detail": {"status": "invalid_api_key",
                                                  "message": f"key {ELEVENLABS_KEY} is invalid"}})
    outputs.append(installed("--debug", "run", "-c", HINDI_ID, "--force", "--json"))
    assert outputs[0].exit_code == 0 and outputs[-1].exit_code == 1

    haystacks = [o.stdout + o.stderr for o in outputs] + [_ledger_dump(workspace.db)]
    haystacks += [services["s3"].get(key).decode("latin-1") for key in services["s3"].object_keys()]
    haystacks += [m.data.decode("latin-1") for m in services["smtp"].messages]
    for secret in SECRETS[:2] + SECRETS[3:]:  # the MinIO access key id is not a secret (presigned URLs)
        for text in haystacks:
            assert secret not in text


def test_doctor_passes_against_every_service_and_sends_nothing(installed, services, workspace):
    result = installed("doctor")
    screen = words(result.stdout)
    assert result.exit_code == 0, result.stdout + result.stderr
    for backend in ("ledger", "storage", "elevenlabs", "openai", "smtp"):
        assert backend in screen
    assert "API key accepted" in screen and "no mail sent" in screen
    assert services["smtp"].messages == []
    assert services["openai"].count("/v1/chat/completions") == 0
    assert services["s3"].object_keys() == []  # the bucket does not exist yet; doctor does not create it
    assert not workspace.db.exists()


def test_doctor_probes_an_existing_bucket_and_leaves_it_clean(installed, services):
    services["s3"].client.create_bucket(Bucket=services["s3"].bucket)
    result = installed("doctor")
    assert result.exit_code == 0 and "bucket reachable and writable" in words(result.stdout)
    assert "keeps versions" not in result.stdout
    assert services["s3"].object_keys() == []


def test_doctor_says_a_bucket_keeps_versions_and_leaves_no_version_of_its_probe(installed, services):
    client, bucket = services["s3"].client, services["s3"].bucket
    client.create_bucket(Bucket=bucket)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    result = installed("doctor")
    assert result.exit_code == 0, result
    assert "bucket reachable and writable; it keeps versions: purge deletes every version of a file" in words(
        result.stdout)
    listed = client.list_object_versions(Bucket=bucket)
    assert listed.get("Versions", []) == [] and listed.get("DeleteMarkers", []) == []  # the probe left nothing


def test_doctor_fails_when_a_configured_backend_fails(installed, services, monkeypatch):
    monkeypatch.setenv("ELEVENLABS_API_KEY", "xi-bad-key-for-doctor-1")
    monkeypatch.setenv("SMTP_PASSWORD", "bad-smtp-pass-for-doctor")
    result = installed("doctor")
    assert result.exit_code == 1
    screen = words(result.stdout)
    assert "failed" in screen and "HTTP 401" in screen and "535" in screen
    assert "xi-bad-key-for-doctor-1" not in result.stdout and "bad-smtp-pass-for-doctor" not in result.stdout


def test_doctor_with_nothing_configured_passes(cli):
    result = cli("doctor")
    assert result.exit_code == 0
    screen = words(result.stdout)
    assert "embedded" in screen and "offline summariser" in screen


def test_doctor_with_the_mail_server_down_says_so_in_one_friendly_line(installed, services, monkeypatch):
    import socket

    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("SMTP_PORT", str(port))
    result = installed("doctor")
    screen = words(result.stdout)
    assert result.exit_code == 1
    assert "connection refused (is the mail server running? check SMTP_HOST and SMTP_PORT)" in screen
    assert "Errno" not in screen and "ConnectionRefusedError" not in screen


def test_doctor_does_not_call_a_model_missing_when_the_server_cannot_tell(installed, services):
    services["openai"].serves_model_lookup = False  # 404 without a model_not_found code
    result = installed("doctor")
    screen = words(result.stdout)
    assert result.exit_code == 0, result.stdout
    assert "so the model was not checked" in screen and "no model" not in screen


def test_doctor_reports_a_model_the_server_does_not_have(installed, services):
    services["openai"].models = {"gpt-other"}
    result = installed("doctor")
    assert result.exit_code == 1 and "OpenAI has no model gpt-test-mini" in words(result.stdout)
