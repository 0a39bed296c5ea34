"""Whether a process on this host is alive: by its pid and, where the system says, its start time.

A pid is reused once its process has gone; the start time (Linux: clock ticks
since boot, field 22 of /proc/PID/stat) tells a new process from the one that
was recorded. Where /proc is not there, the pid alone is all there is.
"""

from __future__ import annotations

import os
from pathlib import Path


def started(pid: int) -> int | None:
    """The process's start time in clock ticks since boot; None when unknown (no /proc, or gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces or ")": read after the last one.
    fields = stat[stat.rindex(")") + 2:].split()
    try:
        return int(fields[19])  # field 22 of the whole line
    except (IndexError, ValueError):
        return None


def alive(pid: int, start: int | None = None) -> bool:
    """Whether process ``pid`` runs on this host (and, given ``start``, is the one that started then)."""
    if pid == os.getpid():
        return start is None or start == started(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    if start is None:
        return True
    now = started(pid)
    return now is None or now == start
