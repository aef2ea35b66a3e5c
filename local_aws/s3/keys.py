"""Bucket names, object keys and S3 URIs: what the local S3 accepts, and the one place keys become paths.

Keys map onto files (``<root>/<bucket>/<key>``), so a key is a path and must never name anything outside its bucket's
directory. ``validate_key`` refuses every key form that a filesystem would read differently from S3 (empty, ``.`` or
``..`` segments, backslashes, control characters, percent-encoded spellings of those), and ``confine`` checks the
path that results, after symlinks on disk are resolved, really lies inside the bucket directory. ``place`` and
``prune`` make and remove the directories that keys need, refusing a key that would need a path to be both an object
(a file) and a prefix (a directory).

NOTE: S3 itself accepts almost any UTF-8 key (docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html); the
refusals here are local limitations that keep the filesystem mapping safe and unambiguous. The keys that the
project's tools write (``models/...``, ``data/train/...``) are all accepted.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
from pathlib import Path
from urllib.parse import unquote

from local_aws.s3.errors import S3Error, invalid_argument

KEY_MAX_BYTES = 1024  # "The name for a key ... up to 1,024 bytes long" (userguide/object-keys.html)
SEGMENT_MAX_BYTES = 255  # NAME_MAX of ext4/xfs/apfs: a local limit, S3 has none per segment
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# userguide/bucketnamingrules.html: reserved prefixes and suffixes of general purpose buckets.
_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
# Percent-encoding nests: '%252e' decodes to '%2e', which decodes to '.'. Decode until nothing changes (bounded).
_MAX_DECODE_ROUNDS = 8


def bucket_name_problem(bucket: str) -> str | None:
    """Why ``bucket`` breaks S3's bucket naming rules, or None when it is a valid name.

    Rules: docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html (general purpose buckets). A valid
    name never starts with ``.``, so the store's own ``.meta``/``.tmp``/``.uploads`` dirs can never be buckets.
    """
    if not _BUCKET_RE.match(bucket):
        return "3-63 characters of lowercase letters, digits, '.' and '-', starting and ending with a letter or digit"
    if ".." in bucket:
        return "two adjacent periods"
    try:
        ipaddress.IPv4Address(bucket)
    except ValueError:
        pass
    else:
        return "formatted as an IP address"
    if bucket.startswith(_BUCKET_PREFIXES) or bucket.endswith(_BUCKET_SUFFIXES):
        return "a reserved prefix or suffix"
    return None


def validate_bucket(bucket: str) -> str:
    """Return ``bucket`` when it is a valid S3 bucket name.

    Raises:
        S3Error: 400 ``InvalidBucketName``.
    """
    problem = bucket_name_problem(bucket)
    if problem is not None:
        raise S3Error("InvalidBucketName", f"The specified bucket is not valid ({problem}).", BucketName=bucket)
    return bucket


def _fully_decoded(text: str) -> str:
    for _ in range(_MAX_DECODE_ROUNDS):
        decoded = unquote(text, errors="replace")
        if decoded == text:
            break
        text = decoded
    return text


def validate_key(key: str, *, prefix: bool = False) -> str:
    """Return ``key`` when it can be stored as a file inside its bucket directory.

    Args:
        key: the object key (already percent-decoded once, as S3 decodes the request path).
        prefix: validate a key prefix instead (``s3://bucket/dir/``): empty and a trailing ``/`` are allowed.

    Raises:
        S3Error: 400 ``KeyTooLongError`` over 1024 UTF-8 bytes; 400 ``InvalidArgument`` naming the problem for
            empty segments (``a//b``, a leading or trailing ``/``), ``.``/``..`` segments, backslashes, NUL and
            control characters, and any of those spelled with percent-encoding (``%2e%2e``, ``%2F``, ``%252e``).
    """
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise invalid_argument("Object key is not valid UTF-8.", "key") from None
    if size > KEY_MAX_BYTES:
        raise S3Error("KeyTooLongError", f"Your key is too long: {size} bytes, the maximum is {KEY_MAX_BYTES}.")
    body = key.removesuffix("/") if prefix else key
    if not body:
        if prefix:
            return key
        raise invalid_argument("Object key must not be empty.", "key")
    for segment in body.split("/"):
        _check_segment(segment, key)
    return key


def _check_segment(segment: str, key: str) -> None:
    def refuse(problem: str) -> S3Error:
        return invalid_argument(f"Object key {key!r} is not supported by the local S3: {problem}.", "key", key)

    if not segment:
        raise refuse("empty path segment (a leading, trailing or doubled '/')")
    decoded = _fully_decoded(segment)
    if decoded in {".", ".."} or segment in {".", ".."}:
        raise refuse("'.' and '..' path segments are not allowed")
    if "/" in decoded:
        raise refuse("a percent-encoded '/' (%2F) is not allowed")
    if "\\" in decoded:
        raise refuse("backslashes are not allowed")
    if _CONTROL_RE.search(decoded):
        raise refuse("NUL and control characters are not allowed")
    if len(segment.encode("utf-8")) > SEGMENT_MAX_BYTES:
        raise refuse(f"a path segment longer than {SEGMENT_MAX_BYTES} bytes (a local filesystem limit)")


def confine(base: Path, key: str) -> Path:
    """The path of ``key`` under ``base`` (a bucket dir), refused when it resolves outside ``base``.

    ``key`` must have passed ``validate_key``; this second check catches symlinks already on disk (a link inside
    the bucket pointing elsewhere). The bucket dir itself may be a symlink: keys are confined to its target.

    Raises:
        S3Error: 400 ``InvalidArgument`` when the resolved path leaves ``base``.
    """
    path = base / key
    resolved_base = base.resolve()
    # NOTE: resolve(strict=False) follows every symlink that exists and keeps the rest as written, so a path whose
    # tail does not exist yet (a new object) is still checked through its existing ancestors.
    resolved = path.resolve()
    if resolved == resolved_base or not resolved.is_relative_to(resolved_base):
        raise invalid_argument(f"Object key {key!r} resolves outside its bucket (a symlink on disk).", "key", key)
    return path


def parse_uri(uri: str) -> tuple[str, str]:
    """Split ``s3://bucket/key`` into ``(bucket, key)``; the key is ``""`` for the bucket itself.

    The key part may be an object key or a prefix (``s3://bucket/data/``); either way it must pass
    ``validate_key(prefix=True)``.

    Raises:
        S3Error: ``InvalidArgument`` without the ``s3://`` scheme, ``InvalidBucketName`` for a bad bucket, and the
            key errors of ``validate_key``.
    """
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise invalid_argument(f"Invalid S3 URI {uri!r}: expected s3://bucket/key.", "uri", str(uri))
    bucket, _, key = uri[len("s3://") :].partition("/")
    validate_bucket(bucket)
    validate_key(key, prefix=True)
    return bucket, key


def _conflict(key: str, where: str, what: str) -> S3Error:
    return invalid_argument(
        f"Object key {key!r} cannot be stored: {where!r} is {what}. The local S3 keeps keys as files, so one key "
        "cannot be both an object and a prefix of another key (a local limitation; S3 allows it).",
        "key",
        key,
    )


def place(base: Path, key: str, *, stale_ok: bool) -> Path:
    """Make the parent dirs of ``key`` under ``base``; refuse (or, in the sidecar tree, clear) file/dir clashes."""
    parts = key.split("/")
    current = base
    for depth, segment in enumerate(parts[:-1], start=1):
        current = current / segment
        if current.is_dir():
            continue
        if current.exists() or current.is_symlink():
            if not stale_ok:
                raise _conflict(key, "/".join(parts[:depth]), "already an object")
            current.unlink()  # a sidecar left by an object that is now a prefix: stale
        current.mkdir()
    target = base / key
    if target.is_dir() and not target.is_symlink():
        if not stale_ok:
            raise _conflict(key, key, "already a prefix of other keys")
        shutil.rmtree(target)
    return target


def prune(base: Path, path: Path) -> None:
    """Remove the now-empty parent dirs of ``path`` up to ``base`` (S3 has no empty directories)."""
    parent = path.parent
    while parent != base and parent.is_relative_to(base):
        try:
            parent.rmdir()
        except OSError:
            return
        parent = parent.parent


def is_unsigned_decimal(text: str) -> bool:
    """Whether ``text`` is ASCII digits only, the only integers S3 reads from a query, header or XML field.

    NOTE: not ``str.isdigit()`` alone: it accepts "²" and other Unicode digits that ``int()`` refuses, which would
    turn a client's typo into a 500.
    """
    return text.isascii() and text.isdigit()
