"""The `fedfina` command line: parses flags, prints, and calls the library.

Heavy modules (the pipeline's PDF, OpenAI and MinIO code, sqlite-utils) are
imported inside the commands so that `fedfina --help` starts fast.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import __version__
from .errors import ExitCode, FedfinaError

app = typer.Typer(
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


@dataclass
class _State:
    env_file: Optional[Path] = None
    debug: bool = False


state = _State()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fedfina {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    env_file: Annotated[Optional[Path], typer.Option(
        "--env-file", help="Read configuration from this file instead of ./.env.",
        show_default=False)] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    state.env_file = env_file
    state.debug = debug


# --- shared options -------------------------------------------------------------

ConversationIds = Annotated[Optional[list[str]], typer.Option(
    "--conversation-id", "-c", help="Conversation to process (repeatable).", show_default=False)]
Email = Annotated[Optional[str], typer.Option(
    "--email", "-e", help="Recipient (default: the conversation's email_id dynamic variable).",
    show_default=False)]
AccountId = Annotated[Optional[str], typer.Option(
    "--account-id", "-a", help="Account folder (default: the conversation's account_id "
                               "dynamic variable).", show_default=False)]
CsvFile = Annotated[Optional[Path], typer.Option(
    "--csv", help="CSV with a header row: conversation_id, email_id (or email), account_id.",
    show_default=False)]
FromFile = Annotated[Optional[list[Path]], typer.Option(
    "--from-file", help="A saved conversation JSON or post-call webhook payload, instead of the "
                        "API (repeatable).", show_default=False)]
Force = Annotated[bool, typer.Option("--force", help="Redo stages already completed.")]
Resend = Annotated[bool, typer.Option("--resend", help="Send the email again even if it was sent.")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print one machine-readable JSON summary.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print only failures.")]
Concurrency = Annotated[int, typer.Option(
    "--concurrency", "-j", min=1, max=64, help="Conversations processed in parallel.")]


@dataclass(frozen=True)
class _Selectors:
    conversation_ids: Optional[list[str]]
    email: Optional[str]
    account_id: Optional[str]
    csv: Optional[Path]
    from_files: Optional[list[Path]]


# --- processing commands -----------------------------------------------------------


@app.command()
def run(
    conversation_id: ConversationIds = None,
    email: Email = None,
    account_id: AccountId = None,
    csv: CsvFile = None,
    from_file: FromFile = None,
    concurrency: Concurrency = 8,
    force: Force = False,
    resend: Resend = False,
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Fetch, summarise, report and email, skipping stages already done.

    [bold]Examples[/bold]

      fedfina run -c conv_7201k4b3qz9fe8st0m5xkcw2hj4n -e officer@fedfina.in -a acc123

      fedfina run --csv calls.csv --concurrency 16

      fedfina run --from-file webhook.json
    """
    _process(("fetch", "summarize", "report", "email"),
             _Selectors(conversation_id, email, account_id, csv, from_file),
             concurrency=concurrency, force=force, resend=resend, json_out=json_out, quiet=quiet,
             command="run")


@app.command()
def fetch(
    conversation_id: ConversationIds = None,
    email: Email = None,
    account_id: AccountId = None,
    csv: CsvFile = None,
    from_file: FromFile = None,
    concurrency: Concurrency = 8,
    force: Force = False,
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Store the conversation JSON, transcript and audio (ElevenLabs -> storage).

    [bold]Example[/bold]:  fedfina fetch -c conv_7201k4b3qz9fe8st0m5xkcw2hj4n -a acc123
    """
    _process(("fetch",), _Selectors(conversation_id, email, account_id, csv, from_file),
             concurrency=concurrency, force=force, json_out=json_out, quiet=quiet, command="fetch")


@app.command()
def summarize(
    conversation_id: ConversationIds = None,
    account_id: AccountId = None,
    csv: CsvFile = None,
    concurrency: Concurrency = 8,
    force: Force = False,
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Summarise a fetched transcript into the structured summary JSON.

    [bold]Example[/bold]:  fedfina summarize -c conv_7201k4b3qz9fe8st0m5xkcw2hj4n
    """
    _process(("summarize",), _Selectors(conversation_id, None, account_id, csv, None),
             concurrency=concurrency, force=force, json_out=json_out, quiet=quiet,
             command="summarize")


@app.command()
def report(
    conversation_id: ConversationIds = None,
    account_id: AccountId = None,
    csv: CsvFile = None,
    concurrency: Concurrency = 8,
    force: Force = False,
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Render the PDF report from the summary and the conversation.

    [bold]Example[/bold]:  fedfina report -c conv_7201k4b3qz9fe8st0m5xkcw2hj4n
    """
    _process(("report",), _Selectors(conversation_id, None, account_id, csv, None),
             concurrency=concurrency, force=force, json_out=json_out, quiet=quiet, command="report")


@app.command()
def email(
    conversation_id: ConversationIds = None,
    email: Email = None,
    account_id: AccountId = None,
    csv: CsvFile = None,
    concurrency: Concurrency = 8,
    resend: Resend = False,
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Email the PDF and summary to the recipient (never twice without --resend).

    [bold]Example[/bold]:  fedfina email -c conv_7201k4b3qz9fe8st0m5xkcw2hj4n --resend
    """
    _process(("email",), _Selectors(conversation_id, email, account_id, csv, None),
             concurrency=concurrency, resend=resend, json_out=json_out, quiet=quiet,
             command="email")


@app.command()
def demo(
    directory: Annotated[Path, typer.Option(
        "--dir", help="Folder for the demo's data, outbox and ledger.")] = Path("fedfina-demo"),
) -> None:
    """Run the whole pipeline offline on a bundled Hindi/English loan interview.

    Needs no keys and no servers, and ignores any configured ones: storage is
    DIR, the email goes to DIR/outbox, the ledger is DIR/fedfina.db.

    [bold]Example[/bold]:  fedfina demo --dir /tmp/fedfina-demo
    """
    from . import demo as demo_module
    from .pipeline import RunOptions
    from .selectors import Selection

    settings = demo_module.demo_settings(directory)
    job = demo_module.demo_job()
    terminal = _terminal()
    with _user_errors(terminal):
        # Every demo run redoes every stage, so it always shows the whole job.
        code, outcomes = _execute(settings, Selection([job], []), RunOptions(force=True, resend=True),
                                  terminal, command="demo", concurrency=1, warn=False)
    if code:
        raise typer.Exit(code)
    paths = demo_module.demo_paths(settings, outcomes[0])
    terminal.out.print("")
    for label, path in paths.items():
        terminal.out.print(f"{label:<11} {path}", markup=False)
    terminal.out.print("\nOpen the PDF, read the .eml, then see `fedfina --help` for real runs.",
                       markup=False)


@app.command()
def doctor() -> None:
    """Check every configured backend without side effects; exit 0 only if all pass.

    ElevenLabs key accepted, bucket reachable and writable, OpenAI reachable,
    SMTP connect + EHLO + login (no mail is sent).

    [bold]Example[/bold]:  fedfina --env-file prod.env doctor
    """
    from rich.table import Table
    from rich.text import Text

    from .config import load_settings
    from .doctor import run_checks

    terminal = _terminal()
    with _user_errors(terminal):
        settings = load_settings(state.env_file)
        terminal.redact = settings.redact
        checks = run_checks(settings)
    table = Table(title="fedfina doctor", title_justify="left")
    for column in ("backend", "target", "status", "detail"):
        table.add_column(column, overflow="fold")
    styles = {"ok": "green", "failed": "bold red", "embedded": "cyan"}
    for check in checks:
        table.add_row(check.backend, Text(check.target), Text(check.status, style=styles[check.status]),
                      Text(settings.redact(check.detail)))
    terminal.out.print(table)
    if not all(check.passed for check in checks):
        raise typer.Exit(ExitCode.FAILED)


# --- plumbing ---------------------------------------------------------------------


def _process(stages: tuple[str, ...], selectors: _Selectors, *, command: str, concurrency: int = 8,
             force: bool = False, resend: bool = False, json_out: bool = False,
             quiet: bool = False) -> None:
    from .config import load_settings
    from .pipeline import RunOptions
    from .selectors import select

    terminal = _terminal(json_mode=json_out, quiet=quiet)
    with _user_errors(terminal):
        settings = load_settings(state.env_file)
        terminal.redact = settings.redact
        selection = select(selectors.conversation_ids, selectors.email, selectors.account_id,
                           selectors.csv, selectors.from_files)
        options = RunOptions(stages=stages, force=force, resend=resend)
        code, _ = _execute(settings, selection, options, terminal, command=command,
                           concurrency=concurrency)
    if code:
        raise typer.Exit(code)


def _execute(settings, selection, options, terminal, *, command: str, concurrency: int,
             warn: bool = True):
    """Run the selected jobs; returns the exit status and the outcomes."""
    from .backends import build_backends
    from .batch import run_batch
    from .ledger import Ledger
    from .pipeline import Pipeline

    terminal.rejected(selection.rejected)
    ledger = Ledger(settings.db_path, settings.redact)
    try:
        backends, warnings = build_backends(settings, ledger.record_api_call, pool_size=concurrency)
        terminal.info(backends.description)
        for warning in warnings if warn else ():
            terminal.warn(warning)
        backends.storage.prepare()
        run_id = ledger.start_run(command, backends.description, os.getpid())
        pipeline = Pipeline(ledger, backends, options)
        started = time.monotonic()
        terminal.start(len(selection.jobs))
        try:
            outcomes = run_batch(pipeline, selection.jobs, concurrency, terminal.finished)
        finally:
            terminal.stop()
        terminal.summary(outcomes, selection.rejected, time.monotonic() - started)
        _show_debug(terminal, outcomes)
        failed = sum(not o.ok for o in outcomes)
        code = ExitCode.FAILED if failed else ExitCode.OK
        ledger.finish_run(run_id, len(outcomes) - failed, failed, int(code))
        return code, outcomes
    finally:
        ledger.close()


def _terminal(**kwargs):
    from .console import Terminal

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
            import traceback

            traceback.print_exception(exc_type, exc, tb, file=sys.stderr)
        self.terminal.error(str(exc))
        raise typer.Exit(exc.exit_code)


def _show_debug(terminal, outcomes) -> None:
    if not state.debug:
        return
    import traceback

    for outcome in outcomes:
        if outcome.exception is not None:
            terminal.err.print(f"--- {outcome.conversation_id}", markup=False)
            terminal.err.print(terminal.redact("".join(traceback.format_exception(outcome.exception))),
                               markup=False)


def main() -> None:
    app()
