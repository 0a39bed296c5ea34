"""MinIO (or any S3) storage, with the same keys as local storage.

Streams of unknown length (the call audio) go up as multipart uploads one
part at a time, so memory stays at one part whatever the file size.

A bucket that keeps versions answers a plain delete with a delete marker and keeps
the object behind it; retention must not, so there a delete removes every version
of the key and its markers.
"""

from __future__ import annotations

import io
import logging
import os
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import timedelta

from fedfina_cli.core.accounts import MAX_LINK_EXPIRY_SECONDS
from fedfina_cli.core.api_calls import ApiCall, Metrics, elapsed_ms
from fedfina_cli.core.errors import StageError, UsageError
from fedfina_cli.services.storage import Digest, ObjectMissing, StoredObject, describe, minio_location

PART_SIZE = 8 * 1024 * 1024
MAX_PRESIGN_SECONDS = MAX_LINK_EXPIRY_SECONDS
MISSING_CODES = ("NoSuchKey", "NoSuchObject", "NotFound")

log = logging.getLogger("fedfina.storage")


class StorageError(StageError):
    pass


class MinioStorage:
    shareable = True

    def __init__(self, endpoint: str, access_key: str, secret_key: str, bucket: str, *,
                 secure: bool = True, region: str = "us-east-1", sse: bool = False,
                 metrics: Metrics = lambda call: None, timeout: float = 60.0, pool_size: int = 16,
                 attempts: int = 4):
        import certifi
        import urllib3
        from minio import Minio
        from minio.sse import SseS3

        from fedfina_cli.services import deadline

        http = deadline.bound_pool_manager(urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=min(10, timeout), read=timeout),
            maxsize=pool_size,
            cert_reqs="CERT_REQUIRED",
            ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
            retries=urllib3.Retry(total=max(0, attempts - 1), backoff_factor=0.3,
                                  status_forcelist=[500, 502, 503, 504]),
        ))
        self.timeout = timeout
        self.client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure,
                            region=region, http_client=http)
        self.endpoint = endpoint
        self.bucket = bucket
        self.region = region
        self.sse = SseS3() if sse else None
        self.metrics = metrics
        self.description = f"minio({bucket})"
        self.location = minio_location(endpoint, bucket)
        self._bucket_ready = False
        self._keeps_versions: bool | None = None  # asked once, at the first delete
        self._lock = threading.Lock()

    # --- Storage interface ---------------------------------------------------

    def put_bytes(self, key: str, data: bytes, content_type: str) -> StoredObject:
        self._call("put_object", lambda: self.client.put_object(
            self.bucket, key, io.BytesIO(data), len(data), content_type=content_type, sse=self.sse),
            nbytes=len(data))
        return describe(data, key, content_type, self.location)

    def put_stream(self, key: str, chunks: Iterable[bytes], content_type: str) -> StoredObject:
        digest = Digest()
        reader = _ChunkReader(digest.watch(chunks))
        # One part in flight at a time: memory stays at PART_SIZE.
        self._call("put_object_stream", lambda: self.client.put_object(
            self.bucket, key, reader, -1,  # type: ignore[arg-type]  # it only calls read()
            content_type=content_type, sse=self.sse,
            part_size=PART_SIZE, num_parallel_uploads=1), nbytes_of=lambda: digest.size)
        return digest.stored(key, content_type, self.location)

    def get_bytes(self, key: str) -> bytes:
        return self._get(key, "get_object")

    def get_range(self, key: str, start: int, length: int) -> bytes:
        return self._get(key, "get_object_range", start, length)

    def _get(self, key: str, operation: str, offset: int = 0, length: int = 0) -> bytes:
        from minio.error import S3Error

        def read() -> bytes | None:
            try:
                response = self.client.get_object(self.bucket, key, offset=offset, length=length)
            except S3Error as exc:
                if exc.code in MISSING_CODES:
                    return None
                raise
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

        data = self._call(operation, read)
        if data is None:
            raise ObjectMissing(f"{key} is not in bucket {self.bucket}")
        return data

    def exists(self, key: str) -> bool:
        from minio.error import S3Error

        def stat() -> bool:
            try:
                self.client.stat_object(self.bucket, key)
                return True
            except S3Error as exc:
                if exc.code in MISSING_CODES:
                    return False
                raise

        return self._call("stat_object", stat)

    def delete(self, key: str) -> None:
        """Delete the object; on a bucket that keeps versions, each version and delete marker."""
        if not self.keeps_versions():
            self._call("remove_object", lambda: self.client.remove_object(self.bucket, key))
            return

        def remove_every_version() -> None:
            from minio.error import S3Error

            listed = self.client.list_objects(self.bucket, prefix=key, include_version=True)
            for version in [o.version_id for o in listed if o.object_name == key]:
                try:
                    self.client.remove_object(self.bucket, key, version_id=version)
                except S3Error as exc:
                    if exc.code != "AccessDenied":
                        raise
                    raise StorageError(f"MinIO at {self.endpoint} refused to delete {key} in bucket {self.bucket} "
                                       "(AccessDenied): S3 Object Lock (the version's retention period or legal "
                                       "hold) or the bucket's policy keeps it") from None

        self._call("remove_object_versions", remove_every_version)

    def keeps_versions(self) -> bool:
        """Whether the bucket keeps versions (Enabled or Suspended), asked once."""
        if self._keeps_versions is None:
            try:
                status = self._call("get_bucket_versioning",
                                    lambda: self.client.get_bucket_versioning(self.bucket).status)
            except StorageError as exc:
                if exc.retryable:
                    raise  # not answered: asked again at the next delete
                # Refused (a policy without s3:GetBucketVersioning): delete as before, and say so.
                log.warning("cannot tell whether bucket %s keeps versions (%s); deleting only the current "
                            "version of each object: if it keeps versions, allow s3:GetBucketVersioning so "
                            "that purge deletes the older ones too", self.bucket, exc)
                status = None
            self._keeps_versions = status in ("Enabled", "Suspended")
        return self._keeps_versions

    def locate(self, key: str, expires_seconds: int = MAX_PRESIGN_SECONDS) -> str:
        seconds = max(1, min(int(expires_seconds), MAX_PRESIGN_SECONDS))
        return self._call("presign", lambda: self.client.presigned_get_object(
            self.bucket, key, expires=timedelta(seconds=seconds)))

    def display(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    # --- bucket ------------------------------------------------------------

    def prepare(self) -> None:
        """Create the bucket when missing (once per process); fails fast with a clear message."""
        with self._lock:
            if self._bucket_ready:
                return
            try:
                if not self._call("bucket_exists", lambda: self.client.bucket_exists(self.bucket)):
                    self._call("make_bucket", lambda: self.client.make_bucket(self.bucket, location=self.region))
            except StorageError as exc:
                raise UsageError(str(exc)) from None
            self._bucket_ready = True

    def check_writable(self) -> None:
        """Write and delete a tiny probe object (doctor)."""
        key = f".fedfina-doctor/probe-{os.getpid()}-{time.time_ns()}"
        self.put_bytes(key, b"fedfina doctor probe\n", "text/plain")
        self.delete(key)

    def bucket_exists(self) -> bool:
        return self._call("bucket_exists", lambda: self.client.bucket_exists(self.bucket))

    # --- plumbing ------------------------------------------------------------

    def _call(self, operation: str, fn, *, nbytes: int | None = None, nbytes_of=None):
        from fedfina_cli.services import deadline

        started = time.monotonic()
        try:
            # Each request within (a part of an upload, one retry) gets the
            # whole timeout, and must keep moving 64 KB per timeout.
            with deadline.limit(self.timeout, window=True):
                result = fn()
        except Exception as exc:
            explained = self._explain(exc)
            if explained is None:
                raise  # not a storage failure, e.g. the audio source broke mid-stream
            status, message = explained
            self.metrics(ApiCall("storage", operation, status, elapsed_ms(started), error=message))
            raise StorageError(message, retryable=status is None or status >= 500) from None
        if nbytes is None and nbytes_of is None and isinstance(result, bytes):
            nbytes = len(result)
        self.metrics(ApiCall("storage", operation, 200, elapsed_ms(started),
                             bytes=nbytes if nbytes_of is None else nbytes_of()))
        return result

    def _explain(self, exc: Exception) -> tuple[int | None, str] | None:
        from minio.error import InvalidResponseError, S3Error, ServerError
        from urllib3.exceptions import (
            HTTPError,
            MaxRetryError,
            NewConnectionError,
            ProtocolError,
            SSLError,
            TimeoutError,
        )

        where = f"MinIO at {self.endpoint}"
        if isinstance(exc, S3Error):
            status = exc.response.status if exc.response is not None else None
            if exc.code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken"):
                return status, (f"{where} rejected the credentials ({exc.code}); "
                                "check MINIO_ACCESS_KEY and MINIO_SECRET_KEY")
            if exc.code == "AccessDenied":
                # S3 answers a HEAD with unknown credentials as a bare 403, read as AccessDenied.
                return status, (f"{where} denied access to bucket {self.bucket} (AccessDenied); check "
                                "MINIO_ACCESS_KEY and MINIO_SECRET_KEY, and the bucket's policy")
            if exc.code in ("MissingContentMD5", "MissingUploadObjectWithObjectLockHeaders"):
                # Object Lock wants a checksum on every upload; the minio client sends Content-MD5
                # only over TLS (over plain HTTP it signs the body's SHA-256 instead).
                return status, (f"bucket {self.bucket} at {self.endpoint} has Object Lock, which needs a checksum "
                                "on every upload: the client sends one over TLS; set MINIO_SECURE=true")
            return status, f"{where}: {exc.code}: {exc.message}"
        if isinstance(exc, ServerError):
            return exc.status_code, f"{where} answered HTTP {exc.status_code}"
        if isinstance(exc, InvalidResponseError):
            return None, f"{where} did not answer like S3; check MINIO_ENDPOINT and MINIO_SECURE"
        reason = exc.reason if isinstance(exc, MaxRetryError) else exc
        # (urllib3's NewConnectionError, a refused connection, is a kind of TimeoutError.)
        if isinstance(reason, (TimeoutError, socket.timeout)) and not isinstance(reason, NewConnectionError):
            return None, f"{where} timed out (FEDFINA_HTTP_TIMEOUT is {self.timeout:g} s)"
        if isinstance(reason, SSLError) or "SSL" in type(reason).__name__ or "WRONG_VERSION" in str(reason):
            return None, (f"TLS handshake with {where} failed; if the server speaks plain HTTP set "
                          "MINIO_SECURE=false")
        if isinstance(reason, (NewConnectionError, ConnectionError, ProtocolError)):
            return None, f"cannot connect to {where}; check MINIO_ENDPOINT and that the server is up"
        if isinstance(exc, (HTTPError, OSError)):
            return None, f"{where}: {type(exc).__name__}: {exc}"
        return None


class _ChunkReader(io.RawIOBase):
    """A file-like view of an iterator of bytes, for minio's put_object.

    minio asks for a whole part (8 MiB) at a time: the chunks that make it up are
    joined once, and a single chunk that is the whole answer is handed over as it
    is. (Growing a bytearray and copying it out copied a 1 MB recording three
    times, a millisecond of CPU a conversation.)
    """

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = iter(chunks)
        self._pending: list[bytes] = []  # chunks read, not yet handed over, in order
        self._size = 0  # their total length

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while size < 0 or self._size < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._pending.append(chunk)
            self._size += len(chunk)
        # bytes() of a bytes object is that object: no copy.
        data = bytes(self._pending[0]) if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        if 0 <= size < len(data):
            data, rest = data[:size], data[size:]
            self._pending.append(rest)
        self._size -= len(data)
        return data
