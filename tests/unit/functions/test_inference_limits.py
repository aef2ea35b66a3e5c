"""The image limit is what fits Lambda's payload limit in the real API Gateway event (measured, not assumed).

The event is built by the local API Gateway's own proxy mapping (``local_aws.apigateway.proxy.build_proxy_event``),
the shape the deployed REST API sends, and measured as compact JSON, the way the invoker counts it.
"""

from __future__ import annotations

import json

from config import EVENT_OVERHEAD_BYTES, LAMBDA_EVENT_LIMIT_BYTES, MAX_IMAGE_BYTES, largest_image_for_event
from local_aws.apigateway.proxy import HttpRequest, build_proxy_event
from local_aws.apigateway.spec import Route

# What `ops predict` (SigV4 for execute-api) sends, header for header.
SIGNED_HEADERS = [
    ("Host", "abcdef1234.execute-api.us-east-1.amazonaws.com"),
    ("User-Agent", "python-urllib3/2.2.3"),
    ("Accept-Encoding", "gzip, deflate"),
    ("Accept", "*/*"),
    ("Connection", "keep-alive"),
    ("Content-Type", "image/jpeg"),
    ("X-Amz-Date", "20261202T015000Z"),
    ("X-Amz-Content-SHA256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    (
        "Authorization",
        "AWS4-HMAC-SHA256 Credential=LKIAQAAAAAAAEXAMPLE00/20261202/us-east-1/execute-api/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, "
        "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
    ),
    ("Content-Length", str(MAX_IMAGE_BYTES)),
]
# API Gateway REST quota: 10,240 bytes of request line and header values in all.
HEADER_QUOTA_BYTES = 10_240


def event_bytes(image: bytes, headers: list[tuple[str, str]], target: str = "/predict?top_k=3") -> int:
    request = HttpRequest("POST", target, headers, image, source_ip="203.0.113.7")
    event = build_proxy_event(request, Route("POST", "/predict"), {}, ["image/jpeg", "image/png"], "v1", 443)
    return len(json.dumps(event, separators=(",", ":")).encode())


def test_the_limit_is_three_quarters_of_the_event_left_after_the_overhead() -> None:
    assert largest_image_for_event(LAMBDA_EVENT_LIMIT_BYTES, EVENT_OVERHEAD_BYTES) == MAX_IMAGE_BYTES == 4_700_160
    assert MAX_IMAGE_BYTES % 3 == 0  # a whole number of base64 quanta: no padding, no rounding


def test_a_signed_request_with_the_largest_image_fits_the_lambda_event() -> None:
    size = event_bytes(b"\xff" * MAX_IMAGE_BYTES, SIGNED_HEADERS)
    overhead = size - MAX_IMAGE_BYTES * 4 // 3
    assert 1_000 < overhead < 4_096, overhead  # the measured overhead of a typical request: about 2.5 KB
    assert size <= LAMBDA_EVENT_LIMIT_BYTES


def test_headers_filling_api_gateways_quota_still_fit() -> None:
    """Header values up to the 10,240-byte quota appear twice in the event; 24 KiB of overhead covers them."""
    budget = HEADER_QUOTA_BYTES - len("POST /predict?top_k=3 HTTP/1.1") - sum(len(v) for _, v in SIGNED_HEADERS)
    padding = [(f"X-Pad-{i}", "p" * 500) for i in range(budget // 500)]
    size = event_bytes(b"\xff" * MAX_IMAGE_BYTES, SIGNED_HEADERS + padding)
    assert size <= LAMBDA_EVENT_LIMIT_BYTES, size - LAMBDA_EVENT_LIMIT_BYTES


def test_an_image_a_little_larger_would_not_fit() -> None:
    """The limit is tight: 18 KB more image and a typical request's event passes Lambda's limit."""
    assert event_bytes(b"\xff" * (MAX_IMAGE_BYTES + 18_000), SIGNED_HEADERS) > LAMBDA_EVENT_LIMIT_BYTES
