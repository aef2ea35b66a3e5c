"""Datasets in the dogImages layout, with no downloads.

``render``: scikit-learn's bundled handwritten digits (1,797 real 8x8 scans) upsampled to RGB JPEGs with a fixed,
seeded, stratified 70/15/15 split into ``train/ valid/ test/<NNN.name>/*.jpg``.
``unzip``: unpack a user's ``dogImages.zip`` and check that it has the dogImages shape.
``photo``: write one of scikit-learn's bundled colour photos as a JPEG (a real photo for prediction tests).

Usage::

    python -m tools.dataset render --out data/embedded [--size 32] [--seed 0]
    python -m tools.dataset unzip --zip dogImages.zip --out data/dogImages
    python -m tools.dataset photo --out photo.jpg [--name china.jpg]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

SPLITS = ("train", "valid", "test")
DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
CLASS_DIR = re.compile(r"^\d{3}\.[^/]+$")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
SAMPLE_PHOTOS = ("china.jpg", "flower.jpg")
MANIFEST = "dataset.json"


class DatasetError(ValueError):
    """The input does not have the expected shape; the message says what is wrong."""


def render_digits(out: str | Path, size: int = 32, seed: int = 0, per_class: int | None = None) -> Path:
    """Render the digits dataset into ``out`` (idempotent for the same parameters).

    Args:
        out: target directory; gets ``train/ valid/ test/`` and a ``dataset.json`` manifest.
        size: side of the square JPEGs in pixels (>= 8).
        seed: split seed.
        per_class: keep at most this many images per class (smaller, faster datasets).

    Returns:
        ``out`` as a Path.
    """
    from sklearn.datasets import load_digits

    if size < 8:
        raise DatasetError(f"size {size} is too small (minimum 8)")
    root = Path(out)
    params = {"source": "sklearn.datasets.load_digits", "size": size, "seed": seed, "per_class": per_class}
    manifest = root / MANIFEST
    if manifest.is_file() and json.loads(manifest.read_text()).get("params") == params:
        return root
    for split in SPLITS:
        shutil.rmtree(root / split, ignore_errors=True)

    digits = load_digits()
    rng = np.random.default_rng(seed)
    counts = dict.fromkeys(SPLITS, 0)
    for label, name in enumerate(DIGIT_NAMES):
        idx = np.flatnonzero(digits.target == label)
        idx = rng.permutation(idx)
        if per_class:
            idx = idx[:per_class]
        n_valid = n_test = max(1, round(len(idx) * 0.15))
        parts = {"test": idx[:n_test], "valid": idx[n_test : n_test + n_valid], "train": idx[n_test + n_valid :]}
        class_name = f"{label + 1:03d}.{name}"
        for split, members in parts.items():
            target = root / split / class_name
            target.mkdir(parents=True, exist_ok=True)
            for i in members:
                # Values are ink density 0..16; draw dark ink on paper, as a photographed digit would look.
                gray = (255 - digits.images[i] * (255 / 16)).clip(0, 255).astype(np.uint8)
                img = Image.fromarray(gray, mode="L").resize((size, size), Image.Resampling.BICUBIC).convert("RGB")
                img.save(target / f"{name}_{int(i):05d}.jpg", format="JPEG", quality=95)
                counts[split] += 1
    manifest.write_text(json.dumps({"params": params, "counts": counts, "classes": 10}, indent=2))
    return root


def sample_photo(out: str | Path, name: str = "china.jpg") -> Path:
    """Write one of scikit-learn's bundled colour photos (427x640) to ``out`` as a JPEG.

    Raises:
        DatasetError: unknown photo name.
    """
    from sklearn.datasets import load_sample_image

    if name not in SAMPLE_PHOTOS:
        raise DatasetError(f"unknown photo {name!r} (valid: {', '.join(SAMPLE_PHOTOS)})")
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(load_sample_image(name)).save(path, format="JPEG", quality=92)
    return path


def _split_root(names: Sequence[str]) -> str:
    # dogImages.zip holds "dogImages/train/..."; accept that or train/ at the archive root.
    tops = {PurePosixPath(n).parts[0] for n in names if PurePosixPath(n).parts}
    if set(SPLITS) <= tops:
        return ""
    for top in sorted(tops):
        subs = {
            PurePosixPath(n).parts[1]
            for n in names
            if len(PurePosixPath(n).parts) > 1 and PurePosixPath(n).parts[0] == top
        }
        if set(SPLITS) <= subs:
            return top + "/"
    raise DatasetError(
        "not a dogImages archive: expected train/ valid/ test/ folders (optionally under one top folder such as "
        f"dogImages/), found top-level entries {sorted(tops)[:8]}"
    )


def validate_layout(root: str | Path) -> dict[str, int]:
    """Check a directory has the dogImages shape: the three splits, the same ``NNN.Name`` classes, images in each.

    Returns:
        Image count per split.

    Raises:
        DatasetError: what is missing or inconsistent.
    """
    root = Path(root)
    classes: dict[str, list[str]] = {}
    counts: dict[str, int] = {}
    for split in SPLITS:
        split_dir = root / split
        if not split_dir.is_dir():
            raise DatasetError(f"{split_dir} is missing (expected train/ valid/ test/)")
        dirs = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
        bad = [d for d in dirs if not CLASS_DIR.match(d)]
        if not dirs or bad:
            raise DatasetError(f"{split_dir} must hold class folders named like 001.Affenpinscher; bad: {bad[:5]}")
        classes[split] = dirs
        counts[split] = sum(1 for p in split_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        empty = [d for d in dirs if not any(p.suffix.lower() in IMAGE_SUFFIXES for p in (split_dir / d).iterdir())]
        if empty:
            raise DatasetError(f"{split_dir} has class folders without images: {empty[:5]}")
    for split in ("valid", "test"):
        if classes[split] != classes["train"]:
            diff = sorted(set(classes[split]) ^ set(classes["train"]))
            raise DatasetError(f"{split} classes differ from train: {diff[:5]}")
    return counts


def unzip_dogimages(zip_path: str | Path, out: str | Path) -> dict[str, int]:
    """Extract ``dogImages.zip`` into ``out/{train,valid,test}`` and validate it.

    Returns:
        Image count per split.

    Raises:
        DatasetError: not a zip, unsafe member paths, or not dogImages-shaped.
    """
    zip_path, out = Path(zip_path), Path(out)
    if not zipfile.is_zipfile(zip_path):
        raise DatasetError(f"{zip_path} is not a zip archive")
    with zipfile.ZipFile(zip_path) as archive:
        names = [n for n in archive.namelist() if not n.startswith("__MACOSX/")]
        for name in names:
            parts = PurePosixPath(name).parts
            if name.startswith("/") or ".." in parts:
                raise DatasetError(f"refusing unsafe path in archive: {name!r}")
        prefix = _split_root(names)
        out.mkdir(parents=True, exist_ok=True)
        for name in names:
            if not name.startswith(prefix) or name.endswith("/"):
                continue
            rel = name[len(prefix) :]
            if PurePosixPath(rel).parts[0] not in SPLITS:
                continue
            target = out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(name) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
    return validate_layout(out)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m tools.dataset", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    render = sub.add_parser("render", help="render scikit-learn digits into the dogImages layout")
    render.add_argument("--out", required=True)
    render.add_argument("--size", type=int, default=32)
    render.add_argument("--seed", type=int, default=0)
    render.add_argument("--per-class", type=int, default=None)
    unzip = sub.add_parser("unzip", help="unpack and validate dogImages.zip")
    unzip.add_argument("--zip", required=True)
    unzip.add_argument("--out", required=True)
    photo = sub.add_parser("photo", help="write a bundled real photo as JPEG")
    photo.add_argument("--out", required=True)
    photo.add_argument("--name", default="china.jpg", help=f"one of {', '.join(SAMPLE_PHOTOS)}")
    args = parser.parse_args(argv)
    try:
        if args.command == "render":
            root = render_digits(args.out, args.size, args.seed, args.per_class)
            print(json.loads((root / MANIFEST).read_text())["counts"])
        elif args.command == "unzip":
            print(unzip_dogimages(args.zip, args.out))
        else:
            print(sample_photo(args.out, args.name))
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
