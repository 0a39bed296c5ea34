"""What every command shares: the global options of this invocation (an Environment,
like httpie's), the settings, the ledger, the terminal, and one-line errors."""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import typer

from fedfina_cli.core.errors import FedfinaError


@dataclass(frozen=True)
class Environment:
    """The global options of one invocation."""

    env_file: Path | None = None
    db: str | None = None  # a SQLite file, or a postgresql:// URL
    debug: bool = False


# Set by the app's callback for the command that follows; a new invocation (the
# tests' CliRunner) sets its own.
_ENVIRONMENT: ContextVar[Environment] = ContextVar("fedfina_environment", default=Environment())
# Whether this invocation has named the settings' near-misses yet (once, however
# often a command reads its settings).
_MISTAKES_SAID: ContextVar[bool] = ContextVar("fedfina_mistakes_said", default=False)


def environment() -> Environment:
    return _ENVIRONMENT.get()


def set_environment(value: Environment) -> None:
    _ENVIRONMENT.set(value)
    _MISTAKES_SAID.set(False)


def settings_for(terminal):
    """The settings, with --db applied; names each misspelt variable once on stderr."""
    from dataclasses import replace

    from fedfina_cli.core.config import checked_database_url, load_settings

    settings = load_settings(environment().env_file)
    db = environment().db
    if db is not None and db.startswith(("postgresql://", "postgres://")):
        settings = replace(settings, database_url=checked_database_url(db))
    elif db is not None:  # an explicit --db wins over DATABASE_URL (its help says so)
        settings = replace(settings, db_path=Path(db), database_url=None)
    terminal.redact = settings.redact
    if not _MISTAKES_SAID.get():
        _MISTAKES_SAID.set(True)
        for mistake in settings.mistakes:
            terminal.warn(str(mistake), always=True)  # --quiet too: it is why mail is not sent
    return settings


@contextmanager
def ledger_for(terminal, *, read_only: bool = True, must_exist: bool = True):
    """The ledger for a read-only or settings command (no run lock needed).

    ``must_exist``: no ledger at the configured path is an error naming it (an
    empty table there would hide a wrong --db or FEDFINA_DB). Otherwise a
    read-only command reads an empty ledger in memory rather than creating files.
    """
    from fedfina_cli.core.errors import UsageError
    from fedfina_cli.ledger.ledger import Ledger, ledger_exists, open_ledger

    settings = settings_for(terminal)
    missing = read_only and not ledger_exists(settings)
    if missing and must_exist:
        raise UsageError(f"no ledger at {settings.db_path.absolute()}: nothing was processed with it yet; "
                         "pass --db PATH or set FEDFINA_DB to the ledger to read (the demo's is "
                         "fedfina-demo/fedfina.db)")
    # Reading never migrates or writes: another process may be at work on the file, or it may be read-only.
    ledger = Ledger(None, settings.redact, read_only=True) if missing \
        else open_ledger(settings, read_only=read_only, pool_size=2)
    try:
        yield ledger
    finally:
        ledger.close()


def chosen_format(output_format: Enum | None, json_out: bool, csv_out: bool = False) -> str:
    """--format, or its shorthands --json and --csv; two different ones are a usage error."""
    chosen = {name for name, given in (("json", json_out), ("csv", csv_out)) if given}
    if output_format is not None:
        chosen.add(output_format.value)
    if len(chosen) > 1:
        raise typer.BadParameter(f"choose one output format, not {' and '.join(sorted(chosen))}")
    return chosen.pop() if chosen else "table"


def checked(build):
    """Run a validation outside a command's error handler (flags checked before any work)."""
    terminal = new_terminal()
    with user_errors(terminal):
        return build()


def new_terminal(**kwargs):
    from fedfina_cli.cli.output import Terminal

    return Terminal(**kwargs)


@contextmanager
def user_errors(terminal):
    """Turn a FedfinaError into its one-line message and exit status."""
    try:
        yield
    except FedfinaError as exc:
        if environment().debug:
            terminal.err.print(scrubbed_traceback(exc, terminal.redact), markup=False)
        terminal.error(str(exc))
        raise typer.Exit(exc.exit_code) from None


def scrubbed_traceback(exc: BaseException, redact) -> str:
    """A traceback for --debug, with every configured secret scrubbed from it."""
    import traceback

    return redact("".join(traceback.format_exception(exc))).rstrip()


def show_debug(terminal, outcomes) -> None:
    if not environment().debug:
        return

    for outcome in outcomes:
        if outcome.exception is not None:
            terminal.err.print(f"--- {outcome.conversation_id}", markup=False)
            terminal.err.print(scrubbed_traceback(outcome.exception, terminal.redact), markup=False)
