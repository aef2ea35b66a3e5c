"""Request bodies as S3 reads them: Content-Length bytes, ``aws-chunked`` framing removed, every digest verified.

botocore over plain http signs the payload (``x-amz-content-sha256`` is its hex SHA-256) and adds a CRC32 header
(``x-amz-checksum-crc32``, ``x-amz-sdk-checksum-algorithm``); over https, and in other SDKs, bodies come
``aws-chunked`` (API/sigv4-streaming.html, API/sigv4-streaming-trailers.html): ``<hex size>[;chunk-signature=..]\\r\\n``
``<data>\\r\\n`` ... ``0\\r\\n`` then trailing headers (``x-amz-checksum-crc32:...``) and an empty line, with the
object's size in ``x-amz-decoded-content-length``. Either way ``RequestBody`` yields the object's bytes and, at the
end of the stream, checks them against every digest the client sent (Content-MD5, x-amz-content-sha256 and the
x-amz-checksum-* header or trailer); a mismatch raises before the store renames the spooled file into place.
Signatures are not checked here: the edge layer verifies SigV4 before a request reaches the app.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import zlib
from collections.abc import Callable
from typing import Any, Protocol

from werkzeug.datastructures import EnvironHeaders

from local_aws.s3.errors import S3Error, invalid_argument
from local_aws.s3.keys import is_unsigned_decimal
from local_aws.s3.records import CHUNK_BYTES, new_md5

_HEX_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_NO_PAYLOAD_HASH = {"UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"}
_STREAMING = re.compile(r"^STREAMING-(UNSIGNED-PAYLOAD|AWS4-(HMAC|ECDSA-P256)-SHA256-PAYLOAD)(-TRAILER)?$")
_LINE_MAX = 64 * 1024
# Flexible checksums (userguide/checking-object-integrity.html) and their digest sizes, as botocore's model names them.
DIGEST_BYTES = {
    "CRC32": 4,
    "CRC32C": 4,
    "CRC64NVME": 8,
    "SHA1": 20,
    "SHA256": 32,
    "SHA512": 64,
    "MD5": 16,
    "XXHASH64": 8,
    "XXHASH3": 8,
    "XXHASH128": 16,
}


class _Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def digest(self) -> bytes: ...


class _RunningCrc:
    """A CRC as a hasher: ``function(data, value)`` folds in each chunk (``zlib.crc32``, awscrt's ``crc32c``...)."""

    def __init__(self, function: Callable[[bytes, int], int], size: int) -> None:
        self._function, self._size, self._value = function, size, 0

    def update(self, data: bytes, /) -> None:
        self._value = self._function(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(self._size, "big")


def _hasher(algorithm: str) -> _Hasher | None:
    """A running checksum for ``algorithm``, or None when it cannot be computed here (then it is accepted)."""
    if algorithm == "CRC32":
        return _RunningCrc(zlib.crc32, DIGEST_BYTES["CRC32"])
    if algorithm in {"SHA1", "SHA256", "SHA512", "MD5"}:
        return hashlib.new(algorithm.lower(), usedforsecurity=False)
    if algorithm in {"CRC32C", "CRC64NVME"}:
        try:
            from awscrt import checksums  # optional: botocore[crt]
        except ImportError:
            return None
        function = checksums.crc32c if algorithm == "CRC32C" else checksums.crc64nvme
        return _RunningCrc(function, DIGEST_BYTES[algorithm])
    return None


def _b64_digest(value: str, size: int) -> bytes | None:
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == size else None


class _Wire:
    """Exactly ``length`` bytes of the WSGI input (to EOF when unknown), hashed with SHA-256 when a digest is given."""

    def __init__(self, stream: Any, length: int | None, sha256: str | None) -> None:
        self._stream, self._left = stream, length
        self._expected = sha256.lower() if sha256 else None
        self._sha = hashlib.sha256() if sha256 else None
        self._done = False

    def read(self, size: int) -> bytes:
        if self._done:
            return b""
        want = size if self._left is None else min(size, self._left)
        data = self._stream.read(want) if want > 0 else b""
        if data:
            if self._left is not None:
                self._left -= len(data)
            if self._sha is not None:
                self._sha.update(data)
            return data
        if self._left:
            raise S3Error("IncompleteBody")
        self._done = True
        if self._sha is not None and self._sha.hexdigest() != self._expected:
            raise S3Error(
                "XAmzContentSHA256Mismatch",
                ClientComputedContentSHA256=self._expected,
                S3ComputedContentSHA256=self._sha.hexdigest(),
            )
        return b""


class _AwsChunked:
    """The payload inside ``aws-chunked`` framing; ``trailers`` holds the trailing headers once it is read."""

    def __init__(self, wire: _Wire) -> None:
        self._wire = wire
        self._buf = bytearray()
        self._left = 0
        self._in_chunk = False
        self._done = False
        self.trailers: dict[str, str] = {}

    def _fill(self) -> bool:
        data = self._wire.read(CHUNK_BYTES)
        self._buf += data
        return bool(data)

    def _line(self, *, eof_ok: bool = False) -> bytes | None:
        while (end := self._buf.find(b"\r\n")) < 0:
            if len(self._buf) > _LINE_MAX:
                raise S3Error("IncompleteBody", "The aws-chunked body has a chunk header or trailer that is too long.")
            if not self._fill():
                if eof_ok:
                    return None
                raise S3Error("IncompleteBody", "The aws-chunked body ended inside its chunk framing.")
        line = bytes(self._buf[:end])
        del self._buf[: end + 2]
        return line

    def read(self, size: int) -> bytes:
        while not self._done:
            if self._left == 0:
                if self._in_chunk and self._line() != b"":
                    raise S3Error("IncompleteBody", "An aws-chunked chunk is longer than its declared size.")
                header = self._line() or b""
                try:
                    chunk_size = int(header.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise S3Error("IncompleteBody", "The aws-chunked body has a malformed chunk header.") from None
                if chunk_size == 0:
                    self._finish()
                    return b""
                self._left, self._in_chunk = chunk_size, True
            if not self._buf and not self._fill():
                raise S3Error("IncompleteBody", "The aws-chunked body ended inside a chunk.")
            take = min(size, self._left, len(self._buf))
            data = bytes(self._buf[:take])
            del self._buf[:take]
            self._left -= take
            return data
        return b""

    def _finish(self) -> None:
        while (line := self._line(eof_ok=True)) not in (None, b""):
            name, sep, value = line.decode("latin-1").partition(":")
            if sep:
                self.trailers[name.strip().lower()] = value.strip()
        while self._wire.read(CHUNK_BYTES):  # whatever follows the final CRLF; also completes the wire's checks
            pass
        self._done = True


class RequestBody:
    """The object bytes of a request, read as a stream and verified at its end.

    Args:
        environ: the WSGI environ.
        max_bytes: refuse a body announced (or found) to be larger with ``EntityTooLarge``.

    Raises:
        S3Error: for malformed digest headers (``InvalidDigest``, ``InvalidRequest``, ``InvalidArgument``) and an
            announced size over ``max_bytes``; reading raises ``IncompleteBody``, ``BadDigest`` or
            ``XAmzContentSHA256Mismatch``.
    """

    def __init__(self, environ: dict[str, Any], *, max_bytes: int) -> None:
        headers = EnvironHeaders(environ)
        raw_length = environ.get("CONTENT_LENGTH") or None
        length = int(raw_length) if raw_length and raw_length.isdigit() else None
        if length is None and not environ.get("wsgi.input_terminated"):
            length = 0  # PEP 3333: without Content-Length the input must not be read
        tokens = [t.strip() for t in headers.get("Content-Encoding", "").split(",") if t.strip()]
        payload_hash = headers.get("x-amz-content-sha256", "").strip()
        self.chunked = "aws-chunked" in tokens or payload_hash.startswith("STREAMING-")
        # S3 strips aws-chunked and stores the rest (API_PutObject.html, ContentEncoding).
        self.content_encoding = ", ".join(t for t in tokens if t != "aws-chunked") or None
        if payload_hash and not (
            _HEX_SHA256.match(payload_hash) or payload_hash in _NO_PAYLOAD_HASH or _STREAMING.match(payload_hash)
        ):
            raise invalid_argument(
                "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-... or a valid sha256 value.",
                "x-amz-content-sha256",
                payload_hash,
            )
        wire = _Wire(environ["wsgi.input"], length, payload_hash if _HEX_SHA256.match(payload_hash) else None)
        self._chunks = _AwsChunked(wire) if self.chunked else None
        self._source: _Wire | _AwsChunked = self._chunks or wire
        decoded = headers.get("x-amz-decoded-content-length")
        if self.chunked and decoded is not None and not is_unsigned_decimal(decoded):
            raise invalid_argument("Invalid x-amz-decoded-content-length.", "x-amz-decoded-content-length", decoded)
        self.size = (int(decoded) if decoded is not None else None) if self.chunked else length
        self._max = max_bytes
        if self.size is not None and self.size > max_bytes:
            raise S3Error("EntityTooLarge", ProposedSize=self.size, MaxSizeAllowed=max_bytes)
        self._md5_expected = self._content_md5(headers.get("Content-MD5"))
        self._md5 = new_md5() if self._md5_expected is not None else None
        self._algorithm, self._claimed = self._checksum_claim(headers)
        self._checksum = _hasher(self._algorithm) if self._algorithm else None
        self._count = 0
        self._finished = False
        self.checksum: tuple[str, str] | None = None  # (algorithm, value), once verified at the end

    @staticmethod
    def _content_md5(value: str | None) -> bytes | None:
        if value is None:
            return None
        digest = _b64_digest(value, 16)
        if digest is None:
            raise S3Error("InvalidDigest")
        return digest

    @staticmethod
    def _checksum_claim(headers: EnvironHeaders) -> tuple[str | None, str | None]:
        present = [a for a in DIGEST_BYTES if f"x-amz-checksum-{a.lower()}" in headers]
        trailer = headers.get("x-amz-trailer", "").strip().lower()
        if trailer.startswith("x-amz-checksum-"):
            present.append(trailer.removeprefix("x-amz-checksum-").upper())
        if len(set(present)) > 1:
            raise S3Error(
                "InvalidRequest", "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
            )
        if not present:
            return None, None
        algorithm = present[0]
        if algorithm not in DIGEST_BYTES:
            raise S3Error(
                "InvalidRequest", f"The value specified in the x-amz-trailer header is not supported: {trailer}"
            )
        return algorithm, headers.get(f"x-amz-checksum-{algorithm.lower()}")

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all that remain when negative); ``b""`` at the end, after every check passed."""
        if size < 0:
            return b"".join(iter(lambda: self.read(CHUNK_BYTES), b""))
        if self._finished:
            return b""
        data = self._source.read(max(size, 1))
        if not data:
            self._finish()
            return b""
        self._count += len(data)
        if self._count > self._max:
            raise S3Error("EntityTooLarge", ProposedSize=self._count, MaxSizeAllowed=self._max)
        if self._md5 is not None:
            self._md5.update(data)
        if self._checksum is not None:
            self._checksum.update(data)
        return data

    def read_all(self, limit: int) -> bytes:
        """The whole body of a request that carries XML, refused past ``limit`` (``MaxMessageLengthExceeded``)."""
        if self.size is not None and self.size > limit:
            raise S3Error("MaxMessageLengthExceeded")
        parts, total = [], 0
        while chunk := self.read(CHUNK_BYTES):
            total += len(chunk)
            if total > limit:
                raise S3Error("MaxMessageLengthExceeded")
            parts.append(chunk)
        return b"".join(parts)

    def _finish(self) -> None:
        self._finished = True
        if self.chunked and self.size is not None and self._count != self.size:
            raise S3Error("IncompleteBody", f"Received {self._count} of the {self.size} declared decoded bytes.")
        if self._md5 is not None and self._md5.digest() != self._md5_expected:
            raise S3Error("BadDigest", ExpectedDigest=base64.b64encode(self._md5_expected or b"").decode())
        if self._algorithm is None:
            return
        claimed = self._claimed
        if claimed is None and self._chunks is not None:
            claimed = self._chunks.trailers.get(f"x-amz-checksum-{self._algorithm.lower()}")
        if claimed is None:
            raise S3Error("InvalidRequest", f"Missing the trailing checksum x-amz-checksum-{self._algorithm.lower()}.")
        expected = _b64_digest(claimed, DIGEST_BYTES[self._algorithm])
        if expected is None:
            raise S3Error("InvalidRequest", f"Value for x-amz-checksum-{self._algorithm.lower()} header is invalid.")
        if self._checksum is None:
            return  # not computable here (CRC32C without awscrt): accepted, but not recorded as verified
        if self._checksum.digest() != expected:
            raise S3Error("BadDigest", f"The {self._algorithm} you specified did not match the calculated checksum.")
        self.checksum = (self._algorithm, claimed.strip())

    def has_integrity_header(self) -> bool:
        """Whether the client sent Content-MD5 or a flexible checksum (DeleteObjects requires one)."""
        return self._md5_expected is not None or self._algorithm is not None
