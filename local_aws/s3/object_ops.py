"""The object operations: GetObject/HeadObject, PutObject, CopyObject, DeleteObject and the multipart calls.

Each handler takes the ``Call`` (bucket and key already validated by the router) and returns a werkzeug
``Response``; S3 errors are raised as ``S3Error`` and rendered by the app. Header and status behaviour follows the
S3 API reference page of each operation (docs.aws.amazon.com/AmazonS3/latest/API/API_<Operation>.html) and botocore's
``s3/2006-03-01/service-2.json`` (which header carries which member).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO
from urllib.parse import parse_qs, unquote

from werkzeug.datastructures import Headers

from local_aws.constants import S3_MAX_PUT_BYTES
from local_aws.s3.body import RequestBody
from local_aws.s3.errors import S3Error, invalid_argument
from local_aws.s3.keys import validate_bucket, validate_key
from local_aws.s3.records import CHUNK_BYTES, ObjectInfo, new_record
from local_aws.s3.responses import (
    Call,
    S3Response,
    http_date,
    iso_time,
    parse_http_date,
    root,
    sub,
    xml_response,
)

# Headers PutObject stores and GetObject returns as they were sent (API_PutObject.html).
STORED_HEADERS = ("Cache-Control", "Content-Disposition", "Content-Language", "Expires", "x-amz-storage-class")
STORAGE_CLASSES = {
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "OUTPOSTS",
    "GLACIER_IR",
    "SNOW",
    "EXPRESS_ONEZONE",
}
METADATA_MAX_BYTES = 2048  # "the user-defined metadata is limited to 2 KB" (userguide/UsingMetadata.html)
# GetObject's response-* query parameters override these response headers (API_GetObject.html).
RESPONSE_OVERRIDES = {
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
    "response-content-language": "Content-Language",
    "response-content-type": "Content-Type",
    "response-expires": "Expires",
}
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")


class FileBody:
    """A WSGI body streaming ``length`` bytes of an open file from ``start``; closes the file when done."""

    def __init__(self, stream: BinaryIO, start: int, length: int) -> None:
        self._stream, self._start, self._length = stream, start, length

    def __iter__(self) -> Iterator[bytes]:
        self._stream.seek(self._start)
        left = self._length
        while left > 0 and (chunk := self._stream.read(min(CHUNK_BYTES, left))):
            left -= len(chunk)
            yield chunk

    def close(self) -> None:
        """Close the file (the WSGI server calls this, also when the client went away)."""
        self._stream.close()


def attributes(call: Call, content_encoding: str | None) -> tuple[str | None, dict[str, str], dict[str, str]]:
    """(Content-Type, user metadata, other stored headers) of a PutObject/CreateMultipartUpload/CopyObject."""
    headers = call.request.headers
    metadata = {
        k.lower().removeprefix("x-amz-meta-"): v for k, v in headers.items() if k.lower().startswith("x-amz-meta-")
    }
    if sum(len(k.encode()) + len(v.encode()) for k, v in metadata.items()) > METADATA_MAX_BYTES:
        raise S3Error("MetadataTooLarge", MaxSizeAllowed=METADATA_MAX_BYTES)
    stored = {name: headers[name] for name in STORED_HEADERS if name in headers}
    if content_encoding:
        stored["Content-Encoding"] = content_encoding
    storage_class = stored.get("x-amz-storage-class", "STANDARD")
    if storage_class not in STORAGE_CLASSES:
        raise S3Error(
            "InvalidStorageClass", "The storage class you specified is not valid", StorageClassRequested=storage_class
        )
    if storage_class == "STANDARD":
        stored.pop("x-amz-storage-class", None)  # S3 omits the header for STANDARD objects
    return headers.get("Content-Type"), metadata, stored


def checksum_headers(checksum: tuple[str, str] | None) -> list[tuple[str, str]]:
    """The ``x-amz-checksum-<algorithm>`` and ``x-amz-checksum-type`` headers of a verified checksum (or none)."""
    if checksum is None:
        return []
    return [(f"x-amz-checksum-{checksum[0].lower()}", checksum[1]), ("x-amz-checksum-type", "FULL_OBJECT")]


def require_length(call: Call) -> None:
    """Refuse a body-carrying PUT without Content-Length.

    Raises:
        S3Error: 411 ``MissingContentLength`` (API_PutObject.html, ErrorResponses.html).
    """
    if not call.request.environ.get("CONTENT_LENGTH"):
        raise S3Error("MissingContentLength")


def _etag_matches(header: str, info: ObjectInfo) -> bool:
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or info.quoted_etag in tags or info.etag in tags


def check_conditions(headers: Headers, info: ObjectInfo, prefix: str = "") -> None:
    """GetObject/HeadObject preconditions (``prefix`` ``x-amz-copy-source-`` for a copy's source), read from the
    request's headers (werkzeug looks names up case-insensitively).

    API_GetObject.html: If-Match true with If-Unmodified-Since false is 200; If-None-Match false with
    If-Modified-Since true is 304. Dates compare at one-second precision, as Last-Modified is sent.

    Raises:
        S3Error: 412 ``PreconditionFailed`` (naming the condition) or 304 ``NotModified`` (GET/HEAD only).
    """
    modified = info.last_modified.replace(microsecond=0)
    if_match, if_none_match = headers.get(f"{prefix}if-match"), headers.get(f"{prefix}if-none-match")
    if_unmodified = parse_http_date(headers.get(f"{prefix}if-unmodified-since"))
    if_modified = parse_http_date(headers.get(f"{prefix}if-modified-since"))
    not_modified = "PreconditionFailed" if prefix else "NotModified"
    label = "x-amz-copy-source-If" if prefix else "If"
    if if_match is not None:
        if not _etag_matches(if_match, info):
            raise S3Error("PreconditionFailed", Condition=f"{label}-Match")
    elif if_unmodified is not None and modified > if_unmodified:
        raise S3Error("PreconditionFailed", Condition=f"{label}-Unmodified-Since")
    if if_none_match is not None:
        if _etag_matches(if_none_match, info):
            raise S3Error(not_modified, Condition=f"{label}-None-Match")
    elif if_modified is not None and modified <= if_modified:
        raise S3Error(not_modified, Condition=f"{label}-Modified-Since")


def parse_range(value: str | None, size: int) -> tuple[int, int] | None:
    """``(first, last)`` of a ``Range: bytes=a-b | a- | -n`` header; None when absent or not one byte range.

    S3 serves the whole object for a header it cannot parse (and does not support multiple ranges), and 416
    ``InvalidRange`` when the range starts past the end (API_GetObject.html, RFC 9110 §14.1.2).
    """
    match = _RANGE.match(value or "")
    if match is None or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise S3Error("InvalidRange", RangeRequested=value, ActualObjectSize=size)
        return max(size - suffix, 0), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        raise S3Error("InvalidRange", RangeRequested=value, ActualObjectSize=size)
    return start, min(end, size - 1)


def _object_headers(info: ObjectInfo) -> list[tuple[str, str]]:
    headers = [
        ("ETag", info.quoted_etag),
        ("Last-Modified", http_date(info.last_modified)),
        ("Accept-Ranges", "bytes"),
        ("Content-Type", info.content_type),
    ]
    headers += list(info.headers.items())
    headers += [(f"x-amz-meta-{name}", value) for name, value in info.metadata.items()]
    return headers


def _check_version(call: Call) -> None:
    # Buckets here are never versioned, so only the "null" version exists (userguide/Versioning.html).
    version = call.args.get("versionId")
    if version not in (None, "null"):
        raise invalid_argument("Invalid version id specified", "versionId", version)


def get_object(call: Call) -> S3Response:
    """GetObject and HeadObject: conditions, one byte range (206), response-* overrides, streamed bodies."""
    head = call.request.method == "HEAD"
    assert call.bucket is not None and call.key is not None
    _check_version(call)
    if "partNumber" in call.args:
        raise S3Error("NotImplemented", "GetObject by partNumber is not supported by the local S3.")
    info, stream = call.store.open_object(call.bucket, call.key)
    try:
        headers = call.request.headers
        try:
            check_conditions(headers, info)
        except S3Error as exc:
            if exc.code == "NotModified":  # RFC 9110 §15.4.5: a 304 carries the validators
                return S3Response(
                    b"", 304, [("ETag", info.quoted_etag), ("Last-Modified", http_date(info.last_modified))]
                )
            raise
        span = parse_range(headers.get("range"), info.size)
        response_headers = _object_headers(info)
        overrides = {h: call.args[q] for q, h in RESPONSE_OVERRIDES.items() if q in call.args}
        response_headers = [(k, v) for k, v in response_headers if k not in overrides] + list(overrides.items())
        if span is None:
            start, length, status = 0, info.size, 200
            if headers.get("x-amz-checksum-mode", "").upper() == "ENABLED":
                response_headers += checksum_headers(info.checksum)
        else:
            start, length, status = span[0], span[1] - span[0] + 1, 206
            response_headers.append(("Content-Range", f"bytes {span[0]}-{span[1]}/{info.size}"))
        response_headers.append(("Content-Length", str(length)))
    except BaseException:
        stream.close()
        raise
    if head:
        stream.close()
        # NOTE: no body given, so werkzeug keeps the Content-Length of the object instead of setting 0.
        return S3Response(None, status, response_headers)
    return S3Response(FileBody(stream, start, length), status, response_headers, direct_passthrough=True)


def put_object(call: Call) -> S3Response:
    """PutObject (CopyObject when ``x-amz-copy-source`` is set)."""
    if "x-amz-copy-source" in call.request.headers:
        return copy_object(call)
    assert call.bucket is not None and call.key is not None
    require_length(call)
    body = RequestBody(call.request.environ, max_bytes=S3_MAX_PUT_BYTES)
    content_type, metadata, stored = attributes(call, body.content_encoding)
    tmp, _, etag = call.store.spool(body, S3_MAX_PUT_BYTES)
    record = new_record(etag, content_type=content_type, metadata=metadata, headers=stored, checksum=body.checksum)
    info = call.store.commit(
        call.bucket,
        call.key,
        tmp,
        record,
        if_match=call.request.headers.get("If-Match"),
        if_none_match=call.request.headers.get("If-None-Match"),
    )
    return S3Response(b"", 200, [("ETag", info.quoted_etag), *checksum_headers(info.checksum)])


def parse_copy_source(value: str) -> tuple[str, str]:
    """``(bucket, key)`` of ``x-amz-copy-source`` (``[/]bucket/key[?versionId=..]``, URL-encoded).

    Raises:
        S3Error: ``InvalidArgument`` for a malformed value or a version other than ``null``; bucket/key errors.
    """
    path, _, query = value.partition("?")
    versions = parse_qs(query).get("versionId")
    if versions and versions[0] != "null":
        raise invalid_argument("Invalid version id specified", "x-amz-copy-source", value)
    bucket, sep, key = unquote(path).removeprefix("/").partition("/")
    if not sep or not bucket or not key:
        raise invalid_argument(
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey", "x-amz-copy-source", value
        )
    return validate_bucket(bucket), validate_key(key)


def copy_source(call: Call) -> ObjectInfo:
    """The object ``x-amz-copy-source`` names, after its ``x-amz-copy-source-if-*`` conditions held.

    Raises:
        S3Error: the errors of ``parse_copy_source``, 404 for a missing source, 412 ``PreconditionFailed``.
    """
    src_bucket, src_key = parse_copy_source(call.request.headers["x-amz-copy-source"])
    source = call.store.head(src_bucket, src_key)
    check_conditions(call.request.headers, source, "x-amz-copy-source-")
    return source


def copy_object(call: Call) -> S3Response:
    """CopyObject: COPY or REPLACE metadata; copying onto itself needs REPLACE (API_CopyObject.html)."""
    assert call.bucket is not None and call.key is not None
    source = copy_source(call)
    if source.size > S3_MAX_PUT_BYTES:
        raise S3Error(
            "InvalidRequest",
            "The specified copy source is larger than the maximum allowable size for a copy source: "
            f"{S3_MAX_PUT_BYTES}",
        )
    directive = call.request.headers.get("x-amz-metadata-directive", "COPY").upper()
    if directive not in ("COPY", "REPLACE"):
        raise invalid_argument("Unknown metadata directive.", "x-amz-metadata-directive", directive)
    if directive == "COPY" and (source.bucket, source.key) == (call.bucket, call.key):
        raise S3Error(
            "InvalidRequest",
            "This copy request is illegal because it is trying to copy an object to itself without changing the "
            "object's metadata, storage class, website redirect location or encryption attributes.",
        )
    if directive == "REPLACE":
        content_type, metadata, stored = attributes(call, call.request.headers.get("Content-Encoding"))
        info = call.store.copy(
            source.bucket,
            source.key,
            call.bucket,
            call.key,
            content_type=content_type,
            metadata=metadata,
            headers=stored,
        )
    else:
        info = call.store.copy(source.bucket, source.key, call.bucket, call.key)
    document = root("CopyObjectResult")
    sub(document, "ETag", info.quoted_etag)
    sub(document, "LastModified", iso_time(info.last_modified))
    if info.checksum:
        sub(document, f"Checksum{info.checksum[0]}", info.checksum[1])
    return xml_response(document)


def delete_object(call: Call) -> S3Response:
    """DeleteObject: 204 whether or not the key existed."""
    assert call.bucket is not None and call.key is not None
    _check_version(call)
    call.store.delete(call.bucket, call.key)
    return S3Response(b"", 204)
