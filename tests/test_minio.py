"""MinIO storage against moto's real S3 server on loopback."""

import hashlib
import json
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from .conftest import HINDI, HINDI_ID, load_sample, read_eml, words
from .fakes.http_base import FakeHTTPServer, Response
from .fakes.smtp import free_port

AUDIO = b"ID3\x04" + hashlib.sha256(b"x").digest() * (20 * 1024 * 1024 // 32)  # 20 MiB: 3 parts


def test_objects_are_stored_under_spec_keys_with_content_types(cli, workspace, s3, elevenlabs):
    elevenlabs.add(load_sample(HINDI), audio=AUDIO)
    result = cli("run", "-c", HINDI_ID)
    assert result.exit_code == 0, result.output
    assert f"storage=minio({s3.bucket})" in result.output
    assert f"report s3://{s3.bucket}/acc123/reports/{HINDI_ID}.pdf" in result.output
    expected = {
        f"acc123/conversations/{HINDI_ID}.json": "application/json",
        f"acc123/transcripts/{HINDI_ID}.txt": "text/plain; charset=utf-8",
        f"acc123/audio/{HINDI_ID}.mp3": "audio/mpeg",
        f"acc123/summaries/{HINDI_ID}.json": "application/json",
        f"acc123/reports/{HINDI_ID}.pdf": "application/pdf",
    }
    assert s3.object_keys() == sorted(expected)
    for key, content_type in expected.items():
        assert s3.client.head_object(Bucket=s3.bucket, Key=key)["ContentType"] == content_type
    # The audio went up as a multipart upload of unknown length.
    audio = s3.client.head_object(Bucket=s3.bucket, Key=f"acc123/audio/{HINDI_ID}.mp3")
    assert audio["ContentLength"] == len(AUDIO) and audio["ETag"].strip('"').endswith("-3")
    for row in workspace.rows("select object_key, size_bytes, sha256 from conversation_files"):
        data = s3.get(row["object_key"])
        assert row["size_bytes"] == len(data) and row["sha256"] == hashlib.sha256(data).hexdigest()
    assert not workspace.data.exists() or not any((workspace.data / "acc123").glob("*"))


def test_rerun_finds_the_objects_in_the_bucket_and_skips(cli, s3, elevenlabs):
    elevenlabs.add(load_sample(HINDI), audio=b"ID3 small")
    assert cli("run", "-c", HINDI_ID).exit_code == 0
    result = cli("run", "-c", HINDI_ID)
    assert result.exit_code == 0 and "skipped fetch,summarize,report,email" in result.output
    s3.client.delete_object(Bucket=s3.bucket, Key=f"acc123/summaries/{HINDI_ID}.json")
    result = cli("run", "-c", HINDI_ID)
    assert "ran summarize,report" in result.output


def test_sse_s3_on_every_object(cli, s3, elevenlabs, monkeypatch):
    monkeypatch.setenv("MINIO_SSE", "true")
    elevenlabs.add(load_sample(HINDI), audio=AUDIO)
    assert cli("run", "-c", HINDI_ID).exit_code == 0
    keys = s3.object_keys()
    assert len(keys) == 5
    for key in keys:
        assert s3.client.head_object(Bucket=s3.bucket, Key=key)["ServerSideEncryption"] == "AES256", key


def test_without_sse_objects_are_not_encrypted(cli, s3, elevenlabs):
    elevenlabs.add(load_sample(HINDI))
    assert cli("run", "-c", HINDI_ID).exit_code == 0
    head = s3.client.head_object(Bucket=s3.bucket, Key=f"acc123/reports/{HINDI_ID}.pdf")
    assert "ServerSideEncryption" not in head


def test_email_links_are_presigned_and_work(cli, workspace, s3, elevenlabs):
    elevenlabs.add(load_sample(HINDI), audio=AUDIO)
    assert cli("run", "-c", HINDI_ID).exit_code == 0
    body = read_eml(workspace.eml("acc123", HINDI_ID)).get_body(("plain",)).get_content()
    links = {line.split(": ", 1)[0]: line.split(": ", 1)[1] for line in body.splitlines()
             if ": http" in line}
    assert set(links) == {"Call recording (MP3)", "Transcript (text)"}
    assert requests.get(links["Call recording (MP3)"], timeout=10).content == AUDIO
    transcript = requests.get(links["Transcript (text)"], timeout=10)
    assert transcript.content.decode("utf-8").startswith("AI: नमस्ते!")
    query = parse_qs(urlsplit(links["Transcript (text)"]).query)
    assert int(query["X-Amz-Expires"][0]) <= 7 * 24 * 3600


class _S3Rejecting(FakeHTTPServer):
    """Answers every S3 call like a server that does not know the access key."""

    def route(self, request):
        return Response(403, b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>InvalidAccessKeyId</Code>"
                             b"<Message>The Access Key Id you provided does not exist in our records.</Message>"
                             b"<RequestId>1</RequestId></Error>", {"Content-Type": "application/xml"})


def test_bad_credentials_fail_fast_with_exit_2(cli, workspace, monkeypatch, elevenlabs):
    server = _S3Rejecting().start()
    try:
        monkeypatch.setenv("MINIO_ENDPOINT", server.url.removeprefix("http://"))
        monkeypatch.setenv("MINIO_ACCESS_KEY", "AKIAWRONG")
        monkeypatch.setenv("MINIO_SECRET_KEY", "wrong-secret-123456")
        monkeypatch.setenv("MINIO_SECURE", "false")
        elevenlabs.add(load_sample(HINDI))
        result = cli("run", "-c", HINDI_ID)
    finally:
        server.stop()
    assert result.exit_code == 2
    # The bucket check is a HEAD: S3 gives no body, so the answer reads as AccessDenied.
    assert "denied access to bucket fedfina-reports (AccessDenied); check MINIO_ACCESS_KEY and " \
           "MINIO_SECRET_KEY" in result.output
    assert "wrong-secret-123456" not in result.output
    assert elevenlabs.count(f"/v1/convai/conversations/{HINDI_ID}") == 0  # nothing was processed


def test_invalid_access_key_reply_names_the_credentials(s3):
    from fedfina_cli.services.storage.minio import MinioStorage, StorageError

    server = _S3Rejecting().start()
    try:
        storage = MinioStorage(server.url.removeprefix("http://"), "AKIAWRONG", "wrong-secret", "bucket",
                               secure=False)
        with pytest.raises(StorageError, match=r"rejected the credentials \(InvalidAccessKeyId\)"):
            storage.put_bytes("k.txt", b"x", "text/plain")
    finally:
        server.stop()


def test_unreachable_endpoint_is_a_clear_error(cli, monkeypatch, s3):
    monkeypatch.setenv("MINIO_ENDPOINT", f"127.0.0.1:{free_port()}")
    result = cli("run", "--from-file", HINDI)
    assert result.exit_code == 2
    assert "cannot connect to MinIO at 127.0.0.1:" in result.output


def test_tls_mismatch_is_a_clear_error(cli, monkeypatch, s3):
    monkeypatch.setenv("MINIO_SECURE", "true")  # moto speaks plain HTTP
    result = cli("run", "--from-file", HINDI)
    assert result.exit_code == 2
    assert "TLS handshake with MinIO" in result.output and "MINIO_SECURE=false" in result.output


@pytest.mark.parametrize("seconds, expected", [(3600, 3600), (30 * 24 * 3600, 7 * 24 * 3600)])
def test_presigned_urls_are_capped_at_seven_days(s3, seconds, expected):
    from fedfina_cli.services.storage.minio import MinioStorage

    from .conftest import MINIO_ACCESS_KEY, MINIO_SECRET_KEY

    storage = MinioStorage(s3.endpoint, MINIO_ACCESS_KEY, MINIO_SECRET_KEY, s3.bucket, secure=False)
    storage.prepare()
    storage.put_bytes("a/b.txt", b"hello", "text/plain")
    url = storage.locate("a/b.txt", seconds)
    assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == [str(expected)]
    assert requests.get(url, timeout=10).content == b"hello"


def test_the_stream_reader_hands_minio_exactly_the_bytes_in_any_read_sizes():
    from fedfina_cli.services.storage.minio import _ChunkReader

    data = bytes(range(256)) * 400
    chunks = [data[i:i + 7000] for i in range(0, len(data), 7000)]
    reader = _ChunkReader(iter(chunks))
    pieces = [reader.read(size) for size in (10, 50_000, 3, 100_000, 5)]
    assert [len(p) for p in pieces] == [10, 50_000, 3, len(data) - 50_013, 0]
    assert b"".join(pieces) == data
    assert all(type(piece) is bytes for piece in pieces)  # minio refuses anything else
    assert _ChunkReader(iter(chunks)).read() == data
    # One chunk that is the whole part, handed over as it is; a bytearray as bytes.
    assert _ChunkReader(iter([data])).read(1 << 23) == data
    whole = _ChunkReader(iter([bytearray(data)])).read(1 << 23)
    assert type(whole) is bytes and whole == data


def test_the_ledger_records_the_bucket_and_show_uses_it_when_the_settings_moved(cli, workspace, s3, elevenlabs,
                                                                               monkeypatch):
    elevenlabs.add(load_sample(HINDI), audio=b"ID3 small")
    assert cli("run", "-c", HINDI_ID).exit_code == 0
    place = f"s3://{s3.endpoint}/{s3.bucket}"
    assert {row["storage"] for row in workspace.rows("select storage from conversation_files")} == {place}
    assert workspace.rows("select storage from conversation_processing")[0]["storage"] == place
    links = json.loads(cli("show", HINDI_ID, "--json").stdout)["files"]
    assert all(f["location"].startswith(f"http://{s3.endpoint}/{s3.bucket}/") for f in links)  # presigned
    # The settings now name another bucket: the files are shown where they are, not presigned
    # in a bucket that does not hold them, and one line says so.
    monkeypatch.setenv("MINIO_BUCKET_NAME", "another-bucket")
    moved = cli("show", HINDI_ID, "--json")
    assert all(f["location"] == f"{place}/{f['object_key']}" for f in json.loads(moved.stdout)["files"])
    assert f"its files were stored in the bucket {place}; the current settings point to " \
           f"s3://{s3.endpoint}/another-bucket" in words(moved.stderr)


def test_a_bucket_whose_versioning_cannot_be_read_is_deleted_from_as_before(s3, caplog):
    """A policy without s3:GetBucketVersioning: deletes work as before (the current version) and
    the log says once what to allow so that older versions go too."""
    import logging

    from minio.error import S3Error
    from urllib3 import HTTPResponse

    from fedfina_cli.services.storage.minio import MinioStorage

    from .conftest import MINIO_ACCESS_KEY, MINIO_SECRET_KEY

    storage = MinioStorage(s3.endpoint, MINIO_ACCESS_KEY, MINIO_SECRET_KEY, s3.bucket, secure=False)
    storage.prepare()
    for key in ("acc123/a.txt", "acc123/b.txt"):
        storage.put_bytes(key, b"x", "text/plain")

    def denied(bucket_name: str):
        raise S3Error(HTTPResponse(status=403), "AccessDenied", "Access Denied.", f"/{bucket_name}", "1", "h")

    storage.client.get_bucket_versioning = denied  # type: ignore[method-assign]  # moto grants every action
    with caplog.at_level(logging.WARNING, logger="fedfina.storage"):
        storage.delete("acc123/a.txt")
        storage.delete("acc123/b.txt")
    assert s3.object_keys() == []
    warned = [r.getMessage() for r in caplog.records if r.name == "fedfina.storage"]
    assert len(warned) == 1 and "allow s3:GetBucketVersioning" in warned[0], warned


def test_a_bucket_with_object_lock_over_plain_http_says_to_use_tls(cli, s3, elevenlabs):
    """Object Lock needs a checksum on each upload, which the minio client sends over TLS only:
    over plain HTTP every upload is refused, and the message says what to set."""
    client = s3.client
    client.create_bucket(Bucket=s3.bucket, ObjectLockEnabledForBucket=True)
    client.put_object_lock_configuration(Bucket=s3.bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    elevenlabs.add(load_sample(HINDI))
    result = cli("run", "-c", HINDI_ID)
    assert result.exit_code == 1
    assert f"bucket {s3.bucket} at {s3.endpoint} has Object Lock, which needs a checksum on every upload: the " \
           "client sends one over TLS; set MINIO_SECURE=true" in words(result.output), result.output
