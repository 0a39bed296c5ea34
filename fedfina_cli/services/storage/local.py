"""Local-directory storage under FEDFINA_DATA_DIR, with the same keys as MinIO.

Transcripts, recordings, summaries, reports and emails hold applicants'
personal data, so nothing here is readable by other users: files are created
0640 and folders 0750, less what the umask removes (0600/0700 under umask 077).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable

from fedfina_cli.core.errors import UsageError
from fedfina_cli.services.storage import Digest, ObjectMissing, StoredObject, describe


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


class LocalStorage:
    shareable = False

    def __init__(self, root: Path):
        self.root = root
        self.description = f"local({root})"

    def prepare(self) -> None:
        try:
            private_dir(self.root)
        except OSError as exc:
            raise UsageError(f"cannot create FEDFINA_DATA_DIR {self.root}: {exc.strerror}") from None

    def path(self, key: str) -> Path:
        return self.root / key

    def put_bytes(self, key: str, data: bytes, content_type: str) -> StoredObject:
        self._write(key, [data])
        return describe(data, key, content_type)

    def put_stream(self, key: str, chunks: Iterable[bytes], content_type: str) -> StoredObject:
        digest = Digest()
        self._write(key, digest.watch(chunks))
        return digest.stored(key, content_type)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise ObjectMissing(f"{key} is not in storage ({self.root})") from None

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def locate(self, key: str, expires_seconds: int = 0) -> str:
        return str(self.path(key).resolve())

    def display(self, key: str) -> str:
        return str(self.path(key))

    def _write(self, key: str, chunks: Iterable[bytes]) -> None:
        atomic_write(self.path(key), chunks)


def atomic_write(target: Path, chunks: Iterable[bytes],
                 before_rename: Callable[[], None] | None = None) -> None:
    """Write beside ``target`` and rename: a crash never leaves a partial file
    under the real name, so "exists" always means "complete"."""
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
    # A run killed mid-write (SIGKILL) leaves its temporary file behind; the
    # next complete write of the same object sweeps it up, but never a file
    # whose writer is alive (another run, or another thread of this one).
    for leftover in target.parent.glob(f".{target.name}.*.part"):
        if not _writer_alive(leftover.name[len(target.name) + 2:]):
            leftover.unlink(missing_ok=True)


def _writer_alive(rest: str) -> bool:
    """Whether the process named in a temporary file's name (``PID.random.part``) is alive."""
    pid = rest.split(".", 1)[0]
    if not pid.isdigit():
        return False  # an older fedfina's name, without a pid: its writer is long gone
    if int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return True
