"""Multipart uploads: parts as files under ``<root>/.uploads/<upload id>/``, completed by one atomic rename.

S3's rules (API/API_CompleteMultipartUpload.html, userguide/qfacts.html): part numbers 1-10,000; each part up to
5 GiB and, except the last, at least 5 MiB; the completion lists parts in ascending order with their ETags; the
object's ETag is the MD5 of the concatenated binary part MD5s followed by ``-<part count>``. Completing concatenates
the parts into a temp file that is then renamed into place, so readers never see a partial object.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import secrets
import shutil
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from local_aws.s3.errors import S3Error, no_such_upload
from local_aws.s3.keys import validate_key
from local_aws.s3.records import (
    CHUNK_BYTES,
    DEFAULT_CONTENT_TYPE,
    ObjectInfo,
    Readable,
    new_md5,
    new_record,
    read_json,
    write_json_atomic,
)


class ObjectSink(Protocol):
    """What the uploads need of their store (``ObjectStore``), named here so multipart never imports the store."""

    root: Path
    tmp_dir: Path

    def bucket_dir(self, bucket: str) -> Path: ...

    def spool(self, stream: Readable, max_bytes: int) -> tuple[Path, int, str]: ...

    def commit(
        self,
        bucket: str,
        key: str,
        tmp: Path,
        record: dict[str, Any],
        *,
        if_match: str | None = None,
        if_none_match: str | None = None,
    ) -> ObjectInfo: ...


UPLOADS_DIR = ".uploads"
MAX_PARTS = 10_000
MIN_PART_BYTES = 5 * 1024**2
MAX_PART_BYTES = 5 * 1024**3
# Upload ids come back from clients and name a directory: only ids of the shape we mint are ever looked up.
_UPLOAD_ID_RE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
# One lock per upload id (ids are random, so unique across roots), shared by every store in this process.
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


@dataclass(frozen=True)
class UploadInfo:
    """A multipart upload in progress and what the completed object will carry."""

    upload_id: str
    bucket: str
    key: str
    initiated: datetime
    content_type: str = DEFAULT_CONTENT_TYPE
    metadata: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    checksum_algorithm: str | None = None


def _upload_info(record: dict[str, Any]) -> UploadInfo:
    """The ``UploadInfo`` an ``upload.json`` record holds (``create`` writes ``initiated`` in ISO format)."""
    return UploadInfo(**{**record, "initiated": datetime.fromisoformat(record["initiated"])})


@dataclass(frozen=True)
class PartInfo:
    """One uploaded part."""

    number: int
    etag: str
    size: int
    last_modified: datetime
    checksum: tuple[str, str] | None = None

    @property
    def quoted_etag(self) -> str:
        """The part's ETag in double quotes, as S3 sends it."""
        return f'"{self.etag}"'


def check_part_number(value: str | int) -> int:
    """A part number 1-10,000.

    Raises:
        S3Error: 400 ``InvalidArgument``.
    """
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if not 1 <= number <= MAX_PARTS:
        raise S3Error(
            "InvalidArgument",
            f"Part number must be an integer between 1 and {MAX_PARTS}, inclusive",
            ArgumentName="partNumber",
            ArgumentValue=value,
        )
    return number


class MultipartUploads:
    """The multipart uploads of one store (``ObjectStore.uploads``).

    Args:
        store: the store whose root holds the uploads and whose ``commit`` places completed objects.
    """

    def __init__(self, store: ObjectSink) -> None:
        self._store = store
        self._dir = store.root / UPLOADS_DIR

    def _lock(self, upload_id: str) -> threading.Lock:
        with _LOCKS_GUARD:
            return _LOCKS.setdefault(upload_id, threading.Lock())

    def _upload_dir(self, upload_id: str) -> Path:
        if not _UPLOAD_ID_RE.match(upload_id):
            raise no_such_upload(upload_id)
        return self._dir / upload_id

    def create(
        self,
        bucket: str,
        key: str,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        checksum_algorithm: str | None = None,
    ) -> UploadInfo:
        """Start an upload (CreateMultipartUpload); the key is checked now, so a refused key fails early."""
        self._store.bucket_dir(bucket)
        validate_key(key)
        upload_id = secrets.token_urlsafe(48)
        info = UploadInfo(
            upload_id,
            bucket,
            key,
            datetime.now(UTC),
            content_type or DEFAULT_CONTENT_TYPE,
            dict(metadata or {}),
            dict(headers or {}),
            checksum_algorithm,
        )
        path = self._upload_dir(upload_id)
        path.mkdir(parents=True)
        record = {**asdict(info), "initiated": info.initiated.isoformat()}
        write_json_atomic(path / "upload.json", record, self._store.tmp_dir)
        return info

    def get(self, bucket: str, key: str, upload_id: str) -> UploadInfo:
        """The upload ``upload_id`` of ``bucket``/``key``.

        Raises:
            S3Error: 404 ``NoSuchBucket``; 404 ``NoSuchUpload`` for an unknown id or one of another key.
        """
        self._store.bucket_dir(bucket)
        record = read_json(self._upload_dir(upload_id) / "upload.json")
        if record is None or record.get("bucket") != bucket or record.get("key") != key:
            raise no_such_upload(upload_id)
        return _upload_info(record)

    def upload_part(self, bucket: str, key: str, upload_id: str, number: int, stream: Readable) -> PartInfo:
        """Store one part from a stream (UploadPart); a part number sent again replaces the earlier part.

        Raises:
            S3Error: ``NoSuchUpload``; ``InvalidArgument`` for a bad part number; ``EntityTooLarge`` over 5 GiB.
        """
        self.get(bucket, key, upload_id)
        number = check_part_number(number)
        tmp, size, etag = self._store.spool(stream, MAX_PART_BYTES)
        return self.add_part(bucket, key, upload_id, number, tmp, size, etag)

    def add_part(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        number: int,
        tmp: Path,
        size: int,
        etag: str,
        checksum: tuple[str, str] | None = None,
    ) -> PartInfo:
        """Store a part already spooled by ``ObjectStore.spool`` (the temp file is consumed).

        Args:
            bucket: the bucket.
            key: the key.
            upload_id: the upload.
            number: the part number.
            tmp: the spooled file.
            size: its size.
            etag: its hex MD5.
            checksum: ``(algorithm, base64 value)`` verified while it was received.

        Raises:
            S3Error: ``NoSuchUpload`` (also when the upload completed meanwhile); ``InvalidArgument``.
        """
        try:
            self.get(bucket, key, upload_id)
            number = check_part_number(number)
            with self._lock(upload_id):
                path = self._upload_dir(upload_id)
                if not (path / "upload.json").is_file():
                    raise no_such_upload(upload_id)  # completed or aborted while this part was arriving
                tmp.replace(path / f"{number:05d}")
                part = PartInfo(number, etag, size, datetime.now(UTC), checksum)
                record = {"etag": etag, "size": size, "checksum": list(checksum) if checksum else None}
                write_json_atomic(path / f"{number:05d}.json", record, self._store.tmp_dir)
                return part
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def _parts(self, path: Path) -> dict[int, PartInfo]:
        parts = {}
        for meta in sorted(path.glob("[0-9][0-9][0-9][0-9][0-9].json")):
            record = read_json(meta)
            data = meta.with_suffix("")
            if record is None or not data.is_file():
                continue
            number = int(data.name)
            mtime = datetime.fromtimestamp(data.stat().st_mtime, UTC)
            checksum = record.get("checksum")
            parts[number] = PartInfo(
                number,
                str(record["etag"]),
                int(record["size"]),
                mtime,
                (checksum[0], checksum[1]) if checksum else None,
            )
        return parts

    def list_parts(
        self, bucket: str, key: str, upload_id: str, *, marker: int = 0, max_parts: int = 1000
    ) -> tuple[UploadInfo, list[PartInfo], bool]:
        """The upload, its parts after part number ``marker`` (at most ``max_parts``), and whether more follow."""
        info = self.get(bucket, key, upload_id)
        with self._lock(upload_id):
            parts = [p for n, p in sorted(self._parts(self._upload_dir(upload_id)).items()) if n > marker]
        return info, parts[:max_parts], len(parts) > max_parts

    def complete(self, bucket: str, key: str, upload_id: str, parts: Sequence[tuple[int, str]]) -> ObjectInfo:
        """Assemble the listed ``(part number, ETag)`` parts into the object (CompleteMultipartUpload).

        Raises:
            S3Error: ``NoSuchUpload``; ``MalformedXML`` for no parts; ``InvalidPartOrder``; ``InvalidPart`` for a
                missing part or an ETag mismatch; ``EntityTooSmall`` for a non-last part under 5 MiB.
        """
        info = self.get(bucket, key, upload_id)
        if not parts:
            raise S3Error("MalformedXML")
        numbers = [number for number, _ in parts]
        if any(b <= a for a, b in itertools.pairwise(numbers)):
            raise S3Error("InvalidPartOrder", UploadId=upload_id)
        with self._lock(upload_id):
            path = self._upload_dir(upload_id)
            stored = self._parts(path)
            chosen = []
            for number, etag in parts:
                part = stored.get(number)
                if part is None or etag.strip().strip('"') != part.etag:
                    raise S3Error("InvalidPart", UploadId=upload_id, PartNumber=number, ETag=etag)
                chosen.append(part)
            for part in chosen[:-1]:
                if part.size < MIN_PART_BYTES:
                    raise S3Error(
                        "EntityTooSmall", ProposedSize=part.size, MinSizeAllowed=MIN_PART_BYTES, PartNumber=part.number
                    )
            tmp = self._concatenate(path, chosen)
            digest = new_md5()
            for part in chosen:
                digest.update(bytes.fromhex(part.etag))
            record = new_record(
                f"{digest.hexdigest()}-{len(chosen)}",
                content_type=info.content_type,
                metadata=info.metadata,
                headers=info.headers,
                parts=len(chosen),
            )
            result = self._store.commit(bucket, key, tmp, record)
            shutil.rmtree(path, ignore_errors=True)
        self._forget(upload_id)
        return result

    def _concatenate(self, path: Path, parts: list[PartInfo]) -> Path:
        fd, name = tempfile.mkstemp(dir=self._store.tmp_dir, prefix="mpu-")
        try:
            with open(fd, "wb") as out:
                for part in parts:
                    with open(path / f"{part.number:05d}", "rb") as src:
                        shutil.copyfileobj(src, out, CHUNK_BYTES)
            Path(name).chmod(0o644)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return Path(name)

    def abort(self, bucket: str, key: str, upload_id: str) -> None:
        """Discard an upload and its parts (AbortMultipartUpload).

        Raises:
            S3Error: 404 ``NoSuchUpload``.
        """
        self.get(bucket, key, upload_id)
        with self._lock(upload_id):
            shutil.rmtree(self._upload_dir(upload_id), ignore_errors=True)
        self._forget(upload_id)

    def _forget(self, upload_id: str) -> None:
        with _LOCKS_GUARD:
            _LOCKS.pop(upload_id, None)

    def list_uploads(self, bucket: str, prefix: str = "") -> list[UploadInfo]:
        """The bucket's uploads in progress whose keys start with ``prefix``, by key, then initiation time."""
        self._store.bucket_dir(bucket)
        found = []
        if self._dir.is_dir():
            for path in self._dir.iterdir():
                record = read_json(path / "upload.json")
                if record and record.get("bucket") == bucket and str(record.get("key", "")).startswith(prefix):
                    found.append(_upload_info(record))
        return sorted(found, key=lambda u: (u.key, u.initiated))

    def abort_all(self, bucket: str) -> None:
        """Discard every upload of ``bucket`` (its deletion)."""
        for upload in self.list_uploads(bucket):
            with contextlib.suppress(S3Error):
                self.abort(bucket, upload.key, upload.upload_id)
