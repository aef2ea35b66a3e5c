"""The local S3's storage: buckets are directories and objects are plain files, ``<root>/<bucket>/<key>``.

NOTE: why not moto's S3: moto keeps objects in memory, so nothing survives a restart; the local runtime's S3 must
keep model artifacts and datasets across restarts, and the local SageMaker must read the very same files (a training
channel, a ``model.tar.gz``) without copying them through an HTTP client. So objects are files, and this one storage
layer serves both the S3 wire protocol (``app.py``) and the local SageMaker in-process (``object_path``,
``download_prefix``, ``upload_dir``).

Layout under the root (bucket names never start with ``.``, so the hidden dirs can never collide with a bucket):

- ``<bucket>/<key>``: the object's bytes, nothing else (a file written there by anything is served as an object);
- ``.meta/<bucket>/<key>``: its sidecar (ETag, Content-Type, user metadata; ``records.py``);
- ``.buckets/<bucket>.json``: the bucket's creation date; ``.uploads/<id>/``: multipart uploads (``multipart.py``);
- ``.tmp/``: bodies being received; a finished file is renamed into place, so readers see the old or the new object,
  never half of one.

Confinement: every key passes ``keys.validate_key`` and its path is resolved and checked against the bucket dir
(``keys.confine``) before any file is opened, created or removed, so no key reaches outside ``<root>/<bucket>/``.

Local limitations (S3 has none of these): a key cannot be both an object and a prefix of another key (``a`` and
``a/b``), since one path cannot be a file and a directory; keys with empty, ``.`` or ``..`` segments, backslashes or
control characters are refused; path segments are limited to 255 bytes; on a case-insensitive filesystem ``A`` and
``a`` are the same key; symlinked directories inside a bucket are served but not listed. Writes are serialised by one
lock per root within this process; another process writing the same tree is safe only for whole-file renames. Files
are not fsync'ed (a power cut may lose the latest writes, never expose half of one). Last-Modified is the file's mtime,
and a file written by something else gets its MD5 ETag computed on first sight (a first listing of a big foreign tree
reads it once).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from local_aws.constants import S3_MAX_PUT_BYTES
from local_aws.s3.buckets import META_DIR, TMP_DIR, Buckets
from local_aws.s3.errors import S3Error, no_such_key
from local_aws.s3.keys import confine, parse_uri, place, prune, validate_key
from local_aws.s3.listing import list_page, walk
from local_aws.s3.multipart import MultipartUploads
from local_aws.s3.records import (
    CHUNK_BYTES,
    BucketInfo,
    Listing,
    ObjectInfo,
    Readable,
    file_md5,
    new_md5,
    new_record,
    object_info,
    read_json,
    stat_fields,
    stat_matches,
    write_json_atomic,
)
from local_aws.s3.transfer import UriTransfers

__all__ = ["BucketInfo", "Listing", "ObjectInfo", "ObjectStore", "S3Error", "parse_uri"]

_STALE_TMP_S = 24 * 3600
_LOCKS: dict[Path, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()


class _Where(NamedTuple):
    """Where a key lives: the bucket dir and the object path, the sidecar tree's bucket dir and the sidecar path."""

    base: Path
    path: Path
    meta_base: Path
    meta: Path


def _move_into_place(tmp: Path, path: Path) -> None:
    """Rename ``tmp`` onto ``path``; across filesystems (a bucket dir symlinked to another disk) stage a copy next
    to ``path`` first, so the final step is still one atomic rename."""
    try:
        tmp.replace(path)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        # A backslash makes the staged name one that no key can name, so listings never show it.
        staged = path.with_name(f".s3-staging\\{uuid.uuid4().hex}")
        try:
            shutil.copyfile(tmp, staged)
            staged.chmod(0o644)
            staged.replace(path)
        finally:
            staged.unlink(missing_ok=True)


def _root_lock(root: Path) -> threading.RLock:
    # One lock per root, shared by every ObjectStore on it in this process (the S3 app and the SageMaker service).
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(root, threading.RLock())


class ObjectStore(Buckets, UriTransfers):
    """Buckets and objects under one root directory; thread-safe.

    Args:
        root: the S3 root (``StateLayout(home).s3``); created when missing.
    """

    uploads: MultipartUploads  # the mixins name only the part of it they use

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.tmp_dir = self.root / TMP_DIR
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.lock = _root_lock(self.root)
        self.uploads = MultipartUploads(self)
        self._sweep_tmp()

    def _sweep_tmp(self) -> None:
        # Bodies of uploads that a crash interrupted; a day old is long past any live request.
        cutoff = time.time() - _STALE_TMP_S
        for entry in self.tmp_dir.iterdir():
            with contextlib.suppress(OSError):
                if entry.stat().st_mtime < cutoff:
                    entry.unlink()

    # ------------------------------------------------------------------------------------------------ paths
    def _where(self, bucket: str, key: str) -> _Where:
        """The object and sidecar paths of a key, both confined to their bucket's trees."""
        base = self.bucket_dir(bucket)
        path = confine(base, validate_key(key))
        meta_base = self.root / META_DIR / bucket
        return _Where(base, path, meta_base, confine(meta_base, key))

    def _write_sidecar(self, where: _Where, key: str, record: dict[str, Any]) -> None:
        where.meta_base.mkdir(parents=True, exist_ok=True)
        write_json_atomic(place(where.meta_base, key, stale_ok=True), record, self.tmp_dir)

    def object_path(self, bucket: str, key: str) -> Path:
        """The file holding an existing object, for zero-copy reads (the local SageMaker reads it in place).

        Raises:
            S3Error: 404 ``NoSuchBucket``/``NoSuchKey``, and the key errors of ``keys.validate_key``.
        """
        return self.head(bucket, key).path

    # ------------------------------------------------------------------------------------------------ reads
    def _describe(self, bucket: str, key: str, where: _Where, stream: BinaryIO | None = None) -> ObjectInfo:
        path = where.path
        st = os.fstat(stream.fileno()) if stream is not None else path.stat()
        record = read_json(where.meta)
        if record is not None and stat_matches(record, st):
            return object_info(bucket, key, path, st, record)
        # No sidecar, or one about an earlier file: the file was written by something else. S3's ETag of a
        # single-part object is the MD5 of its bytes; compute it once and cache it for the next read.
        if stream is not None:
            etag = file_md5(stream)
            stream.seek(0)
        else:
            with open(path, "rb") as f:
                etag = file_md5(f)
        record = {"etag": etag, **stat_fields(st)}
        with self.lock, contextlib.suppress(OSError):
            if stat_matches(record, path.stat()):
                self._write_sidecar(where, key, record)
        return object_info(bucket, key, path, st, record)

    def _existing(self, bucket: str, key: str) -> ObjectInfo | None:
        """The object's ``ObjectInfo``, or None when there is no such key."""
        try:
            return self.head(bucket, key)
        except S3Error as exc:
            if exc.code != "NoSuchKey":
                raise
            return None

    def head(self, bucket: str, key: str) -> ObjectInfo:
        """The object's ``ObjectInfo``.

        Raises:
            S3Error: 404 ``NoSuchBucket``/``NoSuchKey``, and the key errors of ``keys.validate_key``.
        """
        where = self._where(bucket, key)
        try:
            if where.path.is_file():
                return self._describe(bucket, key, where)
        except (FileNotFoundError, NotADirectoryError):
            pass
        raise no_such_key(key)

    def open_object(self, bucket: str, key: str) -> tuple[ObjectInfo, BinaryIO]:
        """The object's ``ObjectInfo`` and an open binary file of exactly those bytes (the caller closes it).

        The info describes the opened file itself, so a concurrent overwrite never mixes two versions.

        Raises:
            S3Error: 404 ``NoSuchBucket``/``NoSuchKey``, and the key errors of ``keys.validate_key``.
        """
        where = self._where(bucket, key)
        try:
            stream = open(where.path, "rb")  # noqa: SIM115 - handed to the caller
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise no_such_key(key) from None
        try:
            return self._describe(bucket, key, where, stream), stream
        except BaseException:
            stream.close()
            raise

    def get_bytes(self, bucket: str, key: str) -> bytes:
        """The object's bytes (for small objects; read big ones through ``open_object`` or ``object_path``)."""
        _, stream = self.open_object(bucket, key)
        with stream:
            return stream.read()

    # ------------------------------------------------------------------------------------------------ writes
    def spool(self, stream: Readable, max_bytes: int) -> tuple[Path, int, str]:
        """Copy ``stream`` to a new temp file under the root; returns (path, size, hex MD5).

        Raises:
            S3Error: 400 ``EntityTooLarge`` past ``max_bytes``, and whatever the stream raises (digest checks).
        """
        fd, name = tempfile.mkstemp(dir=self.tmp_dir, prefix="put-")
        tmp = Path(name)
        digest, size = new_md5(), 0
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK_BYTES):
                    size += len(chunk)
                    if size > max_bytes:
                        raise S3Error("EntityTooLarge", ProposedSize=size, MaxSizeAllowed=max_bytes)
                    digest.update(chunk)
                    out.write(chunk)
            tmp.chmod(0o644)  # mkstemp makes 0600; objects are as readable as any file the user writes
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp, size, str(digest.hexdigest())

    def commit(
        self,
        bucket: str,
        key: str,
        tmp: Path,
        record: dict[str, Any],
        *,
        if_match: str | None = None,
        if_none_match: str | None = None,
    ) -> ObjectInfo:
        """Rename a spooled temp file into place as the object and write its sidecar (``record`` plus stat data).

        Args:
            bucket: the bucket.
            key: the key.
            tmp: a file under ``tmp_dir`` (from ``spool``); consumed.
            record: the sidecar fields (``etag``, ``content_type``, ``metadata``, ``headers``, ``checksum``...).
            if_match: PutObject's ``If-Match``: write only over an object with this ETag.
            if_none_match: PutObject's ``If-None-Match: *``: write only when no object exists.

        Raises:
            S3Error: key/bucket errors, a file/prefix clash, ``PreconditionFailed``.
        """
        try:
            with self.lock:
                where = self._where(bucket, key)  # under the lock: the bucket cannot vanish before the rename
                self._check_conditions(bucket, key, if_match, if_none_match)
                place(where.base, key, stale_ok=False)
                _move_into_place(tmp, where.path)
                st = where.path.stat()
                record = {**record, **stat_fields(st)}
                self._write_sidecar(where, key, record)
                return object_info(bucket, key, where.path, st, record)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def _check_conditions(self, bucket: str, key: str, if_match: str | None, if_none_match: str | None) -> None:
        # API_PutObject.html: If-None-Match '*' fails with 412 when the key exists; If-Match fails with 412 on another
        # ETag and with 404 when there is no object.
        if if_match is None and if_none_match is None:
            return
        current = self._existing(bucket, key)
        if if_none_match is not None and current is not None:
            raise S3Error("PreconditionFailed", Condition="If-None-Match")
        if if_match is not None:
            if current is None:
                raise no_such_key(key)
            if if_match.strip() not in ("*", current.quoted_etag, current.etag):
                raise S3Error("PreconditionFailed", Condition="If-Match")

    def put_stream(
        self,
        bucket: str,
        key: str,
        stream: Readable,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        checksum: tuple[str, str] | None = None,
        max_bytes: int = S3_MAX_PUT_BYTES,
    ) -> ObjectInfo:
        """Store an object from a readable binary stream (read to its end), atomically.

        The bucket and key are checked before a byte is read, so a refused request writes nothing.

        Args:
            bucket: the bucket.
            key: the key.
            stream: the bytes.
            content_type: the Content-Type to serve (``binary/octet-stream`` when None).
            metadata: user metadata.
            headers: other response headers to store (Content-Encoding, Content-Disposition, Cache-Control...).
            checksum: a checksum the caller verified, ``(algorithm, base64 value)``.
            max_bytes: refuse more than this (5 GiB, S3's single-PUT limit).
        """
        self._where(bucket, key)
        tmp, _, etag = self.spool(stream, max_bytes)
        record = new_record(etag, content_type=content_type, metadata=metadata, headers=headers, checksum=checksum)
        return self.commit(bucket, key, tmp, record)

    def put_bytes(
        self,
        bucket: str,
        key: str,
        data: bytes,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> ObjectInfo:
        """Store an object from bytes, atomically (see ``put_stream``)."""
        return self.put_stream(bucket, key, BytesIO(data), content_type=content_type, metadata=metadata)

    def put_file(
        self,
        bucket: str,
        key: str,
        src: Path,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> ObjectInfo:
        """Store a copy of a local file as an object, atomically (temp file, then rename)."""
        with open(src, "rb") as stream:
            return self.put_stream(bucket, key, stream, content_type=content_type, metadata=metadata)

    def copy(
        self,
        src_bucket: str,
        src_key: str,
        bucket: str,
        key: str,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> ObjectInfo:
        """Copy an object (CopyObject). ``metadata`` None copies the source's content type, metadata and headers.

        The copy's ETag is the MD5 of its bytes, as for any object written in one operation.
        """
        self._where(bucket, key)
        source, stream = self.open_object(src_bucket, src_key)
        with stream:
            tmp, _, etag = self.spool(stream, max(source.size, 1))
        if metadata is None:
            content_type, metadata, headers = source.content_type, source.metadata, source.headers
        record = new_record(
            etag, content_type=content_type, metadata=metadata, headers=headers, checksum=source.checksum
        )
        return self.commit(bucket, key, tmp, record)

    def delete(self, bucket: str, key: str) -> None:
        """Delete an object; deleting a key that does not exist succeeds, as in S3.

        Raises:
            S3Error: 404 ``NoSuchBucket``, and the key errors of ``keys.validate_key``.
        """
        where = self._where(bucket, key)
        with self.lock:
            for base, target in ((where.base, where.path), (where.meta_base, where.meta)):
                if target.is_dir() and not target.is_symlink():
                    continue  # a prefix, not an object
                with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                    target.unlink()
                prune(base, target)

    # ------------------------------------------------------------------------------------------------ listing
    def list_objects(
        self, bucket: str, prefix: str = "", delimiter: str = "", start_after: str = "", max_keys: int = 1000
    ) -> Listing:
        """One page of ListObjects: objects and common prefixes after ``start_after``, in S3's key order.

        Raises:
            S3Error: 404 ``NoSuchBucket``.
        """
        base = self.bucket_dir(bucket).resolve()
        objects, prefixes, truncated = list_page(
            base,
            lambda key, path: self._listed(bucket, key, path),
            prefix=prefix,
            delimiter=delimiter,
            after=start_after,
            max_keys=max_keys,
        )
        return Listing(objects, prefixes, truncated)

    def _listed(self, bucket: str, key: str, path: Path) -> ObjectInfo | None:
        try:
            # NOTE: the walk only yields valid keys inside the bucket, so the confinement checks are not repeated.
            meta_base = self.root / META_DIR / bucket
            return self._describe(bucket, key, _Where(path.parent, path, meta_base, meta_base / key))
        except (FileNotFoundError, NotADirectoryError):
            return None  # deleted while listing

    def iter_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, in key order."""
        base = self.bucket_dir(bucket).resolve()
        for entry in walk(base, prefix):
            info = self._listed(bucket, entry.key, entry.path)
            if info is not None:
                yield info
