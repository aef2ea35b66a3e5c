"""A byte-for-byte reproducible, content-addressed ``sourcedir-<sha256[:12]>.tar.gz`` of a SageMaker source dir.

The same tree always gives the same bytes (sorted entries, mtime 0, no owners, normalised modes, a gzip header with no
name or time), so its name identifies its content: uploading it twice is a no-op and a training job records exactly
which code it ran. A leaf: imports nothing of the project.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

EXCLUDED_NAMES = frozenset({"__pycache__", ".DS_Store", ".ipynb_checkpoints", ".pytest_cache", ".mypy_cache"})
EXCLUDED_SUFFIXES = (".pyc", ".pyo")


class SourcePackageError(ValueError):
    """The source dir cannot be packaged; the message names it."""


def is_packaged(path: Path, root: Path) -> bool:
    """False for caches and editor droppings, which must not change the package's hash."""
    parts = path.relative_to(root).parts
    return not any(p in EXCLUDED_NAMES for p in parts) and not path.name.endswith(EXCLUDED_SUFFIXES)


def packaged_files(root: Path) -> list[Path]:
    """Every file under ``root`` that ``is_packaged``, in a stable (POSIX path) order."""
    return sorted((p for p in root.rglob("*") if p.is_file() and is_packaged(p, root)), key=lambda p: p.as_posix())


@dataclass(frozen=True)
class SourcePackage:
    name: str
    data: bytes
    sha256: str


def package_source(src: Path) -> SourcePackage:
    """Build a byte-for-byte reproducible sourcedir tarball of ``src``.

    Files are added in sorted order with mtime 0, uid/gid 0, empty owner names and normalised modes, and the gzip
    header carries no name or timestamp, so the same tree always hashes the same; bytecode caches are skipped.

    Args:
        src: the directory to package (SageMaker extracts it to /opt/ml/code, so paths are relative to it).

    Returns:
        The archive bytes, its sha256 and its content-addressed name ``sourcedir-<sha256[:12]>.tar.gz``.

    Raises:
        OpsError: ``src`` is not a directory or has no files.
    """
    if not src.is_dir():
        raise SourcePackageError(f"--src {src}: not a directory")
    files = packaged_files(src)
    if not files:
        raise SourcePackageError(f"--src {src}: no files to package")
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in files:
            info = tarfile.TarInfo(path.relative_to(src).as_posix())
            st = path.stat()
            info.size = st.st_size
            info.mode = 0o755 if st.st_mode & 0o111 else 0o644
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            with path.open("rb") as fh:
                tar.addfile(info, fh)
    gz = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=gz, mtime=0, compresslevel=9) as out:
        out.write(tar_bytes.getvalue())
    data = gz.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    return SourcePackage(name=f"sourcedir-{digest[:12]}.tar.gz", data=data, sha256=digest)
