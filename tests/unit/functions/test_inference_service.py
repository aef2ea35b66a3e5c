"""parse_predict_request edge cases that the event fixtures do not cover."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest
from PIL import Image

from config import Settings
from errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from service import media_type, parse_predict_request

SETTINGS = Settings(endpoint_name="dogbreed-dev")


def jpeg(size: tuple[int, int] = (24, 16)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (120, 80, 40)).save(buffer, format="JPEG")
    return buffer.getvalue()


def parse(body: str, content_type: str | None, *, b64: bool = False, query: dict[str, str] | None = None) -> Any:
    return parse_predict_request(
        body=body, is_base64_encoded=b64, content_type=content_type, query=query or {}, settings=SETTINGS
    )


def as_json(**fields: Any) -> str:
    return json.dumps(fields)


IMAGE = jpeg()
B64 = base64.b64encode(IMAGE).decode()


@pytest.mark.parametrize(
    ("header", "expected"),
    [("Image/JPEG; charset=binary", "image/jpeg"), ("application/json;charset=utf-8", "application/json"), ("", None)],
)
def test_media_type_normalises_case_and_parameters(header: str, expected: str | None) -> None:
    assert media_type(header) == expected


def test_raw_content_type_with_parameters_is_accepted() -> None:
    request = parse(B64, "IMAGE/JPEG; q=1", b64=True, query={"top_k": " 2 "})
    assert (request.image, request.top_k, request.info.format) == (IMAGE, 2, "JPEG")


def test_json_accepts_data_urls_and_wrapped_base64() -> None:
    wrapped = "\n".join(B64[i : i + 76] for i in range(0, len(B64), 76))
    assert parse(as_json(image=f"data:image/jpeg;base64,{B64}"), "application/json").image == IMAGE
    assert parse(as_json(image=wrapped, top_k=1), "application/json").top_k == 1


def test_json_body_that_api_gateway_base64_encoded_is_decoded_first() -> None:
    body = base64.b64encode(as_json(image=B64, top_k=4).encode()).decode()
    assert parse(body, "application/json", b64=True).top_k == 4


def test_json_top_k_wins_over_the_query_string_and_query_is_the_fallback() -> None:
    assert parse(as_json(image=B64, top_k=2), "application/json", query={"top_k": "7"}).top_k == 2
    assert parse(as_json(image=B64), "application/json", query={"top_k": "7"}).top_k == 7
    assert parse(as_json(image=B64), "application/json").top_k == SETTINGS.default_top_k


@pytest.mark.parametrize("top_k", [True, 3.0, -1, 11, "3x", None.__class__.__name__, [3]])
def test_bad_top_k_values_name_the_value_and_range(top_k: Any) -> None:
    with pytest.raises(BadRequest, match="top_k must be an integer from 1 to 10; got"):
        parse(as_json(image=B64, top_k=top_k), "application/json")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[1, 2]", "JSON body must be an object"),
        (as_json(image=123), 'JSON field "image" must be a non-empty base64 string'),
        (as_json(image="  "), 'JSON field "image" must be a non-empty base64 string'),
        (as_json(top_k=3), 'JSON field "image" must be a non-empty base64 string'),
        (as_json(image="=" * 8), "not valid base64"),
        ('{"image": "AA==",}', "not valid JSON"),
    ],
)
def test_bad_json_shapes(body: str, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        parse(body, "application/json")


def test_png_sent_as_jpeg_is_415_but_x_image_sniffs() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buffer, format="PNG")
    png = base64.b64encode(buffer.getvalue()).decode()
    with pytest.raises(UnsupportedMediaType, match="does not match the image data, which is PNG"):
        parse(png, "image/jpeg", b64=True)
    assert parse(png, "application/x-image", b64=True).info.format == "PNG"


def test_oversize_base64_is_refused_before_decoding() -> None:
    # Not even valid base64: the size check must fire first, so a 9 MB body is never decoded.
    with pytest.raises(PayloadTooLarge, match="the limit is 4700160 bytes"):
        parse("*" * 9_000_000, "image/jpeg", b64=True)
