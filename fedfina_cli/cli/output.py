"""What a run prints: progress for a person at a terminal, plain lines for cron.

Like httpie's Environment, one object carries the streams and modes so the
same code serves a terminal, a cron log and the tests. User data is never
parsed as Rich markup (it may contain brackets).
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:  # the pipeline is not needed by `status` and friends: keep them fast
    from rich.progress import Progress

    from fedfina_cli.pipeline.jobs import Outcome
    from fedfina_cli.pipeline.selectors import Rejected

STATUS_STYLE = {"completed": "green", "pending": "cyan", "failed": "bold red", "duplicate": "cyan",
                "elsewhere": "yellow"}
# A spreadsheet runs a cell that starts with one of these as a formula
# (=HYPERLINK(...), =cmd|...): OWASP's "CSV injection".
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """A cell a spreadsheet shows as text: a leading apostrophe defuses a formula."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


# Short headers for the ledger's column names (tables only; JSON and CSV keep the names).
HEADERS = {"conversation_id": "conversation", "account_id": "account", "current_step": "step",
           "email_id": "email", "error_message": "error", "updated_at": "updated", "created_at": "time",
           "started_at": "started", "finished_at": "finished", "duration_ms": "ms", "size_bytes": "bytes",
           "object_key": "object", "file_type": "file"}
# Free text, cut to one line with … in a table (the whole of it is in --format json).
_CUT = {"error_message", "message"}
_CUT_MIN = 12  # a cut column keeps at least this many characters
_READABLE = 40  # ...and droppable columns go before it gets less than this
_GAP = 2  # between columns (box.SIMPLE_HEAD, no outer padding)


def _cell(column: str, value: object) -> str:
    if value is None:
        return ""
    if column.endswith("_at") and isinstance(value, str):
        return value.replace("T", " ")[:16]  # 2026-11-25 10:20 (UTC, as the title says; JSON has ms)
    return str(value)


# Long values that may wrap (addresses, keys, links, templates).
_FOLD = {"value", "reason", "email_id", "object_key", "location", "cc", "bcc", "subject", "prompt_file"}


def _kind(name: str) -> str:
    if name in _CUT:
        return "cut"  # one line, cut with …
    if name in _FOLD:
        return "fold"  # wraps
    return "fixed"  # identifiers, times, states, numbers: never wrap, never cut


def _layout(columns: list[str], cells: list[dict[str, str]], width: int,
            droppable: list[str] | tuple[str, ...], kinds: dict[str, str], wrap: Iterable[str] = ()
            ) -> dict[str, int]:
    """Each shown column's width: identifiers and times whole, free text sharing what is
    left. Where free text would get less than a readable share, the ``droppable``
    columns go, in that order (an error cut to 12 characters beside an email column
    helps nobody); free text goes down to _CUT_MIN only when nothing more can go."""
    widest = {name: max([len(HEADERS.get(name, name))] + [len(c[name]) for c in cells]) for name in columns}

    def least(name: str) -> int:
        return widest[name] if kinds[name] == "fixed" else min(widest[name], _CUT_MIN)

    def readable(name: str) -> int:  # free text (an error, a message) is what a person reads the row for
        return min(widest[name], _READABLE) if name in _CUT or name in wrap else least(name)

    shown = list(columns)
    for name in droppable:
        if sum(map(readable, shown)) + _GAP * (len(shown) - 1) <= width:
            break
        shown.remove(name)
    widths = {name: widest[name] for name in shown if kinds[name] == "fixed"}
    flexible = sorted((name for name in shown if name not in widths), key=lambda name: widest[name])
    space = width - sum(widths.values()) - _GAP * (len(shown) - 1)
    for left, name in enumerate(flexible):
        widths[name] = max(least(name), min(widest[name], space // (len(flexible) - left)))
        space -= widths[name]
    return {name: widths[name] for name in shown}


def broken_at_separators(text: str, width: int) -> list[str]:
    """A path or URL in lines of at most ``width``, broken after a '/' or before an '@'
    or ':' (a host, a port, a folder stays whole where it fits); a piece longer than a
    line is folded."""
    import re

    lines = [""]
    for piece in re.split(r"(?<=/)|(?=[@:])", text):
        while len(piece) > width:  # longer than a line on its own
            if lines[-1]:
                lines.append("")
            lines[-1], piece = piece[:width], piece[width:]
            lines.append("")
        if len(lines[-1]) + len(piece) > width:
            lines.append("")
        lines[-1] += piece
    return [line for line in lines if line] or [""]


def _columns() -> int | None:
    value = os.environ.get("COLUMNS", "")
    return int(value) if value.isdigit() and 20 <= int(value) <= 1000 else None


def _console(stream: IO[str]) -> Console:
    # Off a terminal (cron logs, pipes) a table must not wrap at 80 columns:
    # one line per row keeps the log greppable.
    # COLUMNS, when set, still wins (as for any program that formats to a width).
    width = None if stream.isatty() else _columns() or 200
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
        self.progress: Progress | None = None

    @property
    def interactive(self) -> bool:
        return self.err.is_terminal

    # --- messages --------------------------------------------------------

    def info(self, message: str) -> None:
        if not self.quiet:
            self.err.print(Text(self.redact(message)))

    def warn(self, message: str, *, always: bool = False) -> None:
        if always or not self.quiet:
            self.err.print(Text("warning: ", style="yellow") + Text(self.redact(message)))

    def error(self, message: str) -> None:
        self.err.print(Text("error: ", style="bold red") + Text(self.redact(message)))

    def rejected(self, items: Iterable[Rejected]) -> None:
        """Input left out before the run (warnings, on stderr); --quiet shows them once, in the summary."""
        if self.quiet:
            return
        for item in items:
            label = Text("duplicate ", style="cyan") if item.duplicate else Text("invalid ", style="bold red")
            self.err.print(label + Text(self.redact(str(item))))

    # --- listings (status, accounts list, ...) -------------------------------

    def rows(self, rows: list[dict], columns: list[str], fmt: str = "table", title: str | None = None,
             droppable: list[str] | tuple[str, ...] = (), wrap: Iterable[str] = ()) -> None:
        """Print rows as a table (people), JSON (scripts) or CSV (spreadsheets). Free text is
        cut to one line, except in the ``wrap`` columns (one record's details: `show`)."""
        if fmt == "json":
            self.out.file.write(json.dumps([{c: r.get(c) for c in columns} for r in rows],
                                           ensure_ascii=False, indent=2) + "\n")
        elif fmt == "csv":
            writer = csv.DictWriter(self.out.file, columns, extrasaction="ignore", lineterminator="\n")
            writer.writeheader()
            writer.writerows({c: spreadsheet_safe(r.get(c)) for c in columns} for r in rows)
        else:
            self.table(self._table(rows, columns, title, droppable, wrap))

    def table(self, table: Table) -> None:
        """A table, without the spaces that pad each row to the width off a terminal
        (a piped table's lines end where their text does: grep, diff, cut)."""
        if self.out.is_terminal:
            self.out.print(table)
            return
        with self.out.capture() as captured:
            self.out.print(table)
        self.out.file.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))

    def _table(self, rows: list[dict], columns: list[str], title: str | None,
               droppable: list[str] | tuple[str, ...], wrap: Iterable[str] = ()) -> Table:
        """Identifiers and times stay on one line; free text is cut with …; other values wrap.

        Where even that is too wide, the ``droppable`` columns go first (JSON and CSV keep them).
        """
        from rich import box

        cells = [{c: self.redact(_cell(c, r.get(c))) for c in columns} for r in rows]
        kinds = {name: "fold" if name in wrap else _kind(name) for name in columns}
        widths = _layout(columns, cells, self.out.width, droppable, kinds, wrap)
        hidden = [HEADERS.get(c, c) for c in columns if c not in widths]
        caption = f"not shown at this width: {', '.join(hidden)} (see --format json)" if hidden else None
        if not rows:
            caption = "none"  # not a bare header that looks cut off (`stats` after the demo: no API calls)
        table = Table(title=title, title_justify="left", caption=caption, caption_justify="left",
                      box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True)
        for name, width in widths.items():
            kind = kinds[name]
            table.add_column(HEADERS.get(name, name), width=width, no_wrap=kind != "fold",
                             overflow="fold" if kind == "fold" else "ellipsis")
        for cell in cells:
            table.add_row(*(Text(cell[name]) for name in widths))
        return table

    def json(self, payload) -> None:
        self.out.file.write(json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n")

    # --- a batch -----------------------------------------------------------

    def start(self, total: int) -> None:
        if self.interactive and not self.quiet and not self.json_mode and total > 1:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            progress = Progress(
                TextColumn("[bold]processing"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[failed]} failed"),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                console=self.err, transient=False)
            self._task = progress.add_task("run", total=total, failed=0, rate="")
            self._done = self._failed = 0
            progress.start()
            self.progress = progress

    def finished(self, outcome: Outcome) -> None:
        """One conversation's result, on stdout as it comes (--quiet: in the summary only)."""
        if self.progress is not None:
            self._done += 1
            self._failed += not outcome.ok
            elapsed = self.progress.tasks[0].elapsed or 0
            rate = f"{self._done / elapsed * 60:.0f}/min" if elapsed > 0 else ""
            self.progress.update(self._task, advance=1, failed=self._failed, rate=rate)
            if not outcome.ok:
                self._result(self._line(outcome))
            return
        if self.json_mode or self.quiet:
            return
        self._result(self._line(outcome))

    def _result(self, line: Text) -> None:
        # Results go to stdout (gh, llm). While the progress bar is drawn on the
        # same terminal, a line printed through it lands above the bar intact.
        if self.progress is not None and self.out.is_terminal:
            self.progress.console.print(line)
        else:
            self.out.print(line)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def summary(self, outcomes: list[Outcome], rejected: list[Rejected], seconds: float) -> None:
        """The run's result on stdout: the failures (a table) and the counts."""
        failed = [o for o in outcomes if not o.ok]
        invalid = [r for r in rejected if not r.duplicate]
        if self.json_mode:
            self.json(self._json(outcomes, rejected, seconds))
            return
        # --quiet printed nothing yet: every failure is in the table, once. Otherwise the
        # table recaps the lines above whenever the run had more than the one that failed
        # (one failure among 500 lines has scrolled away by the end).
        if (failed or invalid) and (self.quiet or len(outcomes) + len(invalid) > 1):
            rows = [{"conversation_id": o.conversation_id, "account_id": o.account_id, "stage": o.failed_stage,
                     "reason": o.error} for o in failed]
            rows += [{"conversation_id": r.conversation_id, "account_id": r.account_id, "stage": "input",
                      "reason": str(r)} for r in invalid]
            table = self._table(rows, ["conversation_id", "account_id", "stage", "reason"], "Failures", [])
            self.table(table)
        if self.quiet and not failed and not invalid:
            return
        counts = [f"{sum(o.status == s for o in outcomes)} {s}"
                  for s in ("completed", "pending", "failed") if any(o.status == s for o in outcomes)]
        if invalid:
            counts.append(f"{len(invalid)} invalid rows skipped")
        duplicates = len(rejected) - len(invalid) + sum(o.status == "duplicate" for o in outcomes)
        if duplicates:
            counts.append(f"{duplicates} duplicates")
        elsewhere = sum(o.status == "elsewhere" for o in outcomes)
        if elsewhere:
            counts.append(f"{elsewhere} in progress elsewhere")
        self.out.print(Text(f"{', '.join(counts) or 'nothing processed'} in {seconds:.1f} s",
                            style="bold"))

    def _line(self, outcome: Outcome) -> Text:
        who = f"{outcome.conversation_id} account={outcome.account_id or '?'}"
        if not outcome.ok:
            return (Text("failed ", style=STATUS_STYLE["failed"]) + Text(who)
                    + Text(f" stage={outcome.failed_stage}: {self.redact(outcome.error or '')}"))
        if outcome.status in ("duplicate", "elsewhere"):
            label = "in progress elsewhere" if outcome.status == "elsewhere" else "duplicate"
            return Text(f"{label} ", style=STATUS_STYLE[outcome.status]) + Text(f"{who}: {outcome.error}")
        details = []
        if outcome.ran:
            details.append("ran " + ",".join(outcome.ran))
        if outcome.skipped:
            details.append("skipped " + ",".join(outcome.skipped) + " (done before)")
        if outcome.report:
            details.append(f"report {outcome.report}")
        return (Text(f"{outcome.status} ", style=STATUS_STYLE.get(outcome.status, ""))
                + Text(who) + Text(" " + "; ".join(details)))

    def _json(self, outcomes: list[Outcome], rejected: list[Rejected], seconds: float) -> dict:
        return {
            "completed": sum(o.status == "completed" for o in outcomes),
            "pending": sum(o.status == "pending" for o in outcomes),
            "failed": sum(o.status == "failed" for o in outcomes),
            "duplicate": sum(o.status == "duplicate" for o in outcomes),
            "elsewhere": sum(o.status == "elsewhere" for o in outcomes),
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
