"""Pure request logic: parse and validate a predict request, call the predictor, shape the response.

Nothing here knows about API Gateway or Powertools; ``app.py`` passes in the pieces of the event it needs.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from config import Settings
from errors import BadRequest, PayloadTooLarge, UnsupportedMediaType, echo
from images import ImageInfo, inspect_image
from predictor import Predictor

JSON_CONTENT_TYPE = "application/json"
# Declared image type → the format its bytes must have (None: any supported format). These are the API's
# BinaryMediaTypes (template.yaml) and the container's raw types (docs/CONTRACTS.md §3).
RAW_CONTENT_TYPES: dict[str, str | None] = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "application/x-image": None,
}
SUPPORTED_CONTENT_TYPES = ", ".join([JSON_CONTENT_TYPE, *RAW_CONTENT_TYPES])
JSON_FIELDS = ("image", "top_k")
USAGE = 'send image bytes (Content-Type image/jpeg or image/png) or JSON {"image": "<base64>", "top_k": n}'


class PredictionOut(TypedDict):
    label: str
    probability: float


class PredictResponse(TypedDict):
    predictions: list[PredictionOut]
    model_version: str
    request_id: str


@dataclass(frozen=True)
class PredictRequest:
    image: bytes
    top_k: int
    info: ImageInfo


def media_type(content_type: str | None) -> str | None:
    """``"Image/JPEG; charset=x"`` → ``"image/jpeg"``; empty or missing → None."""
    if not content_type:
        return None
    value = content_type.split(";", 1)[0].strip().lower()
    return value or None


def _decode_base64(text: str, what: str, max_bytes: int) -> bytes:
    compact = "".join(text.split())  # clients often wrap base64 at 76 columns
    padding = len(compact) - len(compact.rstrip("="))
    estimated = len(compact) * 3 // 4 - padding
    # NOTE: refuse oversize input before decoding it, so a huge body costs no extra memory.
    if estimated > max_bytes:
        raise PayloadTooLarge(f"{what} is about {estimated} bytes decoded; the limit is {max_bytes} bytes")
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{what} is not valid base64") from None


def _parse_top_k(value: Any, settings: Settings) -> int:
    if value is None:
        return settings.default_top_k
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= settings.max_top_k:
        raise BadRequest(f"top_k must be an integer from 1 to {settings.max_top_k}; got {echo(value)}")
    return int(value)


def _raw_body(body: str, is_base64_encoded: bool, settings: Settings) -> bytes:
    if not is_base64_encoded:
        # NOTE: API Gateway only base64-encodes bodies whose Content-Type matches the API's BinaryMediaTypes;
        # anything else arrives as (lossy) text and cannot be an intact image.
        raise BadRequest("binary image body did not arrive base64-encoded; " + USAGE)
    return _decode_base64(body, "request body", settings.max_image_bytes)


def _json_body(body: str, is_base64_encoded: bool, settings: Settings) -> tuple[bytes, Any]:
    json_limit = 4 * math.ceil(settings.max_image_bytes / 3) + 4096  # base64 of the largest image + envelope
    raw: str | bytes
    if is_base64_encoded:
        raw = _decode_base64(body, "request body", json_limit)
    elif len(body) > json_limit:
        raise PayloadTooLarge(
            f"JSON body is {len(body)} bytes; the image limit is {settings.max_image_bytes} bytes "
            f"(at most {json_limit} bytes of JSON)"
        )
    else:
        raw = body
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("request body is not valid JSON; " + USAGE) from None
    except RecursionError:
        # NOTE: the json module recurses once per nesting level; [[[[...]]]] 100,000 deep exhausts the stack.
        raise BadRequest("request body is JSON nested too deeply; " + USAGE) from None
    if not isinstance(doc, dict):
        raise BadRequest("JSON body must be an object; " + USAGE)
    unknown = sorted(set(doc) - set(JSON_FIELDS))
    if unknown:
        raise BadRequest(f"unknown JSON field(s) {echo(unknown)}; allowed: {', '.join(JSON_FIELDS)}")
    image = doc.get("image")
    if not isinstance(image, str) or not image.strip():
        raise BadRequest('JSON field "image" must be a non-empty base64 string')
    if image.startswith("data:") and "," in image:  # tolerate data URLs: data:image/png;base64,....
        image = image.split(",", 1)[1]
    return _decode_base64(image, 'JSON field "image"', settings.max_image_bytes), doc.get("top_k")


def parse_predict_request(
    *,
    body: str | None,
    is_base64_encoded: bool,
    content_type: str | None,
    query: Mapping[str, str],
    settings: Settings,
) -> PredictRequest:
    """Validate a predict request completely, before anything is sent to the endpoint.

    Args:
        body: the API Gateway event body (base64 text when ``is_base64_encoded``).
        is_base64_encoded: API Gateway's ``isBase64Encoded`` flag (true for binary media types).
        content_type: the request's Content-Type header.
        query: query-string parameters; ``top_k`` may be given here for raw image bodies.
        settings: limits.

    Returns:
        The image bytes, the requested top_k and the sniffed image format and size.

    Raises:
        ClientInputError: 400, 413 or 415 with a message that names the problem.
    """
    kind = media_type(content_type)
    if kind is None:
        raise UnsupportedMediaType(f"Content-Type header is required; supported: {SUPPORTED_CONTENT_TYPES}")
    if kind != JSON_CONTENT_TYPE and kind not in RAW_CONTENT_TYPES:
        raise UnsupportedMediaType(f"unsupported Content-Type {echo(kind)}; supported: {SUPPORTED_CONTENT_TYPES}")
    if not body:
        raise BadRequest("request body is empty; " + USAGE)

    top_k_value: Any = query.get("top_k")
    if kind == JSON_CONTENT_TYPE:
        image, body_top_k = _json_body(body, is_base64_encoded, settings)
        top_k_value = body_top_k if body_top_k is not None else top_k_value
    else:
        image = _raw_body(body, is_base64_encoded, settings)
    if not image:
        raise BadRequest("image is empty (0 bytes)")
    if len(image) > settings.max_image_bytes:
        raise PayloadTooLarge(f"image is {len(image)} bytes; the limit is {settings.max_image_bytes} bytes")
    top_k = _parse_top_k(top_k_value, settings)

    info = inspect_image(image, max_megapixels=settings.max_megapixels, min_side_px=settings.min_side_px)
    declared = RAW_CONTENT_TYPES.get(kind)
    if declared is not None and declared != info.format:
        raise UnsupportedMediaType(f"Content-Type {kind} does not match the image data, which is {info.format}")
    return PredictRequest(image=image, top_k=top_k, info=info)


def predict(request: PredictRequest, predictor: Predictor, request_id: str) -> PredictResponse:
    """Call the predictor and shape the public response.

    Args:
        request: a validated request.
        predictor: the model endpoint adapter.
        request_id: correlation id echoed to the client.

    Returns:
        ``{"predictions": [{"label", "probability"}...], "model_version", "request_id"}``.
    """
    result = predictor.predict(request.image, request.info.format, request.top_k)
    return {
        "predictions": [{"label": p.label, "probability": round(p.probability, 6)} for p in result.predictions],
        "model_version": result.model_version,
        "request_id": request_id,
    }
