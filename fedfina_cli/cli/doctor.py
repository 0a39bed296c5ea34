"""`fedfina doctor`: check every configured backend, as a table."""

from __future__ import annotations

import typer

from fedfina_cli.cli.app import Command, app
from fedfina_cli.cli.context import new_terminal, settings_for, user_errors
from fedfina_cli.core.errors import ExitCode


@app.command(cls=Command)
def doctor() -> None:
    """Check every configured backend without side effects; exit 0 only if all pass.

    ElevenLabs key accepted, bucket reachable and writable, OpenAI reachable,
    SMTP connect + EHLO + login (no mail is sent).

    [bold]Example[/bold]:  fedfina --env-file prod.env doctor
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
    # The backend's name and the verdict are short and must always show whole; a
    # long path or URL folds onto more lines instead of pushing them off an
    # 80-column screen (a deep FEDFINA_DATA_DIR once left only "ba…" and "…").
    table.add_column("backend", no_wrap=True, min_width=max(len(c.backend) for c in checks))
    table.add_column("target", overflow="fold", ratio=1)
    table.add_column("status", no_wrap=True, min_width=max(len(c.status) for c in checks))
    table.add_column("detail", overflow="fold", ratio=1)
    styles = {"ok": "green", "failed": "bold red", "embedded": "cyan", "warning": "yellow"}
    for check in checks:
        table.add_row(check.backend, Text(check.target), Text(check.status, style=styles[check.status]),
                      Text(settings.redact(check.detail)))
    terminal.out.print(table)
    if not all(check.passed for check in checks):
        raise typer.Exit(ExitCode.FAILED)
