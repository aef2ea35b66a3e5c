"""The local S3's wire protocol, through werkzeug's test client (no sockets): addressing, errors, bodies, listings."""

from __future__ import annotations

import base64
import hashlib
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client, TestResponse

from local_aws.s3.app import S3Api, s3_error_renderer
from local_aws.s3.errors import S3Error
from local_aws.s3.multipart import MIN_PART_BYTES
from local_aws.s3.object_ops import FileBody
from local_aws.s3.store import ObjectStore

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def crc32(data: bytes) -> str:
    return b64(zlib.crc32(data).to_bytes(4, "big"))


def md5_b64(data: bytes) -> str:
    return b64(hashlib.md5(data).digest())


def error_of(response: TestResponse) -> dict[str, str]:
    """The ``<Error>`` children of an error response, checked for S3's shape."""
    assert response.headers["Content-Type"] == "application/xml"
    document = ET.fromstring(response.data)
    assert document.tag == "Error"
    fields = {child.tag: child.text or "" for child in document}
    assert fields["RequestId"] == response.headers["x-amz-request-id"]
    assert fields["HostId"] == response.headers["x-amz-id-2"]
    return fields


def xml_of(response: TestResponse) -> ET.Element:
    assert response.status_code in (200, 206), response.data
    document = ET.fromstring(response.data)
    for element in document.iter():
        element.tag = element.tag.removeprefix(NS)
    return document


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    s = ObjectStore(tmp_path / "s3")
    s.create_bucket("bkt")
    return s


@pytest.fixture
def client(store: ObjectStore) -> Client:
    return Client(S3Api(store))


def put(client: Client, path: str, data: bytes = b"", **headers: str) -> TestResponse:
    return client.put(path, data=data, headers={k.replace("_", "-"): v for k, v in headers.items()})


# ------------------------------------------------------------------------------------------------ addressing, errors
def test_path_and_virtual_hosted_addressing(client: Client, store: ObjectStore) -> None:
    store.put_bytes("bkt", "k.txt", b"path")
    store.create_bucket("my.dotted")
    store.put_bytes("my.dotted", "k.txt", b"dotted")
    assert client.get("/bkt/k.txt").data == b"path"
    assert client.get("/k.txt", base_url="http://bkt.localhost:4566").data == b"path"
    assert client.get("/k.txt", base_url="http://bkt.s3.amazonaws.com").data == b"path"
    assert client.get("/k.txt", base_url="http://my.dotted.s3.us-east-1.amazonaws.com").data == b"dotted"
    assert client.get("/k.txt", base_url="http://bkt.anything.example:80").data == b"path"
    assert client.get("/bkt/k.txt", base_url="http://127.0.0.1:4566").data == b"path"
    assert client.get("/bkt/k.txt", base_url="http://[::1]:4566").data == b"path"
    assert client.get("/bkt/k.txt", base_url="http://localhost:4566").data == b"path"
    listing = xml_of(client.get("/", base_url="http://bkt.localhost:4566"))
    assert [e.text for e in listing.iter("Key")] == ["k.txt"]


def test_error_shape_and_status_codes(client: Client) -> None:
    response = client.get("/bkt/missing")
    assert response.status_code == 404
    assert error_of(response) | {"RequestId": "", "HostId": ""} == {
        "Code": "NoSuchKey", "Message": "The specified key does not exist.", "Key": "missing",
        "RequestId": "", "HostId": "",
    }  # fmt: skip
    assert error_of(client.get("/nobucket/k"))["BucketName"] == "nobucket"
    head = client.head("/bkt/missing")
    assert (head.status_code, head.data) == (404, b"")  # HEAD errors carry no body
    assert head.headers["x-amz-request-id"]
    assert error_of(client.get("/Bad_Bucket/k"))["Code"] == "InvalidBucketName"


def test_unsupported_operations(client: Client) -> None:
    response = client.get("/bkt/k?acl")
    assert (response.status_code, error_of(response)["Code"]) == (501, "NotImplemented")
    response = client.patch("/bkt/k")
    assert (response.status_code, error_of(response)["Code"]) == (405, "MethodNotAllowed")
    assert client.get("/bkt?tagging").status_code == 501
    assert client.put("/bkt/k?uploadId=x").status_code == 400  # UploadPart needs a part number


def test_expected_bucket_owner(client: Client) -> None:
    assert client.get("/bkt", headers={"x-amz-expected-bucket-owner": "123456789012"}).status_code == 200
    denied = client.get("/bkt", headers={"x-amz-expected-bucket-owner": "210987654321"})
    assert (denied.status_code, error_of(denied)["Code"]) == (403, "AccessDenied")


def test_internal_errors_are_s3_xml(client: Client, store: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret traceback detail")

    monkeypatch.setattr(store, "open_object", boom)
    response = client.get("/bkt/k")
    assert response.status_code == 500
    assert error_of(response)["Code"] == "InternalError"
    assert b"secret" not in response.data


def test_transport_error_renderer() -> None:
    headers, body = s3_error_renderer(413, "Request Entity Too Large")
    assert dict(headers)["Content-Type"] == "application/xml"
    document = ET.fromstring(body)
    assert document.findtext("Code") == "EntityTooLarge"
    assert document.findtext("RequestId") == dict(headers)["x-amz-request-id"]
    assert ET.fromstring(s3_error_renderer(500, "x")[1]).findtext("Code") == "InternalError"


@pytest.mark.parametrize(
    "path",
    ["/bkt/..%2f..%2fescape", "/bkt/../../escape", "/bkt//abs", "/bkt/%2e%2e/escape", "/bkt/%252e%252e/escape",
     "/bkt/a%5cb", "/bkt/a%00b", "/bkt/a/./b", "/bkt/trailing/", "/bkt/a%252Fb"],
)  # fmt: skip
def test_traversal_probes_are_refused(client: Client, tmp_path: Path, path: str) -> None:
    before = sorted(tmp_path.rglob("*"))
    for method in ("PUT", "GET", "DELETE", "POST"):
        response = client.open(path + ("?uploads" if method == "POST" else ""), method=method, data=b"pwned")
        assert response.status_code == 400, (method, path)
        assert error_of(response)["Code"] == "InvalidArgument"
    assert sorted(tmp_path.rglob("*")) == before


def test_undecodable_and_bucket_traversal_uris(client: Client) -> None:
    assert error_of(client.put("/bkt/a%ffb", data=b"x"))["Code"] == "InvalidURI"
    assert error_of(client.put("/..%2f..%2ftmp/x", data=b"x"))["Code"] == "InvalidBucketName"
    assert error_of(client.get("/.meta/bkt/x"))["Code"] == "InvalidBucketName"


# ------------------------------------------------------------------------------------------------ PUT bodies
def test_put_stores_headers_and_metadata(client: Client) -> None:
    response = put(
        client, "/bkt/doc.txt", b"hello", Content_Type="text/plain", x_amz_meta_Owner="team",
        Cache_Control="no-cache", Content_Disposition="inline", x_amz_checksum_crc32=crc32(b"hello"),
    )  # fmt: skip
    assert response.status_code == 200 and response.data == b""
    assert response.headers["ETag"] == f'"{hashlib.md5(b"hello").hexdigest()}"'
    assert response.headers["x-amz-checksum-crc32"] == crc32(b"hello")
    got = client.get("/bkt/doc.txt", headers={"x-amz-checksum-mode": "ENABLED"})
    assert got.headers["Content-Type"] == "text/plain" and got.headers["x-amz-meta-owner"] == "team"
    assert got.headers["Cache-Control"] == "no-cache" and got.headers["Content-Disposition"] == "inline"
    assert got.headers["x-amz-checksum-crc32"] == crc32(b"hello")
    assert got.headers["Accept-Ranges"] == "bytes" and got.headers["Content-Length"] == "5"
    assert got.headers["Last-Modified"].endswith(" GMT")
    override = client.get("/bkt/doc.txt?response-content-type=application/json")
    assert override.headers["Content-Type"] == "application/json"


def test_head_object_keeps_the_content_length(client: Client) -> None:
    put(client, "/bkt/k", b"12345")
    head = client.head("/bkt/k")
    assert (head.status_code, head.headers["Content-Length"], head.data) == (200, "5", b"")


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"x-amz-content-sha256": "0" * 64}, "XAmzContentSHA256Mismatch"),
        ({"x-amz-content-sha256": "not-a-hash"}, "InvalidArgument"),
        ({"Content-MD5": md5_b64(b"other")}, "BadDigest"),
        ({"Content-MD5": "!!"}, "InvalidDigest"),
        ({"x-amz-checksum-crc32": crc32(b"other")}, "BadDigest"),
        ({"x-amz-checksum-sha256": b64(hashlib.sha256(b"other").digest())}, "BadDigest"),
        ({"x-amz-checksum-crc32": "AAAA"}, "InvalidRequest"),
        ({"x-amz-checksum-crc32": crc32(b"body"), "x-amz-checksum-sha1": "x"}, "InvalidRequest"),
    ],
)
def test_digest_mismatches_are_refused_and_store_nothing(
    client: Client, store: ObjectStore, headers: dict[str, str], code: str
) -> None:
    response = client.put("/bkt/k", data=b"body", headers=headers)
    assert (response.status_code, error_of(response)["Code"]) == (400, code)
    assert store.list_objects("bkt").objects == []
    assert list((store.root / ".tmp").iterdir()) == []


def test_matching_digests_are_accepted(client: Client) -> None:
    headers = {
        "x-amz-content-sha256": hashlib.sha256(b"body").hexdigest(), "Content-MD5": md5_b64(b"body"),
        "x-amz-checksum-sha1": b64(hashlib.sha1(b"body").digest()), "x-amz-sdk-checksum-algorithm": "SHA1",
    }  # fmt: skip
    assert client.put("/bkt/k", data=b"body", headers=headers).status_code == 200
    assert client.put("/bkt/u", data=b"b", headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"}).status_code == 200


def aws_chunked(data: bytes, size: int = 4, trailers: dict[str, str] | None = None, *, signed: bool = True) -> bytes:
    """An aws-chunked body (API/sigv4-streaming.html) with fake chunk signatures (signatures are the edge's job)."""
    ext = b";chunk-signature=" + b"f" * 64 if signed else b""
    out = b"".join(
        b"%x%s\r\n%s\r\n" % (len(data[i : i + size]), ext, data[i : i + size]) for i in range(0, len(data), size)
    )
    out += b"0" + ext + b"\r\n"
    out += b"".join(f"{k}:{v}\r\n".encode() for k, v in (trailers or {}).items())
    return out + b"\r\n"


def test_aws_chunked_signed_body(client: Client, store: ObjectStore) -> None:
    data = b"chunked payload bytes"
    headers = {
        "Content-Encoding": "aws-chunked,gzip", "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "x-amz-decoded-content-length": str(len(data)),
    }  # fmt: skip
    assert client.put("/bkt/c", data=aws_chunked(data), headers=headers).status_code == 200
    assert store.get_bytes("bkt", "c") == data
    assert store.head("bkt", "c").headers["Content-Encoding"] == "gzip"  # aws-chunked is stripped, as S3 does


def test_aws_chunked_unsigned_body_with_trailer(client: Client, store: ObjectStore) -> None:
    data = b"x" * 100
    headers = {
        "Content-Encoding": "aws-chunked", "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "x-amz-trailer": "x-amz-checksum-crc32", "x-amz-decoded-content-length": "100",
    }  # fmt: skip
    body = aws_chunked(data, 64, {"x-amz-checksum-crc32": crc32(data)}, signed=False)
    response = client.put("/bkt/t", data=body, headers=headers)
    assert response.status_code == 200 and response.headers["x-amz-checksum-crc32"] == crc32(data)
    assert store.get_bytes("bkt", "t") == data
    bad = aws_chunked(data, 64, {"x-amz-checksum-crc32": crc32(b"other")}, signed=False)
    assert error_of(client.put("/bkt/t2", data=bad, headers=headers))["Code"] == "BadDigest"


@pytest.mark.parametrize(
    "body",
    [b"5\r\nabc\r\n0\r\n\r\n", b"3\r\nabcdef\r\n0\r\n\r\n", b"zz\r\nabc\r\n0\r\n\r\n", b"3\r\nab", b"3\r\nabc\r\n"],
)
def test_malformed_aws_chunked_bodies(client: Client, store: ObjectStore, body: bytes) -> None:
    headers = {"x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "x-amz-decoded-content-length": "3"}
    response = client.put("/bkt/m", data=body, headers=headers)
    assert (response.status_code, error_of(response)["Code"]) == (400, "IncompleteBody")
    assert store.list_objects("bkt").objects == []


def test_size_limits_and_missing_length(client: Client) -> None:
    huge = client.put("/bkt/k", data=b"x", environ_overrides={"CONTENT_LENGTH": str(5 * 1024**3 + 1)})
    assert error_of(huge)["Code"] == "EntityTooLarge"
    missing = client.put("/bkt/k", environ_overrides={"CONTENT_LENGTH": ""})
    assert (missing.status_code, error_of(missing)["Code"]) == (411, "MissingContentLength")
    big_meta = put(client, "/bkt/k", b"x", x_amz_meta_big="v" * 2100)
    assert error_of(big_meta)["Code"] == "MetadataTooLarge"


def test_conditional_put(client: Client) -> None:
    assert put(client, "/bkt/k", b"1", If_None_Match="*").status_code == 200
    assert error_of(put(client, "/bkt/k", b"2", If_None_Match="*"))["Condition"] == "If-None-Match"
    assert put(client, "/bkt/k", b"2", If_Match='"wrong"').status_code == 412
    assert put(client, "/bkt/new", b"2", If_Match='"wrong"').status_code == 404


# ------------------------------------------------------------------------------------------------ GET
@pytest.mark.parametrize(
    ("header", "status", "body", "content_range"),
    [
        ("bytes=0-1", 206, b"01", "bytes 0-1/10"),
        ("bytes=8-", 206, b"89", "bytes 8-9/10"),
        ("bytes=-3", 206, b"789", "bytes 7-9/10"),
        ("bytes=5-100", 206, b"56789", "bytes 5-9/10"),
        ("bytes=-100", 206, b"0123456789", "bytes 0-9/10"),
        ("bytes=a-b", 200, b"0123456789", None),  # unparseable: the whole object, as S3 does
        ("bytes=0-1,3-4", 200, b"0123456789", None),  # S3 does not serve multiple ranges
    ],
)
def test_ranged_get(client: Client, header: str, status: int, body: bytes, content_range: str | None) -> None:
    put(client, "/bkt/r", b"0123456789")
    response = client.get("/bkt/r", headers={"Range": header})
    assert (response.status_code, response.data, response.headers.get("Content-Range")) == (status, body, content_range)
    assert response.headers["Content-Length"] == str(len(body))


@pytest.mark.parametrize("header", ["bytes=10-", "bytes=100-200", "bytes=-0"])
def test_unsatisfiable_range(client: Client, header: str) -> None:
    put(client, "/bkt/r", b"0123456789")
    response = client.get("/bkt/r", headers={"Range": header})
    assert response.status_code == 416
    fields = error_of(response)
    assert (fields["Code"], fields["ActualObjectSize"], fields["RangeRequested"]) == ("InvalidRange", "10", header)


def test_conditional_get(client: Client) -> None:
    etag = put(client, "/bkt/c", b"data").headers["ETag"]
    not_modified = client.get("/bkt/c", headers={"If-None-Match": etag})
    assert (not_modified.status_code, not_modified.data, not_modified.headers["ETag"]) == (304, b"", etag)
    assert client.get("/bkt/c", headers={"If-Match": etag}).data == b"data"
    failed = client.get("/bkt/c", headers={"If-Match": '"other"'})
    assert (failed.status_code, error_of(failed)["Condition"]) == (412, "If-Match")
    assert client.get("/bkt/c", headers={"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}).status_code == 304
    assert client.get("/bkt/c", headers={"If-Unmodified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}).status_code == 412
    # If-Match true beats If-Unmodified-Since false (API_GetObject.html)
    both = {"If-Match": etag, "If-Unmodified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}
    assert client.get("/bkt/c", headers=both).status_code == 200
    assert client.head("/bkt/c", headers={"If-Match": '"other"'}).status_code == 412


def test_get_streams_the_file(store: ObjectStore) -> None:
    store.put_bytes("bkt", "s", b"streamed")
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/bkt/s", "REQUEST_URI": "/bkt/s", "QUERY_STRING": "",
               "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "HTTP_HOST": "127.0.0.1", "wsgi.url_scheme": "http",
               "wsgi.input": None}  # fmt: skip
    body = S3Api(store)(environ, lambda status, headers, exc_info=None: None)
    assert isinstance(body, FileBody)  # never read into memory whole
    assert b"".join(body) == b"streamed"
    body.close()


# ------------------------------------------------------------------------------------------------ buckets, listings
def test_create_bucket_rules(client: Client) -> None:
    assert client.put("/new-bucket").headers["Location"] == "/new-bucket"
    assert client.put("/new-bucket").status_code == 200  # us-east-1: your own bucket again is 200
    config = b'<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>%s'
    config += b"</LocationConstraint></CreateBucketConfiguration>"
    assert error_of(client.put("/b-2", data=config % b"us-east-1"))["Code"] == "InvalidLocationConstraint"
    assert error_of(client.put("/b-3", data=config % b"eu-west-1"))["Code"] == "IllegalLocationConstraintException"
    assert error_of(client.put("/b-4", data=b"<not xml"))["Code"] == "MalformedXML"
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><CreateBucketConfiguration/>'
    assert error_of(client.put("/b-5", data=bomb))["Code"] == "MalformedXML"
    assert client.head("/new-bucket").headers["x-amz-bucket-region"] == "us-east-1"
    location = xml_of(client.get("/new-bucket?location"))
    assert (location.tag, location.text) == ("LocationConstraint", None)
    assert client.delete("/new-bucket").status_code == 204
    assert client.head("/new-bucket").status_code == 404


def test_list_buckets(client: Client) -> None:
    client.put("/zzz-bucket")
    document = xml_of(client.get("/"))
    assert [e.text for e in document.iter("Name")] == ["bkt", "zzz-bucket"]
    assert document.find("Owner/ID") is not None
    page = xml_of(client.get("/?max-buckets=1"))
    assert [e.text for e in page.iter("Name")] == ["bkt"]
    token = page.findtext("ContinuationToken")
    assert [e.text for e in xml_of(client.get(f"/?continuation-token={token}")).iter("Name")] == ["zzz-bucket"]


def test_list_objects_v2_document(client: Client, store: ObjectStore) -> None:
    for key in ["a b+c.txt", "dir/one", "dir/two", "z"]:
        store.put_bytes("bkt", key, b"x")
    document = xml_of(client.get("/bkt?list-type=2&delimiter=%2F&encoding-type=url&max-keys=2"))
    assert [e.text for e in document.iter("Key")] == ["a%20b%2Bc.txt"]  # botocore unquotes it
    assert [e.text for e in document.iter("Prefix")][1:] == ["dir/"]
    assert (document.findtext("KeyCount"), document.findtext("IsTruncated"), document.findtext("MaxKeys")) == (
        "2", "true", "2",
    )  # fmt: skip
    assert document.findtext("Delimiter") == "/" and document.findtext("EncodingType") == "url"
    token = document.findtext("NextContinuationToken")
    rest = xml_of(client.get(f"/bkt?list-type=2&delimiter=%2F&continuation-token={token}"))
    assert [e.text for e in rest.iter("Key")] == ["z"] and rest.findtext("IsTruncated") == "false"
    assert rest.findtext("ContinuationToken") == token
    contents = document.find("Contents")
    assert contents is not None and contents.findtext("StorageClass") == "STANDARD"
    assert contents.find("Owner") is None  # v2 shows owners only with fetch-owner=true
    assert xml_of(client.get("/bkt?list-type=2&fetch-owner=true")).find("Contents/Owner/ID") is not None


def test_list_objects_v1_document(client: Client, store: ObjectStore) -> None:
    for key in ["a/1", "a/2", "b", "c"]:
        store.put_bytes("bkt", key, b"x")
    document = xml_of(client.get("/bkt?delimiter=/&max-keys=2&marker="))
    assert [e.text for e in document.iter("Key")] == ["b"]
    assert document.findtext("NextMarker") == "b" and document.findtext("IsTruncated") == "true"
    rest = xml_of(client.get("/bkt?delimiter=/&marker=b"))
    assert [e.text for e in rest.iter("Key")] == ["c"] and rest.find("NextMarker") is None
    assert document.find("Contents/Owner") is not None
    no_delimiter = xml_of(client.get("/bkt?max-keys=1"))
    assert no_delimiter.find("NextMarker") is None  # only with a delimiter (API_ListObjects.html)


@pytest.mark.parametrize(
    ("query", "code"),
    [("list-type=2&continuation-token=%25%25", "InvalidArgument"), ("max-keys=-1", "InvalidArgument"),
     ("encoding-type=base64", "InvalidArgument"), ("list-type=3", "InvalidArgument")],
)  # fmt: skip
def test_list_objects_argument_errors(client: Client, query: str, code: str) -> None:
    assert error_of(client.get(f"/bkt?{query}"))["Code"] == code


def test_an_empty_integer_argument(client: Client) -> None:
    # Listings take an empty max-keys/max-uploads/max-buckets as absent; ListParts refuses an empty max-parts.
    assert xml_of(client.get("/bkt?list-type=2&max-keys=")).findtext("MaxKeys") == "1000"
    upload_id = xml_of(client.post("/bkt/big?uploads")).findtext("UploadId")
    assert xml_of(client.get("/bkt?uploads&max-uploads=")).findtext("MaxUploads") == "1000"
    assert error_of(client.get(f"/bkt/big?uploadId={upload_id}&max-parts="))["Code"] == "InvalidArgument"


def delete_body(*keys: str, quiet: bool = False) -> bytes:
    objects = "".join(f"<Object><Key>{k}</Key></Object>" for k in keys)
    return f"<Delete><Quiet>{str(quiet).lower()}</Quiet>{objects}</Delete>".encode()


def test_delete_objects(client: Client, store: ObjectStore) -> None:
    store.put_bytes("bkt", "one", b"1")
    body = delete_body("one", "never-existed", "../escape")
    document = xml_of(client.post("/bkt?delete", data=body, headers={"Content-MD5": md5_b64(body)}))
    assert [e.text for e in document.iter("Key")] == ["one", "never-existed", "../escape"]
    assert [d.findtext("Key") for d in document.findall("Deleted")] == ["one", "never-existed"]
    assert [(e.findtext("Key"), e.findtext("Code")) for e in document.findall("Error")] == [
        ("../escape", "InvalidArgument")
    ]
    quiet = delete_body("a", quiet=True)
    assert (
        xml_of(client.post("/bkt?delete", data=quiet, headers={"x-amz-checksum-crc32": crc32(quiet)})).find("Deleted")
        is None
    )
    assert error_of(client.post("/bkt?delete", data=body))["Code"] == "InvalidRequest"  # no Content-MD5/checksum
    many = delete_body(*[f"k{i}" for i in range(1001)])
    assert error_of(client.post("/bkt?delete", data=many, headers={"Content-MD5": md5_b64(many)}))["Code"] == (
        "MalformedXML"
    )


# ------------------------------------------------------------------------------------------------ copy, multipart
def test_copy_object(client: Client, store: ObjectStore) -> None:
    store.put_bytes("bkt", "src key", b"content", content_type="text/plain", metadata={"a": "1"})
    document = xml_of(client.put("/bkt/dst", headers={"x-amz-copy-source": "bkt/src%20key"}))
    assert (
        document.tag == "CopyObjectResult" and document.findtext("ETag") == f'"{hashlib.md5(b"content").hexdigest()}"'
    )
    assert store.head("bkt", "dst").metadata == {"a": "1"}
    replace = {"x-amz-copy-source": "/bkt/dst", "x-amz-metadata-directive": "REPLACE", "x-amz-meta-b": "2"}
    assert client.put("/bkt/dst", headers=replace).status_code == 200
    assert store.head("bkt", "dst").metadata == {"b": "2"}
    self_copy = client.put("/bkt/dst", headers={"x-amz-copy-source": "bkt/dst"})
    assert error_of(self_copy)["Code"] == "InvalidRequest"
    for source in ["bkt", "bkt/../s3/x", "bkt/%2e%2e/x", "Bad_Bucket/x"]:
        assert client.put("/bkt/x", headers={"x-amz-copy-source": source}).status_code == 400, source
    assert client.put("/bkt/x", headers={"x-amz-copy-source": "bkt/missing"}).status_code == 404
    failed = client.put("/bkt/x", headers={"x-amz-copy-source": "bkt/dst", "x-amz-copy-source-if-match": '"no"'})
    assert error_of(failed)["Condition"] == "x-amz-copy-source-If-Match"


def test_multipart_over_the_wire(client: Client, store: ObjectStore) -> None:
    store.put_bytes("bkt", "source", b"S" * 100)
    created = xml_of(client.post("/bkt/big?uploads", headers={"Content-Type": "application/x-tar"}))
    upload_id = created.findtext("UploadId")
    assert created.findtext("Key") == "big" and upload_id
    part1 = b"1" * MIN_PART_BYTES
    etag1 = client.put(f"/bkt/big?partNumber=1&uploadId={upload_id}", data=part1).headers["ETag"]
    copy = {"x-amz-copy-source": "bkt/source", "x-amz-copy-source-range": "bytes=10-19"}
    etag2 = xml_of(client.put(f"/bkt/big?partNumber=2&uploadId={upload_id}", headers=copy)).findtext("ETag")
    parts = xml_of(client.get(f"/bkt/big?uploadId={upload_id}"))
    assert [p.findtext("Size") for p in parts.iter("Part")] == [str(MIN_PART_BYTES), "10"]
    uploads = xml_of(client.get("/bkt?uploads"))
    assert [u.findtext("UploadId") for u in uploads.iter("Upload")] == [upload_id]
    wrong_order = f"<CompleteMultipartUpload><Part><PartNumber>2</PartNumber><ETag>{etag2}</ETag></Part>"
    wrong_order += f"<Part><PartNumber>1</PartNumber><ETag>{etag1}</ETag></Part></CompleteMultipartUpload>"
    assert error_of(client.post(f"/bkt/big?uploadId={upload_id}", data=wrong_order))["Code"] == "InvalidPartOrder"
    complete = f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag1}</ETag></Part>"
    complete += f"<Part><PartNumber>2</PartNumber><ETag>{etag2}</ETag></Part></CompleteMultipartUpload>"
    done = xml_of(client.post(f"/bkt/big?uploadId={upload_id}", data=complete))
    assert done.findtext("ETag", "").endswith('-2"') and done.findtext("Location", "").endswith("/bkt/big")
    assert store.get_bytes("bkt", "big") == part1 + b"S" * 10
    assert store.head("bkt", "big").content_type == "application/x-tar"
    assert error_of(client.delete(f"/bkt/big?uploadId={upload_id}"))["Code"] == "NoSuchUpload"
    bad_range = {"x-amz-copy-source": "bkt/source", "x-amz-copy-source-range": "bytes=90-100"}
    other = xml_of(client.post("/bkt/other?uploads")).findtext("UploadId")
    assert error_of(client.put(f"/bkt/other?partNumber=1&uploadId={other}", headers=bad_range))["Code"] == (
        "InvalidArgument"
    )
    assert client.delete(f"/bkt/other?uploadId={other}").status_code == 204


def test_s3_error_is_an_exception_with_fields() -> None:
    error = S3Error("NoSuchKey", Key="k", Missing=None)
    assert (error.status, error.fields, str(error)) == (
        404,
        {"Key": "k"},
        "NoSuchKey: The specified key does not exist.",
    )


def test_digits_that_python_reads_but_s3_does_not_are_a_400(client: Client) -> None:
    # str.isdigit() accepts "²" (U+00B2), which int() refuses: each such value must be the client's 400, never a 500.
    listing = client.get("/bkt?list-type=2&max-keys=%C2%B2")
    assert (listing.status_code, error_of(listing)["Code"]) == (400, "InvalidArgument")
    upload_id = xml_of(client.post("/bkt/big?uploads")).findtext("UploadId")
    complete = (
        "<CompleteMultipartUpload><Part><PartNumber>²</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>"
    )
    answer = client.post(f"/bkt/big?uploadId={upload_id}", data=complete.encode())
    assert (answer.status_code, error_of(answer)["Code"]) == (400, "MalformedXML")
    headers = {"x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "x-amz-decoded-content-length": "²"}
    put = client.put("/bkt/m", data=b"0\r\n\r\n", headers=headers)
    assert (put.status_code, error_of(put)["Code"]) == (400, "InvalidArgument")
