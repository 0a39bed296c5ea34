"""`fedfina doctor`: check every configured backend without side effects.

No mail is sent and no conversation is touched; the only write is a tiny probe
object in the bucket (deleted at once) to prove it is writable.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from fedfina_cli.core.config import Settings, without_password
from fedfina_cli.core.errors import FedfinaError, LedgerError
from fedfina_cli.ledger.ledger import ledger_exists, open_ledger, pending_migrations
from fedfina_cli.mail.deliver import SmtpMailer
from fedfina_cli.pipeline.backends import build_backends
from fedfina_cli.services.summarizers.openai_summarizer import OpenAISummarizer

if TYPE_CHECKING:  # minio is imported only when MinIO is configured
    from fedfina_cli.services.elevenlabs import ElevenLabsClient
    from fedfina_cli.services.storage.minio import MinioStorage


# Free space under which the folder is said full (a recording, a report and its email
# need a few MB), and under which it is said nearly full.
DISK_FULL_BYTES = 16 * 1024 * 1024
DISK_LOW_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class Check:
    backend: str
    target: str
    status: str  # ok | failed | embedded (not configured: the embedded backend is used) | warning
    detail: str

    @property
    def passed(self) -> bool:
        return self.status != "failed"


def run_checks(settings: Settings) -> list[Check]:
    backends, _ = build_backends(settings, metrics=lambda call: None, pool_size=1)
    # A misspelt name leaves its backend embedded (.eml files, not mail): each is a failure here.
    checks = [Check("settings", mistake.found, "failed", mistake.hint) for mistake in settings.mistakes]
    checks.append(_ledger(settings))
    storage = backends.storage
    checks.extend(_stored_elsewhere(settings, storage.location))
    if settings.minio_endpoint:
        checks.append(_attempt("storage", f"minio {settings.minio_endpoint}/{settings.minio_bucket}",
                               lambda: _minio(cast("MinioStorage", storage))))
    else:
        checks.append(_writable("storage", settings.data_dir, "local folder"))
    if (source := backends.elevenlabs) is not None:
        checks.append(_attempt("elevenlabs", settings.elevenlabs_base_url, lambda: _elevenlabs(source)))
    else:
        checks.append(Check("elevenlabs", settings.elevenlabs_base_url, "embedded",
                            "ELEVENLABS_API_KEY not set: only --from-file works"))
    summarizer = backends.summarizer
    if isinstance(summarizer, OpenAISummarizer):
        checks.append(_attempt("openai", summarizer.base_url,
                               summarizer.check))
    else:
        checks.append(Check("openai", "-", "embedded", "OPENAI_API_KEY not set: offline summariser"))
    mailer = backends.mailer
    if isinstance(mailer, SmtpMailer):
        checks.append(_attempt("smtp", f"{mailer.host}:{mailer.port} ({mailer.security})",
                               mailer.check))
    else:
        checks.append(_writable("email", settings.outbox_dir, "outbox (.eml files)"))
    return checks


def _attempt(backend: str, target: str, check: Callable[[], str]) -> Check:
    try:
        return Check(backend, target, "ok", check())
    except FedfinaError as exc:
        return Check(backend, target, "failed", str(exc))
    except Exception as exc:  # noqa: BLE001 - a check must report, never crash the table
        return Check(backend, target, "failed", f"{type(exc).__name__}: {exc}")


def _ledger(settings: Settings) -> Check:
    target = without_password(settings.database_url) if settings.database_url else str(settings.db_path)
    if not settings.database_url and not settings.db_path.exists():
        return _writable("ledger", settings.db_path.parent, "will be created on the first run", target=target)
    try:
        waiting, total = pending_migrations(settings)
    except LedgerError as exc:
        return Check("ledger", target, "failed", str(exc))
    answers = "PostgreSQL answers; " if settings.database_url else ""
    if waiting:
        return Check("ledger", target, "ok", f"{answers}{_migrations(len(waiting))} will run on the first run")
    return Check("ledger", target, "ok", f"{answers}{_migrations(total)} applied")


def _migrations(n: int) -> str:
    return f"{n} migration{'' if n == 1 else 's'}"


def _stored_elsewhere(settings: Settings, location: str) -> list[Check]:
    """The ledger's files are where its runs stored them: a warning for each other place
    than today's settings (a show or a resend would look in the wrong one)."""
    if not ledger_exists(settings):
        return []
    try:
        if pending_migrations(settings)[0]:
            return []  # recorded from the migration that adds it on
        ledger = open_ledger(settings, read_only=True, pool_size=1)
        try:
            counts = ledger.storage_counts()
        finally:
            ledger.close()
    except LedgerError:
        return []  # the ledger's own check says what failed
    return [Check("files", place, "warning", f"files of {n} conversation{'s' if n != 1 else ''} are here; the "
                  f"settings now store into {location}")
            for place, n in counts.items() if place != location]


def _writable(backend: str, folder: Path, what: str, target: str | None = None) -> Check:
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    ok = existing.is_dir() and os.access(existing, os.W_OK)
    if not ok:
        return Check(backend, target or str(folder), "failed", f"{existing} is not a writable folder")
    free = shutil.disk_usage(existing).free
    if free < DISK_FULL_BYTES:  # a report and its email no longer fit: every write fails (and is retried)
        return Check(backend, target or str(folder), "failed",
                     f"disk full: {free // 1024} KB free under {existing}; free some space")
    if free < DISK_LOW_BYTES:
        return Check(backend, target or str(folder), "warning",
                     f"{what}; disk nearly full: {free // (1024 * 1024)} MB free")
    return Check(backend, target or str(folder), "ok", what)


def _minio(storage: MinioStorage) -> str:
    if not storage.bucket_exists():
        return "reachable, credentials accepted; the bucket will be created on the first run"
    storage.check_writable()
    if storage.keeps_versions():
        return "bucket reachable and writable; it keeps versions: purge deletes every version of a file"
    return "bucket reachable and writable"


def _elevenlabs(client: ElevenLabsClient) -> str:
    client.list_conversations(None, page_size=1)
    return "API key accepted (conversations readable)"
