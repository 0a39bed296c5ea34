"""Shared fixtures: every test runs in its own folder with its own ledger and data.

CLI tests use Typer's CliRunner for speed; a few run the installed `fedfina`
script as a subprocess, because that is the contract users' scripts rely on.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fedfina_cli.cli.app import app
from fedfina_cli.core.config_names import VARIABLES, near_misses

SAMPLES = Path(__file__).parent / "samples"
HINDI = SAMPLES / "conversation_hindi_loan.json"
ENGLISH = SAMPLES / "conversation_english_short.json"
WEBHOOK = SAMPLES / "webhook_post_call_transcription.json"
PROCESSING = SAMPLES / "conversation_processing.json"
LIST_PAGE = SAMPLES / "list_conversations_page.json"
HINDI_ID = "conv_7201k4b3qz9fe8st0m5xkcw2hj4n"
ENGLISH_ID = "conv_0901k5m2rd3tq6vx8bn1ye4ca7fz"

# Every variable fedfina reads, and any near-miss of one in this machine's
# environment (it would be named on every command's stderr).
CONFIG_VARIABLES = (*VARIABLES, *(m.found for m in near_misses(os.environ)))

# Off a terminal the CLI formats tables 200 wide unless COLUMNS says otherwise (see
# cli/output.py). pytest-xdist's workers export COLUMNS=80; a test that wants a width
# sets it itself, so every test sees the same default whether or not the suite runs in parallel.
for _variable in ("COLUMNS", "LINES"):
    os.environ.pop(_variable, None)


@dataclass
class Workspace:
    root: Path

    @property
    def db(self) -> Path:
        return self.root / "fedfina.db"

    @property
    def data(self) -> Path:
        return self.root / "data"

    def object(self, account: str, folder: str, name: str) -> Path:
        return self.data / account / folder / name

    def eml(self, account: str, conversation_id: str) -> Path:
        return self.data / "outbox" / account / f"{conversation_id}.eml"

    def emails(self) -> list[Path]:
        return sorted((self.data / "outbox").rglob("*.eml"))

    def rows(self, sql: str, *args) -> list[dict]:
        import sqlite3

        conn = sqlite3.connect(self.db)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute(sql, args)]
        finally:
            conn.close()


@pytest.fixture(autouse=True)
def workspace(tmp_path, monkeypatch) -> Workspace:
    """A clean folder, environment and CLI state for every test."""
    for name in CONFIG_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FEDFINA_DB", str(tmp_path / "fedfina.db"))
    monkeypatch.setenv("FEDFINA_DATA_DIR", str(tmp_path / "data"))
    return Workspace(tmp_path)


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture
def cli():
    """Invoke the CLI in-process: cli("run", "-c", ...) -> Result."""
    runner = CliRunner()

    def invoke(*args: str, env: dict | None = None) -> Result:
        result = runner.invoke(app, [str(a) for a in args], env=env, catch_exceptions=False)
        return Result(result.exit_code, result.stdout, result.stderr)

    return invoke


@pytest.fixture
def fedfina_exe() -> str:
    """The installed console script (the contract users' scripts depend on)."""
    exe = Path(sys.executable).parent / "fedfina"
    found = str(exe) if exe.exists() else shutil.which("fedfina")
    assert found, "the fedfina console script is not installed; pip install -e '.[test]'"
    return found


@pytest.fixture
def installed(fedfina_exe):
    """Run the installed `fedfina` in a subprocess with the test's environment."""

    def run(*args: str, env: dict | None = None, timeout: float = 120) -> Result:
        full_env = {**os.environ, **(env or {})}
        proc = subprocess.run([fedfina_exe, *map(str, args)], capture_output=True, text=True,
                              env=full_env, timeout=timeout)
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run


def start_fedfina(fedfina_exe: str, *args) -> subprocess.Popen:
    """The installed `fedfina` in the background (to be signalled or killed mid-run)."""
    return subprocess.Popen([fedfina_exe, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ))


def emails_per_conversation(smtp_server) -> dict[str, int]:
    """How many messages the loopback SMTP server received for each conversation."""
    counts: dict[str, int] = {}
    for message in smtp_server.messages:
        key = message.message["X-FedFina-Conversation"]
        counts[key] = counts.get(key, 0) + 1
    return counts


def words(text: str) -> str:
    """A table's text with its wrapping undone (a column may wrap at any width)."""
    return " ".join(text.split())


def wait_for(condition, timeout: float = 60.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def read_eml(path: Path):
    return message_from_bytes(path.read_bytes(), policy=policy.default)


def pdf_text(path_or_bytes) -> str:
    import io

    from pypdf import PdfReader

    data = path_or_bytes.read_bytes() if isinstance(path_or_bytes, Path) else path_or_bytes
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() or "" for page in reader.pages)


def load_sample(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def ledger_for(kind: str, tmp_path: Path, request):
    """A fresh ledger of ``kind`` ("sqlite" or "postgresql"), for tests parametrized over both."""
    from fedfina_cli.ledger.ledger import Ledger

    if kind == "sqlite":
        return Ledger(tmp_path / "l.db")
    server = request.getfixturevalue("postgres_server")
    return Ledger(None, url=server.url(server.new_database()))


def hindi_variant(number: int, *, start: int | None = None, status: str = "done",
                  account: str | None = "acc123", email: str | None = "loans.officer@example.com") -> dict:
    """The Hindi sample as a distinct conversation: conv_bulk00000007 and so on."""
    payload = load_sample(HINDI)
    payload["conversation_id"] = f"conv_bulk{number:08d}"
    payload["status"] = status
    payload["metadata"]["start_time_unix_secs"] = start if start is not None else 1763451720 + number * 60
    variables = payload["conversation_initiation_client_data"]["dynamic_variables"]
    variables.pop("account_id"), variables.pop("email_id")
    if account:
        variables["account_id"] = account
    if email:
        variables["email_id"] = email
    return payload


def write_json(path: Path, payload: dict) -> Path:
    path.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    return path


# --- real loopback servers for the external services ----------------------------

ELEVENLABS_KEY = "xi-test-9c41f0e2d8b7a6f5"
OPENAI_KEY = "test-openai-key-7d3e9a1b5c2f"
MINIO_ACCESS_KEY = "TEST-ACCESS-KEY-FEDFINA-01"
MINIO_SECRET_KEY = "minio-secret-4f2a9c7e1b3d"
SMTP_USER = "reports-mailer"
SMTP_PASSWORD = "smtp-pass-8e6c4a2f0d1b"
SECRETS = (ELEVENLABS_KEY, OPENAI_KEY, MINIO_ACCESS_KEY, MINIO_SECRET_KEY, SMTP_PASSWORD)
SENDER = "reports@fedfina.example"

# Fast retries and short timeouts keep failure-mode tests quick.
FAST = {"FEDFINA_RETRY_BASE_SECONDS": "0.01", "FEDFINA_RETRY_ATTEMPTS": "3", "FEDFINA_HTTP_TIMEOUT": "2"}


@pytest.fixture
def elevenlabs(monkeypatch):
    from .fakes.elevenlabs import FakeElevenLabs

    server = FakeElevenLabs(ELEVENLABS_KEY).start()
    monkeypatch.setenv("ELEVENLABS_API_KEY", ELEVENLABS_KEY)
    monkeypatch.setenv("ELEVENLABS_BASE_URL", server.url)
    for name, value in FAST.items():
        monkeypatch.setenv(name, value)
    yield server
    server.stop()


@pytest.fixture
def openai_server(monkeypatch):
    from .fakes.openai import FakeOpenAI

    server = FakeOpenAI(OPENAI_KEY).start()
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    monkeypatch.setenv("OPENAI_MODEL", "gpt-test-mini")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto_endpoint():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"{host}:{port}"
    server.stop()


@dataclass
class S3:
    endpoint: str
    bucket: str

    @property
    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=f"http://{self.endpoint}", region_name="us-east-1",
                            aws_access_key_id=MINIO_ACCESS_KEY, aws_secret_access_key=MINIO_SECRET_KEY)

    def object_keys(self) -> list[str]:
        client = self.client
        try:
            response = client.list_objects_v2(Bucket=self.bucket)
        except client.exceptions.NoSuchBucket:
            return []
        return sorted(o["Key"] for o in response.get("Contents", []))

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()


@pytest.fixture
def s3(moto_endpoint, monkeypatch, request) -> S3:
    """Moto's real S3 server; a fresh bucket name per test (created by fedfina itself)."""
    import re
    import uuid

    bucket = f"t-{re.sub(r'[^a-z0-9]', '', request.node.name.lower())[:30]}-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("MINIO_ENDPOINT", moto_endpoint)
    monkeypatch.setenv("MINIO_ACCESS_KEY", MINIO_ACCESS_KEY)
    monkeypatch.setenv("MINIO_SECRET_KEY", MINIO_SECRET_KEY)
    monkeypatch.setenv("MINIO_BUCKET_NAME", bucket)
    monkeypatch.setenv("MINIO_SECURE", "false")
    return S3(moto_endpoint, bucket)


@pytest.fixture(scope="session")
def certificate(tmp_path_factory):
    from .fakes.smtp import self_signed_certificate

    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


def start_smtp(monkeypatch, security: str = "none", certificate=None):
    from .fakes.smtp import FakeSMTP

    cert, key = certificate or (None, None)
    server = FakeSMTP(username=SMTP_USER, password=SMTP_PASSWORD, security=security, cert=cert, key=key)
    server.start()
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(server.port))
    monkeypatch.setenv("SMTP_USERNAME", SMTP_USER)
    monkeypatch.setenv("SMTP_PASSWORD", SMTP_PASSWORD)
    monkeypatch.setenv("SMTP_FROM_EMAIL", SENDER)
    monkeypatch.setenv("SMTP_SECURITY", security)
    if cert is not None:
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    for name, value in FAST.items():
        monkeypatch.setenv(name, value)
    return server


@pytest.fixture
def smtp_server(monkeypatch):
    server = start_smtp(monkeypatch)
    yield server
    server.stop()


@pytest.fixture
def services(elevenlabs, openai_server, s3, smtp_server):
    """Every external service configured against its loopback server."""
    return dict(elevenlabs=elevenlabs, openai=openai_server, s3=s3, smtp=smtp_server)


@dataclass
class Write:
    key: str
    started: float
    ended: float


class SlowDisk:
    """Local storage whose writes into some folders take longer (a slow or busy disk), each
    write recorded with when it started and ended (time.monotonic, like the fakes' requests)."""

    def __init__(self, monkeypatch):
        from fedfina_cli.services.storage.local import LocalStorage

        self.delays: dict[str, float] = {}  # folder ("transcripts") -> seconds a write of it takes
        self.writes: list[Write] = []
        real = LocalStorage.put_bytes

        def put_bytes(storage, key, data, content_type):
            started = time.monotonic()
            time.sleep(self.delays.get(key.split("/")[1], 0.0))
            try:
                return real(storage, key, data, content_type)
            finally:
                self.writes.append(Write(key, started, time.monotonic()))

        monkeypatch.setattr(LocalStorage, "put_bytes", put_bytes)

    def write_of(self, key_part: str) -> Write:
        return next(w for w in self.writes if key_part in w.key)


@pytest.fixture
def slow_disk(workspace, monkeypatch) -> SlowDisk:
    return SlowDisk(monkeypatch)


# --- a real PostgreSQL server (the ledger on DATABASE_URL) ------------------------


@pytest.fixture(scope="session")
def postgres_server():
    from .postgres import start_postgres, stop_postgres

    server = start_postgres()
    yield server
    stop_postgres(server)


@pytest.fixture
def postgres(postgres_server, monkeypatch):
    """A fresh database on the loopback PostgreSQL; DATABASE_URL points at it."""
    database = postgres_server.new_database()
    monkeypatch.setenv("DATABASE_URL", postgres_server.url(database))
    postgres_server.database = database
    return postgres_server


# The `serving` fixture (a real `fedfina serve`), for every test module that starts one.
from .serving import serving  # noqa: E402, F401
