"""One run at a time per ledger: an exclusive flock on `<ledger>.lock`.

The kernel drops a flock when its process dies (even by SIGKILL), so a crash
never leaves the ledger locked; the file's text (pid and start time) names the
holder for the "busy" message, and tells a new run that the last one did not
finish cleanly.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path

from fedfina_cli.core.errors import LockHeld, UsageError
from fedfina_cli.services.storage.local import FILE_MODE, private_dir
from fedfina_cli.core.timefmt import utc_now


@dataclass(frozen=True)
class Holder:
    pid: int | None
    started_at: str | None
    command: str | None


class RunLock:
    def __init__(self, db_path: Path):
        self.path = db_path.with_name(db_path.name + ".lock")
        self._fd: int | None = None
        self.stale: Holder | None = None  # set when a dead run's lock was taken over

    def acquire(self, command: str) -> "RunLock":
        try:
            private_dir(self.path.parent)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        except OSError as exc:
            raise UsageError(f"cannot create the lock file {self.path}: {exc.strerror or exc}; check that "
                             "FEDFINA_DB's folder is writable, or set FEDFINA_DB") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            started = f", started {holder.started_at}" if holder.started_at else ""
            what = f" ({holder.command})" if holder.command else ""
            raise LockHeld(f"another fedfina run{what} is using this ledger (pid {holder.pid}{started}); "
                           f"wait for it to finish, or use another FEDFINA_DB") from None
        previous = _read(fd)
        if previous.pid is not None:
            # The file still names a run, but nobody holds the flock: it died.
            self.stale = previous
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "started_at": utc_now(), "command": command}).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        os.ftruncate(self._fd, 0)  # a clean exit leaves no holder behind
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


def _read(fd: int) -> Holder:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        data = {}
    return Holder(data.get("pid"), data.get("started_at"), data.get("command"))
