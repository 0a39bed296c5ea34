"""Per-account settings: defaults, the `account_settings` row, and one run's flags.

Precedence, lowest first: built-in defaults, the account's row in the ledger,
flags given to this run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fedfina_cli.core.config import Settings
from fedfina_cli.core.errors import InvalidValue, UsageError
from fedfina_cli.core.templates import DEFAULT_SUBJECT_TEMPLATE, check_subject_template
from fedfina_cli.core.validation import email_address

DEFAULT_TIMEZONE = "Asia/Kolkata"
MAX_LINK_EXPIRY_SECONDS = 7 * 24 * 3600  # the S3 presigned-URL maximum
KEEP = 0  # retention_days: files are kept (purge leaves them)


@dataclass(frozen=True)
class AccountSettings:
    timezone: str = DEFAULT_TIMEZONE
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    subject_template: str = DEFAULT_SUBJECT_TEMPLATE
    prompt_file: Path | None = None
    summary_language: str = "English"
    link_expiry_seconds: int = MAX_LINK_EXPIRY_SECONDS
    attachment_limit_bytes: int = 10 * 1024 * 1024
    redact: str = "llm"  # none | llm | stored (SPEC "Privacy"); FEDFINA_REDACT sets the default
    # Days its conversations' files are kept after they finished; 0: kept (SPEC "Retention and
    # legal hold"); FEDFINA_RETENTION_DAYS sets the default.
    retention_days: int = KEEP

    @property
    def masks_documents(self) -> bool:
        """Whether what people read of a call (the PDF, the email, the console's transcript) shows
        its identifiers masked: under every mode but `none` (SPEC "The officer's brief")."""
        return self.redact != "none"

    def overridden(self, overrides: AccountOverrides) -> AccountSettings:
        changes = {f.name: getattr(overrides, f.name) for f in fields(overrides)
                   if getattr(overrides, f.name) is not None}
        return replace(self, **changes)


@dataclass(frozen=True)
class AccountOverrides:
    """Values given for one run or stored for one account; None means "not set"."""

    timezone: str | None = None
    cc: tuple[str, ...] | None = None
    bcc: tuple[str, ...] | None = None
    subject_template: str | None = None
    prompt_file: Path | None = None
    summary_language: str | None = None
    link_expiry_seconds: int | None = None
    attachment_limit_bytes: int | None = None
    redact: str | None = None
    retention_days: int | None = None


def defaults(settings: Settings) -> AccountSettings:
    """The defaults the environment sets (FEDFINA_REDACT, FEDFINA_RETENTION_DAYS)."""
    return AccountSettings(redact=settings.redaction, retention_days=settings.retention_days or KEEP)


# account_settings column -> AccountOverrides field
COLUMNS = {
    "timezone": "timezone",
    "cc_addresses": "cc",
    "bcc_addresses": "bcc",
    "email_subject_template": "subject_template",
    "prompt_file": "prompt_file",
    "summary_language": "summary_language",
    "link_expiry_seconds": "link_expiry_seconds",
    "attachment_limit_bytes": "attachment_limit_bytes",
    "redact": "redact",
    "retention_days": "retention_days",
}


def from_row(row: dict[str, Any] | None) -> AccountOverrides:
    if not row:
        return AccountOverrides()
    values: dict[str, Any] = {}
    for column, name in COLUMNS.items():
        value = row.get(column)
        if value is None or value == "":
            continue
        if name in ("cc", "bcc"):
            value = tuple(a.strip() for a in value.split(",") if a.strip())
        elif name == "prompt_file":
            value = Path(value)
        values[name] = value
    return AccountOverrides(**values)


def to_row(overrides: AccountOverrides) -> dict[str, Any]:
    row = {}
    for column, name in COLUMNS.items():
        value = getattr(overrides, name)
        if value is None:
            continue
        if name in ("cc", "bcc"):
            value = ",".join(value)
        elif name == "prompt_file":
            value = str(value)
        row[column] = value
    return row


# How `accounts show`/`set` present each setting: by the flag that sets it, in its units.
_SHOWN: dict[str, tuple[str, Callable[[Any], str]]] = {
    "timezone": ("timezone", lambda v: v),
    "cc": ("cc", ", ".join),
    "bcc": ("bcc", ", ".join),
    "subject_template": ("subject", lambda v: v),
    "prompt_file": ("prompt_file", lambda v: "(the packaged prompt)" if v is None else str(v)),
    "summary_language": ("summary_language", lambda v: v),
    "link_expiry_seconds": ("link_expiry_hours", lambda v: f"{v / 3600:g}"),
    "attachment_limit_bytes": ("attachment_limit_mb", lambda v: f"{v / (1024 * 1024):g}"),
    "redact": ("redact", lambda v: v),
    "retention_days": ("retention_days", lambda v: "keep" if v == KEEP else str(v)),
}
SHOWN_ORDER = [name for name, _ in _SHOWN.values()]


def described(stored: AccountOverrides, defaults: AccountSettings | None = None) -> list[dict[str, str]]:
    """The settings in effect, one row each: setting (its flag's name), value, source."""
    effective = (defaults or AccountSettings()).overridden(stored)
    rows = []
    for field in fields(AccountSettings):
        name, show = _SHOWN[field.name]
        rows.append({"setting": name, "value": show(getattr(effective, field.name)),
                     "source": "account" if getattr(stored, field.name) is not None else "default"})
    return rows


def shown_overrides(stored: AccountOverrides) -> dict[str, str]:
    """The settings an account sets, by their flags' names and in their units (for a table)."""
    shown = {}
    for field in fields(AccountSettings):
        value = getattr(stored, field.name)
        if value is not None:
            name, show = _SHOWN[field.name]
            shown[name] = show(value)
    return shown


def validated_overrides(*, timezone: str | None = None, cc: list[str] | None = None,
                        bcc: list[str] | None = None, subject_template: str | None = None,
                        prompt_file: Path | None = None, summary_language: str | None = None,
                        link_expiry_hours: float | None = None,
                        attachment_limit_mb: float | None = None, redact: str | None = None,
                        retention_days: str | None = None) -> AccountOverrides:
    """Overrides from flags, each checked; raises UsageError naming the flag."""

    if timezone is not None:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise UsageError(f"--timezone {timezone!r}: not a time zone name like Asia/Kolkata") from None

    def addresses(flag: str, values: list[str] | None) -> tuple[str, ...] | None:
        if values is None:
            return None
        found = tuple(a.strip() for value in values for a in value.split(",") if a.strip())
        for address in found:
            try:
                email_address(address)
            except InvalidValue as exc:
                raise UsageError(f"{flag} {address!r}: {exc.reason}") from None
        return found

    if subject_template is not None:
        try:
            check_subject_template(subject_template)
        except ValueError as exc:
            raise UsageError(f"--subject {subject_template!r}: {exc}") from None
    if prompt_file is not None and not prompt_file.is_file():
        raise UsageError(f"--prompt-file {prompt_file}: no such file")
    if summary_language is not None and not (0 < len(summary_language.strip()) <= 40):
        raise UsageError("--summary-language: expected a language name like English or Hindi")
    if link_expiry_hours is not None and not 0 < link_expiry_hours <= MAX_LINK_EXPIRY_SECONDS / 3600:
        raise UsageError("--link-expiry-hours: expected more than 0 and at most 168 (7 days)")
    if attachment_limit_mb is not None and attachment_limit_mb <= 0:
        raise UsageError("--attachment-limit-mb: expected a size in MB above 0")
    if redact is not None:
        redact = redact.lower()
        if redact not in ("none", "llm", "stored"):
            raise UsageError(f"--redact {redact!r}: expected none, llm or stored")
    kept: int | None = None
    if retention_days is not None:
        if retention_days.strip().lower() == "keep":
            kept = KEEP
        elif retention_days.strip().isdigit() and int(retention_days) >= 1:
            kept = int(retention_days)
        else:
            raise UsageError(f"--retention-days {retention_days!r}: expected a whole number of days (at least 1), "
                             "or keep")
    return AccountOverrides(
        timezone=timezone,
        cc=addresses("--cc", cc),
        bcc=addresses("--bcc", bcc),
        subject_template=subject_template,
        prompt_file=prompt_file.resolve() if prompt_file is not None else None,
        summary_language=summary_language.strip() if summary_language is not None else None,
        link_expiry_seconds=int(link_expiry_hours * 3600) if link_expiry_hours is not None else None,
        attachment_limit_bytes=int(attachment_limit_mb * 1024 * 1024) if attachment_limit_mb is not None
        else None,
        redact=redact,
        retention_days=kept,
    )
