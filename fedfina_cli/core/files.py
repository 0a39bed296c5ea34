"""Files written whole or not at all, readable only by their owner's group.

Transcripts, recordings, summaries, reports, emails and the ledger hold
applicants' personal data, so nothing here is readable by other users: files
are created 0640 and folders 0750, less what the umask removes (0600/0700
under umask 077). Used by local storage, the outbox and the ledger.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from fedfina_cli.core import processes
from fedfina_cli.core.errors import DiskFull, is_disk_full


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once, at import (single-threaded): os.umask can only be read by setting it.
_UMASK = _read_umask()
FILE_MODE = 0o640
DIR_MODE = 0o750


def private_dir(path: Path) -> None:
    """mkdir -p with DIR_MODE for every folder it creates (Path.mkdir gives parents 0777)."""
    if path.is_dir():
        return
    private_dir(path.parent)
    try:
        path.mkdir(mode=DIR_MODE)
    except FileExistsError:
        if not path.is_dir():
            raise


def private_file(path: Path) -> None:
    """Create ``path`` empty with FILE_MODE unless it exists (then its mode is the owner's choice)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))


def atomic_write(target: Path, chunks: Iterable[bytes],
                 before_rename: Callable[[], None] | None = None) -> None:
    """Write beside ``target`` and rename: a crash never leaves a partial file
    under the real name, so "exists" always means "complete". A full disk is
    DiskFull (retryable), not an OSError that fails the conversation for good."""
    try:
        _write_then_rename(target, chunks, before_rename)
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFull(f"disk full: cannot write {target.name} in {target.parent} ({exc.strerror}); "
                           "free some space: it is tried again") from None
        raise


def _write_then_rename(target: Path, chunks: Iterable[bytes], before_rename: Callable[[], None] | None) -> None:
    private_dir(target.parent)
    # The writer's pid is in the name, so the sweep below can tell a dead
    # writer's leftover from a file another writer is still filling.
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.{os.getpid()}.", suffix=".part")
    try:
        os.fchmod(fd, FILE_MODE & ~_UMASK)  # mkstemp's 0600, widened to what the umask allows of 0640
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if before_rename is not None:
            before_rename()
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    sweep_leftovers(target)


def sweep_leftovers(target: Path) -> None:
    """Delete the temporary files of writes of ``target`` whose writer died (SIGKILL mid-write),
    never one whose writer is alive (another run, or another thread of this one). Done after each
    complete write of the object, and when it is deleted (purge: a leftover holds its data too)."""
    # (A prefix test, not Path.glob: glob compiles a regular expression for every new name,
    # a millisecond of CPU per conversation in a bulk run.)
    prefix = f".{target.name}."
    try:
        with os.scandir(target.parent) as entries:
            leftovers = [e.name for e in entries if e.name.startswith(prefix) and e.name.endswith(".part")]
    except FileNotFoundError:
        return
    for name in leftovers:
        if not _writer_alive(name[len(prefix):]):
            (target.parent / name).unlink(missing_ok=True)


def _writer_alive(rest: str) -> bool:
    """Whether the process named in a temporary file's name (``PID.random.part``) is alive."""
    pid = rest.split(".", 1)[0]
    if not pid.isdigit():
        return False  # an older fedfina's name, without a pid: its writer is long gone
    return processes.alive(int(pid))
