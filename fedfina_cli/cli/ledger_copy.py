"""`fedfina ledger copy --to postgresql://…`: a SQLite ledger's history into PostgreSQL."""

from __future__ import annotations

from typing import Annotated

import typer

from fedfina_cli.cli.app import Command, ledger_app
from fedfina_cli.cli.context import new_terminal, settings_for, user_errors


@ledger_app.command("copy", cls=Command)
def ledger_copy(
    to: Annotated[str, typer.Option(
        "--to", metavar="URL", help="The PostgreSQL ledger: postgresql://user:password@host:5432/database.",
        show_default=False)],
) -> None:
    """Copy the SQLite ledger (--db, else $FEDFINA_DB) into PostgreSQL; safe to run again.

    Conversations, files, audit log, API calls, runs, account settings and sync
    watermarks. What the target already has is left as it is, so a second copy
    adds only what is new. Then set DATABASE_URL to use it.

    [bold]Example[/bold]
    \b
      fedfina --db /srv/fedfina/fedfina.db ledger copy --to "$DATABASE_URL"
    """
    from dataclasses import replace

    from fedfina_cli.core.config import checked_database_url, without_password
    from fedfina_cli.core.errors import UsageError
    from fedfina_cli.ledger.copy import copy_ledger
    from fedfina_cli.ledger.ledger import Ledger, open_ledger

    terminal = new_terminal()
    with user_errors(terminal):
        settings = settings_for(terminal)
        url = checked_database_url(to)
        assert url is not None
        if not settings.db_path.is_file():
            raise UsageError(f"no ledger at {settings.db_path.absolute()} to copy; pass --db PATH")
        source = Ledger(settings.db_path, settings.redact, read_only=True)
        try:
            target = open_ledger(replace(settings, database_url=url), pool_size=2)
            try:
                copied = copy_ledger(source, target)
            finally:
                target.close()
        finally:
            source.close()
    shown = without_password(url)
    terminal.info(f"copied {settings.db_path} into {shown}")
    for table in ("conversation_processing", "conversation_files", "processing_audit_log", "api_usage_metrics",
                  "runs", "account_settings", "sync_state"):
        new, present = copied.new.get(table, 0), copied.present.get(table, 0)
        terminal.out.print(f"{table:<24} {new:>7} copied {present:>7} already there", markup=False)
