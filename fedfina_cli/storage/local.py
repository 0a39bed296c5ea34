"""Local-directory storage under FEDFINA_DATA_DIR, with the same keys as MinIO."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable

from ..errors import UsageError
from . import Digest, ObjectMissing, StoredObject, describe


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once, at import (single-threaded): os.umask can only be read by setting it.
_UMASK = _read_umask()


class LocalStorage:
    shareable = False

    def __init__(self, root: Path):
        self.root = root
        self.description = f"local({root})"

    def prepare(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
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
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes the file private; the result should not be
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
    # next complete write of the same object sweeps it up.
    for leftover in target.parent.glob(f".{target.name}.*.part"):
        leftover.unlink(missing_ok=True)
