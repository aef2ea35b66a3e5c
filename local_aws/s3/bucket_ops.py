"""The service and bucket operations: ListBuckets, Create/Head/DeleteBucket, GetBucketLocation/Versioning,
ListObjects (v1) and ListObjectsV2, DeleteObjects and ListMultipartUploads.

Behaviour follows each operation's page in the S3 API reference (docs.aws.amazon.com/AmazonS3/latest/API/
API_<Operation>.html); listing fields and their ``encoding-type=url`` treatment follow botocore, which sends
``encoding-type=url`` on every ListObjects/ListObjectsV2 and unquotes Prefix, Delimiter, StartAfter/Marker/NextMarker,
Key and CommonPrefixes.Prefix in the answer (botocore/handlers.py ``decode_list_object*``).
"""

from __future__ import annotations

import base64
import binascii
import xml.etree.ElementTree as ET

from local_aws.constants import REGION
from local_aws.s3.body import RequestBody
from local_aws.s3.errors import S3Error, invalid_argument
from local_aws.s3.records import ObjectInfo
from local_aws.s3.responses import (
    XML_MAX_BYTES,
    Call,
    S3Response,
    encode_key,
    iso_time,
    owner,
    parse_xml,
    root,
    sub,
    xml_response,
)

MAX_KEYS = 1000  # ListObjects returns at most 1,000 keys per page, whatever max-keys asks (API_ListObjectsV2.html)
DELETE_MAX_KEYS = 1000  # DeleteObjects: "up to 1,000 keys" per request (API_DeleteObjects.html)


def _encode_token(after: str) -> str:
    return base64.urlsafe_b64encode(after.encode("utf-8")).decode()


def _decode_token(token: str) -> str:
    # Continuation tokens are opaque to clients; here they carry the last key or prefix of the previous page.
    try:
        after = base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        after = ""
    if not after:
        raise invalid_argument("The continuation token provided is incorrect", "continuation-token", token)
    return after


def list_buckets(call: Call) -> S3Response:
    """ListBuckets, with the optional ``prefix``, ``max-buckets`` and ``continuation-token``."""
    prefix = call.args.get("prefix", "")
    limit = call.int_arg("max-buckets", 10_000, 10_000, empty_is_default=True)
    after = _decode_token(call.args["continuation-token"]) if "continuation-token" in call.args else ""
    buckets = [b for b in call.store.list_buckets() if b.name.startswith(prefix) and b.name > after]
    document = root("ListAllMyBucketsResult")
    owner(document)
    element = sub(document, "Buckets")
    for bucket in buckets[:limit]:
        entry = sub(element, "Bucket")
        sub(entry, "Name", bucket.name)
        sub(entry, "CreationDate", iso_time(bucket.created))
        sub(entry, "BucketRegion", REGION)
    if len(buckets) > limit:
        sub(document, "ContinuationToken", _encode_token(buckets[limit - 1].name))
    if prefix:
        sub(document, "Prefix", prefix)
    return xml_response(document)


def create_bucket(call: Call) -> S3Response:
    """CreateBucket. In us-east-1 creating a bucket you already own answers 200 (API_CreateBucket.html)."""
    assert call.bucket is not None
    body = RequestBody(call.request.environ, max_bytes=XML_MAX_BYTES).read_all(XML_MAX_BYTES)
    if body.strip():
        document = parse_xml(body)
        if document.tag != "CreateBucketConfiguration":
            raise S3Error("MalformedXML")
        location = (document.findtext("LocationConstraint") or "").strip()
        # NOTE: us-east-1 is the region without a location constraint; naming it explicitly is an error in S3.
        if location == REGION:
            raise S3Error("InvalidLocationConstraint", LocationConstraint=location)
        if location:
            raise S3Error(
                "IllegalLocationConstraintException",
                f"The {location} location constraint is incompatible for the region specific endpoint this request "
                f"was sent to (the local S3 serves {REGION} only).",
            )
    call.store.create_bucket(call.bucket)
    return S3Response(b"", 200, [("Location", f"/{call.bucket}")])


def head_bucket(call: Call) -> S3Response:
    """HeadBucket: 200 with the bucket's region, or a bodiless 404."""
    assert call.bucket is not None
    call.store.bucket_dir(call.bucket)
    return S3Response(b"", 200, [("x-amz-bucket-region", REGION), ("x-amz-access-point-alias", "false")])


def delete_bucket(call: Call) -> S3Response:
    """DeleteBucket: 204, or 409 ``BucketNotEmpty``."""
    assert call.bucket is not None
    call.store.delete_bucket(call.bucket)
    return S3Response(b"", 204)


def get_bucket_location(call: Call) -> S3Response:
    """GetBucketLocation: an empty ``LocationConstraint`` means us-east-1 (API_GetBucketLocation.html)."""
    assert call.bucket is not None
    call.store.bucket_dir(call.bucket)
    return xml_response(root("LocationConstraint"))


def get_bucket_versioning(call: Call) -> S3Response:
    """GetBucketVersioning: never enabled here, which S3 answers with an empty configuration."""
    assert call.bucket is not None
    call.store.bucket_dir(call.bucket)
    return xml_response(root("VersioningConfiguration"))


def _contents(document: ET.Element, info: ObjectInfo, url: bool, with_owner: bool) -> None:
    element = sub(document, "Contents")
    sub(element, "Key", encode_key(info.key, url))
    sub(element, "LastModified", iso_time(info.last_modified))
    sub(element, "ETag", info.quoted_etag)
    if info.checksum:
        sub(element, "ChecksumAlgorithm", info.checksum[0])
    sub(element, "Size", info.size)
    if with_owner:
        owner(element)
    sub(element, "StorageClass", info.headers.get("x-amz-storage-class", "STANDARD"))


def list_objects(call: Call) -> S3Response:
    """ListObjectsV2 (``list-type=2``) and ListObjects (v1, ``marker``), one page of at most 1,000 entries."""
    assert call.bucket is not None
    args, url = call.args, call.url_encode
    v2 = args.get("list-type") == "2"
    if "list-type" in args and not v2:
        raise invalid_argument("Invalid List Type specified in Request", "list-type", args["list-type"])
    if args.get("encoding-type") not in (None, "url"):
        raise invalid_argument("Invalid Encoding Method specified in Request", "encoding-type", args["encoding-type"])
    max_keys = call.int_arg("max-keys", MAX_KEYS, MAX_KEYS, empty_is_default=True)
    prefix, delimiter = args.get("prefix", ""), args.get("delimiter", "")
    token = args.get("continuation-token") if v2 else None
    after = _decode_token(token) if token is not None else args.get("start-after" if v2 else "marker", "")
    page = call.store.list_objects(call.bucket, prefix, delimiter, after, max_keys)
    document = root("ListBucketResult")
    sub(document, "Name", call.bucket)
    sub(document, "Prefix", encode_key(prefix, url))
    if v2:
        if token is not None:
            sub(document, "ContinuationToken", token)
        if "start-after" in args:
            sub(document, "StartAfter", encode_key(args["start-after"], url))
        sub(document, "KeyCount", len(page.objects) + len(page.common_prefixes))
        if page.truncated and page.last is not None:
            sub(document, "NextContinuationToken", _encode_token(page.last))
    else:
        sub(document, "Marker", encode_key(after, url))
        # "returned only if you have the delimiter request parameter specified" (API_ListObjects.html, NextMarker)
        if page.truncated and delimiter and page.last is not None:
            sub(document, "NextMarker", encode_key(page.last, url))
    sub(document, "MaxKeys", max_keys)
    if delimiter:
        sub(document, "Delimiter", encode_key(delimiter, url))
    if url:
        sub(document, "EncodingType", "url")
    sub(document, "IsTruncated", page.truncated)
    with_owner = not v2 or args.get("fetch-owner") == "true"
    for info in page.objects:
        _contents(document, info, url, with_owner)
    for common in page.common_prefixes:
        sub(sub(document, "CommonPrefixes"), "Prefix", encode_key(common, url))
    return xml_response(document)


def delete_objects(call: Call) -> S3Response:
    """DeleteObjects: up to 1,000 keys; each refused key is reported in ``<Error>``, the rest in ``<Deleted>``."""
    assert call.bucket is not None
    call.store.bucket_dir(call.bucket)
    body = RequestBody(call.request.environ, max_bytes=XML_MAX_BYTES)
    # API_DeleteObjects.html: "The Content-MD5 or x-amz-sdk-checksum-algorithm header is required".
    if not body.has_integrity_header() and "x-amz-sdk-checksum-algorithm" not in call.request.headers:
        raise S3Error("InvalidRequest", "Missing required header for this request: Content-MD5")
    document = parse_xml(body.read_all(XML_MAX_BYTES))
    objects = document.findall("Object")
    if document.tag != "Delete" or not objects or len(objects) > DELETE_MAX_KEYS:
        raise S3Error("MalformedXML")
    quiet = (document.findtext("Quiet") or "false").strip().lower() == "true"
    result = root("DeleteResult")
    for element in objects:
        key = element.findtext("Key")
        if key is None:
            raise S3Error("MalformedXML")
        version = element.findtext("VersionId")
        try:
            if version not in (None, "", "null"):
                raise S3Error("NoSuchVersion", "The specified version does not exist.", status=404)
            call.store.delete(call.bucket, key)
        except S3Error as exc:
            error = sub(result, "Error")
            sub(error, "Key", key)
            if version:
                sub(error, "VersionId", version)
            sub(error, "Code", exc.code)
            sub(error, "Message", exc.message)
            continue
        if not quiet:
            sub(sub(result, "Deleted"), "Key", key)
    return xml_response(result)


def list_multipart_uploads(call: Call) -> S3Response:
    """ListMultipartUploads with ``prefix``, ``key-marker`` and ``max-uploads`` (no delimiter)."""
    assert call.bucket is not None
    if call.args.get("delimiter"):
        raise S3Error("NotImplemented", "ListMultipartUploads with a delimiter is not supported by the local S3.")
    prefix, marker = call.args.get("prefix", ""), call.args.get("key-marker", "")
    limit = call.int_arg("max-uploads", 1000, 1000, empty_is_default=True)
    uploads = [u for u in call.store.uploads.list_uploads(call.bucket, prefix) if u.key > marker]
    url = call.url_encode
    document = root("ListMultipartUploadsResult")
    sub(document, "Bucket", call.bucket)
    sub(document, "KeyMarker", encode_key(marker, url))
    sub(document, "UploadIdMarker", call.args.get("upload-id-marker", ""))
    shown = uploads[:limit]
    sub(document, "NextKeyMarker", encode_key(shown[-1].key, url) if shown else "")
    sub(document, "NextUploadIdMarker", shown[-1].upload_id if shown else "")
    sub(document, "MaxUploads", limit)
    sub(document, "IsTruncated", len(uploads) > limit)
    if prefix:
        sub(document, "Prefix", encode_key(prefix, url))
    if url:
        sub(document, "EncodingType", "url")
    for upload in shown:
        element = sub(document, "Upload")
        sub(element, "Key", encode_key(upload.key, url))
        sub(element, "UploadId", upload.upload_id)
        owner(element, "Initiator")
        owner(element)
        sub(element, "StorageClass", "STANDARD")
        sub(element, "Initiated", iso_time(upload.initiated))
    return xml_response(document)
