"""Object storage: one small interface, a local-directory and a MinIO backend."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import Protocol

from fedfina_cli.core.accounts import MAX_LINK_EXPIRY_SECONDS
from fedfina_cli.core.errors import StageError
from fedfina_cli.core.object_keys import StoredObject


class ObjectMissing(StageError):
    """The key is not in storage."""


class Storage(Protocol):
    description: str  # for the backends line, e.g. "local(./fedfina-data)"
    location: str  # what the ledger records: /abs/fedfina-data, or s3://minio:9000/fedfina-reports
    shareable: bool  # True when locate() gives a link others can open (MinIO)

    def prepare(self) -> None:
        """Make ready before the first write (MinIO: create the bucket); raises UsageError."""
        ...

    def put_bytes(self, key: str, data: bytes, content_type: str) -> StoredObject: ...

    def put_stream(self, key: str, chunks: Iterable[bytes], content_type: str) -> StoredObject:
        """Store a body of unknown length without holding it in memory."""
        ...

    def get_bytes(self, key: str) -> bytes:
        """The object's content; raises ObjectMissing when there is none."""
        ...

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``start`` (the console's audio, a Range request at a
        time); raises ObjectMissing when there is none."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove the object (none there: nothing to do)."""
        ...

    def locate(self, key: str, expires_seconds: int = MAX_LINK_EXPIRY_SECONDS) -> str:
        """Where a person can fetch the object: a local path or a presigned URL."""
        ...

    def display(self, key: str) -> str:
        """A short name for the object in run output: a path or s3://bucket/key."""
        ...


class Digest:
    """Size and sha256 of a stream, computed while it passes through."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self.size = 0

    def watch(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            if chunk:
                self._sha.update(chunk)
                self.size += len(chunk)
                yield chunk

    def stored(self, key: str, content_type: str, location: str) -> StoredObject:
        return StoredObject(key, self.size, self._sha.hexdigest(), content_type, location)


def describe(data: bytes, key: str, content_type: str, location: str) -> StoredObject:
    return StoredObject(key, len(data), hashlib.sha256(data).hexdigest(), content_type, location)


def minio_location(endpoint: str, bucket: str) -> str:
    return f"s3://{endpoint}/{bucket}"


def is_bucket(location: str) -> bool:
    return location.startswith("s3://")
