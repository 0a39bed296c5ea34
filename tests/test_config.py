"""Configuration: environment, .env, --env-file, and validation (exit 2)."""

import pytest

from fedfina_cli.core.config import load_settings
from fedfina_cli.core.errors import UsageError

from .conftest import HINDI


def test_defaults():
    s = load_settings(environ={})
    assert s.elevenlabs_base_url == "https://api.elevenlabs.io"
    assert s.minio_bucket == "fedfina-reports" and s.minio_secure is True and s.minio_sse is False
    assert str(s.db_path) == "fedfina.db" and str(s.data_dir) == "fedfina-data"


def test_dotenv_in_the_working_directory_is_read_and_the_environment_wins(workspace):
    (workspace.root / ".env").write_text("OPENAI_MODEL=from-file\nMINIO_BUCKET_NAME=from-file\n")
    s = load_settings(environ={"OPENAI_MODEL": "from-env"})
    assert s.openai_model == "from-env" and s.minio_bucket == "from-file"


def test_env_file_flag_reads_another_file(cli, workspace, monkeypatch):
    monkeypatch.delenv("FEDFINA_DATA_DIR")
    env_file = workspace.root / "other.env"
    env_file.write_text(f"FEDFINA_DATA_DIR={workspace.root / 'elsewhere'}\n")
    result = cli("--env-file", env_file, "run", "--from-file", HINDI)
    assert result.exit_code == 0, result.output
    assert (workspace.root / "elsewhere" / "acc123" / "reports").is_dir()


def test_missing_env_file_is_a_usage_error(cli, workspace):
    result = cli("--env-file", workspace.root / "nope.env", "run", "--from-file", HINDI)
    assert result.exit_code == 2 and "no such file" in result.output


@pytest.mark.parametrize("environ, message", [
    ({"SMTP_PORT": "abc"}, "SMTP_PORT='abc'"),
    ({"MINIO_SECURE": "maybe"}, "MINIO_SECURE='maybe': expected true or false"),
    ({"SMTP_SECURITY": "tls"}, "expected one of starttls, ssl, none"),
    ({"SMTP_HOST": "mail"}, "SMTP_FROM_EMAIL is missing"),
    ({"SMTP_HOST": "mail", "SMTP_FROM_EMAIL": "bad"}, "SMTP_FROM_EMAIL='bad'"),
    ({"MINIO_ENDPOINT": "http://minio:9000", "MINIO_ACCESS_KEY": "a", "MINIO_SECRET_KEY": "b"},
     "without a scheme"),
    ({"MINIO_ENDPOINT": "minio:9000"}, "MINIO_SECRET_KEY is missing"),
    ({"ELEVENLABS_BASE_URL": "api.elevenlabs.io"}, "expected a URL"),
    ({"MINIO_BUCKET_NAME": "b"}, "MINIO_BUCKET_NAME='b': expected 3 to 63 lowercase"),
    ({"MINIO_BUCKET_NAME": "Reports_2026"}, "MINIO_BUCKET_NAME='Reports_2026'"),
    ({"FEDFINA_RETRY_ATTEMPTS": "0"}, "expected a number of at least 1"),
    ({"FEDFINA_PROMPT_FILE": "/no/such/prompt.txt"}, "no such file"),
])
def test_bad_configuration(environ, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        load_settings(environ=environ)


def test_bad_configuration_exits_2_before_anything_is_written(cli, workspace):
    result = cli("run", "--from-file", HINDI, env={"SMTP_PORT": "seventy"})
    assert result.exit_code == 2 and "SMTP_PORT" in result.output
    assert not workspace.db.exists()


def test_settings_repr_hides_secrets():
    s = load_settings(environ={"OPENAI_API_KEY": "sk-test-abcdef", "ELEVENLABS_API_KEY": "xi-secret-1",
                               "MINIO_ENDPOINT": "m:9000", "MINIO_ACCESS_KEY": "AKIAEXAMPLE",
                               "MINIO_SECRET_KEY": "minio-secret", "SMTP_PASSWORD": "smtp-pass"})
    text = repr(s)
    for secret in ("sk-test-abcdef", "xi-secret-1", "AKIAEXAMPLE", "minio-secret", "smtp-pass"):
        assert secret not in text
    for secret in ("sk-test-abcdef", "xi-secret-1", "minio-secret", "smtp-pass"):
        assert secret not in s.redact(f"error with {secret} inside")
    # The access key id is an identifier every presigned link carries; it is not redacted.
    assert "AKIAEXAMPLE" in s.redact("X-Amz-Credential=AKIAEXAMPLE")
