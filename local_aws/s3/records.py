"""What the local S3 records about buckets and objects, and the sidecar files that hold it.

An object's bytes are the plain file ``<root>/<bucket>/<key>``; what S3 also keeps (ETag, Content-Type, user
metadata, a verified checksum) lives in a JSON sidecar at the same relative path under ``<root>/.meta/<bucket>/``.
The sidecar tree mirrors the object tree exactly, so it has the same shape (a file where an object is, a directory
where a prefix is) and can never need a path the object tree does not. A sidecar is trusted only while the file's
size, mtime and inode still match what it recorded: a file written or rewritten by something else (a training job
writing straight into the tree) is served with an ETag computed from its bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, Protocol

DEFAULT_CONTENT_TYPE = "binary/octet-stream"  # what S3 stores when a PUT names no Content-Type
CHUNK_BYTES = 1 << 20


class Readable(Protocol):
    """Anything with ``read(size)``: a file, ``io.BytesIO``, a request body (``body.RequestBody``)."""

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` bytes; ``b""`` at the end."""
        ...


@dataclass(frozen=True)
class ObjectInfo:
    """One object as S3 describes it.

    Attributes:
        bucket: the bucket.
        key: the key.
        size: bytes.
        etag: the entity tag without quotes: the hex MD5 of the bytes, or ``<md5 of part md5s>-<parts>``.
        last_modified: the file's mtime (UTC).
        path: the file holding the bytes (read it directly for zero-copy access).
        content_type: the stored Content-Type.
        metadata: user metadata (``x-amz-meta-*`` without the prefix, names lowercased).
        headers: other stored response headers (Content-Encoding, Content-Disposition, Cache-Control...).
        checksum: ``(algorithm, base64 value)`` of a checksum verified at upload (``("CRC32", "NhCmhg==")``).
        parts: the part count of a multipart object.
    """

    bucket: str
    key: str
    size: int
    etag: str
    last_modified: datetime
    path: Path
    content_type: str = DEFAULT_CONTENT_TYPE
    metadata: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    checksum: tuple[str, str] | None = None
    parts: int | None = None

    @property
    def quoted_etag(self) -> str:
        """The ETag as S3 sends it: in double quotes."""
        return f'"{self.etag}"'


@dataclass(frozen=True)
class BucketInfo:
    """A bucket: its name and creation date."""

    name: str
    created: datetime


class Listing(NamedTuple):
    """One page of a listing: the objects and the common prefixes, each in key order, and whether more follow."""

    objects: list[ObjectInfo]
    common_prefixes: list[str]
    truncated: bool

    @property
    def last(self) -> str | None:
        """The last key or common prefix of the page: the next page starts after it."""
        candidates = [self.objects[-1].key] if self.objects else []
        candidates += self.common_prefixes[-1:]
        return max(candidates) if candidates else None


def new_record(
    etag: str,
    *,
    content_type: str | None = None,
    metadata: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    checksum: tuple[str, str] | None = None,
    parts: int | None = None,
) -> dict[str, Any]:
    """The sidecar fields of a new object (``ObjectStore.commit`` adds the file's size, mtime and inode)."""
    return {
        "etag": etag,
        "content_type": content_type or DEFAULT_CONTENT_TYPE,
        "metadata": dict(metadata or {}),
        "headers": dict(headers or {}),
        "checksum": list(checksum) if checksum else None,
        "parts": parts,
    }


def new_md5() -> Any:
    """An MD5 for ETags (not for security, so it works where FIPS mode forbids MD5 for security)."""
    return hashlib.md5(usedforsecurity=False)


def file_md5(stream: BinaryIO) -> str:
    """The hex MD5 of a stream read from its current position to the end."""
    digest = new_md5()
    while chunk := stream.read(CHUNK_BYTES):
        digest.update(chunk)
    return str(digest.hexdigest())


def stat_fields(st: os.stat_result) -> dict[str, int]:
    """The stat data a sidecar records about its file, as ``stat_matches`` checks it (size, mtime and inode)."""
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino}


def stat_matches(record: dict[str, Any], st: os.stat_result) -> bool:
    """Whether a sidecar still describes the file ``st`` was taken from (same size, mtime and inode)."""
    return all(record.get(name) == value for name, value in stat_fields(st).items())


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``, or None when it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_json_atomic(path: Path, data: dict[str, Any], tmp_dir: Path, **dump_options: Any) -> None:
    """Write ``data`` to ``path`` through a temp file in ``tmp_dir`` and a rename (readers never see half a file).

    ``dump_options`` go to :func:`json.dump` (``indent``, ``sort_keys``, ``default``...); without them the JSON is
    compact (``separators=(",", ":")``). The temp file is created mode 0600, so the file ends up 0600.
    """
    fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="json-")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, **{"separators": (",", ":"), **dump_options})
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def object_info(bucket: str, key: str, path: Path, st: os.stat_result, record: dict[str, Any]) -> ObjectInfo:
    """The ``ObjectInfo`` of a file and its (current) sidecar record."""
    checksum = record.get("checksum")
    return ObjectInfo(
        bucket=bucket,
        key=key,
        size=st.st_size,
        etag=str(record["etag"]),
        last_modified=datetime.fromtimestamp(st.st_mtime, UTC),
        path=path,
        content_type=str(record.get("content_type") or DEFAULT_CONTENT_TYPE),
        metadata=dict(record.get("metadata") or {}),
        headers=dict(record.get("headers") or {}),
        checksum=(str(checksum[0]), str(checksum[1])) if checksum else None,
        parts=record.get("parts"),
    )
