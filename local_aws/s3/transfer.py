"""``s3://`` URI helpers of the ``ObjectStore`` for in-process users (the local SageMaker, the CLI, tests).

They move whole files between local directories and the store through the same validated, atomic writes as the
wire protocol, and copy out by reading the object files directly (no HTTP, no second copy in memory).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from local_aws.s3.errors import S3Error
from local_aws.s3.keys import parse_uri
from local_aws.s3.records import ObjectInfo


class _Store(Protocol):
    def head(self, bucket: str, key: str) -> ObjectInfo: ...

    def put_file(self, bucket: str, key: str, src: Path) -> ObjectInfo: ...

    def iter_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]: ...

    def download_file(self, uri: str, dst: Path) -> Path: ...


class UriTransfers:
    """Mixin of ``ObjectStore``: uploads and downloads addressed by ``s3://bucket/key`` URIs."""

    def upload_file(self: _Store, src: Path, uri: str) -> ObjectInfo:
        """Store a local file at ``s3://bucket/key``."""
        bucket, key = parse_uri(uri)
        return self.put_file(bucket, key, Path(src))

    def upload_dir(self: _Store, src_dir: Path, uri: str) -> list[str]:
        """Store every file under ``src_dir`` below the prefix ``uri`` (like ``aws s3 sync``); returns the keys."""
        bucket, prefix = parse_uri(uri)
        prefix = prefix.rstrip("/")
        keys = []
        for folder, dirs, files in os.walk(src_dir):
            dirs.sort()
            for name in sorted(files):
                rel = (Path(folder) / name).relative_to(src_dir).as_posix()
                key = f"{prefix}/{rel}" if prefix else rel
                self.put_file(bucket, key, Path(folder) / name)
                keys.append(key)
        return keys

    def download_file(self: _Store, uri: str, dst: Path) -> Path:
        """Copy the object at ``uri`` to the file ``dst`` (parents created)."""
        bucket, key = parse_uri(uri)
        source = self.head(bucket, key)
        Path(dst).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source.path, dst)
        return Path(dst)

    def download_prefix(self: _Store, uri: str, dst_dir: Path) -> list[Path]:
        """Copy what ``uri`` names into ``dst_dir``; returns the files written (empty when nothing matched).

        ``s3://b/data`` naming an object copies it to ``dst_dir/data``; otherwise the URI is a directory and every
        object below ``data/`` lands at its relative path (``data/train/x.jpg`` -> ``dst_dir/train/x.jpg``).
        """
        bucket, prefix = parse_uri(uri)
        dst_dir = Path(dst_dir)
        if prefix and not prefix.endswith("/"):
            with contextlib.suppress(S3Error):
                return [self.download_file(uri, dst_dir / prefix.rsplit("/", 1)[-1])]
            prefix += "/"
        written = []
        for info in self.iter_objects(bucket, prefix):
            target = dst_dir / info.key[len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(info.path, target)
            written.append(target)
        return written
