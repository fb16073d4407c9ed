"""Object storage adapter (S3 API: MinIO, SeaweedFS, AWS): the only module that imports ``minio``.

Foreign errors are translated once, here: a connection failure becomes
:class:`~shiftboard.domain.errors.Unavailable`, a missing key :class:`~shiftboard.domain.errors.NotFound`.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from collections.abc import Iterator
from typing import BinaryIO

import urllib3
from minio import Minio
from minio.commonconfig import CopySource
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from shiftboard import credentials
from shiftboard.domain.errors import FailedPrecondition, NotFound, Unavailable
from shiftboard.settings import Settings

log = logging.getLogger(__name__)

_PART_SIZE = 16 * 1024 * 1024


class ObjectStore:
    """A bucket in an S3-compatible store."""

    def __init__(self, *, endpoint: str, access_key: str, secret_key: str, bucket: str,
                 secure: bool = False, region: str = "us-east-1", public_endpoint: str | None = None,
                 timeout_s: float = 30.0) -> None:
        self.endpoint = endpoint
        self.bucket = bucket
        self.secure = secure
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=5.0, read=timeout_s), maxsize=32,
            retries=urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
        )
        self._client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure,
                             region=region, http_client=http)
        # Presigned URLs must name the endpoint as the client sees it; signing needs no network.
        self._public = Minio(public_endpoint or endpoint, access_key=access_key, secret_key=secret_key,
                             secure=secure, region=region)

    @classmethod
    def from_settings(cls, settings: Settings) -> ObjectStore:
        creds = credentials.s3_credentials(settings)
        if creds is None:
            raise FailedPrecondition(
                f"no S3 credentials: set SHIFTBOARD_S3_ACCESS_KEY/SECRET_KEY or start the stack "
                f"(`shiftboard up`) to generate them in {settings.secrets_dir}"
            )
        return cls(endpoint=settings.s3_target, access_key=creds.access_key, secret_key=creds.secret_key,
                   bucket=settings.s3_bucket, secure=settings.s3_secure, region=settings.s3_region,
                   public_endpoint=settings.s3_public_target)

    @property
    def uri_prefix(self) -> str:
        return f"s3://{self.bucket}/"

    # ---------------------------------------------------------------- bucket

    def ensure_bucket(self) -> None:
        with self._errors("create bucket"):
            if not self._client.bucket_exists(self.bucket):
                self._client.make_bucket(self.bucket)

    def healthy(self) -> bool:
        try:
            with self._errors("check bucket"):
                return bool(self._client.bucket_exists(self.bucket))
        except (Unavailable, FailedPrecondition):
            return False

    # ---------------------------------------------------------------- objects

    def put_stream(self, key: str, data: BinaryIO, length: int = -1) -> None:
        with self._errors(f"write {key}"):
            self._client.put_object(self.bucket, key, data, length=length, part_size=_PART_SIZE)

    def put_bytes(self, key: str, data: bytes) -> None:
        self.put_stream(key, io.BytesIO(data), len(data))

    def get_bytes(self, key: str) -> bytes:
        return b"".join(self.iter_chunks(key))

    def iter_chunks(self, key: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        with self._errors(f"read {key}"):
            response = self._client.get_object(self.bucket, key)
        try:
            yield from response.stream(chunk_size)
        finally:
            response.close()
            response.release_conn()

    def size(self, key: str) -> int | None:
        """Size of an object in bytes, or None when it does not exist."""
        try:
            with self._errors(f"stat {key}"):
                return int(self._client.stat_object(self.bucket, key).size or 0)
        except NotFound:
            return None

    def copy(self, source_key: str, dest_key: str) -> None:
        with self._errors(f"copy {source_key} to {dest_key}"):
            self._client.copy_object(self.bucket, dest_key, CopySource(self.bucket, source_key))

    def delete(self, *keys: str) -> None:
        if not keys:
            return
        with self._errors("delete objects"):
            errors = list(self._client.remove_objects(self.bucket, [DeleteObject(k) for k in keys]))
        for err in errors:
            log.warning("could not delete %s: %s", err.name, err.message)

    def list(self, prefix: str) -> list[str]:
        with self._errors(f"list {prefix}"):
            return [o.object_name for o in self._client.list_objects(self.bucket, prefix, recursive=True)
                    if o.object_name]

    def delete_prefix(self, prefix: str) -> None:
        self.delete(*self.list(prefix))

    def presigned_put(self, key: str, ttl_s: int) -> str:
        return str(self._public.presigned_put_object(self.bucket, key, expires=dt.timedelta(seconds=ttl_s)))

    # ---------------------------------------------------------------- errors

    def _errors(self, what: str) -> _TranslateErrors:
        return _TranslateErrors(what, self.endpoint)


class _TranslateErrors:
    """Turn minio/urllib3 exceptions into shiftboard errors, naming the endpoint."""

    def __init__(self, what: str, endpoint: str) -> None:
        self.what = what
        self.endpoint = endpoint

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            return
        if isinstance(exc, S3Error):
            if exc.code in {"NoSuchKey", "NoSuchBucket", "NoSuchObject"}:
                raise NotFound(f"object store: {self.what}: {exc.code}") from exc
            if exc.code in {"AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId"}:
                raise FailedPrecondition(
                    f"object store at {self.endpoint} refused the credentials ({exc.code}) "
                    f"while trying to {self.what}: check SHIFTBOARD_S3_ACCESS_KEY/SECRET_KEY"
                ) from exc
            raise Unavailable(f"object store at {self.endpoint}: {self.what}: {exc.code}: {exc.message}") from exc
        if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
            raise Unavailable(f"object store at {self.endpoint} is unreachable ({self.what}): {exc}") from exc
