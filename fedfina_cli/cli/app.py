"""The `fedfina` command line: parses flags, prints, and calls the library.

Heavy modules (the pipeline's PDF, OpenAI and MinIO code, sqlite-utils) are
imported inside the commands so that `fedfina --help` starts fast.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from fedfina_cli import __version__
from fedfina_cli.core.errors import ExitCode, FedfinaError

class _Command(typer.core.TyperCommand):
    """Help that reads like other tools': `show CONVERSATION_ID`, not `{CONVERSATION_ID}`,
    and no `<bool>` after a flag or `<str>` after a named argument."""

    def collect_usage_pieces(self, ctx):
        return [piece[1:-1] if piece.startswith("{") and piece.endswith("}") else piece
                for piece in super().collect_usage_pieces(ctx)]

    def get_params(self, ctx):
        params = super().get_params(ctx)
        for param in params:
            if isinstance(param, typer.core.TyperArgument) or getattr(param, "is_flag", False):
                param.display_type_rich = lambda ctx: None  # the name (or the flag) says it all
        return params


class _Group(typer.core.TyperGroup):
    def get_params(self, ctx):
        params = super().get_params(ctx)
        for param in params:
            if getattr(param, "is_flag", False):
                param.display_type_rich = lambda ctx: None
        return params


app = typer.Typer(
    cls=_Group,
    name="fedfina",
    help="Post-process ElevenLabs loan-interview calls: transcript, summary, PDF report, email, "
         "all recorded in a SQLite ledger.\n\n"
         "Try it with no keys and no servers:  fedfina demo",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,  # locals hold API keys
    context_settings={"help_option_names": ["-h", "--help"]},
)
accounts_app = typer.Typer(cls=_Group, help="Per-account settings: time zone, CC/BCC, subject, prompt, language, "
                                "link expiry, attachment limit.", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")


@dataclass
class _State:
    env_file: Optional[Path] = None
    db: Optional[Path] = None
    debug: bool = False


state = _State()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fedfina {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    env_file: Annotated[Optional[Path], typer.Option(
        "--env-file", metavar="FILE", help="Read configuration from this file instead of ./.env.",
        show_default=False)] = None,
    db: Annotated[Optional[Path], typer.Option(
        "--db", metavar="PATH", help="The ledger (SQLite file) to use; default $FEDFINA_DB, else ./fedfina.db.",
        show_default=False)] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    state.env_file = env_file
    state.db = db
    state.debug = debug


# --- shared options -------------------------------------------------------------

ConversationIds = Annotated[Optional[list[str]], typer.Option(
    "--conversation-id", "-c", metavar="ID", help="Conversation to process (repeatable).", show_default=False)]
Email = Annotated[Optional[str], typer.Option(
    "--email", "-e", metavar="ADDRESS", help="Recipient (default: the conversation's email_id dynamic variable).",
    show_default=False)]
AccountId = Annotated[Optional[str], typer.Option(
    "--account-id", "-a", metavar="ACCOUNT", help="Account folder (default: the conversation's account_id "
                               "dynamic variable).", show_default=False)]
CsvFile = Annotated[Optional[Path], typer.Option(
    "--csv", metavar="FILE", help="CSV with a header row: conversation_id, email_id (or email), account_id.",
    show_default=False)]
FromFile = Annotated[Optional[list[Path]], typer.Option(
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


Format = Annotated[Optional[OutputFormat], typer.Option(
    "--format", metavar="table|json|csv", help="table (people), json (scripts) or csv (spreadsheets).", show_default=False)]
RecordFormatOption = Annotated[Optional[RecordFormat], typer.Option(
    "--format", metavar="table|json", help="table (people) or json (scripts).", show_default=False)]
# `status --csv` predates --format (SPEC; users' scripts); kept, out of the help.
CsvOut = Annotated[bool, typer.Option("--csv", hidden=True, help="Same as --format csv.")]
AccountFilter = Annotated[Optional[str], typer.Option(
    "--account-id", "-a", metavar="ACCOUNT", help="Only this account's conversations.", show_default=False)]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print only failures.")]
Concurrency = Annotated[int, typer.Option(
    "--concurrency", "-j", metavar="N", min=1, max=64, help="Conversations processed in parallel.")]
DEFAULT_CONCURRENCY = 8

# Per-account settings; on `run` they override the account's stored values for one run.
Timezone = Annotated[Optional[str], typer.Option(
    "--timezone", metavar="ZONE", help="Time zone for times in the report and email, e.g. Asia/Kolkata.", show_default=False)]
Cc = Annotated[Optional[list[str]], typer.Option(
    "--cc", metavar="ADDRESS", help="CC address (repeatable, or comma-separated).", show_default=False)]
Bcc = Annotated[Optional[list[str]], typer.Option(
    "--bcc", metavar="ADDRESS", help="BCC address (repeatable, or comma-separated).", show_default=False)]
Subject = Annotated[Optional[str], typer.Option(
    "--subject", metavar="TEMPLATE", help="Email subject template; fields {title} {applicant} {conversation_id} "
                                          "{account_id} {date} (default: Loan interview – {applicant} – {date}).",
    show_default=False)]
PromptFile = Annotated[Optional[Path], typer.Option(
    "--prompt-file", metavar="FILE", help="System prompt for the summariser.", show_default=False)]
SummaryLanguage = Annotated[Optional[str], typer.Option(
    "--summary-language", metavar="LANGUAGE", help="Language the summary is written in (default English).", show_default=False)]
LinkExpiry = Annotated[Optional[float], typer.Option(
    "--link-expiry-hours", metavar="HOURS", help="Lifetime of presigned links in the email (at most 168).",
    show_default=False)]
AttachmentLimit = Annotated[Optional[float], typer.Option(
    "--attachment-limit-mb", metavar="MB", help="Attach the PDF up to this size, else send a link (default 10).",
    show_default=False)]


class StatusFilter(str, Enum):
    pending = "pending"
    processing = "processing"
    completed = "completed"
    failed = "failed"


@dataclass(frozen=True)
class _Selectors:
    conversation_ids: Optional[list[str]] = None
    email: Optional[str] = None
    account_id: Optional[str] = None
    csv: Optional[Path] = None
    from_files: Optional[list[Path]] = None


# --- processing commands -----------------------------------------------------------


@app.command(cls=_Command)
def run(
    conversation_id: ConversationIds = None,
    email: Email = None,
    account_id: AccountId = None,
    csv: CsvFile = None,
    from_file: FromFile = None,
    failed: Annotated[bool, typer.Option(
        "--failed", help="Also reprocess conversations whose last status is failed "
                         "(only --account-id's, when given).")] = False,
    concurrency: Concurrency = DEFAULT_CONCURRENCY,
    force: Force = False,
    resend: Resend = False,
    json_out: JsonOut = False,
    quiet: Quiet = False,
    timezone: Timezone = None,
    cc: Cc = None,
    bcc: Bcc = None,
    subject: Subject = None,
    prompt_file: PromptFile = None,
    summary_language: SummaryLanguage = None,
    link_expiry_hours: LinkExpiry = None,
    attachment_limit_mb: AttachmentLimit = None,
) -> None:
    """Fetch, summarise, report and email, skipping stages already done.

    [bold]Examples[/bold]

      fedfina run -c conv_7201k4b3qz9fe8st0m5xkcw2hj4n -e officer@fedfina.in -a acc123

      fedfina run --csv calls.csv --concurrency 16

      fedfina run --failed --account-id acc123

      fedfina run --from-file webhook.json
    """
    from fedfina_cli.core.accounts import validated_overrides

    overrides = _checked(lambda: validated_overrides(
        timezone=timezone, cc=cc, bcc=bcc, subject_template=subject, prompt_file=prompt_file,
        summary_language=summary_language, link_expiry_hours=link_expiry_hours,
        attachment_limit_mb=attachment_limit_mb))
    _process(("fetch", "summarize", "report", "email"),
             _Selectors(conversation_id, email, account_id, csv, from_file), command="run",
             failed=failed, concurrency=concurrency, force=force, resend=resend, json_out=json_out,
             quiet=quiet, overrides=overrides)


@app.command(cls=_Command)
def fetch(
    conversation_id: ConversationIds = None,
    email: Email = None,
    account_id: AccountId = None,
    csv: CsvFile = None,
    from_file: FromFile = None,
    concurrency: Concurrency = DEFAULT_CONCURRENCY,
    force: Force = False,
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Store the conversation JSON, transcript and audio (ElevenLabs -> storage).

    [bold]Example[/bold]:  fedfina fetch -c conv_7201k4b3qz9fe8st0m5xkcw2hj4n -a acc123
    """
    _process(("fetch",), _Selectors(conversation_id, email, account_id, csv, from_file), command="fetch",
             concurrency=concurrency, force=force, json_out=json_out, quiet=quiet)


def _artifact_stage(stage: str, help_text: str) -> None:
    """Register a stage command that works from stored artifacts (summarize, report)."""

    def command(
        conversation_id: ConversationIds = None,
        account_id: AccountId = None,
        csv: CsvFile = None,
        concurrency: Concurrency = DEFAULT_CONCURRENCY,
        force: Force = False,
        json_out: JsonOut = False,
        quiet: Quiet = False,
    ) -> None:
        _process((stage,), _Selectors(conversation_id, None, account_id, csv), command=stage,
                 concurrency=concurrency, force=force, json_out=json_out, quiet=quiet)

    command.__doc__ = f"{help_text}\n\n    [bold]Example[/bold]:  fedfina {stage} -c conv_7201k4b3qz9fe8st0m5xkcw2hj4n\n"
    app.command(name=stage, cls=_Command)(command)


_artifact_stage("summarize", "Summarise a fetched transcript into the structured summary JSON.")
_artifact_stage("report", "Render the PDF report from the summary and the conversation.")


@app.command(cls=_Command)
def email(
    conversation_id: ConversationIds = None,
    email: Email = None,
    account_id: AccountId = None,
    csv: CsvFile = None,
    concurrency: Concurrency = DEFAULT_CONCURRENCY,
    resend: Resend = False,
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Email the PDF and summary to the recipient (never twice without --resend).

    [bold]Example[/bold]:  fedfina email -c conv_7201k4b3qz9fe8st0m5xkcw2hj4n --resend
    """
    _process(("email",), _Selectors(conversation_id, email, account_id, csv), command="email",
             concurrency=concurrency, resend=resend, json_out=json_out, quiet=quiet)


@app.command(cls=_Command)
def sync(
    agent_id: Annotated[str, typer.Option("--agent-id", metavar="AGENT", help="The ElevenLabs agent whose calls to process.")],
    since: Annotated[Optional[str], typer.Option(
        "--since", metavar="DATE", help="Only calls that started after this date (default: the last sync's watermark).",
        show_default=False)] = None,
    email: Email = None,
    account_id: AccountId = None,
    concurrency: Concurrency = DEFAULT_CONCURRENCY,
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Process an agent's new finished calls (for cron); a not-ready call is picked up next time.

    Email and account come from each call's dynamic variables, else from
    --email / --account-id.

    [bold]Example[/bold] (crontab, every 15 minutes):

      */15 * * * * cd /srv/fedfina && fedfina sync --agent-id agent_4501k2s8yq0efrpt6ah0v7d3m9xw --quiet
    """
    from fedfina_cli.pipeline import sync as syncing
    from fedfina_cli.core import validation
    from fedfina_cli.core.config import load_settings
    from fedfina_cli.core.errors import UsageError
    from fedfina_cli.pipeline.jobs import RunOptions
    from fedfina_cli.pipeline.session import Session
    from fedfina_cli.ledger.queries import parse_since

    terminal = _terminal(json_mode=json_out, quiet=quiet)
    with _user_errors(terminal):
        settings = load_settings(state.env_file)
        terminal.redact = settings.redact
        validation.agent_id(agent_id)
        if email is not None:
            validation.email_address(email)
        if account_id is not None:
            validation.account_id(account_id)
        since_iso = parse_since(since)
        if not settings.elevenlabs_api_key:
            raise UsageError("sync lists conversations from the ElevenLabs API: set ELEVENLABS_API_KEY")
        with Session(settings, "sync", concurrency) as session:
            _announce(terminal, session)
            previous = session.ledger.watermark(agent_id)
            if since_iso is not None:
                from datetime import datetime

                after = int(datetime.fromisoformat(since_iso.replace("Z", "+00:00")).timestamp())
            else:
                # Re-list the watermark's own second: calls that started in it may be unfinished.
                after = previous - 1 if previous is not None else None
            plan = syncing.plan(session.backends.source, session.ledger, agent_id, after, email, account_id)
            for warning in plan.warnings:
                terminal.warn(warning)
            terminal.info(f"{len(plan.listed)} calls listed: {len(plan.jobs)} to process, "
                          f"{len(plan.already_completed)} already done, {len(plan.not_ready)} not ready yet")
            outcomes = _run_jobs(terminal, session, plan.jobs, [], RunOptions())
            watermark = syncing.next_watermark(plan, outcomes, previous)
            if watermark is not None and watermark != previous:
                session.ledger.set_watermark(agent_id, watermark)
            code = session.finish(outcomes)
    if code:
        raise typer.Exit(code)


@app.command(cls=_Command)
def demo(
    directory: Annotated[Path, typer.Option(
        "--dir", metavar="DIR", help="Folder for the demo's data, outbox and ledger.")] = Path("fedfina-demo"),
) -> None:
    """Run the whole pipeline offline on a bundled Hindi/English loan interview.

    Needs no keys and no servers, and ignores any configured ones: storage is
    DIR, the email goes to DIR/outbox, the ledger is DIR/fedfina.db.

    [bold]Example[/bold]:  fedfina demo --dir /tmp/fedfina-demo
    """
    from fedfina_cli.pipeline import demo as demo_module
    from fedfina_cli.pipeline.jobs import RunOptions
    from fedfina_cli.pipeline.session import Session

    settings = demo_module.demo_settings(directory)
    terminal = _terminal()
    with _user_errors(terminal):
        with Session(settings, "demo") as session:
            _announce(terminal, session, warn=False)
            # Every demo run redoes every stage, so it always shows the whole job.
            outcomes = _run_jobs(terminal, session, [demo_module.demo_job()], [],
                                 RunOptions(force=True, resend=True))
            code = session.finish(outcomes)
    if code:
        raise typer.Exit(code)
    terminal.out.print("")
    for label, path in demo_module.demo_paths(settings, outcomes[0]).items():
        terminal.out.print(f"{label:<11} {path}", markup=False)
    import shlex

    db, data = shlex.quote(str(settings.db_path)), shlex.quote(str(settings.data_dir))
    terminal.out.print(f"\nOpen the PDF and read the .eml. What the ledger recorded:\n"
                       f"  fedfina --db {db} status\n"
                       f"  FEDFINA_DATA_DIR={data} fedfina --db {db} show {outcomes[0].conversation_id}\n"
                       "Then see `fedfina --help` for real runs.", markup=False)


# --- looking at the ledger -------------------------------------------------------


@app.command(cls=_Command)
def status(
    account_id: AccountFilter = None,
    status_filter: Annotated[Optional[StatusFilter], typer.Option(
        "--status", metavar="STATUS", help="Only conversations with this status: pending, processing, completed or failed.", show_default=False)] = None,
    limit: Annotated[int, typer.Option("--limit", metavar="N", min=1, help="At most this many rows, newest first.")] = 50,
    output_format: Format = None,
    json_out: JsonOut = False,
    csv_out: CsvOut = False,
) -> None:
    """List conversations in the ledger, newest first.

    [bold]Examples[/bold]:  fedfina status --status failed    fedfina status -a acc123 --format csv > acc123.csv
    """
    from fedfina_cli.core import validation

    terminal = _terminal()
    with _user_errors(terminal), _ledger(terminal) as ledger:
        if account_id is not None:
            validation.account_id(account_id)
        rows = ledger.conversations(account_id, status_filter.value if status_filter else None, limit)
        terminal.rows(rows, ["conversation_id", "account_id", "status", "current_step", "email_id",
                             "updated_at", "error_message"], _format(output_format, json_out, csv_out),
                      title=f"{len(rows)} conversation{'' if len(rows) == 1 else 's'} in {ledger.path} (newest first, times UTC)",
                      droppable=["email_id", "current_step", "account_id"])


@app.command(cls=_Command)
def show(
    conversation_id: Annotated[str, typer.Argument(
        help="The conversation to show.", metavar="CONVERSATION_ID", show_default=False)],
    account_id: Annotated[Optional[str], typer.Option(
        "--account-id", "-a", metavar="ACCOUNT", help="Its account, when it is recorded under several.",
        show_default=False)] = None,
    output_format: RecordFormatOption = None,
    json_out: JsonOut = False,
) -> None:
    """One conversation: stages with times, files (fresh links or paths), audit log, last error.

    [bold]Example[/bold]:  fedfina show conv_7201k4b3qz9fe8st0m5xkcw2hj4n
    """
    from fedfina_cli.core import validation
    from fedfina_cli.pipeline.backends import storage_for
    from fedfina_cli.ledger.queries import conversation_record

    terminal = _terminal()
    with _user_errors(terminal), _ledger(terminal) as ledger:
        validation.conversation_id(conversation_id)
        if account_id is not None:
            validation.account_id(account_id)
        settings = _settings(terminal)
        storage = storage_for(settings, metrics=lambda call: None)

        def locate(key: str) -> str:
            where = storage.locate(key)
            if not settings.minio_endpoint and not Path(where).exists():
                # Another data folder than the run's (the demo's, say): say so, not a dead path.
                return f"{where} (not found: set FEDFINA_DATA_DIR to the folder the run stored into)"
            return where

        record = conversation_record(ledger, conversation_id, account_id, locate)
        if _format(output_format, json_out) == "json":
            terminal.json(record)
            return
        _print_record(terminal, record, ledger.path)


@app.command(cls=_Command)
def stats(
    since: Annotated[Optional[str], typer.Option(
        "--since", metavar="DATE", help="Only activity from this date (e.g. 2026-11-01).",
        show_default=False)] = None,
    output_format: RecordFormatOption = None,
    json_out: JsonOut = False,
) -> None:
    """Counts, success rate, stage and API timings, bytes stored and tokens used.

    [bold]Example[/bold]:  fedfina stats --since 2026-11-01 --json
    """
    from fedfina_cli.ledger.queries import collect_stats, parse_since

    terminal = _terminal()
    with _user_errors(terminal), _ledger(terminal) as ledger:
        figures = collect_stats(ledger, parse_since(since))
        if _format(output_format, json_out) == "json":
            terminal.json(figures)
            return
        _print_stats(terminal, figures, ledger.path)


# --- accounts ------------------------------------------------------------------------


@accounts_app.command("set", cls=_Command)
def accounts_set(
    account_id: Annotated[str, typer.Argument(help="The account to configure.", metavar="ACCOUNT_ID", show_default=False)],
    timezone: Timezone = None,
    cc: Cc = None,
    bcc: Bcc = None,
    subject: Subject = None,
    prompt_file: PromptFile = None,
    summary_language: SummaryLanguage = None,
    link_expiry_hours: LinkExpiry = None,
    attachment_limit_mb: AttachmentLimit = None,
    output_format: Format = None,
    json_out: JsonOut = False,
) -> None:
    """Store settings for one account (only the flags given change), then show them.

    [bold]Example[/bold]:  fedfina accounts set acc123 --timezone Asia/Kolkata --cc credit@fedfina.in
    """
    from fedfina_cli.core import accounts, validation
    from fedfina_cli.core.errors import UsageError

    terminal = _terminal()
    with _user_errors(terminal), _ledger(terminal, read_only=False) as ledger:
        validation.account_id(account_id)
        overrides = accounts.validated_overrides(
            timezone=timezone, cc=cc, bcc=bcc, subject_template=subject, prompt_file=prompt_file,
            summary_language=summary_language, link_expiry_hours=link_expiry_hours,
            attachment_limit_mb=attachment_limit_mb)
        values = accounts.to_row(overrides)
        if not values:
            raise UsageError("nothing to set: pass at least one setting, e.g. --timezone Asia/Kolkata")
        fmt = _format(output_format, json_out)
        ledger.set_account_settings(account_id, values)
        _print_account(terminal, ledger, account_id, fmt)


@accounts_app.command("show", cls=_Command)
def accounts_show(
    account_id: Annotated[str, typer.Argument(help="The account to show.", metavar="ACCOUNT_ID", show_default=False)],
    output_format: Format = None,
    json_out: JsonOut = False,
) -> None:
    """The settings in effect for one account (stored values over the defaults)."""
    from fedfina_cli.core import validation

    terminal = _terminal()
    with _user_errors(terminal), _ledger(terminal, must_exist=False) as ledger:
        validation.account_id(account_id)
        _print_account(terminal, ledger, account_id, _format(output_format, json_out))


def _print_account(terminal, ledger, account_id: str, fmt: str) -> None:
    from fedfina_cli.core import accounts

    rows = accounts.described(accounts.from_row(ledger.account_settings(account_id)))
    terminal.rows(rows, ["setting", "value", "source"], fmt, title=f"account {account_id}")


@accounts_app.command("list", cls=_Command)
def accounts_list(output_format: Format = None, json_out: JsonOut = False, csv_out: CsvOut = False) -> None:
    """Every account with stored settings."""
    from fedfina_cli.core.accounts import COLUMNS

    terminal = _terminal()
    with _user_errors(terminal), _ledger(terminal, must_exist=False) as ledger:
        terminal.rows(ledger.all_account_settings(), ["account_id", *COLUMNS, "updated_at"],
                      _format(output_format, json_out, csv_out), title="accounts")


# --- checking the set-up -----------------------------------------------------------


@app.command(cls=_Command)
def doctor() -> None:
    """Check every configured backend without side effects; exit 0 only if all pass.

    ElevenLabs key accepted, bucket reachable and writable, OpenAI reachable,
    SMTP connect + EHLO + login (no mail is sent).

    [bold]Example[/bold]:  fedfina --env-file prod.env doctor
    """
    from rich.table import Table
    from rich.text import Text

    from fedfina_cli.pipeline.doctor import run_checks

    terminal = _terminal()
    with _user_errors(terminal):
        settings = _settings(terminal)
        checks = run_checks(settings)
    from rich import box

    table = Table(title="fedfina doctor", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  show_edge=False)
    for column in ("backend", "target", "status"):
        table.add_column(column, no_wrap=True)
    table.add_column("detail", overflow="fold", ratio=1)
    styles = {"ok": "green", "failed": "bold red", "embedded": "cyan"}
    for check in checks:
        table.add_row(check.backend, Text(check.target), Text(check.status, style=styles[check.status]),
                      Text(settings.redact(check.detail)))
    terminal.out.print(table)
    if not all(check.passed for check in checks):
        raise typer.Exit(ExitCode.FAILED)


# --- plumbing ---------------------------------------------------------------------


def _process(stages: tuple[str, ...], selectors: _Selectors, *, command: str, failed: bool = False,
             concurrency: int = DEFAULT_CONCURRENCY, force: bool = False, resend: bool = False,
             json_out: bool = False, quiet: bool = False, overrides=None) -> None:
    from fedfina_cli.pipeline.jobs import Job, RunOptions
    from fedfina_cli.pipeline.selectors import Selection, select
    from fedfina_cli.pipeline.session import Session

    terminal = _terminal(json_mode=json_out, quiet=quiet)
    options = RunOptions(stages=stages, force=force, resend=resend,
                         **({"overrides": overrides} if overrides is not None else {}))
    with _user_errors(terminal):
        settings = _settings(terminal)
        selection = select(selectors.conversation_ids, selectors.email, selectors.account_id,
                           selectors.csv, selectors.from_files, required=not failed,
                           selectors=SELECTORS[command])
        if selection.empty_csv is not None:
            terminal.info(f"{selection.empty_csv}: nothing to process")
            if not selection.jobs and not selection.rejected and not failed:
                return  # an empty export must not fail cron; nothing is written
        if "fetch" in stages and not settings.elevenlabs_api_key:
            _check_fetchable(settings, selection.jobs)
        with Session(settings, command, concurrency) as session:
            _announce(terminal, session, warn_offline="summarize" in stages)
            if failed:
                known = {(j.conversation_id, j.account_id) for j in selection.jobs}
                rows = session.ledger.conversations(selectors.account_id, "failed")
                selection = Selection(selection.jobs + [
                    Job(r["conversation_id"], r["email_id"], r["account_id"] or None, label="--failed")
                    for r in rows if (r["conversation_id"], r["account_id"] or None) not in known
                ], selection.rejected)
                terminal.info(f"{len(rows)} failed conversations to reprocess")
            outcomes = _run_jobs(terminal, session, selection.jobs, selection.rejected, options)
            code = session.finish(outcomes, sum(not r.duplicate for r in selection.rejected))
    if code:
        raise typer.Exit(code)


class _Stopped(KeyboardInterrupt):
    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


@contextmanager
def _stop_gracefully(terminal):
    """Ctrl-C or SIGTERM: start no more conversations, let those in flight finish.

    A second signal stops at once; the next run resumes what was left (a
    conversation left `processing` is marked interrupted and picked up).
    """
    import os
    import signal

    received = []

    def handler(signum, frame):
        received.append(signum)
        if len(received) > 1:
            os._exit(128 + signum)
        terminal.stop()
        terminal.error("stopping: finishing the conversations in flight (send the signal again to stop "
                       "at once)")
        raise _Stopped(signum)

    previous = {signum: signal.signal(signum, handler) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def _run_jobs(terminal, session, jobs, rejected, options):
    import gc
    import signal

    terminal.rejected(rejected)
    started = time.monotonic()
    terminal.start(len(jobs))
    try:
        # Everything imported and built so far (openai's hundreds of models, the
        # clients) lives for the whole run: keep the garbage collector from
        # re-scanning it in every full collection of a long batch.
        gc.freeze()
        with _stop_gracefully(terminal):
            outcomes = session.process(jobs, options, terminal.finished)
    except KeyboardInterrupt as exc:
        terminal.stop()
        terminal.error("interrupted: conversations in flight finished; run the same command "
                       "again to finish the rest (done stages are skipped)")
        sigterm = isinstance(exc, _Stopped) and exc.signum == signal.SIGTERM
        raise typer.Exit(ExitCode.TERMINATED if sigterm else ExitCode.INTERRUPTED) from None
    finally:
        terminal.stop()
    terminal.summary(outcomes, rejected, time.monotonic() - started)
    _show_debug(terminal, outcomes)
    return outcomes


# The selectors each processing command takes (its hint names only these).
SELECTORS = {
    "run": ("--conversation-id/-c", "--csv FILE", "--from-file FILE", "--failed"),
    "fetch": ("--conversation-id/-c", "--csv FILE", "--from-file FILE"),
    "summarize": ("--conversation-id/-c", "--csv FILE"),
    "report": ("--conversation-id/-c", "--csv FILE"),
    "email": ("--conversation-id/-c", "--csv FILE"),
}


def _check_fetchable(settings, jobs) -> None:
    """Without ELEVENLABS_API_KEY, refuse up front (exit 2, nothing written) when any job needs the API."""
    from fedfina_cli.core.errors import UsageError
    from fedfina_cli.ledger.ledger import fetched_conversations

    from_api = {job.conversation_id for job in jobs if job.payload is None}
    needed = from_api - fetched_conversations(settings.db_path, from_api)
    if needed:
        raise UsageError(f"ELEVENLABS_API_KEY is not set, and {len(needed)} of the {len(jobs)} selected "
                         "conversations must be fetched from the ElevenLabs API; set it (see .env.example), "
                         "or pass saved conversations with --from-file FILE.json")


def _announce(terminal, session, warn: bool = True, warn_offline: bool = True) -> None:
    terminal.info(session.backends.description)
    for warning in session.warnings if warn else ():
        if warn_offline or "OPENAI_API_KEY" not in warning:  # only where a summary is written
            terminal.warn(warning)
    if session.interrupted:
        terminal.warn(f"{session.interrupted} conversations were left unfinished by a process that stopped; "
                      "marked interrupted (status failed), resumed by this run when selected or by "
                      "`run --failed`")


def _settings(terminal):
    from dataclasses import replace

    from fedfina_cli.core.config import load_settings

    settings = load_settings(state.env_file)
    if state.db is not None:
        settings = replace(settings, db_path=state.db)
    terminal.redact = settings.redact
    return settings


@contextmanager
def _ledger(terminal, *, read_only: bool = True, must_exist: bool = True):
    """The ledger for a read-only or settings command (no run lock needed).

    ``must_exist``: no ledger at the configured path is an error naming it (an
    empty table there would hide a wrong --db or FEDFINA_DB). Otherwise a
    read-only command reads an empty ledger in memory rather than creating files.
    """
    from fedfina_cli.core.errors import UsageError
    from fedfina_cli.ledger.ledger import Ledger

    settings = _settings(terminal)
    missing = read_only and not settings.db_path.exists()
    if missing and must_exist:
        raise UsageError(f"no ledger at {settings.db_path.absolute()}: nothing was processed with it yet; "
                         "pass --db PATH or set FEDFINA_DB to the ledger to read (the demo's is "
                         "fedfina-demo/fedfina.db)")
    # Reading never migrates or writes: another process may be at work on the file, or it may be read-only.
    ledger = Ledger(None if missing else settings.db_path, settings.redact, read_only=read_only)
    try:
        yield ledger
    finally:
        ledger.close()


def _format(output_format: Optional[Enum], json_out: bool, csv_out: bool = False) -> str:
    """--format, or its shorthands --json and --csv; two different ones are a usage error."""
    chosen = {name for name, given in (("json", json_out), ("csv", csv_out)) if given}
    if output_format is not None:
        chosen.add(output_format.value)
    if len(chosen) > 1:
        raise typer.BadParameter(f"choose one output format, not {' and '.join(sorted(chosen))}")
    return chosen.pop() if chosen else "table"


def _checked(build):
    """Run a validation outside a command's error handler (flags checked before any work)."""
    terminal = _terminal()
    with _user_errors(terminal):
        return build()


def _terminal(**kwargs):
    from fedfina_cli.cli.output import Terminal

    return Terminal(**kwargs)


class _user_errors:
    """Turn a FedfinaError into its one-line message and exit status."""

    def __init__(self, terminal):
        self.terminal = terminal

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None or not isinstance(exc, FedfinaError):
            return False
        if state.debug:
            self.terminal.err.print(_traceback(exc, self.terminal.redact), markup=False)
        self.terminal.error(str(exc))
        raise typer.Exit(exc.exit_code)


def _traceback(exc: BaseException, redact) -> str:
    """A traceback for --debug, with every configured secret scrubbed from it."""
    import traceback

    return redact("".join(traceback.format_exception(exc))).rstrip()


def _show_debug(terminal, outcomes) -> None:
    if not state.debug:
        return

    for outcome in outcomes:
        if outcome.exception is not None:
            terminal.err.print(f"--- {outcome.conversation_id}", markup=False)
            terminal.err.print(_traceback(outcome.exception, terminal.redact), markup=False)


def _print_record(terminal, record: dict, ledger_path) -> None:
    row = record["conversation"]
    facts = [{"field": k, "value": row[k]} for k in (
        "conversation_id", "account_id", "email_id", "status", "current_step", "started_at", "completed_at",
        "summary_method", "model", "prompt_sha256", "email_message_id", "email_sent_at") if row.get(k)]
    terminal.rows(facts, ["field", "value"], title=f"conversation in {ledger_path} (times UTC)")
    terminal.rows(record["stages"], ["stage", "state", "attempts", "started_at", "finished_at",
                                     "duration_ms", "message"], title="stages", droppable=["started_at"])
    terminal.rows(record["files"], ["file_type", "size_bytes", "object_key", "location"], title="files",
                  droppable=["object_key"])
    terminal.rows(record["audit_log"], ["created_at", "step", "event", "attempt", "duration_ms", "message"],
                  title="audit log")
    if record["last_error"]:
        terminal.out.print(f"last error: {terminal.redact(record['last_error'])}", markup=False)


def _print_stats(terminal, figures: dict, ledger_path) -> None:
    counts = figures["conversations"]
    rate = figures["success_rate"]
    summary = [{"figure": f"conversations {status}", "value": n} for status, n in counts.items()]
    summary += [
        {"figure": "success rate", "value": "-" if rate is None else f"{rate:.1%}"},
        {"figure": "files stored", "value": figures["files_stored"]},
        {"figure": "bytes stored", "value": f"{figures['bytes_stored']:,}"},
        {"figure": "tokens used", "value": f"{figures['tokens_used']:,}"},
    ]
    since = f" since {figures['since']}" if figures["since"] else ""
    terminal.rows(summary, ["figure", "value"], title=f"fedfina stats{since}, {ledger_path}")
    terminal.rows([{"stage": s, **v} for s, v in figures["stages"].items()],
                  ["stage", "count", "p50_ms", "p95_ms"], title="stage durations")
    terminal.rows([{"service": s, **v} for s, v in figures["api"].items()],
                  ["service", "calls", "errors", "p50_ms", "p95_ms"], title="API calls")


def main() -> None:
    try:
        app()
    except Exception as exc:  # a bug: say so in one line, secrets scrubbed; the traceback with --debug
        terminal = _terminal()
        try:
            terminal.redact = _settings(terminal).redact
        except Exception:  # the configuration itself may be what failed
            pass
        if state.debug:
            terminal.err.print(_traceback(exc, terminal.redact), markup=False)
        terminal.error(f"unexpected {type(exc).__name__}: {exc} (this is a bug in fedfina; run again with "
                       "--debug for the traceback and report it)")
        sys.exit(ExitCode.FAILED)
