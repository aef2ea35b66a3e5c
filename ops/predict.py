"""POST an image to the stack's REST API, SigV4-signed (IAM auth) or with an API key, on either target."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from ops.target import OpsError, Target

# What the API accepts (the template's BinaryMediaTypes; the model server decodes JPEG and PNG only).
IMAGE_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}
MAX_TOP_K = 10


def predict_url(url: str, top_k: int | None) -> str:
    """``https://id.execute-api.region.amazonaws.com/v1`` (or .../predict) → the predict URL with ?top_k."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise OpsError(f"--url {url!r}: expected http(s)://host/stage, e.g. the stack output ApiUrl")
    path = parsed.path.rstrip("/")
    path = path if path.endswith("/predict") else f"{path}/predict"
    query = urllib.parse.urlencode({"top_k": top_k}) if top_k is not None else ""
    return urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, path, query, ""))


def region_of(url: str, default: str | None) -> str:
    match = re.search(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com", urllib.parse.urlsplit(url).netloc)
    region = match.group(1) if match else default
    if not region:
        raise OpsError("cannot tell the API's region from the URL; pass --region")
    return region


def image_content_type(path: Path) -> str:
    content_type = IMAGE_TYPES.get(path.suffix.lower())
    if content_type is None:
        raise OpsError(
            f"unsupported image type {path.suffix or '(none)'!r} for {path}; valid: {', '.join(sorted(IMAGE_TYPES))}"
        )
    return content_type


def build_predict_request(
    url: str,
    image: bytes,
    content_type: str,
    *,
    api_key: str | None,
    credentials: Credentials | None,
    region: str,
) -> AWSRequest:
    """The HTTP request for POST /predict: ``x-api-key`` when given, else SigV4 for ``execute-api``.

    Raises:
        OpsError: IAM auth without credentials.
    """
    headers = {"Content-Type": content_type, "Accept": "application/json"}
    if api_key:
        headers["x-api-key"] = api_key
    request = AWSRequest(method="POST", url=url, data=image, headers=headers)
    if not api_key:
        if credentials is None:
            raise OpsError("no AWS credentials found for SigV4 signing; configure a profile or pass --api-key")
        SigV4Auth(credentials, "execute-api", region).add_auth(request)
    return request


def send(request: AWSRequest, timeout: float) -> tuple[int, bytes]:
    prepared = request.prepare()
    http_request = urllib.request.Request(
        prepared.url, data=prepared.body, headers=dict(prepared.headers.items()), method=prepared.method
    )
    try:
        with urllib.request.urlopen(http_request, timeout=timeout) as response:  # scheme checked in predict_url
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise OpsError(f"cannot reach {prepared.url}: {getattr(exc, 'reason', exc)}") from None


def predict(
    target: Target,
    image: bytes,
    content_type: str,
    *,
    top_k: int | None = None,
    api_key: str | None = None,
    url: str | None = None,
    timeout: float = 30.0,
) -> tuple[int, Any]:
    """POST one image; returns (status, parsed JSON or text)."""
    base = url or target.output("ApiUrl")
    full = predict_url(base, top_k)
    credentials = None if api_key else target.credentials()
    region = target.region if target.is_local else region_of(full, target.region)
    request = build_predict_request(full, image, content_type, api_key=api_key, credentials=credentials, region=region)
    status, body = send(request, timeout)
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode("utf-8", "replace")


def format_predictions(doc: Any, top_k: int) -> list[str]:
    """Render ``{"predictions": [{"label", "probability"}...]}`` as numbered lines."""
    predictions = doc.get("predictions", []) if isinstance(doc, dict) else []
    if predictions and isinstance(predictions[0], list):  # endpoint shape: one list per image
        predictions = predictions[0]
    return [f"  {i}. {p['label']:<24} {p['probability']:.4f}" for i, p in enumerate(predictions[:top_k], 1)]
