"""The `fedfina` command line: parses flags, prints, and calls the library.

Heavy modules (the pipeline's PDF, OpenAI and MinIO code, sqlite-utils) are
imported inside the commands so that `fedfina --help` starts fast. The
commands live in one module per family (processing, ledger_views, accounts,
doctor); importing them at the end of this module registers them.
"""

from __future__ import annotations

import sys
from contextlib import suppress
from pathlib import Path
from typing import Annotated

import typer

from fedfina_cli.cli.context import Environment, new_terminal, scrubbed_traceback, set_environment, settings_for
from fedfina_cli.core.errors import ExitCode
from fedfina_cli.core.meta import __version__

# The headings `fedfina --help` lists the commands under.
PROCESS = "Process calls"
READ = "Read the ledger"
SERVE = "Serve"
SET_UP = "Set up and check"
KEEP = "Keep and delete"


class Command(typer.core.TyperCommand):
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


# The options of `fedfina` itself, and whether each takes a value.
GLOBAL_OPTIONS = {"--db": True, "--env-file": True, "--debug": False}


def hoisted(args: list[str]) -> list[str]:
    """`fedfina status --db X` as `fedfina --db X status`: people type the ledger
    where they type the rest. Only the global options move, and nothing after `--`."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        name = arg.split("=", 1)[0]
        if name in GLOBAL_OPTIONS and rest:  # before the command it is where it belongs already
            takes_value = GLOBAL_OPTIONS[name] and "=" not in arg
            front.extend(args[i:i + 1 + takes_value])
            i += 1 + takes_value
            continue
        rest.append(arg)
        i += 1
    return front + rest


class Group(typer.core.TyperGroup):
    def parse_args(self, ctx, args):
        if ctx.parent is None:
            args = hoisted(args)
        return super().parse_args(ctx, args)

    def get_params(self, ctx):
        params = super().get_params(ctx)
        for param in params:
            if getattr(param, "is_flag", False):
                param.display_type_rich = lambda ctx: None
        return params


app = typer.Typer(
    cls=Group,
    name="fedfina",
    help="Post-process ElevenLabs loan-interview calls: transcript, summary, PDF report, email, "
         "all recorded in a ledger (SQLite, or PostgreSQL with DATABASE_URL).\n\n"
         "Try it with no keys and no servers:  fedfina demo",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,  # locals hold API keys
    context_settings={"help_option_names": ["-h", "--help"]},
)
accounts_app = typer.Typer(cls=Group, help="Per-account settings: time zone, CC, subject, prompt, links…",
                           no_args_is_help=True)
ledger_app = typer.Typer(cls=Group, help="Copy a SQLite ledger into PostgreSQL.",
                         no_args_is_help=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fedfina {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    env_file: Annotated[Path | None, typer.Option(
        "--env-file", metavar="FILE", help="Read the settings from this file, not ./.env.",
        show_default=False)] = None,
    db: Annotated[str | None, typer.Option(
        "--db", metavar="PATH|URL", help="The ledger (SQLite file or postgresql:// URL); wins over "
        "DATABASE_URL and FEDFINA_DB. Also after the command.",
        show_default=False)] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    set_environment(Environment(env_file=env_file, db=db, debug=debug))


def main() -> None:
    try:
        app()
    except Exception as exc:  # noqa: BLE001 - a bug: said in one line, secrets scrubbed; the traceback with --debug
        terminal = new_terminal()
        with suppress(Exception):  # the configuration itself may be what failed
            terminal.redact = settings_for(terminal).redact
        if "--debug" in sys.argv[1:]:
            terminal.err.print(scrubbed_traceback(exc, terminal.redact), markup=False)
        terminal.error(f"unexpected {type(exc).__name__}: {exc} (this is a bug in fedfina; run again with "
                       "--debug for the traceback and report it)")
        sys.exit(ExitCode.FAILED)


# Registers the commands on `app` (they import it from here).
# In the order of the help's headings: processing, reading, serving, setting up.
from fedfina_cli.cli import processing, ledger_views, serving, doctor, accounts, ledger_copy, retention  # noqa: E402, F401, I001

app.add_typer(accounts_app, name="accounts", rich_help_panel=SET_UP)
app.add_typer(ledger_app, name="ledger", rich_help_panel=SET_UP)
