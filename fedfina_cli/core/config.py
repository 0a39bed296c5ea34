"""Configuration from the environment, `.env` or `--env-file` (SPEC "Configuration").

The real environment wins over the file. Values are validated here, once, so
that a typo in a port or a flag is a usage error (exit 2) before any work.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from dotenv import dotenv_values

from fedfina_cli.core.config_names import VARIABLES, NearMiss, Unknown, near_misses
from fedfina_cli.core.errors import InvalidValue, UsageError
from fedfina_cli.core.validation import email_address

DEFAULT_ELEVENLABS_BASE_URL = "https://api.elevenlabs.io"
DEFAULT_OPENAI_MODEL = "gpt-4.1-mini"
DEFAULT_BUCKET = "fedfina-reports"
SMTP_SECURITY_MODES = ("starttls", "ssl", "none")
REDACTION_MODES = ("none", "llm", "stored")
RESPONSE_FORMATS = ("auto", "json_schema", "json_object", "text")
# Azure OpenAI's generally available API version with structured outputs (json_schema).
DEFAULT_AZURE_API_VERSION = "2024-10-21"


@dataclass(frozen=True)
class Settings:
    elevenlabs_api_key: str | None = field(default=None, repr=False)
    elevenlabs_base_url: str = DEFAULT_ELEVENLABS_BASE_URL
    openai_api_key: str | None = field(default=None, repr=False)
    openai_base_url: str | None = None
    openai_model: str = DEFAULT_OPENAI_MODEL
    openai_response_format: str = "auto"  # auto | json_schema | json_object | text (OpenAI-compatible servers)
    # Azure OpenAI: the SDK's Azure client; OPENAI_MODEL is then the deployment's name.
    azure_openai_endpoint: str | None = None
    azure_openai_api_key: str | None = field(default=None, repr=False)
    openai_api_version: str = DEFAULT_AZURE_API_VERSION
    minio_endpoint: str | None = None
    minio_access_key: str | None = field(default=None, repr=False)
    minio_secret_key: str | None = field(default=None, repr=False)
    minio_bucket: str = DEFAULT_BUCKET
    minio_secure: bool = True
    minio_region: str = "us-east-1"
    minio_sse: bool = False
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_username: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_from_email: str | None = None
    smtp_security: str | None = None
    db_path: Path = Path("fedfina.db")
    # postgresql://user:password@host:5432/db: the ledger on PostgreSQL instead of db_path.
    database_url: str | None = field(default=None, repr=False)
    # libpq's own variable: psycopg uses it when DATABASE_URL has no password. Only scrubbed.
    pgpassword: str | None = field(default=None, repr=False)
    data_dir: Path = Path("fedfina-data")
    prompt_file: Path | None = None
    # Tuning (not in the SPEC's table; defaults suit production).
    # Seconds one attempt of any call may take, connect to last byte (a stream:
    # any stretch this long must bring 64 KB). Long enough for a model's summary.
    http_timeout: float = 60.0
    retry_attempts: int = 5
    retry_base_seconds: float = 0.5
    summary_chunk_chars: int = 60_000  # longer transcripts are summarised in parts
    # How long a conversation stays claimed by a process that stopped renewing
    # (it died): after this, another process takes it over.
    claim_seconds: float = 60.0
    # Identifiers masked before the summariser (llm), and in everything shown (stored): SPEC "Privacy".
    redaction: str = "llm"
    # `fedfina serve` (SPEC "Serving")
    api_key: str | None = field(default=None, repr=False)  # FEDFINA_API_KEY
    webhook_secret: str | None = field(default=None, repr=False)  # ELEVENLABS_WEBHOOK_SECRET
    max_body_mb: float = 50.0
    # A queued conversation that failed for a passing reason (a 503, a timeout) is
    # tried again after this, then 4x, 16x and 64x as long (30 s: about 42 minutes in all).
    queue_retry_seconds: float = 30.0
    # SPEC "Retention and legal hold": days a conversation's files are kept after it finished
    # (None: kept; an account's own setting wins), and days audit lines and API-call rows are
    # kept in the ledger (older ones are pruned by purge, their per-day totals kept).
    retention_days: int | None = None
    ledger_keep_days: int = 400
    # SPEC "The console": its address as people reach it (None: /console is off), who administers
    # it, how long a session lasts, and the single sign-on proxy whose identity header it trusts.
    public_url: str | None = None
    console_admins: tuple[str, ...] = ()
    console_session_hours: float = 12.0
    console_trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()
    console_email_header: str | None = None
    # Names set in the environment or .env that look like fedfina's but are not
    # (SPEC "Configuration mistakes"): every command names them on stderr.
    mistakes: tuple[NearMiss | Unknown, ...] = field(default=(), compare=False)

    def secret_values(self) -> list[str]:
        """Values that must never be printed, logged or stored."""
        return list(self._secrets)

    @cached_property
    def _secrets(self) -> tuple[str, ...]:
        # Worked out once per Settings (frozen): every audit line and log record is redacted,
        # and reading DATABASE_URL's password with libpq's parser each time cost a millisecond
        # of CPU per conversation.
        # MINIO_ACCESS_KEY is an identifier, not a secret: every presigned URL
        # (the email's links) carries it by design, as S3's X-Amz-Credential.
        candidates = [
            self.elevenlabs_api_key,
            self.openai_api_key,
            self.azure_openai_api_key,
            self.minio_secret_key,
            self.smtp_password,
            self.api_key,
            self.webhook_secret,
            password_of(self.database_url),
            self.pgpassword,
        ]
        # Very short values would redact ordinary words; no real key is that short.
        return tuple(v for v in candidates if v and len(v) >= 4)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def smtp_security_mode(self) -> str:
        if self.smtp_security:
            return self.smtp_security
        return "ssl" if self.smtp_port == 465 else "starttls"


def load_settings(env_file: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read settings; ``env_file`` replaces the default `./.env`."""
    environ = os.environ if environ is None else environ
    values: dict[str, str] = {}
    if env_file is not None:
        if not env_file.is_file():
            raise UsageError(f"--env-file {env_file}: no such file")
        values.update(_read_dotenv(env_file))
    elif Path(".env").is_file():
        values.update(_read_dotenv(Path(".env")))
    values.update(environ)
    return replace(_settings_from(values), mistakes=tuple(near_misses(values)))


def checked_database_url(value: str | None) -> str | None:
    """A DATABASE_URL (or `ledger copy --to`), checked; None stays None."""
    if value is None:
        return None
    if not value.startswith(("postgresql://", "postgres://")):
        raise UsageError(f"DATABASE_URL {without_password(value)!r} is not a PostgreSQL URL: expected "
                         "postgresql://user:password@host:5432/database (unset it for the SQLite ledger)")
    return value


# `password=` as a URL's query parameter or a keyword of a libpq connection string,
# quoted or not: the other places libpq takes a password from, beside the userinfo.
_PASSWORD_PARAMETER = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]*)", re.IGNORECASE)


def without_password(url: str) -> str:
    """The connection string as it may be shown, its password *** in any form libpq
    accepts: postgresql://fedfina:***@db/fedfina, ...?password=***, password=*** ."""
    shown = _PASSWORD_PARAMETER.sub(r"\1***", url)
    try:
        parts = urlsplit(shown)
        if parts.password is None:
            return shown
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(a DATABASE_URL that cannot be parsed)"
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def password_of(url: str | None) -> str | None:
    """The password a connection string carries, read as libpq reads it (psycopg's
    parser: userinfo, `?password=`, keywords; percent-encoding undone)."""
    if not url:
        return None
    try:
        from psycopg.conninfo import conninfo_to_dict  # noqa: PLC0415 - only with DATABASE_URL

        found = conninfo_to_dict(url).get("password")
    except Exception:  # noqa: BLE001 - unparsable: the URL's userinfo, if any, is what there is
        try:
            found = urlsplit(url).password
        except ValueError:
            return None
    return str(found) if found else None


def _read_dotenv(path: Path) -> dict[str, str]:

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def _settings_from(values: Mapping[str, str]) -> Settings:
    def get(name: str) -> str | None:
        assert name in VARIABLES, name  # the near-miss check knows only those
        value = values.get(name, "").strip()
        return value or None

    def key(name: str) -> str | None:  # issued by a vendor: one token (a password may hold anything)
        return _key(name, get(name))

    smtp_host = get("SMTP_HOST")
    settings = Settings(
        elevenlabs_api_key=key("ELEVENLABS_API_KEY"),
        elevenlabs_base_url=_url("ELEVENLABS_BASE_URL", get("ELEVENLABS_BASE_URL"))
        or DEFAULT_ELEVENLABS_BASE_URL,
        openai_api_key=key("OPENAI_API_KEY"),
        openai_base_url=_url("OPENAI_BASE_URL", get("OPENAI_BASE_URL")),
        openai_model=get("OPENAI_MODEL") or DEFAULT_OPENAI_MODEL,
        openai_response_format=_choice("OPENAI_RESPONSE_FORMAT", get("OPENAI_RESPONSE_FORMAT"),
                                       RESPONSE_FORMATS) or "auto",
        azure_openai_endpoint=_url("AZURE_OPENAI_ENDPOINT", get("AZURE_OPENAI_ENDPOINT")),
        azure_openai_api_key=key("AZURE_OPENAI_API_KEY"),
        openai_api_version=get("OPENAI_API_VERSION") or DEFAULT_AZURE_API_VERSION,
        minio_endpoint=_endpoint(get("MINIO_ENDPOINT")),
        minio_access_key=get("MINIO_ACCESS_KEY"),
        minio_secret_key=get("MINIO_SECRET_KEY"),
        minio_bucket=_bucket(get("MINIO_BUCKET_NAME")),
        minio_secure=_bool("MINIO_SECURE", get("MINIO_SECURE"), True),
        minio_region=get("MINIO_REGION") or "us-east-1",
        minio_sse=_bool("MINIO_SSE", get("MINIO_SSE"), False),
        smtp_host=smtp_host,
        smtp_port=_port(get("SMTP_PORT")),
        smtp_username=get("SMTP_USERNAME"),
        smtp_password=get("SMTP_PASSWORD"),
        smtp_from_email=get("SMTP_FROM_EMAIL"),
        smtp_security=_choice("SMTP_SECURITY", get("SMTP_SECURITY"), SMTP_SECURITY_MODES),
        db_path=Path(get("FEDFINA_DB") or "fedfina.db"),
        database_url=checked_database_url(get("DATABASE_URL")),
        pgpassword=values.get("PGPASSWORD") or None,
        data_dir=Path(get("FEDFINA_DATA_DIR") or "fedfina-data"),
        prompt_file=Path(p) if (p := get("FEDFINA_PROMPT_FILE")) else None,
        http_timeout=_number("FEDFINA_HTTP_TIMEOUT", get("FEDFINA_HTTP_TIMEOUT"), 60.0),
        retry_attempts=int(_number("FEDFINA_RETRY_ATTEMPTS", get("FEDFINA_RETRY_ATTEMPTS"), 5, minimum=1)),
        retry_base_seconds=_number("FEDFINA_RETRY_BASE_SECONDS", get("FEDFINA_RETRY_BASE_SECONDS"), 0.5,
                                   minimum=0),
        summary_chunk_chars=int(_number("FEDFINA_SUMMARY_CHUNK_CHARS", get("FEDFINA_SUMMARY_CHUNK_CHARS"),
                                        60_000, minimum=1000)),
        claim_seconds=_number("FEDFINA_CLAIM_SECONDS", get("FEDFINA_CLAIM_SECONDS"), 60.0, minimum=1),
        redaction=_choice("FEDFINA_REDACT", get("FEDFINA_REDACT"), REDACTION_MODES) or "llm",
        api_key=get("FEDFINA_API_KEY"),
        webhook_secret=key("ELEVENLABS_WEBHOOK_SECRET"),
        max_body_mb=_number("FEDFINA_MAX_BODY_MB", get("FEDFINA_MAX_BODY_MB"), 50.0, minimum=0.01),
        queue_retry_seconds=_number("FEDFINA_QUEUE_RETRY_SECONDS", get("FEDFINA_QUEUE_RETRY_SECONDS"), 30.0,
                                    minimum=0.1),
        retention_days=_days("FEDFINA_RETENTION_DAYS", get("FEDFINA_RETENTION_DAYS")),
        ledger_keep_days=_days("FEDFINA_LEDGER_KEEP_DAYS", get("FEDFINA_LEDGER_KEEP_DAYS")) or 400,
        public_url=_public_url(get("FEDFINA_PUBLIC_URL")),
        console_admins=_addresses("FEDFINA_CONSOLE_ADMINS", get("FEDFINA_CONSOLE_ADMINS")),
        console_session_hours=_number("FEDFINA_CONSOLE_SESSION_HOURS", get("FEDFINA_CONSOLE_SESSION_HOURS"), 12.0,
                                      minimum=0.01),
        console_trusted_proxies=_networks(get("FEDFINA_CONSOLE_TRUSTED_PROXIES")),
        console_email_header=_header_name(get("FEDFINA_CONSOLE_EMAIL_HEADER")),
    )
    _check_combinations(settings)
    return settings


def _check_combinations(s: Settings) -> None:
    if s.minio_endpoint and not (s.minio_access_key and s.minio_secret_key):
        raise UsageError(
            "MINIO_ENDPOINT is set but MINIO_ACCESS_KEY or MINIO_SECRET_KEY is missing; set both"
        )
    if s.smtp_host:
        if not s.smtp_from_email:
            raise UsageError("SMTP_HOST is set but SMTP_FROM_EMAIL is missing; set the From address")
        try:
            email_address(s.smtp_from_email)
        except InvalidValue as exc:
            raise UsageError(f"SMTP_FROM_EMAIL={exc.value!r}: {exc.reason}") from None
        if s.smtp_username and not s.smtp_password:
            raise UsageError("SMTP_USERNAME is set but SMTP_PASSWORD is missing")
    if s.azure_openai_endpoint and not s.azure_openai_api_key:
        raise UsageError("AZURE_OPENAI_ENDPOINT is set but AZURE_OPENAI_API_KEY is missing; set the key "
                         "(Azure portal: the resource's Keys and Endpoint)")
    if s.azure_openai_endpoint and s.openai_api_key:
        raise UsageError("both AZURE_OPENAI_ENDPOINT and OPENAI_API_KEY are set: unset one (Azure OpenAI "
                         "uses AZURE_OPENAI_API_KEY; OPENAI_API_KEY is for OpenAI and compatible servers)")
    if bool(s.console_trusted_proxies) != bool(s.console_email_header):
        raise UsageError("FEDFINA_CONSOLE_TRUSTED_PROXIES and FEDFINA_CONSOLE_EMAIL_HEADER go together: set both "
                         "(the single sign-on proxy's addresses and the header it names people in), or neither")
    if s.prompt_file is not None and not s.prompt_file.is_file():
        raise UsageError(f"FEDFINA_PROMPT_FILE {s.prompt_file}: no such file")


def _key(name: str, value: str | None) -> str | None:
    """A vendor's key or secret: one token, as its issuer shows it. A space or a
    quote inside is a paste gone wrong (a comment on the line, quotes kept by the
    shell); the value itself is never shown."""
    if value is not None and (re.search(r"[\s\"'\\]", value) or not value.isprintable()):
        raise UsageError(f"{name} holds a space, quote or control character (value not shown): set the key "
                         "alone, with no quotes or comment on its line")
    return value


def _bool(name: str, value: str | None, default: bool) -> bool:
    if value is None:
        return default
    lowered = value.lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise UsageError(f"{name}={value!r}: expected true or false")


def _number(name: str, value: str | None, default: float, minimum: float = 0.001) -> float:
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        number = None
    if number is None or number < minimum:
        raise UsageError(f"{name}={value!r}: expected a number of at least {minimum:g}")
    return number


def _days(name: str, value: str | None) -> int | None:
    if value is None:
        return None
    if not value.strip().isdigit() or int(value) < 1:
        raise UsageError(f"{name}={value!r}: expected a whole number of days, at least 1")
    return int(value)


def _port(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise UsageError(f"SMTP_PORT={value!r}: expected a port number from 1 to 65535")
    return int(value)


def _choice(name: str, value: str | None, choices: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    if value.lower() not in choices:
        raise UsageError(f"{name}={value!r}: expected one of {', '.join(choices)}")
    return value.lower()


def _url(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    if not value.startswith(("http://", "https://")):
        raise UsageError(f"{name}={value!r}: expected a URL starting with https://")
    return value.rstrip("/")


def _public_url(value: str | None) -> str | None:
    """FEDFINA_PUBLIC_URL: scheme and host (and a path prefix, if the console sits under one),
    nothing else: sign-in links are built from it alone."""
    url = _url("FEDFINA_PUBLIC_URL", value)
    if url is None:
        return None
    parts = urlsplit(url)
    if not parts.hostname or parts.query or parts.fragment or parts.username or parts.password:
        raise UsageError(f"FEDFINA_PUBLIC_URL={value!r}: expected the console's address as people reach it, "
                         "like https://fedfina.bank.example (no query, fragment or user)")
    return url


def _addresses(name: str, value: str | None) -> tuple[str, ...]:
    found = []
    for part in (value or "").split(","):
        if not part.strip():
            continue
        try:
            found.append(email_address(part.strip()).lower())
        except InvalidValue as exc:
            raise UsageError(f"{name}: {exc.value!r} {exc.reason}; expected addresses separated by commas") from None
    return tuple(found)


def _networks(value: str | None) -> tuple[IPv4Network | IPv6Network, ...]:
    found = []
    for part in (value or "").split(","):
        if part.strip():
            try:
                found.append(ip_network(part.strip(), strict=False))
            except ValueError:
                raise UsageError(f"FEDFINA_CONSOLE_TRUSTED_PROXIES: {part.strip()!r} is not an address or CIDR "
                                 "range like 10.0.0.0/24; separate several with commas") from None
    return tuple(found)


def _header_name(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"[A-Za-z0-9-]{1,64}", value):
        raise UsageError(f"FEDFINA_CONSOLE_EMAIL_HEADER={value!r}: expected a header name like X-Forwarded-Email")
    return value


def _bucket(value: str | None) -> str:
    if value is None:
        return DEFAULT_BUCKET
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", value) or ".." in value:
        raise UsageError(f"MINIO_BUCKET_NAME={value!r}: expected 3 to 63 lowercase letters, digits, "
                         "'.' or '-', starting and ending with a letter or digit")
    return value


def _endpoint(value: str | None) -> str | None:
    if value is None:
        return None
    if "://" in value or "/" in value:
        raise UsageError(
            f"MINIO_ENDPOINT={value!r}: expected host:port without a scheme or path "
            "(use MINIO_SECURE=false for plain HTTP)"
        )
    return value
