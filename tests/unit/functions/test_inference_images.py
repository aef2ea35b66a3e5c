"""Header sniffing against images Pillow really encodes: the Lambda must agree with the decoder on size."""

from __future__ import annotations

import ast
import contextlib
import io
import struct
import zlib
from typing import Any

import pytest
from PIL import Image

from errors import BadRequest, ClientInputError, PayloadTooLarge, UnsupportedMediaType
from images import SUPPORTED_FORMATS, inspect_image, sniff_format
from tests.conftest import REPO_ROOT

LIMITS = {"max_megapixels": 40.0, "min_side_px": 8}


def encode(image: Image.Image, fmt: str, **kwargs: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def gradient(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    return Image.linear_gradient("L").resize(size).convert(mode)


def rotated_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° CW; the stored frame keeps its own width and height
    return exif


CASES = [
    ("jpeg-baseline", lambda: encode(gradient((37, 23)), "JPEG"), "JPEG"),
    ("jpeg-progressive", lambda: encode(gradient((64, 9)), "JPEG", progressive=True), "JPEG"),
    ("jpeg-grayscale", lambda: encode(gradient((300, 200), "L"), "JPEG"), "JPEG"),
    ("jpeg-cmyk", lambda: encode(gradient((40, 40), "CMYK"), "JPEG"), "JPEG"),
    ("jpeg-exif", lambda: encode(gradient((50, 30)), "JPEG", exif=rotated_exif()), "JPEG"),
    ("png-rgba", lambda: encode(gradient((33, 17), "RGBA"), "PNG"), "PNG"),
    ("png-16bit", lambda: encode(gradient((20, 12), "I;16"), "PNG"), "PNG"),
    ("png-palette", lambda: encode(gradient((16, 9), "P"), "PNG"), "PNG"),
]


@pytest.mark.parametrize(("make", "fmt"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_format_and_size_match_pillow(make: Any, fmt: str) -> None:
    data = make()
    info = inspect_image(data, **LIMITS)
    assert info.format == fmt
    assert (info.width, info.height) == Image.open(io.BytesIO(data)).size


@pytest.mark.parametrize(("make", "fmt"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_every_truncation_is_a_client_error_never_a_crash(make: Any, fmt: str) -> None:
    data = make()
    for cut in range(len(data)):
        # 400/413/415 are all fine; IndexError or struct.error would fail the test.
        with contextlib.suppress(ClientInputError):
            inspect_image(data[:cut], **LIMITS)


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (encode(gradient((10, 10), "P"), "GIF"), "GIF"),
        (encode(gradient((10, 10)), "TIFF"), "TIFF"),
        (encode(gradient((10, 10)), "BMP"), "BMP"),
        (encode(gradient((10, 10)), "WEBP"), "WebP"),
        (b"%PDF-1.7\n", "PDF"),
        (b"SIMPLE  =                    T", "FITS"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
    ],
)
def test_unsupported_formats_are_named(data: bytes, name: str) -> None:
    with pytest.raises(UnsupportedMediaType, match=f"unsupported image format {name}; supported: JPEG, PNG$"):
        sniff_format(data)


@pytest.mark.parametrize("data", [b"", b"\x00" * 64, b"hello world", b"RIFF\x00\x00\x00\x00WAVE"])
def test_unrecognised_data_is_415(data: bytes) -> None:
    with pytest.raises(UnsupportedMediaType, match="unrecognised image data"):
        sniff_format(data)


def png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))


def test_decompression_bomb_header_is_413_before_decoding() -> None:
    with pytest.raises(PayloadTooLarge, match=r"10000x5000 = 50\.0 megapixels; the limit is 40"):
        inspect_image(png_header(10_000, 5_000), **LIMITS)
    assert inspect_image(png_header(8_000, 5_000), **LIMITS).width == 8_000  # exactly 40 MP is allowed


@pytest.mark.parametrize("size", [(1, 1), (7, 100), (100, 7), (0, 10)])
def test_too_small_sides_are_400(size: tuple[int, int]) -> None:
    with pytest.raises(BadRequest, match="each side must be at least 8 px"):
        inspect_image(png_header(*size), **LIMITS)


def test_allowlist_equals_the_containers() -> None:
    """What the Lambda lets through is exactly what training/inference.py decodes (read without importing torch)."""
    tree = ast.parse((REPO_ROOT / "training" / "inference.py").read_text())
    allowed = next(
        ast.literal_eval(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "ALLOWED_FORMATS" for t in node.targets)
    )
    assert tuple(allowed) == SUPPORTED_FORMATS
