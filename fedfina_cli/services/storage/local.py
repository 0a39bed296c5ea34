"""Local-directory storage under FEDFINA_DATA_DIR, with the same keys as MinIO.

Files are written whole or not at all, and private (core/files.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from fedfina_cli.core.errors import UsageError
from fedfina_cli.core.files import atomic_write, private_dir, sweep_leftovers
from fedfina_cli.services.storage import Digest, ObjectMissing, StoredObject, describe


class LocalStorage:
    shareable = False

    def __init__(self, root: Path):
        self.root = root
        self.description = f"local({root})"
        self.location = str(root.resolve())

    def prepare(self) -> None:
        try:
            private_dir(self.root)
        except OSError as exc:
            raise UsageError(f"cannot create FEDFINA_DATA_DIR {self.root}: {exc.strerror}") from None

    def path(self, key: str) -> Path:
        return self.root / key

    def put_bytes(self, key: str, data: bytes, content_type: str) -> StoredObject:
        self._write(key, [data])
        return describe(data, key, content_type, self.location)

    def put_stream(self, key: str, chunks: Iterable[bytes], content_type: str) -> StoredObject:
        digest = Digest()
        self._write(key, digest.watch(chunks))
        return digest.stored(key, content_type, self.location)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise ObjectMissing(f"{key} is not in storage ({self.root})") from None

    def get_range(self, key: str, start: int, length: int) -> bytes:
        try:
            with self.path(key).open("rb") as handle:
                handle.seek(start)
                return handle.read(length)
        except FileNotFoundError:
            raise ObjectMissing(f"{key} is not in storage ({self.root})") from None

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)
        sweep_leftovers(self.path(key))  # a write killed part-way left some of the object's bytes

    def locate(self, key: str, expires_seconds: int = 0) -> str:
        return str(self.path(key).resolve())

    def display(self, key: str) -> str:
        return str(self.path(key))

    def _write(self, key: str, chunks: Iterable[bytes]) -> None:
        atomic_write(self.path(key), chunks)
