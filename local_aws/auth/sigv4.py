"""Server-side AWS Signature Version 4 verification for every local service.

The signature is recomputed with botocore's own canonicalisation (``SigV4Auth``, and ``S3SigV4Auth`` for ``s3``:
S3's canonical path is the path as sent, not normalised or encoded again, and its payload hash is the
``x-amz-content-sha256`` value) from exactly the headers the client listed in ``SignedHeaders``, as received. The
query string is decoded and re-encoded the way botocore encodes it (RFC 3986 unreserved characters kept), which is
also what AWS does, so clients that encode slightly differently still verify.

Checks on top of the signature, each raising ``AuthError`` with AWS's own wording (``errors.py``): the algorithm,
the credential scope's shape, date and region, ``host`` being signed (and, for S3, every ``x-amz-*`` header), the
15-minute clock skew, a presigned URL's expiry, and the session token of temporary credentials.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from botocore.auth import UNSIGNED_PAYLOAD, S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import ReadOnlyCredentials

from local_aws.auth.credentials import CredentialStore, Identity
from local_aws.auth.errors import (
    MSG_CONTENT_SHA256_MISMATCH,
    MSG_EXPIRED_TOKEN,
    MSG_HEADERS_NOT_SIGNED,
    MSG_HOST_NOT_SIGNED,
    MSG_INVALID_TOKEN,
    MSG_MISSING_CONTENT_SHA256,
    MSG_MIXED_AUTH,
    MSG_SIGNATURE,
    MSG_UNSUPPORTED_MECHANISM,
    AuthError,
    AuthErrorKind,
    Reason,
    render_auth_error,
)
from local_aws.auth.request import Caller, IncomingRequest, incoming_from_environ, query_pairs
from local_aws.auth.services import guess_service
from local_aws.constants import SIGV4_MAX_SKEW_S

__all__ = [
    "AuthError",
    "Caller",
    "IncomingRequest",
    "guess_service",
    "incoming_from_environ",
    "render_auth_error",
    "verify",
]

ALGORITHM = "AWS4-HMAC-SHA256"
SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"
# "The maximum value you can set is 604800 (seven days)" (docs.aws.amazon.com/AmazonS3/latest/API/
# sigv4-query-string-auth.html).
MAX_PRESIGN_EXPIRES_S = 604_800
# x-amz-content-sha256 values S3 accepts besides a hex SHA-256 (docs.aws.amazon.com/AmazonS3/latest/API/
# sig-v4-header-based-auth.html); STREAMING-* bodies are aws-chunked and left to the S3 layer to de-chunk.
S3_PAYLOAD_KEYWORDS = frozenset(
    {
        UNSIGNED_PAYLOAD,
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
        "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
        "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER",
    }
)
_PRESIGN_PARAMS = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date", "X-Amz-SignedHeaders")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_AMZ_DATE = re.compile(r"\d{8}T\d{6}Z")
_SKEW = timedelta(seconds=SIGV4_MAX_SKEW_S)
_SKEW_MIN = SIGV4_MAX_SKEW_S // 60


@dataclass(frozen=True)
class _Parsed:
    presigned: bool
    access_key_id: str
    scope_date: str
    scope_region: str
    scope_service: str
    signed_headers: tuple[str, ...]
    signature: str
    timestamp: str
    date_raw: str
    when: datetime
    expires: int | None
    token: str | None
    query: list[tuple[str, str]]


def _requires_message(present: Mapping[str, str], has_date: bool, auth: str) -> str:
    # Coral's wording (aws/chalice#828, nordcloud/cognitocurl#28): one sentence per missing part, then the header.
    parts = [
        f"Authorization header requires '{name}' parameter."
        for name in ("Credential", "Signature", "SignedHeaders")
        if name not in present
    ]
    if not has_date:
        parts.append("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    return " ".join([*parts, f"Authorization={auth}"]) if parts else ""


def _parse_credential(value: str, presigned: bool) -> list[str]:
    parts = value.split("/")
    if len(parts) != 5 or not parts[0]:
        # UNCONFIRMED wording (Coral's, as commonly reported).
        msg = (
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, "
            f"got '{value}'"
        )
        raise AuthError("malformed", msg, reason="bad_credential", presigned=presigned, access_key_id=parts[0] or None)
    if parts[4] != "aws4_request":
        msg = f"Credential should be scoped with a valid terminator: 'aws4_request', not '{parts[4]}'. "  # UNCONFIRMED
        raise AuthError("malformed", msg, reason="bad_credential", presigned=presigned, access_key_id=parts[0])
    return parts


def _parse_date(amz_date: str | None, http_date: str | None, presigned: bool, ak: str) -> tuple[datetime, str]:
    if amz_date is not None:
        if _AMZ_DATE.fullmatch(amz_date):
            try:
                return datetime.strptime(amz_date, SIGV4_TIMESTAMP).replace(tzinfo=UTC), amz_date
            except ValueError:
                pass
        msg = f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'. See http://en.wikipedia.org/wiki/ISO_8601"
        raise AuthError("malformed", msg, reason="bad_date", presigned=presigned, access_key_id=ak)  # UNCONFIRMED
    try:
        when = parsedate_to_datetime(http_date or "")
    except (TypeError, ValueError):
        msg = f"Date must be in ISO-8601 'basic format'. Got '{http_date}'. See http://en.wikipedia.org/wiki/ISO_8601"
        raise AuthError("malformed", msg, reason="bad_date", presigned=presigned, access_key_id=ak) from None
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return when, when.strftime(SIGV4_TIMESTAMP)


def _parse_header(request: IncomingRequest, auth: str, pairs: list[tuple[str, str]]) -> _Parsed:
    scheme, _, rest = auth.strip().partition(" ")
    amz_date, http_date = request.header("x-amz-date"), request.header("date")
    has_date = amz_date is not None or http_date is not None
    if scheme != ALGORITHM:
        msg = _requires_message({}, has_date, auth)
        raise AuthError("malformed", msg, reason="unsupported_scheme" if scheme == "AWS" else "incomplete")
    components: dict[str, str] = {}
    for part in rest.split(","):
        part = part.strip()
        if not part:
            continue
        key, eq, value = part.partition("=")
        if not eq:
            msg = f"'{part}' not a valid key=value pair (missing equal-sign) in Authorization header: '{auth}'."
            raise AuthError("malformed", msg, reason="incomplete")
        components.setdefault(key.strip(), value.strip())  # the first occurrence wins, as in guess_service
    if msg := _requires_message(components, has_date, auth):
        only_date = all(k in components for k in ("Credential", "Signature", "SignedHeaders"))
        raise AuthError("malformed", msg, reason="bad_date" if only_date else "incomplete")
    ak, scope_date, scope_region, scope_service, _ = _parse_credential(components["Credential"], False)
    when, timestamp = _parse_date(amz_date, http_date, False, ak)
    signed = tuple(h.strip().lower() for h in components["SignedHeaders"].split(";") if h.strip())
    return _Parsed(
        False,
        ak,
        scope_date,
        scope_region,
        scope_service,
        signed,
        components["Signature"],
        timestamp,
        amz_date if amz_date is not None else str(http_date),
        when,
        None,
        request.header("x-amz-security-token"),
        pairs,
    )


def _parse_query(pairs: list[tuple[str, str]]) -> _Parsed:
    params = dict(reversed(pairs))  # the first occurrence of a repeated parameter wins
    algorithm = params.get("X-Amz-Algorithm")
    if algorithm is not None and algorithm != ALGORITHM:
        raise AuthError(
            "malformed", f"Unsupported AWS 'algorithm': '{algorithm}'", reason="bad_algorithm", presigned=True
        )
    if any(name not in params for name in _PRESIGN_PARAMS):
        # Coral's wording for a partial presigned query (UNCONFIRMED source; S3 words it its own way).
        msg = (
            "AWS query-string parameters must include 'X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Signature', "
            "'X-Amz-Date', 'X-Amz-SignedHeaders'. Re-examine the query-string parameters."
        )
        raise AuthError("malformed", msg, reason="incomplete", presigned=True)
    ak, scope_date, scope_region, scope_service, _ = _parse_credential(params["X-Amz-Credential"], True)
    expires: int | None = None
    raw_expires = params.get("X-Amz-Expires")
    if raw_expires is None and scope_service == "s3":
        msg = "X-Amz-Expires is required for query-string authentication."
        raise AuthError("malformed", msg, reason="incomplete", presigned=True, access_key_id=ak)
    if raw_expires is not None:
        detail = ""
        try:
            expires = int(raw_expires)
        except ValueError:
            detail = "X-Amz-Expires should be a number"
        else:
            if expires < 0:
                detail = "X-Amz-Expires must be non-negative"
            elif expires > MAX_PRESIGN_EXPIRES_S:
                detail = f"X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGN_EXPIRES_S}"
        if detail:
            raise AuthError(
                "malformed", detail, reason="bad_expires", presigned=True, access_key_id=ak, facts={"s3_detail": detail}
            )
    when, timestamp = _parse_date(params["X-Amz-Date"], None, True, ak)
    signed = tuple(h.strip().lower() for h in params["X-Amz-SignedHeaders"].split(";") if h.strip())
    query = [(k, v) for k, v in pairs if k != "X-Amz-Signature"]
    return _Parsed(
        True,
        ak,
        scope_date,
        scope_region,
        scope_service,
        signed,
        params["X-Amz-Signature"],
        timestamp,
        params["X-Amz-Date"],
        when,
        expires,
        params.get("X-Amz-Security-Token"),
        query,
    )


def _parse(request: IncomingRequest) -> _Parsed:
    auth = request.header("authorization")
    pairs = query_pairs(request.raw_query)
    presigned = any(k in ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature") for k, _ in pairs)
    if auth is not None and presigned:
        raise AuthError("malformed", MSG_MIXED_AUTH, reason="mixed_auth")
    if auth is not None:
        return _parse_header(request, auth, pairs)
    if presigned:
        return _parse_query(pairs)
    names = {k for k, _ in pairs}
    if {"AWSAccessKeyId", "Signature"} <= names:
        # A SigV2 presigned URL (botocore's S3 default for generate_presigned_url unless signature_version="s3v4"):
        # answered as S3 answers SigV2 where only SigV4 is accepted, so the user learns what to change.
        raise AuthError("malformed", MSG_UNSUPPORTED_MECHANISM, reason="unsupported_scheme", presigned=True)
    raise AuthError("missing", "Missing Authentication Token")


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_time(p: _Parsed, now: datetime, fail: Callable[..., AuthError]) -> None:
    stamp = now.strftime(SIGV4_TIMESTAMP)
    facts = {"request_time": p.date_raw, "server_time": _iso(now)}
    if p.when - now > _SKEW:
        later = (now + _SKEW).strftime(SIGV4_TIMESTAMP)
        msg = f"Signature not yet current: {p.timestamp} is still later than {later} ({stamp} + {_SKEW_MIN} min.)"
        raise fail("skewed", msg, facts=facts)
    if p.expires is not None:
        expiry = p.when + timedelta(seconds=p.expires)
        if now > expiry:  # "Request has expired": S3's message; UNCONFIRMED for the other protocols
            facts |= {"x_amz_expires": str(p.expires), "expires": _iso(expiry)}
            raise fail("expired", "Request has expired", facts=facts)
    elif now - p.when > _SKEW:
        earlier = (now - _SKEW).strftime(SIGV4_TIMESTAMP)
        msg = f"Signature expired: {p.timestamp} is now earlier than {earlier} ({stamp} - {_SKEW_MIN} min.)"
        raise fail("skewed", msg, facts=facts)


def _check_signed_headers(request: IncomingRequest, p: _Parsed, fail: Callable[..., AuthError]) -> None:
    if "host" not in p.signed_headers:
        raise fail("malformed", MSG_HOST_NOT_SIGNED, reason="headers_not_signed", facts={"headers_not_signed": "host"})
    if p.scope_service == "s3":
        # S3 refuses any x-amz-* header the signature does not cover (x-amz-content-sha256 of a presigned URL aside,
        # which the signer cannot know in advance), so no one can add x-amz-acl or x-amz-copy-source to a signed call.
        unsigned = sorted(
            name
            for name in request.header_names()
            if name.startswith("x-amz-")
            and name not in p.signed_headers
            and not (p.presigned and name == "x-amz-content-sha256")
        )
        if unsigned:
            facts = {"headers_not_signed": ", ".join(unsigned)}
            raise fail("malformed", MSG_HEADERS_NOT_SIGNED, reason="headers_not_signed", facts=facts)
    elif not p.presigned and request.header("x-amz-security-token") and "x-amz-security-token" not in p.signed_headers:
        raise fail("bad_token", MSG_INVALID_TOKEN)  # a token anyone could have swapped in


def _payload_hash(request: IncomingRequest, p: _Parsed, fail: Callable[..., AuthError]) -> str:
    """The payload hash of the canonical request: S3's declared one, every other service's computed one."""
    if p.scope_service != "s3":
        if request.body is None:
            raise ValueError("a non-S3 request must be verified with its body: the payload hash covers it")
        return hashlib.sha256(request.body).hexdigest()  # never a header's word: a changed body must fail
    content_sha = request.header("x-amz-content-sha256")
    if p.presigned:
        # A presigned URL cannot know its payload: UNSIGNED-PAYLOAD, unless the signer signed a hash header.
        return content_sha if content_sha and "x-amz-content-sha256" in p.signed_headers else UNSIGNED_PAYLOAD
    if content_sha is None:
        raise fail("malformed", MSG_MISSING_CONTENT_SHA256, reason="missing_content_sha256")
    if content_sha not in S3_PAYLOAD_KEYWORDS and not _HEX64.fullmatch(content_sha):
        msg = f"x-amz-content-sha256 must be a SHA-256 hex digest or a known keyword, not '{content_sha}'"
        raise fail("malformed", msg, reason="bad_content_sha256", facts={"argument_value": content_sha})
    return content_sha


def _canonical(request: IncomingRequest, p: _Parsed, identity: Identity, payload_hash: str) -> tuple[str, str, str]:
    """(canonical request, string to sign, signature) as botocore computes them for what the client signed."""
    creds = ReadOnlyCredentials(p.access_key_id, identity.secret_access_key, identity.session_token)
    signer = (S3SigV4Auth if p.scope_service == "s3" else SigV4Auth)(creds, p.scope_service, p.scope_region)
    headers = HTTPHeaders()
    for name in dict.fromkeys(p.signed_headers):  # a signed header that is absent canonicalises as empty
        headers[name] = request.header(name) or ""
    aws_request = AWSRequest(method=request.method, url="http://localhost/", params=p.query)
    aws_request.context["timestamp"] = p.timestamp
    # Assembled like SigV4Auth.canonical_request, but with the payload hash this verifier decided and the raw path:
    # botocore's own method would take the hash from the header for every service and the path from a URL.
    canonical = "\n".join(
        [
            request.method.upper(),
            signer._normalize_url_path(request.raw_path or "/"),
            signer.canonical_query_string(aws_request),
            signer.canonical_headers(headers) + "\n",
            signer.signed_headers(headers),
            payload_hash,
        ]
    )
    string_to_sign = signer.string_to_sign(aws_request, canonical)
    return canonical, string_to_sign, signer.signature(string_to_sign, aws_request)


def verify(
    request: IncomingRequest,
    store: CredentialStore,
    *,
    region: str,
    now: datetime | None = None,
    expected_service: str | None = None,
) -> Caller:
    """Verify a request's SigV4 signature (``Authorization`` header or presigned query).

    Args:
        request: The request as received.
        store: Where access key ids are looked up.
        region: The runtime's region; a scope naming another region is refused.
        now: The current time (tests); defaults to the system clock, UTC.
        expected_service: When given, a scope naming another signing name is refused (an endpoint that serves one
            service only, e.g. the REST API port serving ``execute-api``).

    Returns:
        Who signed the request.

    Raises:
        AuthError: The request is not signed, or not signed correctly with a key the store knows.
    """
    if now is None:
        now = datetime.now(UTC)
    now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    p = _parse(request)

    def fail(
        kind: AuthErrorKind, message: str, *, reason: Reason = "", facts: Mapping[str, str] | None = None
    ) -> AuthError:
        return AuthError(
            kind,
            message,
            reason=reason,
            access_key_id=p.access_key_id,
            presigned=p.presigned,
            facts=facts,
        )

    if p.scope_region != region:
        facts = {"region": p.scope_region, "expected_region": region}
        raise fail(
            "wrong_region", f"Credential should be scoped to a valid region, not '{p.scope_region}'. ", facts=facts
        )
    if p.scope_date != p.timestamp[:8]:
        msg = (
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{p.scope_date}' != '{p.timestamp[:8]}', from '{p.timestamp}'."
        )  # Coral's wording as reported (UNCONFIRMED source)
        raise fail("malformed", msg, reason="date_mismatch")
    if expected_service is not None and p.scope_service != expected_service:
        msg = f"Credential should be scoped to correct service: '{expected_service}'. "  # UNCONFIRMED wording
        raise fail("malformed", msg, reason="wrong_service", facts={"service": p.scope_service})
    _check_signed_headers(request, p, fail)
    payload_hash = _payload_hash(request, p, fail)
    identity = store.lookup(p.access_key_id)
    if identity is None:
        raise fail("unknown_key", MSG_INVALID_TOKEN)
    # Temporary credentials must come with their token and long-term keys without one (AWS: "The security token
    # included in the request is invalid." either way).
    if (p.token is None) != (identity.session_token is None) or (
        p.token is not None
        and identity.session_token is not None
        and not hmac.compare_digest(p.token.encode(), identity.session_token.encode())
    ):
        raise fail("bad_token", MSG_INVALID_TOKEN)
    if identity.expiration is not None and now >= identity.expiration:
        raise fail("expired_token", MSG_EXPIRED_TOKEN)
    _check_time(p, now, fail)

    canonical, string_to_sign, expected = _canonical(request, p, identity, payload_hash)
    if not hmac.compare_digest(expected.encode(), p.signature.encode("utf-8", "replace")):
        facts = {"string_to_sign": string_to_sign, "canonical_request": canonical, "signature_provided": p.signature}
        raise fail("bad_signature", MSG_SIGNATURE, facts=facts)
    if p.scope_service == "s3" and request.body is not None and _HEX64.fullmatch(payload_hash):
        computed = hashlib.sha256(request.body).hexdigest()
        if not hmac.compare_digest(computed, payload_hash):
            facts = {"client_sha256": payload_hash, "computed_sha256": computed}
            raise fail("bad_signature", MSG_CONTENT_SHA256_MISMATCH, reason="content_sha256_mismatch", facts=facts)
    return Caller(
        p.access_key_id,
        p.scope_service,
        p.scope_region,
        identity,
        p.presigned,
        payload_hash,
        p.signature,
        p.timestamp,
        p.signed_headers,
    )
