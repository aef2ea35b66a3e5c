"""Local S3: ``s3://bucket/key`` maps to ``<root>/bucket/key`` on disk.

The local SageMaker, the local Step Functions and the CLI all read and write through this one mapping, so an
artifact written by a training job is the same file an endpoint later downloads.
"""

from __future__ import annotations

import shutil
from pathlib import Path


class S3UriError(ValueError):
    """An S3 URI that is not of the form ``s3://bucket[/key]``."""


def parse_uri(uri: str) -> tuple[str, str]:
    """Split ``s3://bucket/key`` into ``(bucket, key)``.

    Args:
        uri: the S3 URI.

    Returns:
        The bucket and the key (``""`` for the bucket root).

    Raises:
        S3UriError: when the URI has no ``s3://`` scheme, no bucket, or a ``..`` segment.
    """
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise S3UriError(f"Invalid S3 URI {uri!r}: expected s3://bucket/key")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise S3UriError(f"Invalid S3 URI {uri!r}: missing bucket name")
    # NOTE: keys map onto the filesystem, so a '..' segment would escape the local S3 root.
    if ".." in key.split("/") or bucket in {".", ".."}:
        raise S3UriError(f"Invalid S3 URI {uri!r}: '..' segments are not allowed")
    return bucket, key


class LocalS3:
    """A directory tree that stands in for S3."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, uri: str) -> Path:
        """Return the local path of an S3 URI (file or prefix)."""
        bucket, key = parse_uri(uri)
        return self.root / bucket / key

    def exists(self, uri: str) -> bool:
        """True when the URI names an existing object or a non-empty prefix."""
        return self.path(uri).exists()

    def upload_file(self, src: Path, uri: str) -> None:
        """Copy one local file to an object."""
        dst = self.path(uri)
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.part")
        shutil.copyfile(src, tmp)
        tmp.replace(dst)

    def upload_dir(self, src: Path, uri: str) -> None:
        """Copy a local directory tree under a prefix (like ``aws s3 sync``)."""
        src = Path(src)
        for file in sorted(p for p in src.rglob("*") if p.is_file()):
            self.upload_file(file, uri.rstrip("/") + "/" + file.relative_to(src).as_posix())

    def put_bytes(self, uri: str, data: bytes) -> None:
        """Write an object from bytes."""
        dst = self.path(uri)
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.part")
        tmp.write_bytes(data)
        tmp.replace(dst)

    def list_keys(self, uri: str) -> list[str]:
        """List object keys (relative to the bucket) under a prefix, sorted like S3 does."""
        bucket, key = parse_uri(uri)
        base = self.root / bucket
        target = base / key
        if target.is_file():
            return [key]
        if not base.exists():
            return []
        # S3 prefixes are string prefixes, not directories: s3://b/data matches data/x and data-2/y.
        parent = target if key.endswith("/") or not key else target.parent
        if not parent.exists():
            return []
        keys = [
            p.relative_to(base).as_posix()
            for p in parent.rglob("*")
            if p.is_file() and not p.name.startswith(".") and p.relative_to(base).as_posix().startswith(key)
        ]
        return sorted(keys)

    def download(self, uri: str, dst: Path) -> None:
        """Copy an object to a file, or every object under a prefix into a directory.

        Raises:
            FileNotFoundError: when nothing exists at the URI.
        """
        src = self.path(uri)
        dst = Path(dst)
        if src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
            return
        if not src.is_dir():
            raise FileNotFoundError(f"No such S3 object or prefix: {uri}")
        dst.mkdir(parents=True, exist_ok=True)
        for file in sorted(p for p in src.rglob("*") if p.is_file() and not p.name.startswith(".")):
            target = dst / file.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, target)
