"""`fedfina accounts set|show|list`: per-account settings in the ledger."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import typer

from fedfina_cli.cli.app import Command, accounts_app
from fedfina_cli.cli.context import chosen_format, ledger_for, new_terminal, settings_for, user_errors
from fedfina_cli.cli.options import ACCOUNT, AccountFlags, CsvOut, Format, JsonOut, grouped


@accounts_app.command("set", cls=Command)
@grouped
def accounts_set(
    account_id: Annotated[str, typer.Argument(
        help="The account to configure.", metavar="ACCOUNT_ID", show_default=False)],
    settings: AccountFlags = AccountFlags(),
    retention_days: Annotated[str | None, typer.Option(
        "--retention-days", metavar="DAYS", help="Delete its conversations' files this many days after they "
        "finished (`fedfina purge`); keep: never. Default $FEDFINA_RETENTION_DAYS, else keep.",
        show_default=False, rich_help_panel=ACCOUNT)] = None,
    output_format: Format = None,
    json_out: JsonOut = False,
) -> None:
    """Store settings for one account (only the flags given change), then show them.

    [bold]Examples[/bold]
    \b
      fedfina accounts set acc123 --timezone Asia/Kolkata --cc credit@fedfina.in
      fedfina accounts set acc123 --retention-days 365
    """
    from fedfina_cli.core import accounts, validation
    from fedfina_cli.core.errors import UsageError

    terminal = new_terminal()
    with user_errors(terminal), ledger_for(terminal, read_only=False) as ledger:
        validation.account_id(account_id)
        overrides = settings.overrides()
        if retention_days is not None:  # an account's, not a run's: not among the run's AccountFlags
            kept = accounts.validated_overrides(retention_days=retention_days).retention_days
            overrides = replace(overrides, retention_days=kept)
        values = accounts.to_row(overrides)
        if not values:
            raise UsageError("nothing to set: pass at least one setting, e.g. --timezone Asia/Kolkata")
        fmt = chosen_format(output_format, json_out)
        ledger.set_account_settings(account_id, values)
        _print_account(terminal, ledger, account_id, fmt)


@accounts_app.command("show", cls=Command)
def accounts_show(
    account_id: Annotated[str, typer.Argument(help="The account to show.", metavar="ACCOUNT_ID", show_default=False)],
    output_format: Format = None,
    json_out: JsonOut = False,
) -> None:
    """The settings in effect for one account (stored values over the defaults)."""
    from fedfina_cli.core import validation

    terminal = new_terminal()
    with user_errors(terminal), ledger_for(terminal, must_exist=False) as ledger:
        validation.account_id(account_id)
        _print_account(terminal, ledger, account_id, chosen_format(output_format, json_out))


def _print_account(terminal, ledger, account_id: str, fmt: str) -> None:
    from fedfina_cli.core import accounts

    rows = accounts.described(accounts.from_row(ledger.account_settings(account_id)),
                              accounts.defaults(settings_for(terminal)))
    terminal.rows(rows, ["setting", "value", "source"], fmt, title=f"account {account_id}")


@accounts_app.command("list", cls=Command)
def accounts_list(output_format: Format = None, json_out: JsonOut = False, csv_out: CsvOut = False) -> None:
    """Every account with stored settings."""
    from fedfina_cli.core import accounts

    terminal = new_terminal()
    fmt = chosen_format(output_format, json_out, csv_out)
    with user_errors(terminal), ledger_for(terminal, must_exist=False) as ledger:
        stored = ledger.all_account_settings()
        if fmt != "table":  # scripts get every column, as stored
            terminal.rows(stored, ["account_id", *accounts.COLUMNS, "updated_at"], fmt)
            return
        # People get what `accounts show` calls each setting, in its units, and only the
        # settings some account sets: nine columns, mostly empty, do not fit 80 columns.
        rows = [{"account_id": row["account_id"], **accounts.shown_overrides(accounts.from_row(row)),
                 "updated_at": row["updated_at"]} for row in stored]
        settings = [name for name in accounts.SHOWN_ORDER if any(name in row for row in rows)]
        terminal.rows(rows, ["account_id", *settings, "updated_at"], fmt, title=f"accounts in {ledger.description}",
                      droppable=[name for name in _LEAST_WANTED if name in settings] + ["updated_at"])


# Where a terminal is too narrow, these go first (`accounts show ACCOUNT` has them all).
_LEAST_WANTED = ["retention_days", "prompt_file", "attachment_limit_mb", "link_expiry_hours", "subject",
                 "summary_language", "redact", "bcc", "cc"]
