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
    ({"FEDFINA_PUBLIC_URL": "fedfina.bank.example"}, "FEDFINA_PUBLIC_URL='fedfina.bank.example': expected a URL"),
    ({"FEDFINA_PUBLIC_URL": "https://fedfina.bank.example/?next=x"}, "no query, fragment or user"),
    ({"FEDFINA_CONSOLE_ADMINS": "ops@bank.example, ops lead"}, "FEDFINA_CONSOLE_ADMINS: 'ops lead'"),
    ({"FEDFINA_CONSOLE_TRUSTED_PROXIES": "10.0.0.0/33", "FEDFINA_CONSOLE_EMAIL_HEADER": "X-Forwarded-Email"},
     "'10.0.0.0/33' is not an address or CIDR range"),
    ({"FEDFINA_CONSOLE_TRUSTED_PROXIES": "10.0.0.0/8"}, "go together"),
    ({"FEDFINA_CONSOLE_EMAIL_HEADER": "X-Forwarded-Email: a"}, "expected a header name"),
    ({"FEDFINA_CONSOLE_SESSION_HOURS": "0"}, "FEDFINA_CONSOLE_SESSION_HOURS='0'"),
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


# SPEC "Configuration mistakes"
MISSPELT_DOTENV = "ELEVEN_LABS_API_KEY=xi-abc\nOPENAI_KEY=sk-test-1234\nSMTP_SERVER=mail.example.com\n"


@pytest.mark.parametrize("name, meant", [
    ("ELEVEN_LABS_API_KEY", "ELEVENLABS_API_KEY"), ("OPENAI_KEY", "OPENAI_API_KEY"), ("SMTP_SERVER", "SMTP_HOST"),
    ("FEDFINA_DATADIR", "FEDFINA_DATA_DIR"), ("smtp_host", "SMTP_HOST"), ("XI_API_KEY", "ELEVENLABS_API_KEY"),
    ("OPENAI_API_BASE", "OPENAI_BASE_URL"), ("MINIO_BUCKET", "MINIO_BUCKET_NAME"),
    ("MINIO_SECRET", "MINIO_SECRET_KEY"), ("AZURE_OPENAI_DEPLOYMENT", "OPENAI_MODEL"),
])
def test_a_near_miss_is_named_with_the_variable_meant(name, meant):
    mistakes = load_settings(environ={name: "x"}).mistakes
    assert [(m.found, getattr(m, "meant", None)) for m in mistakes] == [(name, meant)]


@pytest.mark.parametrize("environ", [
    {"PATH": "/bin", "HOME": "/root", "OPENAI_ORG_ID": "org-1", "AZURE_CLIENT_ID": "x", "SMTP_PORT": "25"},
    # The MinIO server's own variables beside fedfina's: no mistake.
    {"MINIO_ROOT_USER": "admin", "MINIO_ACCESS_KEY": "admin", "MINIO_SECRET_KEY": "secret12"},
])
def test_names_that_are_not_near_misses_are_left_alone(environ):
    assert load_settings(environ=environ).mistakes == ()


def test_an_unknown_fedfina_name_is_named():
    [mistake] = load_settings(environ={"FEDFINA_TURBO": "1"}).mistakes
    assert mistake.found == "FEDFINA_TURBO" and "not a fedfina setting" in str(mistake)


def test_every_command_names_each_near_miss_once_on_stderr(cli, workspace):
    (workspace.root / ".env").write_text(MISSPELT_DOTENV)
    for args in (("run", "--from-file", HINDI), ("status",), ("accounts", "list")):
        result = cli(*args)
        assert result.exit_code == 0, result.output
        for name, meant in (("ELEVEN_LABS_API_KEY", "ELEVENLABS_API_KEY"), ("OPENAI_KEY", "OPENAI_API_KEY"),
                            ("SMTP_SERVER", "SMTP_HOST")):
            assert result.stderr.count(f"warning: {name} is not a fedfina setting") == 1, (args, result.stderr)
            assert f"did you mean {meant}?" in result.stderr
        assert "sk-test-1234" not in result.output
    # --quiet prints failures only, and this is why mail is not sent: it is said too.
    assert "SMTP_SERVER" in cli("run", "--quiet", "--from-file", HINDI).stderr


def test_doctor_fails_on_a_near_miss(cli, workspace):
    (workspace.root / ".env").write_text(MISSPELT_DOTENV)
    result = cli("doctor")
    assert result.exit_code == 1, result.output
    assert "did you mean SMTP_HOST?" in result.stdout and "SMTP_SERVER" in result.stdout
    (workspace.root / ".env").write_text("SMTP_PORT=25\n")
    assert cli("doctor").exit_code == 0


@pytest.mark.parametrize("value", ["sk-abc # my key", '"sk-abc"', "sk-abc def"])
def test_a_vendor_key_of_the_wrong_shape_names_its_variable_and_not_its_value(cli, workspace, value):
    (workspace.root / ".env").write_text(f"OPENAI_API_KEY='{value}'\n")
    result = cli("status")
    assert result.exit_code == 2
    assert "OPENAI_API_KEY holds a space, quote or control character (value not shown)" in result.stderr
    assert "sk-abc" not in result.output


def test_a_password_may_hold_spaces_and_quotes():
    s = load_settings(environ={"SMTP_HOST": "mail", "SMTP_FROM_EMAIL": "a@example.com",
                               "SMTP_USERNAME": "u", "SMTP_PASSWORD": 'correct "horse" battery'})
    assert s.smtp_password == 'correct "horse" battery'
