"""ops.data: the content-addressed source upload and the dataset upload, against moto's S3 (``mock_aws``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from ops.data import data_files, upload_data, upload_source
from ops.target import OpsError
from tests.unit.ops.ops_fakes import client
from tools.source_package import package_source

BUCKET = "dogbreed-dev-artifacts"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        yield s3


def _tree(root: Path) -> Path:
    for split, classes in (("train", ("001.a", "002.b")), ("valid", ("001.a",)), ("test", ("001.a",))):
        for name in classes:
            (root / split / name).mkdir(parents=True)
            (root / split / name / "img1.jpg").write_bytes(b"\xff\xd8" + split.encode())
    (root / "train" / "__pycache__").mkdir()
    (root / "train" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    return root


def _keys(s3: Any, prefix: str = "") -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []))


def test_upload_source_is_skipped_when_the_content_addressed_key_exists(s3: Any, tmp_path: Path) -> None:
    """First upload puts ``<prefix>/sourcedir-<sha>.tar.gz``; the same package again is not uploaded."""
    (tmp_path / "train.py").write_text("print('train')\n")
    package = package_source(tmp_path)
    uri, uploaded = upload_source(s3, package, BUCKET, "code")
    assert (uri, uploaded) == (f"s3://{BUCKET}/code/{package.name}", True)
    head = s3.head_object(Bucket=BUCKET, Key=f"code/{package.name}")
    assert head["ContentType"] == "application/gzip" and head["ContentLength"] == len(package.data)
    assert upload_source(s3, package, BUCKET, "/code/") == (uri, False)
    assert _keys(s3) == [f"code/{package.name}"]


def test_upload_source_reraises_errors_other_than_not_found(tmp_path: Path) -> None:
    """A 403 on HeadObject is not "absent": it propagates instead of attempting a PUT."""
    (tmp_path / "train.py").write_text("x\n")
    s3 = client("s3")
    with Stubber(s3) as stub:
        stub.add_client_error("head_object", service_error_code="403", http_status_code=403)
        with pytest.raises(ClientError):
            upload_source(s3, package_source(tmp_path), BUCKET, "code/")
        stub.assert_no_pending_responses()


def test_upload_data_uploads_the_tree_then_skips_unchanged_files(s3: Any, tmp_path: Path) -> None:
    """Every file under the prefix, caches excluded; a second run uploads nothing; a changed size is re-uploaded."""
    src = _tree(tmp_path / "dogImages")
    assert upload_data(s3, src, BUCKET, "datasets/dogImages") == (4, 0)
    assert _keys(s3) == [
        "datasets/dogImages/test/001.a/img1.jpg",
        "datasets/dogImages/train/001.a/img1.jpg",
        "datasets/dogImages/train/002.b/img1.jpg",
        "datasets/dogImages/valid/001.a/img1.jpg",
    ]
    assert upload_data(s3, src, BUCKET, "datasets/dogImages/") == (0, 4)
    (src / "valid" / "001.a" / "img1.jpg").write_bytes(b"\xff\xd8 a different size")
    (src / "test" / "001.a" / "img2.jpg").write_bytes(b"\xff\xd8new")
    assert upload_data(s3, src, BUCKET, "datasets/dogImages/") == (2, 3)
    body = s3.get_object(Bucket=BUCKET, Key="datasets/dogImages/valid/001.a/img1.jpg")["Body"].read()
    assert body == b"\xff\xd8 a different size"


def test_data_files_refuses_a_tree_without_the_splits(tmp_path: Path) -> None:
    """A tree without train/, valid/ and test/ (or not a directory) is an OpsError naming what is missing."""
    (tmp_path / "train").mkdir()
    with pytest.raises(OpsError, match="missing valid, test/"):
        data_files(tmp_path)
    with pytest.raises(OpsError, match="not a directory"):
        data_files(tmp_path / "nope")
