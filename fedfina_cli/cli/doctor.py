"""`fedfina doctor`: check every configured backend, as a table."""

from __future__ import annotations

import typer

from fedfina_cli.cli.app import SET_UP, Command, app
from fedfina_cli.cli.context import new_terminal, settings_for, user_errors
from fedfina_cli.cli.output import broken_at_separators
from fedfina_cli.core.errors import ExitCode


@app.command(cls=Command, rich_help_panel=SET_UP)
def doctor() -> None:
    """Check each configured backend, changing nothing; exit 0 if all pass.

    ElevenLabs key accepted, bucket reachable and writable, OpenAI reachable,
    SMTP connect + EHLO + login (no mail is sent).

    [bold]Example[/bold]
    \b
      fedfina --env-file prod.env doctor
    """
    from rich.table import Table
    from rich.text import Text

    from fedfina_cli.pipeline.doctor import run_checks

    terminal = new_terminal()
    with user_errors(terminal):
        settings = settings_for(terminal)
        checks = run_checks(settings)
    from rich import box

    table = Table(title="fedfina doctor", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  show_edge=False)
    # The backend's name and the verdict are short and always show whole. The target
    # (a path or URL) goes above its detail, in the rest of the line, broken after a
    # '/' or before an '@' or ':' where it must break: a deep FEDFINA_DATA_DIR once
    # left only "ba…", and a PostgreSQL URL broke mid-host.
    backend_width = max(len("backend"), *(len(c.backend) for c in checks))
    status_width = max(len("status"), *(len(c.status) for c in checks))
    rest = max(20, terminal.out.width - backend_width - status_width - 5)
    table.add_column("backend", no_wrap=True, min_width=backend_width)
    table.add_column("status", no_wrap=True, min_width=status_width)
    table.add_column("target and detail", overflow="fold", width=rest)
    styles = {"ok": "green", "failed": "bold red", "embedded": "cyan", "warning": "yellow"}
    for check in checks:
        cell = Text("\n".join(broken_at_separators(check.target, rest)), style="bold")
        # A URL or path in the detail breaks where the target does, the words around it at spaces.
        cell.append("\n" + " ".join("\n".join(broken_at_separators(word, rest)) if len(word) > rest else word
                                    for word in settings.redact(check.detail).split(" ")))
        table.add_row(check.backend, Text(check.status, style=styles[check.status]), cell)
    terminal.table(table)
    if not all(check.passed for check in checks):
        raise typer.Exit(ExitCode.FAILED)
