"""S3's response shapes: XML documents, the ``<Error>`` body, request ids, date formats, request XML parsing.

Errors follow API/ErrorResponses.html: ``<Error><Code/><Message/>`` plus the resource elements S3 adds (``Key``,
``BucketName``, ``UploadId``...), ``<RequestId/>`` and ``<HostId/>``, with the same ids in ``x-amz-request-id`` and
``x-amz-id-2``. Responses to HEAD carry no body, errors included: botocore then reads the status code alone (a
missing key is ``ClientError`` code ``"404"``).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import quote

from werkzeug.wrappers import Request, Response

from local_aws.constants import ACCOUNT_ID
from local_aws.s3.errors import S3Error, invalid_argument
from local_aws.s3.keys import is_unsigned_decimal
from local_aws.s3.store import ObjectStore

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
XML_TYPE = "application/xml"
# The canonical user id S3 shows as Owner/ID: 64 hex digits; one fixed account here.
OWNER_ID = hashlib.sha256(ACCOUNT_ID.encode()).hexdigest()
OWNER_NAME = "local"
XML_MAX_BYTES = 4 * 1024 * 1024  # a CompleteMultipartUpload of 10,000 parts with checksums is ~1.5 MB
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class S3Response(Response):
    """A werkzeug ``Response`` without a default Content-Type: S3 sends none on empty answers (PUT, DELETE)."""

    default_mimetype = None


@dataclass
class Call:
    """One request as the handlers see it: the parsed address, the query, the store and the request id."""

    request: Request
    store: ObjectStore
    bucket: str | None
    key: str | None
    args: dict[str, str]
    request_id: str

    @property
    def url_encode(self) -> bool:
        """Whether the listing asked for ``encoding-type=url`` (botocore always does, then decodes)."""
        return self.args.get("encoding-type") == "url"

    def int_arg(self, name: str, default: int, high: int, *, empty_is_default: bool = False) -> int:
        """Query parameter ``name`` as an integer, at most ``high``; ``default`` when it is absent.

        ``empty_is_default`` also gives ``default`` for an empty value (``?max-keys=``), which otherwise is refused
        as any other non-integer. botocore never sends an empty value, so only other clients see the difference.

        Raises:
            S3Error: 400 ``InvalidArgument`` for a value that is not an unsigned integer.
        """
        raw = self.args.get(name)
        if raw is None or (empty_is_default and raw == ""):
            return default
        if not is_unsigned_decimal(raw):
            raise invalid_argument(f"Provided {name} not an integer or within integer range", name, raw)
        return min(int(raw), high)


def new_request_id() -> tuple[str, str]:
    """``(x-amz-request-id, x-amz-id-2)``: 16 hex digits and a base64 host id, shaped like S3's."""
    return secrets.token_hex(8).upper(), base64.b64encode(secrets.token_bytes(48)).decode()


def http_date(when: datetime) -> str:
    """RFC 7231 IMF-fixdate (``Last-Modified``): ``Tue, 01 Dec 2026 22:22:27 GMT``."""
    return format_datetime(when.astimezone(UTC).replace(microsecond=0), usegmt=True)


def parse_http_date(value: str | None) -> datetime | None:
    """An HTTP date header as an aware datetime, or None when absent or unparseable (then S3 ignores it)."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def iso_time(when: datetime) -> str:
    """S3's XML timestamps: ``2026-12-01T22:22:27.000Z`` (milliseconds, UTC)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def encode_key(value: str, url: bool) -> str:
    """A key or prefix for a listing: percent-encoded under ``encoding-type=url`` (botocore unquotes it)."""
    return quote(value, safe="/") if url else value


def root(tag: str) -> ET.Element:
    """A result document's root element in S3's namespace."""
    return ET.Element(tag, xmlns=S3_NS)


def _xml_safe(text: str) -> str:
    # XML 1.0 cannot carry NUL and most C0 controls even escaped; an error may quote a refused key that has them.
    return _XML_INVALID.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def sub(parent: ET.Element, tag: str, text: object = None) -> ET.Element:
    """Append ``<tag>text</tag>``; booleans as ``true``/``false``."""
    element = ET.SubElement(parent, tag)
    if text is not None:
        element.text = _xml_safe(("true" if text else "false") if isinstance(text, bool) else str(text))
    return element


def owner(parent: ET.Element, tag: str = "Owner") -> None:
    """The ``<Owner>`` (or ``<Initiator>``) element."""
    element = sub(parent, tag)
    sub(element, "ID", OWNER_ID)
    sub(element, "DisplayName", OWNER_NAME)


def to_xml(document: ET.Element) -> bytes:
    """A document with the declaration S3 writes (double quotes, ``UTF-8``)."""
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(document, encoding="utf-8", xml_declaration=False)


def xml_response(document: ET.Element, status: int = 200, headers: Iterable[tuple[str, str]] = ()) -> S3Response:
    """An XML document response."""
    return S3Response(to_xml(document), status=status, headers=list(headers), content_type=XML_TYPE)


def error_body(code: str, message: str, fields: dict[str, str], request_id: str, host_id: str) -> bytes:
    """S3's ``<Error>`` document."""
    document = ET.Element("Error")
    sub(document, "Code", code)
    sub(document, "Message", message)
    for name, value in fields.items():
        sub(document, name, value)
    sub(document, "RequestId", request_id)
    sub(document, "HostId", host_id)
    return to_xml(document)


def error_response(error: S3Error, request_id: str, host_id: str, *, head: bool) -> S3Response:
    """The response for ``error``: its XML (no body for HEAD, nor for 304) with the request ids."""
    if head or error.status == 304:
        return S3Response(b"", status=error.status)
    body = error_body(error.code, error.message, error.fields, request_id, host_id)
    return S3Response(body, status=error.status, content_type=XML_TYPE)


def s3_error_renderer(
    status: int, reason: str, request_headers: dict[str, str] | None = None
) -> tuple[list[tuple[str, str]], bytes]:
    """``HttpServer``'s error renderer for S3: transport errors (bad framing, oversize bodies) as S3 XML."""
    code, message = {
        400: ("BadRequest", "An error occurred when parsing the HTTP request."),
        413: ("EntityTooLarge", "Your proposed upload exceeds the maximum allowed object size."),
        431: ("RequestHeaderSectionTooLarge", "Your request header section exceeds the maximum allowed size."),
        501: ("NotImplemented", "A header you provided implies functionality that is not implemented."),
    }.get(status, ("InternalError", "We encountered an internal error. Please try again."))
    request_id, host_id = new_request_id()
    headers = [("Content-Type", XML_TYPE), ("x-amz-request-id", request_id), ("x-amz-id-2", host_id)]
    return headers, error_body(code, message, {}, request_id, host_id)


def parse_xml(body: bytes) -> ET.Element:
    """A request's XML body with namespaces stripped; DTDs refused (no entity expansion ever happens).

    Raises:
        S3Error: 400 ``MalformedXML``.
    """
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise S3Error("MalformedXML")
    try:
        document = ET.fromstring(body)
    except ET.ParseError:
        raise S3Error("MalformedXML") from None
    for element in document.iter():
        element.tag = element.tag.rsplit("}", 1)[-1]
    return document
