"""The local S3 on a real socket, driven by the real boto3 and the real awscli (v1) as users drive it."""

from __future__ import annotations

import filecmp
import hashlib
import http.client
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local_aws.constants import S3_MAX_PUT_BYTES
from local_aws.http.server import HttpServer
from local_aws.s3.app import S3Api, s3_error_renderer
from local_aws.s3.store import ObjectStore

AWS = Path(sys.executable).with_name("aws")
BIG = 9 * 1024 * 1024 + 123  # over awscli's and s3transfer's 8 MiB multipart threshold: two parts


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("s3-wire") / "s3"


@pytest.fixture(scope="module")
def store(root: Path) -> ObjectStore:
    return ObjectStore(root)


@pytest.fixture(scope="module")
def server(store: ObjectStore) -> Iterator[HttpServer]:
    with HttpServer(
        S3Api(store), name="s3", max_body_bytes=S3_MAX_PUT_BYTES + 1, error_renderer=s3_error_renderer
    ) as running:
        yield running


@pytest.fixture(scope="module")
def s3(server: HttpServer) -> Any:
    session = boto3.session.Session(aws_access_key_id="AKIDLOCAL", aws_secret_access_key="local-secret")
    config = Config(region_name="us-east-1", retries={"max_attempts": 1, "mode": "standard"})
    return session.client("s3", endpoint_url=server.url, config=config)


@pytest.fixture(scope="module")
def bucket(s3: Any) -> str:
    """The bucket the boto3 tests share, holding ``fixed/ten.txt`` (10 bytes)."""
    s3.create_bucket(Bucket="boto")
    s3.put_object(Bucket="boto", Key="fixed/ten.txt", Body=b"0123456789")
    return "boto"


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.bin"
    path.write_bytes(os.urandom(BIG))
    return path


@pytest.fixture(scope="module")
def aws(server: HttpServer, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., str]:
    """Run the real awscli against the server; the user's AWS config cannot leak in."""
    assert AWS.is_file(), f"awscli is not installed next to {sys.executable}"
    home = tmp_path_factory.mktemp("aws-home")
    (home / "config").write_text("")
    (home / "credentials").write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {
        "AWS_ACCESS_KEY_ID": "AKIDLOCAL", "AWS_SECRET_ACCESS_KEY": "local-secret", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(home / "config"), "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
        "AWS_MAX_ATTEMPTS": "1", "HOME": str(home),
    }  # fmt: skip

    def run(*args: str) -> str:
        cmd = [str(AWS), "--endpoint-url", server.url, *args]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
        return done.stdout

    return run


def snapshot(path: Path) -> set[str]:
    return {p.relative_to(path).as_posix() for p in path.rglob("*")}


# ------------------------------------------------------------------------------------------------ boto3
def test_boto3_object_round_trip(s3: Any, store: ObjectStore, bucket: str) -> None:
    s3.create_bucket(Bucket="boto")
    s3.create_bucket(Bucket="boto")  # us-east-1: creating your own bucket again succeeds
    s3.head_bucket(Bucket="boto")
    assert s3.get_bucket_location(Bucket="boto")["LocationConstraint"] is None
    assert "boto" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    data = bytes(range(256)) * 10
    put = s3.put_object(Bucket="boto", Key="dir/obj.bin", Body=data, ContentType="application/x-test")
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    got = s3.get_object(Bucket="boto", Key="dir/obj.bin")
    assert got["Body"].read() == data and got["ContentType"] == "application/x-test"
    head = s3.head_object(Bucket="boto", Key="dir/obj.bin")
    assert (head["ContentLength"], head["ETag"]) == (len(data), put["ETag"])
    ranged = s3.get_object(Bucket="boto", Key="dir/obj.bin", Range="bytes=10-19")
    assert (ranged["Body"].read(), ranged["ContentRange"]) == (data[10:20], f"bytes 10-19/{len(data)}")
    assert s3.get_object(Bucket="boto", Key="dir/obj.bin", Range="bytes=-5")["Body"].read() == data[-5:]
    copied = s3.copy_object(Bucket="boto", Key="copy.bin", CopySource={"Bucket": "boto", "Key": "dir/obj.bin"})
    assert copied["CopyObjectResult"]["ETag"] == put["ETag"]
    deleted = s3.delete_objects(Bucket="boto", Delete={"Objects": [{"Key": "copy.bin"}, {"Key": "never"}]})
    assert sorted(d["Key"] for d in deleted["Deleted"]) == ["copy.bin", "never"]
    s3.delete_object(Bucket="boto", Key="dir/obj.bin")
    assert [o.key for o in store.list_objects("boto", prefix="dir/").objects] == []


def test_boto3_metadata_values_round_trip(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket="boto", Key="meta", Body=b"x", Metadata={"project": "dogs"})
    metadata = s3.head_object(Bucket="boto", Key="meta")["Metadata"]
    assert {k.lower(): v for k, v in metadata.items()} == {"project": "dogs"}


def test_boto3_metadata_names_keep_their_case(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket="boto", Key="meta", Body=b"x", Metadata={"project": "dogs"})
    assert s3.head_object(Bucket="boto", Key="meta")["Metadata"] == {"project": "dogs"}


def test_boto3_multipart_upload_and_ranged_download(s3: Any, bucket: str, big_file: Path, tmp_path: Path) -> None:
    s3.upload_file(str(big_file), "boto", "models/big.bin")  # 8 MiB + 1 MiB parts, CRC32 each
    head = s3.head_object(Bucket="boto", Key="models/big.bin")
    assert head["ContentLength"] == BIG and head["ETag"].endswith('-2"')
    s3.download_file("boto", "models/big.bin", str(tmp_path / "down.bin"))  # ranged GETs with If-Match
    assert filecmp.cmp(big_file, tmp_path / "down.bin", shallow=False)
    upload = s3.create_multipart_upload(Bucket="boto", Key="manual")
    part = s3.upload_part(Bucket="boto", Key="manual", UploadId=upload["UploadId"], PartNumber=1, Body=b"only")
    listed = s3.list_parts(Bucket="boto", Key="manual", UploadId=upload["UploadId"])
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed["Parts"]] == [(1, part["ETag"], 4)]
    s3.complete_multipart_upload(
        Bucket="boto", Key="manual", UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )  # fmt: skip
    assert s3.get_object(Bucket="boto", Key="manual")["Body"].read() == b"only"


def test_boto3_list_objects_v2_paginator(s3: Any, bucket: str) -> None:
    keys = ["p/a", "p/b c", "p/sub/d", "p/sub/e", "p/z+", "p/é"]
    for key in keys:
        s3.put_object(Bucket="boto", Key=key, Body=key.encode())
    paginator = s3.get_paginator("list_objects_v2")
    pages = list(paginator.paginate(Bucket="boto", Prefix="p/", PaginationConfig={"PageSize": 2}))
    assert len(pages) == 3 and [o["Key"] for p in pages for o in p["Contents"]] == keys
    folded = list(paginator.paginate(Bucket="boto", Prefix="p/", Delimiter="/", PaginationConfig={"PageSize": 2}))
    assert [c["Prefix"] for p in folded for c in p.get("CommonPrefixes", [])] == ["p/sub/"]
    assert [o["Key"] for p in folded for o in p.get("Contents", [])] == ["p/a", "p/b c", "p/z+", "p/é"]
    v1 = s3.list_objects(Bucket="boto", Prefix="p/", Delimiter="/")
    assert [c["Prefix"] for c in v1["CommonPrefixes"]] == ["p/sub/"]


def _complete_with_a_wrong_etag(s3: Any) -> Any:
    upload_id = s3.create_multipart_upload(Bucket="boto", Key="k")["UploadId"]
    parts = [{"PartNumber": 1, "ETag": '"' + "0" * 32 + '"'}]
    return s3.complete_multipart_upload(Bucket="boto", Key="k", UploadId=upload_id, MultipartUpload={"Parts": parts})


@pytest.mark.parametrize(
    ("call", "code", "status"),
    [
        (lambda s3: s3.get_object(Bucket="boto", Key="missing"), "NoSuchKey", 404),
        (lambda s3: s3.head_object(Bucket="boto", Key="missing"), "404", 404),
        (lambda s3: s3.get_object(Bucket="no-such-bucket", Key="k"), "NoSuchBucket", 404),
        (lambda s3: s3.list_objects_v2(Bucket="no-such-bucket"), "NoSuchBucket", 404),
        (lambda s3: s3.delete_bucket(Bucket="boto"), "BucketNotEmpty", 409),
        (lambda s3: s3.create_bucket(Bucket="Bad_Bucket"), "InvalidBucketName", 400),
        (lambda s3: s3.get_object(Bucket="boto", Key="fixed/ten.txt", Range="bytes=10-"), "InvalidRange", 416),
        (lambda s3: s3.put_object(Bucket="boto", Key="../escape", Body=b"x"), "InvalidArgument", 400),
        (lambda s3: s3.abort_multipart_upload(Bucket="boto", Key="k", UploadId="x" * 20), "NoSuchUpload", 404),
        (lambda s3: s3.get_object(Bucket="boto", Key="fixed/ten.txt", IfMatch='"no"'), "PreconditionFailed", 412),
        (_complete_with_a_wrong_etag, "InvalidPart", 400),
    ],
)
def test_boto3_sees_s3_error_codes(s3: Any, bucket: str, call: Callable[[Any], Any], code: str, status: int) -> None:
    with pytest.raises(ClientError) as excinfo:
        call(s3)
    assert excinfo.value.response["Error"]["Code"] == code
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


# ------------------------------------------------------------------------------------------------ awscli
def test_awscli_cp_sync_ls_rm(aws: Callable[..., str], big_file: Path, tmp_path: Path, store: ObjectStore) -> None:
    aws("s3", "mb", "s3://cli-bucket")
    aws("s3", "cp", str(big_file), "s3://cli-bucket/big.bin")
    assert store.head("cli-bucket", "big.bin").etag.endswith("-2")  # went up in parts
    aws("s3", "cp", "s3://cli-bucket/big.bin", str(tmp_path / "big-down.bin"))
    assert filecmp.cmp(big_file, tmp_path / "big-down.bin", shallow=False)

    src = tmp_path / "tree"
    for rel, content in {"a.txt": b"a", "sub/b c.txt": b"b" * 1000, "sub/deep/ü.bin": os.urandom(3000)}.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(content)
    out = aws("s3", "sync", str(src), "s3://cli-bucket/tree")
    assert out.count("upload:") == 3
    assert aws("s3", "sync", str(src), "s3://cli-bucket/tree").strip() == ""  # nothing changed: nothing sent
    aws("s3", "sync", "s3://cli-bucket/tree", str(tmp_path / "back"))
    assert snapshot(tmp_path / "back") == snapshot(src)
    assert aws("s3", "sync", "s3://cli-bucket/tree", str(tmp_path / "back")).strip() == ""  # mtimes = LastModified
    assert all(filecmp.cmp(src / p, tmp_path / "back" / p, shallow=False) for p in ["a.txt", "sub/deep/ü.bin"])

    assert "cli-bucket" in aws("s3", "ls").split()
    top = aws("s3", "ls", "s3://cli-bucket/")
    assert "PRE tree/" in top and f"{BIG} big.bin" in " ".join(top.split())
    assert "PRE deep/" in aws("s3", "ls", "s3://cli-bucket/tree/sub/")
    recursive = [line.split(maxsplit=3)[3] for line in aws("s3", "ls", "--recursive", "s3://cli-bucket").splitlines()]
    assert recursive == ["big.bin", "tree/a.txt", "tree/sub/b c.txt", "tree/sub/deep/ü.bin"]

    aws("s3", "cp", "s3://cli-bucket/big.bin", "s3://cli-bucket/big-copy.bin")  # UploadPartCopy with ranges
    assert store.get_bytes("cli-bucket", "big-copy.bin") == big_file.read_bytes()
    assert aws("s3", "rm", "--recursive", "s3://cli-bucket/tree").count("delete:") == 3
    assert [o.key for o in store.list_objects("cli-bucket").objects] == ["big-copy.bin", "big.bin"]
    aws("s3", "rb", "--force", "s3://cli-bucket")
    assert not store.bucket_exists("cli-bucket")


def test_awscli_s3api(aws: Callable[..., str], tmp_path: Path) -> None:
    aws("s3", "mb", "s3://api-bucket")
    (tmp_path / "body.txt").write_bytes(b"0123456789")
    put = json.loads(aws("s3api", "put-object", "--bucket", "api-bucket", "--key", "k.txt", "--body",
                         str(tmp_path / "body.txt"), "--metadata", "team=ml"))  # fmt: skip
    assert put["ETag"] == f'"{hashlib.md5(b"0123456789").hexdigest()}"'
    head = json.loads(aws("s3api", "head-object", "--bucket", "api-bucket", "--key", "k.txt"))
    assert (head["ContentLength"], head["ETag"], head["AcceptRanges"]) == (10, put["ETag"], "bytes")
    got = json.loads(aws("s3api", "get-object", "--bucket", "api-bucket", "--key", "k.txt", "--range", "bytes=2-4",
                         str(tmp_path / "part.txt")))  # fmt: skip
    assert (got["ContentRange"], (tmp_path / "part.txt").read_bytes()) == ("bytes 2-4/10", b"234")
    aws("s3api", "copy-object", "--bucket", "api-bucket", "--key", "c.txt", "--copy-source", "api-bucket/k.txt")
    listed = json.loads(aws("s3api", "list-objects-v2", "--bucket", "api-bucket"))
    assert [o["Key"] for o in listed["Contents"]] == ["c.txt", "k.txt"]
    deleted = json.loads(aws("s3api", "delete-objects", "--bucket", "api-bucket", "--delete",
                             "Objects=[{Key=c.txt},{Key=k.txt}]"))  # fmt: skip
    assert sorted(d["Key"] for d in deleted["Deleted"]) == ["c.txt", "k.txt"]
    aws("s3", "rb", "s3://api-bucket")


# ------------------------------------------------------------------------------------------------ raw HTTP
def raw(
    server: HttpServer, method: str, path: str, body: bytes = b"", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.putrequest(method, path, skip_host="Host" in headers, skip_accept_encoding=True)
        for name, value in {"Content-Length": str(len(body)), **headers}.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize(
    "path",
    ["/probe-bucket/..%2f..%2fescape", "/probe-bucket/../../escape", "/probe-bucket//abs", "/probe-bucket/%2e%2e/x",
     "/probe-bucket/%252e%252e/escape", "/probe-bucket/a%5c..%5cescape", "/probe-bucket/a%00b",
     "/probe-bucket/sub/./x", "/..%2f..%2fescape/x", "/.meta/probe-bucket/x", "/probe-bucket/a%ffb"],
)  # fmt: skip
def test_traversal_probes_over_http(server: HttpServer, store: ObjectStore, root: Path, path: str) -> None:
    store.create_bucket("probe-bucket")
    outside = root.parent
    before = snapshot(outside)
    for method in ("PUT", "GET", "HEAD", "DELETE"):
        status, headers, body = raw(server, method, path, b"pwned" if method == "PUT" else b"")
        assert status == 400, (method, path, body)
        if method != "HEAD":
            document = ET.fromstring(body)
            assert document.findtext("Code") in {"InvalidArgument", "InvalidBucketName", "InvalidURI"}
            assert document.findtext("RequestId") == headers["x-amz-request-id"]
    assert snapshot(outside) == before


def test_virtual_hosted_style_and_transport_errors(server: HttpServer, store: ObjectStore) -> None:
    store.create_bucket("vhost")
    store.put_bytes("vhost", "k.txt", b"virtual")
    assert raw(server, "GET", "/k.txt", Host=f"vhost.localhost:{server.port}")[2] == b"virtual"
    status, headers, body = raw(server, "PUT", "/vhost/x", **{"Content-Length": "abc"})
    assert status == 400 and headers["content-type"] == "application/xml"
    assert ET.fromstring(body).findtext("Code") == "BadRequest"
    with HttpServer(S3Api(store), name="s3-small", max_body_bytes=1024, error_renderer=s3_error_renderer) as small:
        status, _, body = raw(small, "PUT", "/vhost/too-big", b"x" * 4096)
    assert status == 413 and ET.fromstring(body).findtext("Code") == "EntityTooLarge"
    assert not (store.root / "vhost" / "too-big").exists()
