"""The bucket half of the ``ObjectStore``: buckets are the directories under the root with valid bucket names.

A bucket's creation date is kept in ``<root>/.buckets/<bucket>.json``; a directory made by something else (a dataset
rendered straight into the tree) is a bucket too, dated by its mtime. Deleting a bucket removes its (empty) directory,
its sidecar tree and its unfinished multipart uploads.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from local_aws.s3.errors import S3Error, no_such_bucket
from local_aws.s3.keys import bucket_name_problem, validate_bucket
from local_aws.s3.records import BucketInfo, read_json, write_json_atomic


class _UploadsOfBuckets(Protocol):
    """What deleting a bucket needs of ``MultipartUploads`` (a protocol, so buckets never imports multipart)."""

    def abort_all(self, bucket: str) -> None: ...


META_DIR, TMP_DIR, BUCKETS_DIR = ".meta", ".tmp", ".buckets"


class Buckets:
    """Mixin of ``ObjectStore``: the bucket operations."""

    root: Path
    tmp_dir: Path
    lock: threading.RLock
    uploads: _UploadsOfBuckets

    def bucket_dir(self, bucket: str) -> Path:
        """The directory of an existing bucket.

        Raises:
            S3Error: ``InvalidBucketName``; 404 ``NoSuchBucket``.
        """
        path = self.root / validate_bucket(bucket)
        if not path.is_dir():
            raise no_such_bucket(bucket)
        return path

    def bucket_exists(self, bucket: str) -> bool:
        """Whether ``bucket`` is a valid name with a directory under the root."""
        return bucket_name_problem(bucket) is None and (self.root / bucket).is_dir()

    def create_bucket(self, bucket: str) -> bool:
        """Create ``bucket``; returns False when it already existed (us-east-1 answers that with 200, too).

        Raises:
            S3Error: ``InvalidBucketName``.
        """
        path = self.root / validate_bucket(bucket)
        with self.lock:
            if path.is_dir():
                return False
            path.mkdir()
            (self.root / BUCKETS_DIR).mkdir(exist_ok=True)
            record = {"created": datetime.now(UTC).isoformat()}
            write_json_atomic(self.root / BUCKETS_DIR / f"{bucket}.json", record, self.tmp_dir)
            return True

    def bucket_info(self, bucket: str) -> BucketInfo:
        """The bucket's name and creation date (the dir's mtime for a bucket dir made by something else)."""
        path = self.bucket_dir(bucket)
        record = read_json(self.root / BUCKETS_DIR / f"{bucket}.json") or {}
        try:
            created = datetime.fromisoformat(str(record["created"]))
        except (KeyError, ValueError):
            created = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        return BucketInfo(bucket, created)

    def list_buckets(self) -> list[BucketInfo]:
        """Every bucket, sorted by name (dirs under the root whose names are valid bucket names)."""
        names = sorted(e.name for e in os.scandir(self.root) if e.is_dir() and bucket_name_problem(e.name) is None)
        return [self.bucket_info(name) for name in names]

    def delete_bucket(self, bucket: str) -> None:
        """Delete an empty bucket (and its unfinished multipart uploads, which S3 discards with it).

        Raises:
            S3Error: 404 ``NoSuchBucket``; 409 ``BucketNotEmpty`` while any file is in it (also files no key names).
        """
        path = self.bucket_dir(bucket)
        with self.lock:
            for _, _, files in os.walk(path):
                if files:
                    raise S3Error("BucketNotEmpty", BucketName=bucket)
            self.uploads.abort_all(bucket)
            if path.is_symlink():
                path.unlink()  # a bucket linked in from elsewhere: drop the link, never the target's tree
            else:
                shutil.rmtree(path)
            shutil.rmtree(self.root / META_DIR / bucket, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                (self.root / BUCKETS_DIR / f"{bucket}.json").unlink()
