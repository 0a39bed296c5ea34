"""What a run prints: progress for a person at a terminal, plain lines for cron.

Like httpie's Environment, one object carries the streams and modes so the
same code serves a terminal, a cron log and the tests. User data is never
parsed as Rich markup (it may contain brackets).
"""

from __future__ import annotations

import csv
import json
import sys
from typing import IO, TYPE_CHECKING, Iterable

from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:  # the pipeline is not needed by `status` and friends: keep them fast
    from .pipeline import Outcome
    from .selectors import Rejected

STATUS_STYLE = {"completed": "green", "pending": "cyan", "failed": "bold red", "duplicate": "cyan"}
# A spreadsheet runs a cell that starts with one of these as a formula
# (=HYPERLINK(...), =cmd|...): OWASP's "CSV injection".
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """A cell a spreadsheet shows as text: a leading apostrophe defuses a formula."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _console(stream: IO[str]) -> Console:
    # Off a terminal (cron logs, pipes) a table must not wrap at 80 columns:
    # one line per row keeps the log greppable.
    width = None if stream.isatty() else 200
    return Console(file=stream, highlight=False, soft_wrap=True, width=width)


class Terminal:
    def __init__(self, *, json_mode: bool = False, quiet: bool = False,
                 stdout: IO[str] | None = None, stderr: IO[str] | None = None,
                 redact=lambda s: s):
        self.out = _console(stdout or sys.stdout)
        self.err = _console(stderr or sys.stderr)
        self.json_mode = json_mode
        self.quiet = quiet
        self.redact = redact
        self.progress = None

    @property
    def interactive(self) -> bool:
        return self.err.is_terminal

    # --- messages --------------------------------------------------------

    def info(self, message: str) -> None:
        if not self.quiet:
            self.err.print(Text(self.redact(message)))

    def warn(self, message: str) -> None:
        if not self.quiet:
            self.err.print(Text("warning: ", style="yellow") + Text(self.redact(message)))

    def error(self, message: str) -> None:
        self.err.print(Text("error: ", style="bold red") + Text(self.redact(message)))

    def rejected(self, items: Iterable["Rejected"]) -> None:
        for item in items:
            if item.duplicate and self.quiet:
                continue
            label = Text("duplicate ", style="cyan") if item.duplicate else Text("invalid ", style="bold red")
            self.err.print(label + Text(self.redact(str(item))))

    # --- listings (status, accounts list, ...) -------------------------------

    def rows(self, rows: list[dict], columns: list[str], fmt: str = "table", title: str | None = None) -> None:
        """Print rows as a table (people), JSON (scripts) or CSV (spreadsheets)."""
        if fmt == "json":
            self.out.file.write(json.dumps([{c: r.get(c) for c in columns} for r in rows],
                                           ensure_ascii=False, indent=2) + "\n")
        elif fmt == "csv":
            writer = csv.DictWriter(self.out.file, columns, extrasaction="ignore", lineterminator="\n")
            writer.writeheader()
            writer.writerows({c: spreadsheet_safe(r.get(c)) for c in columns} for r in rows)
        else:
            table = Table(title=title, title_justify="left")
            for column in columns:
                table.add_column(column, overflow="fold")
            for row in rows:
                table.add_row(*(Text("" if row.get(c) is None else str(row.get(c))) for c in columns))
            self.out.print(table)

    def json(self, payload) -> None:
        self.out.file.write(json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n")

    # --- a batch -----------------------------------------------------------

    def start(self, total: int) -> None:
        if self.interactive and not self.quiet and not self.json_mode and total > 1:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)

            self.progress = Progress(
                TextColumn("[bold]processing"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[failed]} failed"),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                console=self.err, transient=False)
            self._task = self.progress.add_task("run", total=total, failed=0, rate="")
            self._done = self._failed = 0
            self.progress.start()

    def finished(self, outcome: "Outcome") -> None:
        if self.progress is not None:
            self._done += 1
            self._failed += not outcome.ok
            elapsed = self.progress.tasks[0].elapsed or 0
            rate = f"{self._done / elapsed * 60:.0f}/min" if elapsed > 0 else ""
            self.progress.update(self._task, advance=1, failed=self._failed, rate=rate)
            if not outcome.ok:
                self.progress.console.print(self._line(outcome))
            return
        if self.json_mode or (self.quiet and outcome.ok):
            return
        self.err.print(self._line(outcome))

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def summary(self, outcomes: list["Outcome"], rejected: list["Rejected"], seconds: float) -> None:
        failed = [o for o in outcomes if not o.ok]
        invalid = [r for r in rejected if not r.duplicate]
        if self.json_mode:
            self.json(self._json(outcomes, rejected, seconds))
            return
        if len(failed) + len(invalid) > 1 or (failed and invalid):
            table = Table(title="Failures", title_justify="left", show_lines=False)
            for column in ("conversation", "account", "stage", "reason"):
                table.add_column(column, overflow="fold")
            for o in failed:
                table.add_row(Text(o.conversation_id), Text(o.account_id or ""),
                              Text(o.failed_stage or ""), Text(self.redact(o.error or "")))
            for r in invalid:
                table.add_row(Text(r.value if r.field == "conversation_id" else ""), Text(""),
                              Text("input"), Text(str(r)))
            self.err.print(table)
        if self.quiet and not failed and not invalid:
            return
        counts = [f"{sum(o.status == s for o in outcomes)} {s}"
                  for s in ("completed", "pending", "failed") if any(o.status == s for o in outcomes)]
        if invalid:
            counts.append(f"{len(invalid)} invalid rows skipped")
        duplicates = len(rejected) - len(invalid) + sum(o.status == "duplicate" for o in outcomes)
        if duplicates:
            counts.append(f"{duplicates} duplicates")
        self.err.print(Text(f"{', '.join(counts) or 'nothing processed'} in {seconds:.1f} s",
                            style="bold"))

    def _line(self, outcome: "Outcome") -> Text:
        who = f"{outcome.conversation_id} account={outcome.account_id or '?'}"
        if not outcome.ok:
            return (Text("failed ", style=STATUS_STYLE["failed"]) + Text(who)
                    + Text(f" stage={outcome.failed_stage}: {self.redact(outcome.error or '')}"))
        if outcome.status == "duplicate":
            return Text("duplicate ", style=STATUS_STYLE["duplicate"]) + Text(f"{who}: {outcome.error}")
        details = []
        if outcome.ran:
            details.append("ran " + ",".join(outcome.ran))
        if outcome.skipped:
            details.append("skipped " + ",".join(outcome.skipped) + " (done before)")
        if outcome.report:
            details.append(f"report {outcome.report}")
        return (Text(f"{outcome.status} ", style=STATUS_STYLE.get(outcome.status, ""))
                + Text(who) + Text(" " + "; ".join(details)))

    def _json(self, outcomes: list["Outcome"], rejected: list["Rejected"], seconds: float) -> dict:
        return {
            "completed": sum(o.status == "completed" for o in outcomes),
            "pending": sum(o.status == "pending" for o in outcomes),
            "failed": sum(o.status == "failed" for o in outcomes),
            "duplicate": sum(o.status == "duplicate" for o in outcomes),
            "skipped_rows": [vars(r) for r in rejected],
            "seconds": round(seconds, 3),
            "conversations": [
                {
                    "conversation_id": o.conversation_id,
                    "account_id": o.account_id,
                    "email_id": o.email_id,
                    "status": o.status,
                    "ran": o.ran,
                    "skipped": o.skipped,
                    "failed_stage": o.failed_stage,
                    "error": self.redact(o.error) if o.error else None,
                    "retryable": o.retryable,
                    "report": o.report,
                    "seconds": round(o.seconds, 3),
                }
                for o in outcomes
            ],
        }
