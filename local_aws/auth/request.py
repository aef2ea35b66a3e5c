"""What the verifier is given and what it answers: the request as it arrived, and the caller who signed it.

The raw path and query are kept exactly as sent, because SigV4 signs the percent-encoded form: decoding first (as
WSGI's ``PATH_INFO`` does) would make ``a%2Fb`` and ``a/b`` the same request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from local_aws.auth.credentials import Identity


@dataclass(frozen=True)
class IncomingRequest:
    """A request as it arrived, before any decoding that would change what was signed.

    Attributes:
        method: The HTTP method.
        raw_path: The path as sent on the wire, percent-encoded (``REQUEST_URI`` before ``?``).
        raw_query: The query string as sent, without ``?``.
        headers: Header names (any case) to values as received, ``Host`` included; a mapping or ``(name, value)``
            pairs (repeated names are joined with ``,`` the way SigV4 canonicalises them).
        body: The body bytes; None when the body is streamed unread (S3 only: the S3 layer then checks
            ``Caller.payload_hash`` itself while it reads).
    """

    method: str
    raw_path: str
    raw_query: str
    headers: Mapping[str, str] | Iterable[tuple[str, str]]
    body: bytes | None = b""
    _lower: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pairs = self.headers.items() if isinstance(self.headers, Mapping) else self.headers
        lower: dict[str, str] = {}
        for name, value in pairs:
            key = name.strip().lower()
            lower[key] = f"{lower[key]},{value}" if key in lower else value
        object.__setattr__(self, "_lower", lower)

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (case-insensitive), or None when absent."""
        return self._lower.get(name.lower())

    def header_names(self) -> list[str]:
        """The lower-cased names of the headers received."""
        return list(self._lower)


@dataclass(frozen=True)
class Caller:
    """Who signed a verified request, and what they signed.

    Attributes:
        access_key_id: The key id of the credential scope.
        service: The scope's signing name (``s3``, ``sagemaker``, ``states``, ``execute-api``, ...).
        region: The scope's region (always the runtime's).
        identity: The store's identity for the key.
        presigned: Query-string (presigned URL) auth rather than an ``Authorization`` header.
        payload_hash: The payload hash in the canonical request (S3: the ``x-amz-content-sha256`` value; a
            ``STREAMING-*`` value means an aws-chunked body the S3 layer must de-chunk).
        signature: The (verified) signature: the seed for ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD`` chunk signatures.
        timestamp: The signing time, ``YYYYMMDDTHHMMSSZ``.
        signed_headers: The lower-cased names the client signed.
    """

    access_key_id: str
    service: str
    region: str
    identity: Identity
    presigned: bool = False
    payload_hash: str = ""
    signature: str = ""
    timestamp: str = ""
    signed_headers: tuple[str, ...] = ()


def incoming_from_environ(environ: Mapping[str, Any], body: bytes | None) -> IncomingRequest:
    """Build an ``IncomingRequest`` from a WSGI environ (waitress, werkzeug's test client, gunicorn).

    The raw path comes from ``REQUEST_URI`` (or ``RAW_URI``), which servers pass as sent; only when neither is
    there is it rebuilt from ``PATH_INFO``, which the server has already decoded. WSGI strips the ``HTTP_`` prefix
    from every header except Content-Type and Content-Length, which come back under their own names.

    Args:
        environ: The WSGI environ.
        body: The body bytes (None: streamed unread, see ``IncomingRequest.body``).

    Returns:
        The request as the client sent it.
    """
    raw_uri = str(environ.get("REQUEST_URI") or environ.get("RAW_URI") or "")
    if raw_uri:
        if "://" in raw_uri.split("?", 1)[0]:  # absolute-form request target: drop scheme://authority
            raw_uri = "/" + raw_uri.split("://", 1)[1].partition("/")[2]
        path, _, query = raw_uri.partition("?")
    else:
        decoded = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
        path = quote(decoded.encode("latin-1", "replace"), safe="/~!$&'()*+,;=:@")
        query = str(environ.get("QUERY_STRING", ""))
    headers: list[tuple[str, str]] = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers.append((key[5:].replace("_", "-").lower(), str(value)))
    for key, name in (("CONTENT_TYPE", "content-type"), ("CONTENT_LENGTH", "content-length")):
        if environ.get(key):
            headers.append((name, str(environ[key])))
    return IncomingRequest(str(environ.get("REQUEST_METHOD", "GET")), path, query, headers, body)


def query_pairs(raw_query: str) -> list[tuple[str, str]]:
    """The decoded ``(name, value)`` pairs of a raw query string, in order (no ``+``-to-space: SigV4 has none)."""
    # Decoded pairs; botocore re-encodes them (quote, safe "-_.~") when it builds the canonical query string.
    pairs = []
    for part in raw_query.split("&"):
        if part:
            key, _, value = part.partition("=")
            pairs.append((unquote(key), unquote(value)))
    return pairs
