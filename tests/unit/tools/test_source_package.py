"""tools.source_package: a byte-for-byte reproducible, content-addressed sourcedir tarball, all offline."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from local_aws.constants import TRAINING_DIR
from tools.source_package import SourcePackageError, is_packaged, package_source


def make_tree(root: Path) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "train.py").write_text("print('train')\n")
    (root / "model.py").write_text("X = 1\n")
    (root / "pkg" / "util.py").write_text("Y = 2\n")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    return root


def test_package_source_is_byte_for_byte_reproducible(tmp_path: Path) -> None:
    """Same content with other mtimes, modes and bytecode caches: the same bytes and name; new content: a new name."""
    tree = make_tree(tmp_path / "a")
    first = package_source(tree)
    for path in tree.rglob("*"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
    (tree / "model.py").chmod(0o600)
    (tree / "__pycache__").mkdir()
    (tree / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"\0" * 16)
    (tree / "pkg" / "util.pyc").write_bytes(b"\0")
    (tree / ".DS_Store").write_bytes(b"\0")
    second = package_source(tree)
    assert second.data == first.data
    assert first.sha256 == hashlib.sha256(first.data).hexdigest()
    assert first.name == f"sourcedir-{first.sha256[:12]}.tar.gz"

    (tree / "model.py").write_text("X = 2\n")
    assert package_source(tree).name != first.name


def test_the_same_tree_elsewhere_packages_identically(tmp_path: Path) -> None:
    """The archive does not depend on where the tree lives (paths are relative to it)."""
    assert package_source(make_tree(tmp_path / "a")).data == package_source(make_tree(tmp_path / "b" / "c")).data


def test_package_source_layout_and_headers(tmp_path: Path) -> None:
    """Sorted relative members, no owners, mtime 0 (tar and gzip), normalised modes."""
    package = package_source(make_tree(tmp_path / "src"))
    assert package.data[4:8] == b"\0\0\0\0"  # gzip MTIME
    with tarfile.open(fileobj=io.BytesIO(package.data)) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["model.py", "pkg/util.py", "run.sh", "train.py"]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
    assert {m.name: m.mode for m in members} == {
        "model.py": 0o644,
        "pkg/util.py": 0o644,
        "run.sh": 0o755,
        "train.py": 0o644,
    }
    assert gzip.decompress(package.data)  # a valid gzip stream


def test_package_source_of_the_real_training_dir_has_the_entry_point_at_the_root() -> None:
    """training/ packages with train.py and inference.py at the root and no caches (SageMaker's /opt/ml/code)."""
    package = package_source(TRAINING_DIR)
    with tarfile.open(fileobj=io.BytesIO(package.data)) as tar:
        names = tar.getnames()
    assert "train.py" in names and "inference.py" in names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


def test_what_cannot_be_packaged_is_named(tmp_path: Path) -> None:
    """A missing directory, or one holding only caches, is a SourcePackageError naming --src."""
    with pytest.raises(SourcePackageError, match="not a directory"):
        package_source(tmp_path / "nope")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "x.pyc").write_bytes(b"\0")
    with pytest.raises(SourcePackageError, match=f"--src {tmp_path}: no files to package"):
        package_source(tmp_path)


def test_is_packaged_skips_caches_anywhere_in_the_path(tmp_path: Path) -> None:
    """Cache directories at any depth and bytecode files are excluded; everything else is packaged."""
    assert is_packaged(tmp_path / "a" / "b.py", tmp_path)
    assert not is_packaged(tmp_path / "a" / ".ipynb_checkpoints" / "b.py", tmp_path)
    assert not is_packaged(tmp_path / "b.pyo", tmp_path)
