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

# Headings options are grouped under in --help (a 24-row screen shows one group at a time).
WHICH = "Which conversations"
HOW = "How the run goes"
ACCOUNT = "Account settings (for this run; `accounts set` stores them)"

ConversationIds = Annotated[list[str] | None, typer.Option(
    "--conversation-id", "-c", metavar="ID", help="Conversation to process (repeatable).",
    show_default=False, rich_help_panel=WHICH)]
Email = Annotated[str | None, typer.Option(
    "--email", "-e", metavar="ADDRESS", help="Recipient (default: the call's email_id variable).",
    show_default=False, rich_help_panel=WHICH)]
AccountId = Annotated[str | None, typer.Option(
    "--account-id", "-a", metavar="ACCOUNT", help="Account folder (default: the call's account_id variable).",
    show_default=False, rich_help_panel=WHICH)]
CsvFile = Annotated[Path | None, typer.Option(
    "--csv", metavar="FILE", help="CSV: conversation_id, email_id (or email), account_id.",
    show_default=False, rich_help_panel=WHICH)]
FromFile = Annotated[list[Path] | None, typer.Option(
    "--from-file", metavar="FILE", help="A saved conversation or webhook JSON (repeatable).",
    show_default=False, rich_help_panel=WHICH)]
Force = Annotated[bool, typer.Option(
    "--force", help="Redo stages already done (a sent email only with --resend).", rich_help_panel=HOW)]
Resend = Annotated[bool, typer.Option(
    "--resend", help="Send the email again, though it was sent.", rich_help_panel=HOW)]
JsonOut = Annotated[bool, typer.Option(
    "--json", help="Print machine-readable JSON.")]


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
# One conversation's account: needed only when the same id is recorded under several accounts.
ItsAccount = Annotated[str | None, typer.Option(
    "--account-id", "-a", metavar="ACCOUNT", help="Its account, when it is recorded under several.",
    show_default=False)]
AccountFilter = Annotated[str | None, typer.Option(
    "--account-id", "-a", metavar="ACCOUNT", help="Only this account's conversations.", show_default=False)]
Quiet = Annotated[bool, typer.Option(
    "--quiet", "-q", help="Print only failures.", rich_help_panel=HOW)]
Concurrency = Annotated[int, typer.Option(
    "--concurrency", "-j", metavar="N", min=1, max=64,
    help="Calls at ElevenLabs and the model at once.", rich_help_panel=HOW)]

# Per-account settings; on `run` they override the account's stored values for one run.
Timezone = Annotated[str | None, typer.Option(
    "--timezone", metavar="ZONE", help="Times in the report and email, e.g. Asia/Kolkata.",
    show_default=False, rich_help_panel=ACCOUNT)]
Cc = Annotated[list[str] | None, typer.Option(
    "--cc", metavar="ADDRESS", help="CC address (repeatable, or comma-separated).",
    show_default=False, rich_help_panel=ACCOUNT)]
Bcc = Annotated[list[str] | None, typer.Option(
    "--bcc", metavar="ADDRESS", help="BCC address (repeatable, or comma-separated).",
    show_default=False, rich_help_panel=ACCOUNT)]
Subject = Annotated[str | None, typer.Option(
    "--subject", metavar="TEMPLATE", help="Email subject template; fields {title} {applicant} {conversation_id} "
                                          "{account_id} {date} (default: Loan interview – {applicant} – {date}).",
    show_default=False, rich_help_panel=ACCOUNT)]
PromptFile = Annotated[Path | None, typer.Option(
    "--prompt-file", metavar="FILE", help="The summariser's system prompt.",
    show_default=False, rich_help_panel=ACCOUNT)]
SummaryLanguage = Annotated[str | None, typer.Option(
    "--summary-language", metavar="LANGUAGE", help="The summary's language (default English).",
    show_default=False, rich_help_panel=ACCOUNT)]
LinkExpiry = Annotated[float | None, typer.Option(
    "--link-expiry-hours", metavar="HOURS", help="Links in the email last this long (max 168).",
    show_default=False, rich_help_panel=ACCOUNT)]
AttachmentLimit = Annotated[float | None, typer.Option(
    "--attachment-limit-mb", metavar="MB", help="Attach the PDF up to this size, else link it (10).",
    show_default=False, rich_help_panel=ACCOUNT)]

Redact = Annotated[str | None, typer.Option(
    "--redact", metavar="MODE", help="Mask identifiers: llm (before the model), stored (everywhere) or "
    "none. Default $FEDFINA_REDACT, else llm.",
    show_default=False, rich_help_panel=ACCOUNT)]


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
