"""Walking a bucket directory in S3's key order, with S3's prefix, delimiter and start-after semantics.

S3 lists keys "in ascending order based on the UTF-8 binary representation" (API/API_ListObjectsV2.html). A
directory ``d`` holds exactly the keys starting ``d/``, so sorting each directory's entries by ``name`` for files and
``name + "/"`` for directories yields every key in that order without sorting the whole bucket; and Python compares
``str`` by code point, which is the UTF-8 byte order. Subtrees that cannot hold a wanted key (outside the prefix, or
wholly before start-after) are never read, and with the ``/`` delimiter a directory is one common prefix, so listing
the top of a big dataset does not walk its files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple, TypeVar

from local_aws.s3.errors import S3Error
from local_aws.s3.keys import KEY_MAX_BYTES, validate_key

T = TypeVar("T")


class Entry(NamedTuple):
    """One walk result: an object (``is_prefix`` False) or, with the ``/`` delimiter, a directory's common prefix."""

    key: str
    path: Path
    is_prefix: bool


def _usable_name(name: str) -> bool:
    # Files that no valid key can name (written by something else: backslashes, undecodable bytes) stay invisible.
    try:
        validate_key(name)
    except S3Error:
        return False
    return True


def _entries(directory: str, rel: str, base: Path) -> list[tuple[str, os.DirEntry[str], bool]]:
    try:
        with os.scandir(directory) as it:
            raw = list(it)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []
    items = []
    for entry in raw:
        if not _usable_name(entry.name):
            continue
        try:
            is_dir = entry.is_dir()
            if entry.is_symlink():
                # NOTE: symlinked directories are not followed (a link to an ancestor would loop forever); a
                # symlinked file is listed only when it resolves inside the bucket, as reads require.
                if is_dir or not Path(entry.path).resolve().is_relative_to(base):
                    continue
            elif not is_dir and not entry.is_file():
                continue  # sockets, FIFOs
        except OSError:
            continue
        items.append((rel + entry.name + ("/" if is_dir else ""), entry, is_dir))
    items.sort(key=lambda item: item[0])
    return items


def walk(
    base: Path, prefix: str = "", after: str = "", *, fold: bool = False, start: Entry | None = None
) -> Iterator[Entry]:
    """Yield the objects under ``base`` whose keys start with ``prefix`` and sort after ``after``, in key order.

    Args:
        base: the bucket directory (resolved).
        prefix: only keys starting with this.
        after: only keys strictly greater than this.
        fold: yield a directory below ``prefix`` as one ``is_prefix`` entry (``key`` ends in ``/``) instead of
            descending: the common prefixes of the ``/`` delimiter.
        start: walk only below this directory entry (one that ``fold`` yielded).
    """
    if start is None:
        yield from _walk(str(base), base, prefix, after, fold, "")
    else:
        yield from _walk(str(start.path), base, prefix, after, fold, start.key)


def _walk(directory: str, base: Path, prefix: str, after: str, fold: bool, rel: str) -> Iterator[Entry]:
    for key, entry, is_dir in _entries(directory, rel, base):
        if is_dir:
            if not (key.startswith(prefix) or prefix.startswith(key)):
                continue
            # Every key below has ``key`` as a prefix; when ``after`` sorts after ``key`` without extending it, all
            # of them sort before ``after``.
            if after and key <= after and not after.startswith(key):
                continue
            if fold and key.startswith(prefix) and len(key) > len(prefix):
                yield Entry(key, Path(entry.path), True)
                continue
            yield from _walk(entry.path, base, prefix, after, fold, key)
        elif key.startswith(prefix) and key > after and len(key.encode("utf-8")) <= KEY_MAX_BYTES:
            yield Entry(key, Path(entry.path), False)


def list_page(
    base: Path,
    describe: Callable[[str, Path], T | None],
    *,
    prefix: str = "",
    delimiter: str = "",
    after: str = "",
    max_keys: int = 1000,
) -> tuple[list[T], list[str], bool]:
    """One page of ListObjects over a bucket directory.

    Args:
        base: the bucket directory (resolved).
        describe: turns an object's key and path into the listed record (None drops it: it vanished meanwhile).
        prefix: only keys starting with this.
        delimiter: keys containing this after the prefix roll up into one common prefix each.
        after: start after this key or common prefix (start-after, marker or a continuation token).
        max_keys: the most objects plus common prefixes on the page.

    Returns:
        ``(objects, common_prefixes, truncated)``, each list in key order.
    """
    objects: list[T] = []
    prefixes: list[str] = []
    if max_keys <= 0:
        return objects, prefixes, False
    count = 0
    last_prefix: str | None = None
    for entry in walk(base, prefix, after, fold=delimiter == "/"):
        key = entry.key
        common: str | None = None
        if entry.is_prefix:
            # A directory is a common prefix only when some object below it is still to come.
            if key == after or next(walk(base, key, after, start=entry), None) is None:
                continue
            common = key
        elif delimiter and delimiter in key[len(prefix) :]:
            common = key[: key.index(delimiter, len(prefix)) + len(delimiter)]
            if common in (last_prefix, after):
                continue
        if count == max_keys:
            return objects, prefixes, True
        if common is not None:
            prefixes.append(common)
            last_prefix = common
            count += 1
            continue
        record = describe(key, entry.path)
        if record is not None:
            objects.append(record)
            count += 1
    return objects, prefixes, False
