"""The names fedfina reads from the environment, and the near-misses people type
instead (SPEC "Configuration mistakes").

A misspelt name is otherwise ignored without a word: `SMTP_SERVER=mail` instead of
`SMTP_HOST` leaves email in the outbox as `.eml` files while `doctor` says "ok".
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

# Every variable fedfina reads (core/config.py asks for nothing else).
VARIABLES = (
    "ELEVENLABS_API_KEY", "ELEVENLABS_BASE_URL", "ELEVENLABS_WEBHOOK_SECRET",
    "OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL", "OPENAI_RESPONSE_FORMAT", "OPENAI_API_VERSION",
    "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY",
    "MINIO_ENDPOINT", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY", "MINIO_BUCKET_NAME", "MINIO_SECURE",
    "MINIO_REGION", "MINIO_SSE",
    "SMTP_HOST", "SMTP_PORT", "SMTP_USERNAME", "SMTP_PASSWORD", "SMTP_FROM_EMAIL", "SMTP_SECURITY",
    "FEDFINA_DB", "DATABASE_URL", "FEDFINA_DATA_DIR", "FEDFINA_PROMPT_FILE", "FEDFINA_HTTP_TIMEOUT",
    "FEDFINA_RETRY_ATTEMPTS", "FEDFINA_RETRY_BASE_SECONDS", "FEDFINA_SUMMARY_CHUNK_CHARS",
    "FEDFINA_CLAIM_SECONDS", "FEDFINA_REDACT", "FEDFINA_API_KEY", "FEDFINA_MAX_BODY_MB",
    "FEDFINA_QUEUE_RETRY_SECONDS", "FEDFINA_RETENTION_DAYS", "FEDFINA_LEDGER_KEEP_DAYS",
    "FEDFINA_PUBLIC_URL", "FEDFINA_CONSOLE_ADMINS", "FEDFINA_CONSOLE_SESSION_HOURS",
    "FEDFINA_CONSOLE_TRUSTED_PROXIES", "FEDFINA_CONSOLE_EMAIL_HEADER",
)

# Names other tools, older SDKs and habit use for what fedfina calls otherwise:
# too far apart in spelling for the fuzzy match below.
ALIASES = {
    "XI_API_KEY": "ELEVENLABS_API_KEY",
    "ELEVEN_API_KEY": "ELEVENLABS_API_KEY",
    "ELEVENLABS_KEY": "ELEVENLABS_API_KEY",
    "ELEVENLABS_API_URL": "ELEVENLABS_BASE_URL",
    "OPENAI_API_BASE": "OPENAI_BASE_URL",  # openai-python before 1.0, LangChain
    "OPENAI_API_URL": "OPENAI_BASE_URL",
    "OPENAI_ENDPOINT": "OPENAI_BASE_URL",
    "AZURE_OPENAI_KEY": "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_API_VERSION": "OPENAI_API_VERSION",
    "AZURE_OPENAI_DEPLOYMENT": "OPENAI_MODEL",  # fedfina names the Azure deployment in OPENAI_MODEL
    "AZURE_OPENAI_DEPLOYMENT_NAME": "OPENAI_MODEL",
    "MINIO_URL": "MINIO_ENDPOINT",
    "MINIO_HOST": "MINIO_ENDPOINT",
    "MINIO_BUCKET": "MINIO_BUCKET_NAME",
    "MINIO_ROOT_USER": "MINIO_ACCESS_KEY",  # the MinIO server's own variables
    "MINIO_ROOT_PASSWORD": "MINIO_SECRET_KEY",
    "MINIO_ACCESS_KEY_ID": "MINIO_ACCESS_KEY",
    "MINIO_SECRET_ACCESS_KEY": "MINIO_SECRET_KEY",
    "MINIO_ACCESS": "MINIO_ACCESS_KEY",
    "MINIO_SECRET": "MINIO_SECRET_KEY",  # closer in spelling to MINIO_SECURE, but meant as the key
    "MINIO_USE_SSL": "MINIO_SECURE",
    "MINIO_SSL": "MINIO_SECURE",
    "SMTP_SERVER": "SMTP_HOST",
    "SMTP_HOSTNAME": "SMTP_HOST",
    "SMTP_USER": "SMTP_USERNAME",
    "SMTP_LOGIN": "SMTP_USERNAME",
    "SMTP_PASS": "SMTP_PASSWORD",
    "SMTP_FROM": "SMTP_FROM_EMAIL",
    "SMTP_SENDER": "SMTP_FROM_EMAIL",
    "SMTP_FROM_ADDRESS": "SMTP_FROM_EMAIL",
    "SMTP_TLS": "SMTP_SECURITY",
    "SMTP_SSL": "SMTP_SECURITY",
    "SMTP_STARTTLS": "SMTP_SECURITY",
    "FEDFINA_DATABASE_URL": "DATABASE_URL",
    "FEDFINA_DATABASE": "FEDFINA_DB",
    "FEDFINA_LEDGER": "FEDFINA_DB",
    "FEDFINA_DATA": "FEDFINA_DATA_DIR",
    "FEDFINA_WEBHOOK_SECRET": "ELEVENLABS_WEBHOOK_SECRET",
}

# Only names in these families are compared: the environment holds PATH, HOME and
# a hundred others that are nobody's typo. The first word of the name decides.
FAMILIES = ("ELEVENLABS", "ELEVEN", "XI", "OPENAI", "AZURE", "MINIO", "SMTP", "FEDFINA", "DATABASE")

# Real variables of the libraries fedfina uses, or of neighbouring tools, that
# resemble ours: never a typo.
FOREIGN = frozenset({
    "OPENAI_ORG_ID", "OPENAI_ORGANIZATION", "OPENAI_PROJECT_ID", "OPENAI_LOG", "OPENAI_WEBHOOK_SECRET",
    "OPENAI_API_TYPE",
    "AZURE_OPENAI_AD_TOKEN", "OPENAI_BASE_URL_OVERRIDE",
})


@dataclass(frozen=True)
class NearMiss:
    found: str  # the name as set
    meant: str  # the variable fedfina reads

    @property
    def hint(self) -> str:
        return f"ignored: did you mean {self.meant}?"

    def __str__(self) -> str:
        return f"{self.found} is not a fedfina setting and is ignored: did you mean {self.meant}?"


@dataclass(frozen=True)
class Unknown:
    found: str  # FEDFINA_* that resembles nothing of ours

    hint = "ignored: no fedfina setting has this name"

    def __str__(self) -> str:
        return f"{self.found} is not a fedfina setting and is ignored (the FEDFINA_ settings are in README.md)"


def near_misses(names: Iterable[str]) -> list[NearMiss | Unknown]:
    """Each set name that looks like one of fedfina's but is not, with the one meant.

    A name is left alone when the variable it resembles is set as well: the
    MinIO server's MINIO_ROOT_USER beside MINIO_ACCESS_KEY is no mistake.
    """
    names = set(names)
    found: list[NearMiss | Unknown] = []
    for name in sorted(names):
        if name in VARIABLES or name in FOREIGN or name.split("_", 1)[0].upper() not in FAMILIES:
            continue
        meant = _meant(name)
        if meant is None:
            if name.upper().startswith("FEDFINA_"):
                found.append(Unknown(name))
        elif meant not in names:
            found.append(NearMiss(name, meant))
    return found


def _meant(name: str) -> str | None:
    upper = name.upper()
    if upper in VARIABLES:
        return upper  # smtp_host: names are case-sensitive
    if upper in ALIASES:
        return ALIASES[upper]
    # Compared without underscores: ELEVEN_LABS_API_KEY and FEDFINA_DATADIR are then exact.
    squashed = {variable.replace("_", ""): variable for variable in VARIABLES}
    close = difflib.get_close_matches(upper.replace("_", ""), squashed, n=1, cutoff=0.8)
    return squashed[close[0]] if close else None
