"""SageMaker PyTorch inference handlers (``model_fn``/``input_fn``/``predict_fn``/``output_fn``, toolkit arities).

Ships as ``code/inference.py`` inside ``model.tar.gz``. Input rules: raw ``image/jpeg``, ``image/png``,
``application/x-image`` bodies (``top_k`` as a media-type parameter: ``image/jpeg; top_k=3``), or
``application/json`` ``{"image": b64}`` / ``{"images": [b64, ...]}`` with an optional ``top_k``. Images are never
fetched from URLs. Client faults raise an error carrying ``status_code``, ``message`` and ``phrase`` so the toolkit
(and our local runtime) answer 4xx instead of 500.
"""

from __future__ import annotations

import base64
import binascii
import importlib.util
import io
import json
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from PIL import Image, ImageOps

MAX_BODY_BYTES = 6_291_456  # InvokeEndpoint's payload limit
MAX_PIXELS = 40_000_000
MIN_SIDE = 8
MAX_IMAGES = 16
DEFAULT_TOP_K = 5
ALLOWED_FORMATS = ("JPEG", "PNG")
RAW_TYPES = {"image/jpeg": "JPEG", "image/jpg": "JPEG", "image/png": "PNG", "application/x-image": None}
JSON_TYPE = "application/json"
ACCEPT_JSON = ("application/json", "*/*", "application/*")

_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"%PDF", "PDF"),
    (b"BM", "BMP"),
    (b"RIFF", "WEBP"),
)
_PHRASES = {400: "Bad Request", 406: "Not Acceptable", 413: "Payload Too Large", 415: "Unsupported Media Type"}

try:  # the toolkit maps this class to the HTTP status it carries
    from sagemaker_inference.errors import GenericInferenceToolkitError as _ToolkitError
except ImportError:  # outside the container

    class _ToolkitError(Exception):  # type: ignore[no-redef]
        def __init__(self, status_code: int, message: str | None = None, phrase: str | None = None) -> None:
            super().__init__(status_code, message, phrase)
            self.status_code = status_code
            self.message = message
            self.phrase = phrase


class InferenceClientError(_ToolkitError):
    """A client fault: ``status_code`` is 4xx, ``message`` is safe to return to the caller."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(status_code, message, _PHRASES.get(status_code, "Bad Request"))

    def __str__(self) -> str:
        return f"{self.status_code}: {self.message}"


def _sniff(data: bytes) -> str | None:
    for magic, fmt in _SIGNATURES:
        if data.startswith(magic):
            return fmt
    return None


def _to_rgb(img: Image.Image) -> Image.Image:
    # Alpha is composited onto white (not dropped) so transparent regions don't become arbitrary colours.
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # Deep grayscale: scale the real range to 8 bits instead of clipping at 255.
        import numpy as np

        arr = np.asarray(img, dtype=np.float64)
        peak = arr.max() or 1.0
        return Image.fromarray((arr * (255.0 / peak)).clip(0, 255).astype(np.uint8), mode="L").convert("RGB")
    return img.convert("RGB")


def _check_size(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise InferenceClientError(413, f"image is {width}x{height} = {width * height} pixels; limit {MAX_PIXELS}")
    if min(width, height) < MIN_SIDE:
        raise InferenceClientError(400, f"image is {width}x{height}; each side must be >= {MIN_SIDE} px")


def decode_image(data: bytes, declared: str | None = None) -> Image.Image:
    """Decode and validate one image; returns an RGB image with EXIF orientation applied.

    Args:
        data: encoded bytes.
        declared: the format the content type promised (``JPEG``/``PNG``), or None for any allowed format.

    Raises:
        InferenceClientError: 400 empty/undecodable/too small, 413 too many pixels, 415 format not allowed or not
            the declared one.
    """
    if not data:
        raise InferenceClientError(400, "empty image")
    fmt = _sniff(data)
    if fmt is None:
        raise InferenceClientError(400, "could not decode image: not a JPEG or PNG file")
    if fmt not in ALLOWED_FORMATS:
        raise InferenceClientError(415, f"unsupported image format {fmt}; supported: {', '.join(ALLOWED_FORMATS)}")
    if declared and fmt != declared:
        raise InferenceClientError(415, f"content type says {declared} but the data is {fmt}")
    if fmt == "PNG" and len(data) >= 24 and data[12:16] == b"IHDR":
        # Judge a PNG by the size its header claims, even when the rest is missing or corrupt.
        _check_size(int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img: Image.Image = Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS))
            _check_size(*img.size)  # header only: nothing decoded yet
            img.load()
    except InferenceClientError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InferenceClientError(413, f"image too large: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise InferenceClientError(400, "could not decode image: truncated or corrupt data") from None
    img = ImageOps.exif_transpose(img) or img
    return _to_rgb(img)


def _b64(value: Any, where: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise InferenceClientError(400, f"{where} must be a non-empty base64 string")
    if value.startswith(("http://", "https://", "s3://", "file:")):
        raise InferenceClientError(400, f"{where} looks like a URL; images are not fetched, send base64 data")
    if value.startswith("data:") and "," in value:
        value = value.split(",", 1)[1]  # data URL
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InferenceClientError(400, f"{where} is not valid base64") from None


def _parse_top_k(value: Any) -> int:
    if value is None:
        return DEFAULT_TOP_K
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InferenceClientError(400, f"top_k must be a positive integer, got {value!r}")
    return value


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _media_parameter(content_type: str | None, name: str) -> str | None:
    """``image/jpeg; top_k=3`` → ``"3"`` for ``top_k`` (RFC 9110 media-type parameters; names case-insensitive)."""
    for part in (content_type or "").split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == name:
            return value.strip().strip('"')
    return None


def _parse_top_k_text(value: str | None) -> int:
    if value is None:
        return DEFAULT_TOP_K
    if not value.isdigit():
        raise InferenceClientError(400, f"top_k must be a positive integer, got {value!r}")
    return _parse_top_k(int(value))


def _in_batch(context: Any) -> bool:
    return context is not None and len(getattr(context, "request_processor", None) or ()) > 1


def _batch_media(raw: bytes, content_type: str | None) -> str | None:
    """The media type of one request of a TorchServe batch, judged by its bytes (JPEG/PNG/GIF/... or a JSON object).

    NOTE: in a batch the toolkit gives every request the FIRST request's Content-Type (aws-failure-behaviours.md §10),
    so the header cannot be trusted for the others; an image signature or a leading ``{`` can. Its parameters
    (``top_k=3``) are kept: on SageMaker the first request's apply to the whole batch, and nothing here can know.
    """
    params = content_type.partition(";")[2] if content_type else ""
    if _sniff(raw):  # any allowed format; a disallowed one still gets its 415 from decode_image
        return "application/x-image" + (f";{params}" if params else "")
    if raw.lstrip()[:1] == b"{":
        return JSON_TYPE
    return content_type


def input_fn(input_data: bytes | bytearray | str, content_type: str, context: Any = None) -> dict[str, Any]:
    """Decode a request into ``{"images": [PIL RGB], "top_k": int}``.

    Given the TorchServe ``context`` of a batch of several requests, the body's own bytes decide its type, and a
    client fault is returned as ``{"error": ...}`` (answered by ``output_fn`` for this request alone), because the
    toolkit aborts the whole batch on any exception (§10).

    Raises:
        InferenceClientError: see the module docstring for the rules and codes (outside a batch).
    """
    if not _in_batch(context):
        return _decode_request(input_data, content_type)
    raw = input_data.encode("utf-8") if isinstance(input_data, str) else bytes(input_data)
    try:
        return _decode_request(raw, _batch_media(raw, content_type))
    except InferenceClientError as exc:
        return {"error": exc}


def _decode_request(input_data: bytes | bytearray | str, content_type: str | None) -> dict[str, Any]:
    media = _media_type(content_type)
    raw = input_data.encode("utf-8") if isinstance(input_data, str) else bytes(input_data)
    if len(raw) > MAX_BODY_BYTES:
        raise InferenceClientError(413, f"request body is {len(raw)} bytes; limit {MAX_BODY_BYTES}")
    if media in RAW_TYPES:
        top_k = _media_parameter(content_type, "top_k")
        return {"images": [decode_image(raw, RAW_TYPES[media])], "top_k": _parse_top_k_text(top_k)}
    if media != JSON_TYPE:
        valid = ", ".join([*RAW_TYPES, JSON_TYPE])
        raise InferenceClientError(415, f"unsupported content type {content_type or '(none)'!r}; supported: {valid}")
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InferenceClientError(400, "body is not valid JSON") from None
    except RecursionError:  # json recurses per nesting level: [[[...]]] 100,000 deep is a client fault, not a 500
        raise InferenceClientError(400, "body is JSON nested too deeply") from None
    if not isinstance(body, dict):
        raise InferenceClientError(400, 'JSON body must be an object like {"image": "<base64>"}')
    if ("image" in body) == ("images" in body):
        raise InferenceClientError(400, 'JSON body needs exactly one of "image" or "images"')
    if "image" in body:
        encoded = [_b64(body["image"], "image")]
    else:
        items = body["images"]
        if not isinstance(items, list) or not items:
            raise InferenceClientError(400, '"images" must be a non-empty list of base64 strings')
        if len(items) > MAX_IMAGES:
            raise InferenceClientError(413, f'"images" holds {len(items)} images; limit {MAX_IMAGES}')
        encoded = [_b64(item, f"images[{i}]") for i, item in enumerate(items)]
    return {"images": [decode_image(blob) for blob in encoded], "top_k": _parse_top_k(body.get("top_k"))}


def _load_arch_module(model_dir: Path) -> ModuleType:
    # Prefer the model.py packed with these weights; fall back to the copy next to this file (training/ in tests).
    for candidate in (model_dir / "code" / "model.py", Path(__file__).resolve().with_name("model.py")):
        if candidate.is_file():
            spec = importlib.util.spec_from_file_location("dogbreed_arch", candidate)
            if spec is None or spec.loader is None:
                continue
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
            return module
    raise FileNotFoundError(f"model.py not found in {model_dir / 'code'} or next to {__file__}")


def model_fn(model_dir: str) -> dict[str, Any]:
    """Load the artifact written by ``train.py`` (model.pth, classes.json, metadata.json).

    Returns:
        A dict with the eval-mode network, its device, the class names, the preprocessing transform and metadata.
    """
    root = Path(model_dir)
    metadata = json.loads((root / "metadata.json").read_text())
    classes = json.loads((root / "classes.json").read_text())
    if len(classes) != metadata["num_classes"]:
        raise ValueError(f"classes.json has {len(classes)} names but metadata says {metadata['num_classes']}")
    arch = _load_arch_module(root)
    net = arch.create_model(metadata["arch"], metadata["num_classes"])
    net.load_state_dict(torch.load(root / "model.pth", map_location="cpu", weights_only=True))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    net.to(device).eval()
    transform = arch.eval_transform(
        int(metadata["image_size"]),
        tuple(metadata.get("mean", arch.IMAGENET_MEAN)),
        tuple(metadata.get("std", arch.IMAGENET_STD)),
    )
    return {
        "net": net,
        "device": device,
        "classes": classes,
        "transform": transform,
        "model_version": metadata.get("model_version", "unknown"),
        "metadata": metadata,
    }


def predict_fn(data: dict[str, Any], model: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Top-k softmax probabilities per image, labels from classes.json (a batch request's client fault passes)."""
    if "error" in data:
        return data
    batch = torch.stack([model["transform"](img) for img in data["images"]]).to(model["device"])
    k = min(int(data.get("top_k", DEFAULT_TOP_K)), len(model["classes"]))
    with torch.inference_mode():
        probs = torch.softmax(model["net"](batch).float(), dim=1)
        top = probs.topk(k, dim=1)
    predictions = [
        [{"label": model["classes"][i], "probability": round(float(p), 6)} for p, i in zip(ps, ix, strict=True)]
        for ps, ix in zip(top.values.tolist(), top.indices.tolist(), strict=True)
    ]
    return {"model_version": model["model_version"], "predictions": predictions}


def _request_index(context: Any) -> int:
    """Which request of its batch this ``output_fn`` call answers.

    NOTE: the toolkit calls output_fn once per request, in the batch's order (§10), and TorchServe gives each batch a
    new ``request_processor`` list; counting the calls made while the list is the same object gives the index. The
    list itself is kept (not its id), so a later batch's list cannot be mistaken for it.
    """
    seen = getattr(context, "_dogbreed_outputs", None)
    index = seen[1] + 1 if seen is not None and seen[0] is context.request_processor else 0
    context._dogbreed_outputs = (context.request_processor, index)
    return index


def output_fn(prediction: dict[str, Any], accept: str | None, context: Any = None) -> str:
    """Serialise to JSON; any Accept other than JSON (or a wildcard) is a 406.

    In a batch, a request whose input was refused gets its own status and ``{"message": ...}``; the others are served.
    """
    if _in_batch(context):
        index = _request_index(context)
        error = prediction.get("error")
        if isinstance(error, InferenceClientError):
            context.set_response_status(error.status_code, error.phrase or "", index)
            context.set_response_content_type(index, JSON_TYPE)
            return json.dumps({"message": error.message})
    wanted = [_media_type(part) for part in (accept or "").split(",") if part.strip()]
    if wanted and not any(w in ACCEPT_JSON for w in wanted):
        raise InferenceClientError(406, f"unsupported Accept {accept!r}; this model returns application/json")
    return json.dumps(prediction)
