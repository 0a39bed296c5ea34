"""Reading the ledger: status, show, stats (read-only: they never migrate or write)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from fedfina_cli.cli.app import READ, Command, app
from fedfina_cli.cli.context import chosen_format, ledger_for, new_terminal, settings_for, user_errors
from fedfina_cli.cli.options import AccountFilter, CsvOut, Format, ItsAccount, JsonOut, RecordFormatOption, StatusFilter


@app.command(cls=Command, rich_help_panel=READ)
def status(
    account_id: AccountFilter = None,
    status_filter: Annotated[StatusFilter | None, typer.Option(
        "--status", metavar="STATUS", show_default=False,
        help="Only conversations with this status: queued, pending, processing, completed or failed.")] = None,
    limit: Annotated[int, typer.Option(
        "--limit", metavar="N", min=1, help="At most this many rows, newest first.")] = 50,
    output_format: Format = None,
    json_out: JsonOut = False,
    csv_out: CsvOut = False,
) -> None:
    """List conversations in the ledger, newest first.

    [bold]Examples[/bold]
    \b
      fedfina status --status failed
      fedfina status -a acc123 --format csv > acc123.csv
    """
    from fedfina_cli.core import validation

    terminal = new_terminal()
    with user_errors(terminal), ledger_for(terminal) as ledger:
        if account_id is not None:
            validation.account_id(account_id)
        wanted = status_filter.value if status_filter else None
        rows = ledger.conversations(account_id, wanted, limit)
        total = len(rows) if len(rows) < limit else ledger.count_conversations(account_id, wanted)
        shown = f"{len(rows)} of {total}" if total > len(rows) else f"{len(rows)}"
        fmt = chosen_format(output_format, json_out, csv_out)
        columns = ["conversation_id", "account_id", "status", "current_step", "email_id", "updated_at",
                   "error_message"]
        if wanted and fmt == "table":
            columns.remove("status")  # the title says it
        terminal.rows(rows, columns, fmt,
                      # Failures are listed to be read: their errors wrap, whole, rather than cut to fit.
                      wrap=["error_message"] if wanted == "failed" else [],
                      title=f"{shown} conversation{'' if total == 1 else 's'}{f' {wanted}' if wanted else ''} "
                            f"in {ledger.description} (newest first, times UTC)",
                      droppable=["email_id", "current_step", "account_id"])


@app.command(cls=Command, rich_help_panel=READ)
def show(
    conversation_id: Annotated[str, typer.Argument(
        help="The conversation to show.", metavar="CONVERSATION_ID", show_default=False)],
    account_id: ItsAccount = None,
    output_format: RecordFormatOption = None,
    json_out: JsonOut = False,
) -> None:
    """One conversation: stages, files, audit log and last error.

    [bold]Example[/bold]
    \b
      fedfina show conv_7201k4b3qz9fe8st0m5xkcw2hj4n
    """
    from fedfina_cli.core import validation
    from fedfina_cli.ledger.queries import conversation_record
    from fedfina_cli.pipeline.backends import storage_for
    from fedfina_cli.services.storage import is_bucket

    terminal = new_terminal()
    with user_errors(terminal), ledger_for(terminal) as ledger:
        validation.conversation_id(conversation_id)
        if account_id is not None:
            validation.account_id(account_id)
        settings = settings_for(terminal)
        storage = storage_for(settings, metrics=lambda call: None)

        def locate(key: str, recorded: str | None) -> str:
            """Where the ledger says the file went, whatever today's settings say."""
            if recorded is None or recorded == storage.location:  # None: stored before it was recorded
                return storage.locate(key)
            return f"{recorded}/{key}" if is_bucket(recorded) else str(Path(recorded) / key)

        record = conversation_record(ledger, conversation_id, account_id, locate)
        places = {f["storage"] or storage.location for f in record["files"]}
        elsewhere = sorted(places - {storage.location})
        folders = {place for place in places if not is_bucket(place)}
        # The folder once above the rows (a local path in every row would not fit); links each in full.
        folder = Path(folders.pop()) if len(places) == 1 and folders else None
        found = {f["object_key"]: _file_state(Path(f["location"])) for f in record["files"]
                 if not is_bucket(f["storage"] or storage.location) and not f["deleted_at"]}
        for file in record["files"]:
            if found.get(file["object_key"]) in ("missing", "unreadable"):
                file[found[file["object_key"]]] = True
        if chosen_format(output_format, json_out) == "json":
            terminal.json(record)
        else:
            _print_record(terminal, record, ledger.description, folder)
        for place in elsewhere:
            what = "bucket" if is_bucket(place) else "folder"
            terminal.warn(f"its files were stored in the {what} {place}; the current settings point to "
                          f"{storage.location}: shown where they were stored")
        missing = sum(state == "missing" for state in found.values())
        unreadable = [key for key, state in found.items() if state == "unreadable"]
        if missing and all(f["storage"] for f in record["files"]):
            terminal.warn(f"{missing} of its files are not in {folder or 'the folders'} where the run stored "
                          "them: moved or deleted since")
        elif missing:  # recorded before the ledger kept each file's folder: today's settings were a guess
            terminal.warn(f"{missing} of its files are not in {settings.data_dir}: set FEDFINA_DATA_DIR "
                          "to the folder the run stored into")
        if unreadable:
            terminal.warn(f"{len(unreadable)} of its files cannot be read by this user (permission denied "
                          f"under {folder or settings.data_dir}); run as the user that runs fedfina, or ask for "
                          "read access")


@app.command(cls=Command, rich_help_panel=READ)
def stats(
    since: Annotated[str | None, typer.Option(
        "--since", metavar="DATE", help="Only activity from this date (e.g. 2026-11-01).",
        show_default=False)] = None,
    output_format: RecordFormatOption = None,
    json_out: JsonOut = False,
) -> None:
    """Counts, success rate, timings, bytes stored and tokens used.

    [bold]Example[/bold]
    \b
      fedfina stats --since 2026-11-01 --json
    """
    from fedfina_cli.ledger.queries import collect_stats, parse_since

    terminal = new_terminal()
    with user_errors(terminal), ledger_for(terminal) as ledger:
        figures = collect_stats(ledger, parse_since(since))
        if chosen_format(output_format, json_out) == "json":
            terminal.json(figures)
            return
        _print_stats(terminal, figures, ledger.description)


def _file_state(path: Path) -> str:
    """"present", "missing", or "unreadable" (this user may not look into its folder)."""
    try:
        path.stat()
    except FileNotFoundError:
        return "missing"
    except PermissionError:
        return "unreadable"
    return "present"


def _print_record(terminal, record: dict, ledger_path, folder: Path | None) -> None:
    row = record["conversation"]
    facts = [{"field": k, "value": row[k]} for k in (
        "conversation_id", "account_id", "email_id", "status", "current_step", "started_at", "completed_at",
        "summary_method", "model", "prompt_sha256", "email_message_id", "email_sent_at") if row.get(k)]
    if record.get("retention"):
        facts.append({"field": "retention", "value": record["retention"]})
    if row.get("redactions") is not None:
        counts = json.loads(row["redactions"])
        facts.append({"field": "redactions", "value": ", ".join(f"{n} {kind}" for kind, n in counts.items())
                      or "none found"})
    terminal.rows(facts, ["field", "value"], title=f"conversation in {ledger_path} (times UTC)")
    terminal.rows(record["stages"], ["stage", "state", "attempts", "started_at", "finished_at",
                                     "duration_ms", "message"], title="stages", droppable=["started_at"],
                  wrap=["message"])  # one conversation: its messages whole (a Message-ID is looked up)
    deleted = ["deleted_at"] if any(f["deleted_at"] for f in record["files"]) else []
    if folder is not None:  # a file's location is the folder and its key: the folder once, not in every row
        terminal.rows(record["files"], ["file_type", "size_bytes", "object_key", *deleted], title=f"files in {folder}")
    else:  # presigned links, each in full
        terminal.rows(record["files"], ["file_type", "size_bytes", "object_key", "location"], title="files",
                      droppable=["object_key"])
    terminal.rows(record["audit_log"], ["created_at", "step", "event", "attempt", "duration_ms", "message"],
                  title="audit log", wrap=["message"])
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
        *([{"figure": "files purged (retention)", "value": figures["files_purged"]}]
          if figures["files_purged"] else []),
        {"figure": "tokens used", "value": f"{figures['tokens_used']:,}"},
    ]
    since = f" since {figures['since']}" if figures["since"] else ""
    terminal.rows(summary, ["figure", "value"], title=f"fedfina stats{since}, {ledger_path}")
    terminal.rows([{"stage": s, **v} for s, v in figures["stages"].items()],
                  ["stage", "count", "p50_ms", "p95_ms"], title="stage durations")
    terminal.rows([{"service": s, **v} for s, v in figures["api"].items()],
                  ["service", "calls", "errors", "p50_ms", "p95_ms"], title="API calls")
