"""Regenerate the API Gateway REST proxy fixtures in events/ (for `sam local invoke`) and tests/events/apigw_*.json.

Run from the repository root: ``.venv/bin/python events/generate.py``. The images are real: scikit-learn's sample
photo (china.jpg), downscaled and re-encoded, so every file stays a few kilobytes. Output is deterministic.
"""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib
from pathlib import Path
from typing import Any

from PIL import Image
from sklearn.datasets import load_sample_image

REPO = Path(__file__).resolve().parent.parent
SAM_DIR = REPO / "events"
TEST_DIR = REPO / "tests" / "events"
API_ID = "a1b2c3d4e5"
HOST = f"{API_ID}.execute-api.us-east-1.amazonaws.com"


def _photo(size: tuple[int, int]) -> Image.Image:
    return Image.fromarray(load_sample_image("china.jpg")).resize(size, Image.Resampling.BILINEAR)


def _encode(image: Image.Image, fmt: str, **kwargs: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width × height: a decompression bomb's header, a few dozen bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk


def _event(
    method: str,
    path: str,
    *,
    request_id: str,
    content_type: str | None = None,
    body: str | None = None,
    is_base64: bool = False,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    headers = {
        "Accept": "application/json",
        "Host": HOST,
        "User-Agent": "python-requests/2.32.3",
        "X-Amzn-Trace-Id": "Root=1-67891233-abcdef012345678912345678",
        "X-Forwarded-For": "203.0.113.10",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    }
    if content_type is not None:
        headers["Content-Type"] = content_type
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": API_ID,
            "domainName": HOST,
            "domainPrefix": API_ID,
            "extendedRequestId": "c6af9ac6FEbBQ=",
            "httpMethod": method,
            "identity": {
                "accessKey": "ASIAEXAMPLEEXAMPLE12",
                "accountId": "123456789012",
                "caller": "AROAEXAMPLEEXAMPLE123:operator",
                "sourceIp": "203.0.113.10",
                "user": "AROAEXAMPLEEXAMPLE123:operator",
                "userAgent": "python-requests/2.32.3",
                "userArn": "arn:aws:sts::123456789012:assumed-role/operator/operator",
            },
            "path": f"/dev{path}",
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "requestTime": "09/Apr/2025:12:34:56 +0000",
            "requestTimeEpoch": 1744202096000,
            "resourceId": "x1y2z3",
            "resourcePath": path,
            "stage": "dev",
        },
        "body": body,
        "isBase64Encoded": is_base64,
    }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def build() -> dict[str, dict[str, Any]]:
    """Every fixture, by name (without the ``apigw_`` test prefix)."""
    photo = _photo((128, 85))
    jpeg = _encode(photo, "JPEG", quality=80)
    png = _encode(photo.resize((64, 43)), "PNG")
    webp = _encode(photo.resize((64, 43)), "WEBP", quality=70)
    gif = _encode(photo.resize((32, 21)).convert("P"), "GIF")
    large_jpeg = _encode(_photo((427, 284)), "JPEG", quality=95)
    ids = iter(f"c6af9ac6-7b61-11e6-9a41-93e8deadb{n:03d}" for n in range(1000))

    def post(**kwargs: Any) -> dict[str, Any]:
        return _event("POST", "/predict", request_id=next(ids), **kwargs)

    return {
        "predict_jpeg": post(content_type="image/jpeg", body=_b64(jpeg), is_base64=True, query={"top_k": "3"}),
        "predict_png": post(content_type="image/png", body=_b64(png), is_base64=True),
        "predict_x_image": post(content_type="application/x-image", body=_b64(jpeg), is_base64=True),
        "predict_webp": post(content_type="application/x-image", body=_b64(webp), is_base64=True),
        "predict_json_base64": post(
            content_type="application/json", body=json.dumps({"image": _b64(jpeg), "top_k": 3})
        ),
        "health": _event("GET", "/health", request_id=next(ids)),
        "not_found": _event("GET", "/models", request_id=next(ids)),
        "predict_empty_body": post(content_type="image/jpeg", body="", is_base64=True),
        "predict_missing_content_type": post(body=_b64(jpeg), is_base64=True),
        "predict_unsupported_content_type": post(content_type="text/plain", body="a photo of a dog"),
        "predict_bad_json": post(content_type="application/json", body='{"image": "/9j/4AAQ", "top_k": 3'),
        "predict_bad_base64": post(content_type="application/json", body=json.dumps({"image": "not*base64!"})),
        "predict_bad_top_k": post(content_type="application/json", body=json.dumps({"image": _b64(jpeg), "top_k": 0})),
        "predict_bad_top_k_query": post(
            content_type="image/jpeg", body=_b64(jpeg), is_base64=True, query={"top_k": "all"}
        ),
        "predict_unknown_field": post(content_type="application/json", body=json.dumps({"img": _b64(jpeg)})),
        "predict_gif": post(content_type="application/x-image", body=_b64(gif), is_base64=True),
        "predict_type_mismatch": post(content_type="image/jpeg", body=_b64(png), is_base64=True),
        "predict_truncated_png": post(content_type="image/png", body=_b64(png[:20]), is_base64=True),
        "predict_tiny_image": post(
            content_type="image/png", body=_b64(_encode(Image.new("RGB", (1, 1)), "PNG")), is_base64=True
        ),
        "predict_decompression_bomb": post(
            content_type="image/png", body=_b64(_png_header_only(100_000, 100_000)), is_base64=True
        ),
        "predict_not_base64_encoded": post(content_type="image/jpeg", body="\ufffd\ufffd\ufffdJFIF", is_base64=False),
        # NOTE: over the byte limit only with MAX_IMAGE_BYTES=32768 (events/env.small-limit.json); a fixture over
        # the real 4,700,160 B limit would be too large to commit, so tests build that one in memory.
        "predict_oversize": post(content_type="image/jpeg", body=_b64(large_jpeg), is_base64=True),
        # A 100,000-deep JSON array: json.loads raises RecursionError; a 400, never a 502.
        "predict_deep_json": post(content_type="application/json", body="[" * 100_000 + "]" * 100_000),
        # The predict page (DemoPage=Enabled; `--env-vars` with DEMO_PAGE=Enabled to see it, else 404).
        "demo": _event("GET", "/demo", request_id=next(ids)),
    }


def main() -> None:
    for name, event in build().items():
        text = json.dumps(event, indent=2) + "\n"
        (SAM_DIR / f"{name}.json").write_text(text)
        (TEST_DIR / f"apigw_{name}.json").write_text(text)
    env = {"InferenceFunction": {"MAX_IMAGE_BYTES": "32768"}}
    (SAM_DIR / "env.small-limit.json").write_text(json.dumps(env, indent=2) + "\n")


if __name__ == "__main__":
    main()
