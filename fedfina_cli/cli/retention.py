"""`fedfina purge` and `fedfina hold`: retention and legal hold (SPEC "Retention and legal hold")."""

from __future__ import annotations

from typing import Annotated

import typer

from fedfina_cli.cli.app import KEEP, Command, app
from fedfina_cli.cli.context import chosen_format, ledger_for, new_terminal, settings_for, user_errors
from fedfina_cli.cli.options import AccountFilter, Format, ItsAccount, JsonOut
from fedfina_cli.core.errors import ExitCode, UsageError

MAX_REASON = 500


@app.command(cls=Command, rich_help_panel=KEEP)
def purge(
    account_id: AccountFilter = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be deleted; delete nothing.")] = False,
    output_format: Format = None,
    json_out: JsonOut = False,
) -> None:
    """Delete the files of conversations past their account's retention.

    Raw JSON, transcript, audio, summary, report and the outbox's .eml go;
    the ledger row stays, with purged_at, and an audit line per file.
    Conversations on legal hold are never touched. Retention: `accounts set
    ACCOUNT --retention-days N`, else FEDFINA_RETENTION_DAYS; unset keeps
    everything. Safe to stop and run again.

    [bold]Examples[/bold]
    \b
      fedfina purge --dry-run
      fedfina purge --account-id acc123
    """
    from fedfina_cli.core import validation
    from fedfina_cli.pipeline.backends import storage_for
    from fedfina_cli.pipeline.purge import purge as run_purge

    terminal = new_terminal()
    with user_errors(terminal), ledger_for(terminal, read_only=dry_run, must_exist=False) as ledger:
        if account_id is not None:
            validation.account_id(account_id)
        settings = settings_for(terminal)
        storage = storage_for(settings, metrics=lambda call: None)
        result = run_purge(ledger, storage, settings, account_id=account_id, dry_run=dry_run)
        fmt = chosen_format(output_format, json_out)
        if fmt == "json":
            terminal.json({"dry_run": dry_run, "conversations": result.conversations, "objects": result.objects,
                           "bytes": result.bytes, "not_reached": result.held_back, "failed": result.failed,
                           "stopped_part_way": result.stopped, "ledger_pruned": result.pruned})
        else:
            rows = [{"conversation_id": c["conversation_id"], "account_id": c["account_id"],
                     "files": len(c["files"])} for c in result.conversations]  # type: ignore[arg-type]
            if rows:
                terminal.rows(rows, ["conversation_id", "account_id", "files"], fmt,
                              title="would be purged" if dry_run else "purged")
            if not result.retention_set:
                whose = f"account {account_id} has no retention" if account_id else "no account has a retention"
                terminal.warn(f"{whose} and FEDFINA_RETENTION_DAYS is not set: everything is kept; set one with "
                              "`fedfina accounts set ACCOUNT --retention-days N`")
            verb = "would delete" if dry_run else "deleted"
            terminal.out.print(f"{len(rows)} conversation{'' if len(rows) == 1 else 's'} past retention: {verb} "
                               f"{result.objects} files ({_size(result.bytes)})", markup=False)
            if any(result.pruned.values()):
                terminal.out.print(f"ledger: {result.pruned.get('processing_audit_log', 0):,} audit lines and "
                                   f"{result.pruned.get('api_usage_metrics', 0):,} API-call rows older than "
                                   f"{settings.ledger_keep_days} days pruned (their per-day totals are kept)",
                                   markup=False)
        if result.failed:
            many = len(result.failed)
            terminal.warn(f"{many} conversation{'' if many == 1 else 's'} could not be purged (first: "
                          f"{result.failed[0]}); their files stay, and the next purge tries again")
        for stopped in result.stopped:  # few: a hold or a run has to land in the milliseconds of one conversation
            terminal.warn(f"{stopped}; purge deletes nothing more of it")
        if result.held_back:
            terminal.warn(f"{len(result.held_back)} files are in a bucket these settings do not reach (first: "
                          f"{result.held_back[0]}); run purge with the settings that stored them")
        if result.failed or result.held_back:
            raise typer.Exit(ExitCode.FAILED)


@app.command(cls=Command, rich_help_panel=KEEP)
def hold(
    conversation_id: Annotated[str, typer.Argument(
        help="The conversation to keep.", metavar="CONVERSATION_ID", show_default=False)],
    account_id: ItsAccount = None,
    release: Annotated[bool, typer.Option("--release", help="End the hold: purge may delete it again.")] = False,
    reason: Annotated[str | None, typer.Option(
        "--reason", metavar="TEXT", help="Why (a case number, an inspection); kept in the audit log.",
        show_default=False)] = None,
) -> None:
    """Put a conversation under legal hold: purge never deletes its files.

    [bold]Examples[/bold]
    \b
      fedfina hold conv_7201k4b3qz9fe8st0m5xkcw2hj4n --reason "RBI 2026-14"
      fedfina hold conv_7201k4b3qz9fe8st0m5xkcw2hj4n --release
    """
    from fedfina_cli.core import validation
    from fedfina_cli.ledger.queries import not_in_ledger, one_conversation

    terminal = new_terminal()
    with user_errors(terminal), ledger_for(terminal, read_only=False, must_exist=True) as ledger:
        validation.conversation_id(conversation_id)
        if account_id is not None:
            validation.account_id(account_id)
        if reason is not None:
            reason = " ".join(reason.split())
            if not reason or len(reason) > MAX_REASON or not reason.isprintable():
                raise UsageError(f"--reason: expected one line of text, at most {MAX_REASON} characters")
        found = one_conversation(ledger, conversation_id, account_id)
        if found is None:
            raise UsageError(f"{not_in_ledger(ledger, conversation_id, account_id)}; a hold is placed on a "
                             "conversation fedfina has recorded")
        row = found
        who = f"{conversation_id} ({row['account_id']})"
        if release:
            if not row.get("legal_hold"):
                terminal.out.print(f"{who} was not on legal hold: nothing changed", markup=False)
                return
            row = ledger.retention.set_hold(row["processing_id"], False)
            ledger.audit(row, "hold", "released", "released", reason or "no reason given")
            terminal.out.print(f"{who}: legal hold released; purge deletes its files once past retention",
                               markup=False)
            return
        row = ledger.retention.set_hold(row["processing_id"], True)
        ledger.audit(row, "hold", "placed", "held", reason or "no reason given")
        if row.get("purged_at"):
            terminal.out.print(f"{who} is on legal hold, but its files were purged on {row['purged_at']}: "
                               "the ledger row is kept", markup=False)
            return
        terminal.out.print(f"{who} is on legal hold: purge will not delete its files", markup=False)
        # A purge stopped part-way (by this hold, or killed) deleted some already: say so, not "kept whole".
        gone = ledger.retention.files_deleted(row["conversation_id"], row["account_id"])
        if gone:
            terminal.warn(f"{gone} of its files had been deleted by a purge before the hold; "
                          f"`fedfina show {conversation_id}` lists which")


def _size(n: int) -> str:
    return f"{n:,} bytes" if n < 1024 * 1024 else f"{n / (1024 * 1024):,.1f} MB"
