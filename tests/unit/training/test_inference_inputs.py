"""Every bad input of issue 2 §5 is a clear 4xx client error; CMYK/alpha/grayscale/EXIF are handled."""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib
from typing import Any

import pytest
from PIL import Image

import inference
from inference import InferenceClientError, decode_image, input_fn, output_fn, predict_fn


def encode(img: Image.Image, fmt: str, **kwargs: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def photo(mode: str = "RGB", size: tuple[int, int] = (48, 40)) -> Image.Image:
    img = Image.linear_gradient("L").resize(size).convert("RGB")
    return img.convert(mode) if mode != "RGB" else img


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height (valid CRC) with no pixel data: a decompression-bomb probe."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk


def client_error(data: bytes | str, content_type: str) -> InferenceClientError:
    with pytest.raises(InferenceClientError) as info:
        input_fn(data, content_type)
    err = info.value
    assert 400 <= err.status_code < 500
    assert err.message and err.phrase
    return err


JPEG = encode(photo(), "JPEG")
PNG = encode(photo(), "PNG")
JPEG_B64 = base64.b64encode(JPEG).decode()
GIF_B64 = base64.b64encode(encode(photo(), "GIF")).decode()


@pytest.mark.parametrize(
    ("name", "data", "content_type", "status", "fragment"),
    [
        ("empty", b"", "image/jpeg", 400, "empty"),
        ("truncated jpeg", JPEG[: len(JPEG) // 2], "image/jpeg", 400, "truncated"),
        ("png labelled jpeg", PNG, "image/jpeg", 415, "data is PNG"),
        ("gif", encode(photo("P"), "GIF"), "application/x-image", 415, "GIF"),
        ("tiff", encode(photo(), "TIFF"), "application/x-image", 415, "TIFF"),
        ("pdf", encode(photo(), "PDF"), "application/x-image", 415, "PDF"),
        ("bomb header", png_header_only(20000, 20000), "image/png", 413, "pixels"),
        ("bomb png", png_header_only(20000, 20000) + b"\0\0\0\0IEND\xaeB`\x82", "image/png", 413, "pixels"),
        ("bomb over 40MP", png_header_only(8000, 6000) + b"\0\0\0\0IEND\xaeB`\x82", "image/png", 413, "pixels"),
        ("1x1", encode(photo(size=(1, 1)), "PNG"), "image/png", 400, ">= 8"),
        ("random bytes", b"\x00\x01garbage" * 10, "application/x-image", 400, "decode"),
        ("oversize body", b"\xff\xd8\xff" + b"\0" * inference.MAX_BODY_BYTES, "image/jpeg", 413, "limit"),
        ("unsupported type", JPEG, "text/plain", 415, "text/plain"),
        ("missing type", JPEG, "", 415, "content type"),
    ],
)
def test_bad_raw_inputs_are_client_errors(
    name: str, data: bytes, content_type: str, status: int, fragment: str
) -> None:
    err = client_error(data, content_type)
    assert err.status_code == status, name
    assert fragment in err.message, (name, err.message)


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ('{"image": "%%%not-base64%%%"}', 400, "base64"),
        ('{"image": "aGVsbG8"}', 400, "base64"),  # bad padding
        ("{not json", 400, "JSON"),
        ('["a"]', 400, "object"),
        ("{}", 400, "exactly one"),
        ('{"images": []}', 400, "non-empty"),
        ('{"image": "https://example.com/dog.jpg"}', 400, "URL"),
        (json.dumps({"image": JPEG_B64, "top_k": 0}), 400, "top_k"),
        (json.dumps({"image": JPEG_B64, "top_k": "3"}), 400, "top_k"),
        (json.dumps({"image": JPEG_B64, "top_k": True}), 400, "top_k"),
        (json.dumps({"image": GIF_B64}), 415, "GIF"),
        (json.dumps({"images": ["x"] * (inference.MAX_IMAGES + 1)}), 413, "limit"),
    ],
)
def test_bad_json_inputs_are_client_errors(body: str, status: int, fragment: str) -> None:
    err = client_error(body, "application/json")
    assert err.status_code == status
    assert fragment in err.message, err.message


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [("CMYK", "JPEG"), ("RGBA", "PNG"), ("LA", "PNG"), ("L", "JPEG"), ("L", "PNG"), ("I;16", "PNG"), ("P", "PNG")],
)
def test_any_mode_becomes_rgb_and_predicts(mode: str, fmt: str, loaded_model: dict[str, Any]) -> None:
    img = photo(mode)
    kwargs = {"transparency": 0} if mode == "P" else {}
    data = encode(img, fmt, **kwargs)
    decoded = input_fn(data, f"image/{fmt.lower()}")
    assert decoded["images"][0].mode == "RGB"
    result = json.loads(output_fn(predict_fn(decoded, loaded_model), "application/json"))
    assert len(result["predictions"][0]) == inference.DEFAULT_TOP_K


def test_alpha_is_composited_on_white() -> None:
    transparent = Image.new("RGBA", (16, 16), (255, 0, 0, 0))
    assert decode_image(encode(transparent, "PNG")).getpixel((3, 3)) == (255, 255, 255)


def test_exif_orientation_is_applied() -> None:
    img = photo(size=(40, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    decoded = decode_image(encode(img, "JPEG", exif=exif.tobytes()))
    assert decoded.size == (20, 40)


def test_json_batch_top_k_and_output_shape(loaded_model: dict[str, Any]) -> None:
    b64 = base64.b64encode(JPEG).decode()
    body = json.dumps({"images": [b64, "data:image/png;base64," + base64.b64encode(PNG).decode()], "top_k": 3})
    result = json.loads(output_fn(predict_fn(input_fn(body, "application/json; charset=utf-8"), loaded_model), "*/*"))
    assert result["model_version"] == loaded_model["model_version"]
    assert len(result["predictions"]) == 2
    for preds in result["predictions"]:
        probs = [p["probability"] for p in preds]
        assert len(preds) == 3 and probs == sorted(probs, reverse=True)
        assert all(p["label"] in loaded_model["classes"] for p in preds)
        assert 0 < sum(probs) <= 1.0001


def test_top_k_is_capped_at_class_count(loaded_model: dict[str, Any]) -> None:
    body = json.dumps({"image": base64.b64encode(JPEG).decode(), "top_k": 1000})
    result = predict_fn(input_fn(body.encode(), "application/json"), loaded_model)
    assert len(result["predictions"][0]) == len(loaded_model["classes"])
    assert abs(sum(p["probability"] for p in result["predictions"][0]) - 1) < 1e-4


@pytest.mark.parametrize("accept", [None, "", "application/json", "*/*", "text/html, application/json;q=0.9"])
def test_json_accepts(accept: str | None) -> None:
    assert json.loads(output_fn({"predictions": []}, accept)) == {"predictions": []}


def test_unsupported_accept_is_406() -> None:
    with pytest.raises(InferenceClientError) as info:
        output_fn({"predictions": []}, "text/csv")
    assert info.value.status_code == 406


@pytest.mark.parametrize(
    ("content_type", "top_k"),
    [("image/jpeg", inference.DEFAULT_TOP_K), ("image/jpeg; top_k=3", 3), ('Image/JPEG;TOP_K="7"', 7)],
)
def test_raw_image_takes_top_k_from_the_media_type_parameter(content_type: str, top_k: int) -> None:
    """The Lambda forwards the client's bytes unchanged, so top_k rides on the Content-Type (docs/CONTRACTS.md §3)."""
    assert input_fn(JPEG, content_type)["top_k"] == top_k


@pytest.mark.parametrize("content_type", ["image/jpeg; top_k=0", "image/jpeg; top_k=all", "image/png; top_k=-1"])
def test_a_bad_top_k_parameter_is_400(content_type: str) -> None:
    err = client_error(PNG if "png" in content_type else JPEG, content_type)
    assert err.status_code == 400 and "top_k" in err.message


def test_deeply_nested_json_is_400_not_a_server_error() -> None:
    err = client_error("[" * 100_000 + "]" * 100_000, "application/json")
    assert err.status_code == 400 and "nested too deeply" in err.message
