"""Uploads to the stack's buckets, identical on both targets: the content-addressed source dir and a dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from ops.target import OpsError
from tools.dataset import SPLITS
from tools.source_package import SourcePackage, packaged_files

DEFAULT_CODE_PREFIX = "code/"
DEFAULT_DATA_PREFIX = "datasets/dogImages/"
MULTIPART_THRESHOLD = 8 * 1024 * 1024  # boto3 TransferConfig default


def _dir_prefix(prefix: str) -> str:
    """A key prefix that names a "directory": no leading slash, one trailing slash (or empty)."""
    prefix = prefix.lstrip("/")
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def upload_source(s3: Any, package: SourcePackage, bucket: str, prefix: str) -> tuple[str, bool]:
    """Upload a source package unless its content-addressed key already exists; returns (uri, uploaded)."""
    key = _dir_prefix(prefix) + package.name
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return f"s3://{bucket}/{key}", False
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
            raise
    s3.put_object(Bucket=bucket, Key=key, Body=package.data, ContentType="application/gzip")
    return f"s3://{bucket}/{key}", True


def data_files(src: Path) -> list[Path]:
    """Every file under a dogImages-style tree, sorted; refuses trees without train/, valid/ and test/."""
    if not src.is_dir():
        raise OpsError(f"--src {src}: not a directory")
    missing = [split for split in SPLITS if not (src / split).is_dir()]
    if missing:
        raise OpsError(f"--src {src}: missing {', '.join(missing)}/; expected the dogImages layout {SPLITS}")
    return packaged_files(src)


def _existing_sizes(s3: Any, bucket: str, prefix: str) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        sizes.update({obj["Key"]: obj["Size"] for obj in page.get("Contents", [])})
    return sizes


def upload_data(s3: Any, src: Path, bucket: str, prefix: str) -> tuple[int, int]:
    """Upload ``src`` under ``prefix``, skipping keys that already hold a file of the same size."""
    files = data_files(src)
    prefix = _dir_prefix(prefix)
    existing = _existing_sizes(s3, bucket, prefix)
    uploaded = 0
    for path in files:
        key = prefix + path.relative_to(src).as_posix()
        size = path.stat().st_size
        if existing.get(key) == size:
            continue
        if size < MULTIPART_THRESHOLD:
            # One PUT per small file: upload_file's transfer manager costs a thread pool per call.
            s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        else:
            s3.upload_file(str(path), bucket, key)
        uploaded += 1
    return uploaded, len(files) - uploaded
