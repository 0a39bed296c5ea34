"""The options commands share, and option groups: one definition for the selector
options of every processing command and the per-account settings of `run` and
`accounts set`."""

import dataclasses
import functools
import inspect
import typing
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from fedfina_cli.pipeline.jobs import DEFAULT_CONCURRENCY

ConversationIds = Annotated[list[str] | None, typer.Option(
    "--conversation-id", "-c", metavar="ID", help="Conversation to process (repeatable).", show_default=False)]
Email = Annotated[str | None, typer.Option(
    "--email", "-e", metavar="ADDRESS", help="Recipient (default: the conversation's email_id dynamic variable).",
    show_default=False)]
AccountId = Annotated[str | None, typer.Option(
    "--account-id", "-a", metavar="ACCOUNT", help="Account folder (default: the conversation's account_id "
                               "dynamic variable).", show_default=False)]
CsvFile = Annotated[Path | None, typer.Option(
    "--csv", metavar="FILE", help="CSV with a header row: conversation_id, email_id (or email), account_id.",
    show_default=False)]
FromFile = Annotated[list[Path] | None, typer.Option(
    "--from-file", metavar="FILE", help="A saved conversation JSON or post-call webhook payload, instead of the "
                        "API (repeatable).", show_default=False)]
Force = Annotated[bool, typer.Option(
    "--force", help="Redo stages already completed (an email already sent is not sent again: add --resend).")]
Resend = Annotated[bool, typer.Option("--resend", help="Send the email again even if it was sent.")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


class RecordFormat(str, Enum):  # for output that is not one table (show, stats)
    table = "table"
    json = "json"


Format = Annotated[OutputFormat | None, typer.Option(
    "--format", metavar="table|json|csv", help="table (people), json (scripts) or csv (spreadsheets).",
    show_default=False)]
RecordFormatOption = Annotated[RecordFormat | None, typer.Option(
    "--format", metavar="table|json", help="table (people) or json (scripts).", show_default=False)]
# `status --csv` predates --format (SPEC; users' scripts); kept, out of the help.
CsvOut = Annotated[bool, typer.Option("--csv", hidden=True, help="Same as --format csv.")]
AccountFilter = Annotated[str | None, typer.Option(
    "--account-id", "-a", metavar="ACCOUNT", help="Only this account's conversations.", show_default=False)]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print only failures.")]
Concurrency = Annotated[int, typer.Option(
    "--concurrency", "-j", metavar="N", min=1, max=64,
    help="Conversations at ElevenLabs and the model at once; reports and emails are made alongside.")]

# Per-account settings; on `run` they override the account's stored values for one run.
Timezone = Annotated[str | None, typer.Option(
    "--timezone", metavar="ZONE", help="Time zone for times in the report and email, e.g. Asia/Kolkata.",
    show_default=False)]
Cc = Annotated[list[str] | None, typer.Option(
    "--cc", metavar="ADDRESS", help="CC address (repeatable, or comma-separated).", show_default=False)]
Bcc = Annotated[list[str] | None, typer.Option(
    "--bcc", metavar="ADDRESS", help="BCC address (repeatable, or comma-separated).", show_default=False)]
Subject = Annotated[str | None, typer.Option(
    "--subject", metavar="TEMPLATE", help="Email subject template; fields {title} {applicant} {conversation_id} "
                                          "{account_id} {date} (default: Loan interview – {applicant} – {date}).",
    show_default=False)]
PromptFile = Annotated[Path | None, typer.Option(
    "--prompt-file", metavar="FILE", help="System prompt for the summariser.", show_default=False)]
SummaryLanguage = Annotated[str | None, typer.Option(
    "--summary-language", metavar="LANGUAGE", help="Language the summary is written in (default English).",
    show_default=False)]
LinkExpiry = Annotated[float | None, typer.Option(
    "--link-expiry-hours", metavar="HOURS", help="Lifetime of presigned links in the email (at most 168).",
    show_default=False)]
AttachmentLimit = Annotated[float | None, typer.Option(
    "--attachment-limit-mb", metavar="MB", help="Attach the PDF up to this size, else send a link (default 10).",
    show_default=False)]

Redact = Annotated[str | None, typer.Option(
    "--redact", metavar="none|llm|stored", help="Mask identifiers before the summariser (llm), also in the "
    "stored transcript, PDF and email (stored), or not at all (none). Default $FEDFINA_REDACT, else llm.",
    show_default=False)]


class StatusFilter(str, Enum):
    queued = "queued"
    pending = "pending"
    processing = "processing"
    completed = "completed"
    failed = "failed"


# --- option groups -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Targets:
    """Which conversations: every processing command takes these."""

    conversation_id: ConversationIds = None
    account_id: AccountId = None
    csv: CsvFile = None


@dataclasses.dataclass(frozen=True)
class Batch:
    """How a batch runs and reports."""

    concurrency: Concurrency = DEFAULT_CONCURRENCY
    json_out: JsonOut = False
    quiet: Quiet = False


@dataclasses.dataclass(frozen=True)
class AccountFlags:
    """Per-account settings: stored by `accounts set`, or for one `run` over the stored ones."""

    timezone: Timezone = None
    cc: Cc = None
    bcc: Bcc = None
    subject: Subject = None
    prompt_file: PromptFile = None
    summary_language: SummaryLanguage = None
    link_expiry_hours: LinkExpiry = None
    attachment_limit_mb: AttachmentLimit = None
    redact: Redact = None

    def overrides(self):
        """The values given, validated (UsageError naming the flag)."""
        from fedfina_cli.core.accounts import validated_overrides

        return validated_overrides(
            timezone=self.timezone, cc=self.cc, bcc=self.bcc, subject_template=self.subject,
            prompt_file=self.prompt_file, summary_language=self.summary_language,
            link_expiry_hours=self.link_expiry_hours, attachment_limit_mb=self.attachment_limit_mb,
            redact=self.redact)


def grouped(func):
    """Let a command take option groups: a parameter annotated with a group class
    stands for that group's options (in its place in --help) and receives them as one value."""
    signature = inspect.signature(func, eval_str=True)
    groups = {name: param.annotation for name, param in signature.parameters.items()
              if dataclasses.is_dataclass(param.annotation)}
    params = []
    for name, param in signature.parameters.items():
        if name not in groups:
            params.append(param)
            continue
        hints = typing.get_type_hints(groups[name], include_extras=True)
        params += [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default,
                                     annotation=hints[f.name]) for f in dataclasses.fields(groups[name])]

    @functools.wraps(func)
    def command(**values):
        for name, group in groups.items():
            values[name] = group(**{f.name: values.pop(f.name) for f in dataclasses.fields(group)})
        return func(**values)

    command.__signature__ = signature.replace(parameters=[
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params])
    return command
