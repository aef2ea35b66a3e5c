"""Image sniffing without Pillow: format from magic bytes, dimensions from the header.

Lambda does not decode images (the endpoint does); it only refuses what the endpoint would refuse, before paying
for an InvokeEndpoint call: unknown formats, truncated headers, decompression bombs and images too small to classify.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

# NOTE: the same allowlist as training/inference.py ALLOWED_FORMATS (a unit test keeps them equal): anything the
# container would refuse is refused here, before a paid InvokeEndpoint call.
SUPPORTED_FORMATS = ("JPEG", "PNG")
SUPPORTED_TEXT = ", ".join(SUPPORTED_FORMATS)

# Formats recognised only to name them in the 415 message.
_KNOWN_UNSUPPORTED: tuple[tuple[bytes, str], ...] = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
    (b"%PDF", "PDF"),
    (b"SIMPLE  =", "FITS"),
    (b"<svg", "SVG"),
    (b"<?xml", "XML/SVG"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\x00\x00\x00\x1cftypavif", "AVIF"),
    (b"\x00\x00\x00\x18ftypheic", "HEIC"),
)

# SOF markers carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but are not frames.
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int
    height: int


def sniff_format(data: bytes) -> str:
    """Return ``JPEG`` or ``PNG`` from magic bytes.

    Raises:
        UnsupportedMediaType: any other or an unrecognised format.
    """
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        raise UnsupportedMediaType(f"unsupported image format WebP; supported: {SUPPORTED_TEXT}")
    for magic, name in _KNOWN_UNSUPPORTED:
        if data.startswith(magic):
            raise UnsupportedMediaType(f"unsupported image format {name}; supported: {SUPPORTED_TEXT}")
    raise UnsupportedMediaType(f"unrecognised image data; supported formats: {SUPPORTED_TEXT}")


def _truncated(fmt: str) -> BadRequest:
    return BadRequest(f"{fmt} image is truncated or corrupt (its header could not be read)")


def _jpeg_size(data: bytes) -> tuple[int, int]:
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            raise _truncated("JPEG")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if marker in _JPEG_STANDALONE:
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            break
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _JPEG_SOF:
            if i + 9 > n or length < 7:
                break
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        if length < 2:
            break
        i += 2 + length
    raise _truncated("JPEG")


def _png_size(data: bytes) -> tuple[int, int]:
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise _truncated("PNG")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


_SIZE_READERS = {"JPEG": _jpeg_size, "PNG": _png_size}


def inspect_image(data: bytes, *, max_megapixels: float, min_side_px: int) -> ImageInfo:
    """Identify an image and check its dimensions from the header alone.

    Args:
        data: the raw image bytes.
        max_megapixels: largest accepted width × height, in millions of pixels (decompression-bomb guard).
        min_side_px: smallest accepted width or height.

    Returns:
        Format and dimensions.

    Raises:
        UnsupportedMediaType: not JPEG or PNG.
        BadRequest: unreadable header, or a side below ``min_side_px``.
        PayloadTooLarge: more than ``max_megapixels``.
    """
    fmt = sniff_format(data)
    width, height = _SIZE_READERS[fmt](data)
    if width * height > max_megapixels * 1_000_000:
        raise PayloadTooLarge(
            f"image is {width}x{height} = {width * height / 1e6:.1f} megapixels; the limit is {max_megapixels:g}"
        )
    if min(width, height) < min_side_px:
        raise BadRequest(f"image is {width}x{height} pixels; each side must be at least {min_side_px} px")
    return ImageInfo(format=fmt, width=width, height=height)
