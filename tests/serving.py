"""A real `fedfina serve` (or `worker`) process for the tests, and the events they send it.
The `serving` fixture is registered in conftest.py."""

import base64
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from fedfina_cli.server.signature import sign

from .fakes.smtp import free_port

API_KEY = "fedfina-api-key-5b8e2c9d7a41"
WEBHOOK_SECRET = "wsec_2f7c1e9a4b6d8e0f3a5c"
WEBHOOK = "/api/v1/webhooks/elevenlabs"
POSTPROCESS = "/api/v1/postprocess/conversation"


class Server:
    """One `fedfina serve` (or `worker`) process; its JSON log lines go to a file."""

    def __init__(self, fedfina_exe: str, log_path: Path, *args: str, command: str = "serve",
                 port: int | None = None):
        self.port = port or free_port()
        self.log_path = log_path
        self.url = f"http://127.0.0.1:{self.port}"
        extra = ["--port", str(self.port)] if command == "serve" else []
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen([fedfina_exe, command, *extra, *args], stdout=subprocess.DEVNULL,
                                            stderr=log, env=dict(os.environ))
        if command == "serve":
            from .conftest import wait_for  # conftest imports this module: not at the top

            wait_for(self._up, timeout=30)

    def _up(self) -> bool:
        assert self.process.poll() is None, self.log()
        try:
            return self.get("/healthz")[0] == 200
        except OSError:
            return False

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def get(self, path: str, headers: dict | None = None):
        return self.request("GET", path, headers=headers)

    def json(self, method: str, path: str, payload=None, headers: dict | None = None):
        body = None if payload is None else json.dumps(payload).encode()
        status, raw = self.request(method, path, body, {"Content-Type": "application/json", **(headers or {})})
        return status, json.loads(raw)

    def webhook(self, event: dict, *, timestamp: int | None = None, secret: str = WEBHOOK_SECRET,
                signature: str | None = None):
        body = json.dumps(event).encode()
        header = signature if signature is not None else sign(secret, body, timestamp or int(time.time()))
        headers = {"Content-Type": "application/json"}
        if header:
            headers["ElevenLabs-Signature"] = header
        status, raw = self.request("POST", WEBHOOK, body, headers)
        return status, json.loads(raw)

    def stop(self, signum=signal.SIGTERM, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        return self.process.wait(timeout=timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")



def transcription(number: int, **variant) -> dict:
    from .conftest import hindi_variant

    return {"type": "post_call_transcription", "event_timestamp": int(time.time()),
            "data": hindi_variant(number, **variant)}


def audio_event(number: int, audio: bytes) -> dict:
    return {"type": "post_call_audio", "event_timestamp": int(time.time()),
            "data": {"agent_id": "agent_4501k2s8yq0efrpt6ah0v7d3m9xw", "conversation_id": f"conv_bulk{number:08d}",
                     "full_audio": base64.b64encode(audio).decode()}}


KEY = {"X-API-Key": API_KEY}


@pytest.fixture
def serving(monkeypatch, fedfina_exe, workspace):
    """Start `fedfina serve` with the test's environment; stopped (SIGKILL if need be) afterwards."""
    monkeypatch.setenv("FEDFINA_API_KEY", API_KEY)
    monkeypatch.setenv("ELEVENLABS_WEBHOOK_SECRET", WEBHOOK_SECRET)
    started: list[Server] = []

    def start(*args: str, command: str = "serve", port: int | None = None) -> Server:
        server = Server(fedfina_exe, workspace.root / f"{command}-{len(started)}.log", *args, command=command,
                        port=port)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
