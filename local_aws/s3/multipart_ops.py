"""The multipart operations: CreateMultipartUpload, UploadPart, UploadPartCopy, CompleteMultipartUpload,
AbortMultipartUpload and ListParts (docs.aws.amazon.com/AmazonS3/latest/API/API_<Operation>.html).

awscli and s3transfer switch to multipart at 8 MiB (``multipart_threshold``) with 8 MiB parts, and copy large
objects between keys with UploadPartCopy (``x-amz-copy-source-range``, ``x-amz-copy-source-if-match``).
"""

from __future__ import annotations

import re
from typing import BinaryIO
from urllib.parse import quote

from local_aws.s3.body import RequestBody
from local_aws.s3.errors import S3Error, invalid_argument
from local_aws.s3.keys import is_unsigned_decimal
from local_aws.s3.multipart import MAX_PART_BYTES, check_part_number
from local_aws.s3.object_ops import attributes, checksum_headers, copy_source, require_length
from local_aws.s3.responses import XML_MAX_BYTES, Call, S3Response, iso_time, owner, parse_xml, root, sub, xml_response

_RANGE = re.compile(r"^bytes=(\d+)-(\d+)$")


class _Slice:
    """``length`` bytes of an open file from its current position: the source of UploadPartCopy."""

    def __init__(self, stream: BinaryIO, length: int) -> None:
        self._stream, self._left = stream, length

    def read(self, size: int = -1) -> bytes:
        want = self._left if size < 0 else min(size, self._left)
        data = self._stream.read(want) if want > 0 else b""
        self._left -= len(data)
        return data


def create_multipart_upload(call: Call) -> S3Response:
    """CreateMultipartUpload: the object's attributes are fixed now and applied at completion."""
    assert call.bucket is not None and call.key is not None
    content_type, metadata, stored = attributes(call, call.request.headers.get("Content-Encoding"))
    algorithm = call.request.headers.get("x-amz-checksum-algorithm")
    upload = call.store.uploads.create(
        call.bucket,
        call.key,
        content_type=content_type,
        metadata=metadata,
        headers=stored,
        checksum_algorithm=algorithm.upper() if algorithm else None,
    )
    document = root("InitiateMultipartUploadResult")
    sub(document, "Bucket", call.bucket)
    sub(document, "Key", call.key)
    sub(document, "UploadId", upload.upload_id)
    headers = [("x-amz-checksum-algorithm", upload.checksum_algorithm)] if upload.checksum_algorithm else []
    return xml_response(document, headers=headers)


def upload_part(call: Call) -> S3Response:
    """UploadPart, or UploadPartCopy with ``x-amz-copy-source`` (and ``x-amz-copy-source-range``)."""
    assert call.bucket is not None and call.key is not None
    upload_id, number = call.args["uploadId"], check_part_number(call.args["partNumber"])
    call.store.uploads.get(call.bucket, call.key, upload_id)
    if "x-amz-copy-source" in call.request.headers:
        return _upload_part_copy(call, upload_id, number)
    require_length(call)
    body = RequestBody(call.request.environ, max_bytes=MAX_PART_BYTES)
    tmp, size, etag = call.store.spool(body, MAX_PART_BYTES)
    part = call.store.uploads.add_part(call.bucket, call.key, upload_id, number, tmp, size, etag, body.checksum)
    return S3Response(b"", 200, [("ETag", part.quoted_etag), *checksum_headers(part.checksum)[:1]])


def _upload_part_copy(call: Call, upload_id: str, number: int) -> S3Response:
    assert call.bucket is not None and call.key is not None
    source = copy_source(call)
    raw_range = call.request.headers.get("x-amz-copy-source-range")
    first, last = 0, source.size - 1
    if raw_range is not None:
        match = _RANGE.match(raw_range)
        if not match or int(match[2]) < int(match[1]) or int(match[2]) >= source.size:
            raise invalid_argument(
                f"Range specified is not valid for source object of size: {source.size}",
                "x-amz-copy-source-range",
                raw_range,
            )
        first, last = int(match[1]), int(match[2])
    _, stream = call.store.open_object(source.bucket, source.key)
    with stream:
        stream.seek(first)
        tmp, size, etag = call.store.spool(_Slice(stream, last - first + 1), MAX_PART_BYTES)
    part = call.store.uploads.add_part(call.bucket, call.key, upload_id, number, tmp, size, etag)
    document = root("CopyPartResult")
    sub(document, "ETag", part.quoted_etag)
    sub(document, "LastModified", iso_time(part.last_modified))
    return xml_response(document)


def complete_multipart_upload(call: Call) -> S3Response:
    """CompleteMultipartUpload: the body lists ``<Part><PartNumber/><ETag/></Part>`` in ascending order."""
    assert call.bucket is not None and call.key is not None
    body = RequestBody(call.request.environ, max_bytes=XML_MAX_BYTES).read_all(XML_MAX_BYTES)
    document = parse_xml(body)
    if document.tag != "CompleteMultipartUpload":
        raise S3Error("MalformedXML")
    parts = []
    for element in document.findall("Part"):
        number, etag = element.findtext("PartNumber"), element.findtext("ETag")
        if number is None or etag is None or not is_unsigned_decimal(number.strip()):
            raise S3Error("MalformedXML")
        parts.append((int(number), etag))
    info = call.store.uploads.complete(call.bucket, call.key, call.args["uploadId"], parts)
    result = root("CompleteMultipartUploadResult")
    sub(result, "Location", f"{call.request.host_url}{call.bucket}/{quote(call.key)}")
    sub(result, "Bucket", call.bucket)
    sub(result, "Key", call.key)
    sub(result, "ETag", info.quoted_etag)
    return xml_response(result)


def abort_multipart_upload(call: Call) -> S3Response:
    """AbortMultipartUpload: 204."""
    assert call.bucket is not None and call.key is not None
    call.store.uploads.abort(call.bucket, call.key, call.args["uploadId"])
    return S3Response(b"", 204)


def list_parts(call: Call) -> S3Response:
    """ListParts, paginated by ``part-number-marker`` and ``max-parts`` (at most 1,000)."""
    assert call.bucket is not None and call.key is not None
    marker = call.int_arg("part-number-marker", 0, 10_000)
    max_parts = call.int_arg("max-parts", 1000, 1000)
    upload, parts, truncated = call.store.uploads.list_parts(
        call.bucket, call.key, call.args["uploadId"], marker=marker, max_parts=max_parts
    )
    document = root("ListPartsResult")
    for tag, value in (("Bucket", call.bucket), ("Key", call.key), ("UploadId", upload.upload_id)):
        sub(document, tag, value)
    sub(document, "PartNumberMarker", marker)
    sub(document, "NextPartNumberMarker", parts[-1].number if parts else marker)
    sub(document, "MaxParts", max_parts)
    sub(document, "IsTruncated", truncated)
    for part in parts:
        element = sub(document, "Part")
        sub(element, "PartNumber", part.number)
        sub(element, "LastModified", iso_time(part.last_modified))
        sub(element, "ETag", part.quoted_etag)
        sub(element, "Size", part.size)
        if part.checksum:
            sub(element, f"Checksum{part.checksum[0]}", part.checksum[1])
    owner(document, "Initiator")
    owner(document)
    sub(document, "StorageClass", "STANDARD")
    return xml_response(document)
