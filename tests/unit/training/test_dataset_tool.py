"""tools.dataset: seeded digits rendering, dogImages.zip validation, bundled real photos."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from PIL import Image

from tools import dataset


def test_render_is_seeded_stratified_and_idempotent(tmp_path: Path) -> None:
    root = dataset.render_digits(tmp_path / "a", size=16, seed=1, per_class=20)
    counts = dataset.validate_layout(root)
    assert counts == {"train": 140, "valid": 30, "test": 30}
    classes = sorted(p.name for p in (root / "train").iterdir())
    assert classes[0] == "001.zero" and classes[-1] == "010.nine"
    img = Image.open(next((root / "test" / "004.three").iterdir()))
    assert img.format == "JPEG" and img.mode == "RGB" and img.size == (16, 16)
    again = dataset.render_digits(tmp_path / "b", size=16, seed=1, per_class=20)
    listing = sorted(str(p.relative_to(root)) for p in root.rglob("*.jpg"))
    assert listing == sorted(str(p.relative_to(again)) for p in again.rglob("*.jpg"))
    other = dataset.render_digits(tmp_path / "c", size=16, seed=2, per_class=20)
    assert listing != sorted(str(p.relative_to(other)) for p in other.rglob("*.jpg"))
    # No split overlap: each source image lands in exactly one split.
    names = [p.name for p in root.rglob("*.jpg")]
    assert len(names) == len(set(names))


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_unzip_dogimages_layout(tmp_path: Path) -> None:
    jpeg = tmp_path / "x.jpg"
    Image.new("RGB", (8, 8)).save(jpeg)
    members = {
        f"dogImages/{s}/{c}/{c[4:]}_0001.jpg": jpeg.read_bytes()
        for s in ("train", "valid", "test")
        for c in ("001.Affenpinscher", "002.Afghan_hound")
    }
    counts = dataset.unzip_dogimages(_zip(tmp_path / "dogImages.zip", members), tmp_path / "out")
    assert counts == {"train": 2, "valid": 2, "test": 2}
    assert (tmp_path / "out" / "train" / "002.Afghan_hound" / "Afghan_hound_0001.jpg").is_file()


@pytest.mark.parametrize(
    ("members", "fragment"),
    [
        ({"photos/a.jpg": b"x"}, "not a dogImages archive"),
        ({"train/001.A/a.jpg": b"x", "valid/001.A/a.jpg": b"x", "test/002.B/a.jpg": b"x"}, "classes differ"),
        ({"train/dogs/a.jpg": b"x", "valid/dogs/a.jpg": b"x", "test/dogs/a.jpg": b"x"}, "001.Affenpinscher"),
        ({"../evil/train/001.A/a.jpg": b"x"}, "unsafe path"),
    ],
)
def test_unzip_rejects_wrong_shapes(tmp_path: Path, members: dict[str, bytes], fragment: str) -> None:
    with pytest.raises(dataset.DatasetError, match=fragment):
        dataset.unzip_dogimages(_zip(tmp_path / "bad.zip", members), tmp_path / "out")


def test_cli_error_is_a_message_not_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notzip.zip").write_bytes(b"hello")
    assert dataset.main(["unzip", "--zip", str(tmp_path / "notzip.zip"), "--out", str(tmp_path / "o")]) == 2
    assert "is not a zip archive" in capsys.readouterr().err


def test_sample_photo_is_a_real_jpeg(tmp_path: Path) -> None:
    path = dataset.sample_photo(tmp_path / "p.jpg", "flower.jpg")
    img = Image.open(path)
    assert img.format == "JPEG" and img.size == (640, 427)
    with pytest.raises(dataset.DatasetError, match=r"china\.jpg"):
        dataset.sample_photo(tmp_path / "q.jpg", "dog.jpg")
