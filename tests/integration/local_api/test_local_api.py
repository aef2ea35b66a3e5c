"""LocalApi over real HTTP → the real Lambda handler → the local SageMaker endpoint → a real trained model."""

from __future__ import annotations

import base64
import http.client
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from local_runtime.api import LocalApi

CLASSES = {
    f"{i + 1:03d}.{n}"
    for i, n in enumerate(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
}


def _call(url: str, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Any:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
    try:
        conn.request(method, path, body=body or None, headers=headers or {})
        response = conn.getresponse()
        raw = response.read()
        return response.status, dict(response.getheaders()), json.loads(raw) if raw else None
    finally:
        conn.close()


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    from tools import dataset

    path = dataset.sample_photo(tmp_path_factory.mktemp("photo") / "china.jpg", name="china.jpg")
    return Path(path).read_bytes()


@pytest.fixture(scope="module")
def api(served_model: tuple[Path, str]) -> Iterator[LocalApi]:
    home, url = served_model
    with LocalApi(home, url, port=0) as local_api:
        yield local_api


def test_routes_come_from_the_template(api: LocalApi) -> None:
    assert {(r.method, r.path) for r in api.spec.routes} == {("POST", "/predict"), ("GET", "/health")}
    assert "image/jpeg" in api.spec.binary_media_types


def test_real_photo_prediction_over_http(api: LocalApi, photo: bytes) -> None:
    status, headers, body = _call(api.url, "POST", "/predict?top_k=3", photo, {"Content-Type": "image/jpeg"})
    assert status == 200, body
    predictions = body["predictions"]
    assert len(predictions) == 3
    assert {p["label"] for p in predictions} <= CLASSES
    probabilities = [p["probability"] for p in predictions]
    assert probabilities == sorted(probabilities, reverse=True)
    assert 0 < sum(probabilities) <= 1.0 + 1e-6
    assert body["model_version"] == "local-api-test-model"
    assert headers["x-amzn-RequestId"] == body["request_id"]


def test_json_base64_body_gives_the_same_answer(api: LocalApi, photo: bytes) -> None:
    raw = _call(api.url, "POST", "/predict", photo, {"Content-Type": "image/jpeg"})[2]
    doc = json.dumps({"image": base64.b64encode(photo).decode(), "top_k": 5}).encode()
    status, _, body = _call(api.url, "POST", "/predict", doc, {"Content-Type": "application/json"})
    assert status == 200
    assert [p["label"] for p in body["predictions"]] == [p["label"] for p in raw["predictions"]]


def test_health(api: LocalApi) -> None:
    status, _, body = _call(api.url, "GET", "/health")
    assert status == 200 and body["status"] == "ok"


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "image/gif", 415),
        (b"{not json", "application/json", 400),
        (b"\xff\xd8\xff\xe0 truncated", "image/jpeg", 400),
        (b"", "image/jpeg", 400),
    ],
)
def test_bad_input_gets_a_4xx_from_the_real_handler(
    api: LocalApi, body: bytes, content_type: str, expected: int
) -> None:
    status, _, doc = _call(api.url, "POST", "/predict", body, {"Content-Type": content_type})
    assert status == expected, doc
    assert isinstance(doc.get("message"), str) and "Traceback" not in doc["message"]


def test_bad_top_k_is_400(api: LocalApi, photo: bytes) -> None:
    status, _, doc = _call(api.url, "POST", "/predict?top_k=99", photo, {"Content-Type": "image/jpeg"})
    assert status == 400 and "top_k" in doc["message"]


def test_unknown_route_is_403_missing_authentication_token(api: LocalApi) -> None:
    status, _, doc = _call(api.url, "GET", "/nope")
    assert (status, doc) == (403, {"message": "Missing Authentication Token"})


def test_concurrency_above_reserved_is_throttled(served_model: tuple[Path, str], photo: bytes) -> None:
    home, url = served_model
    with LocalApi(home, url, port=0, overrides={"LambdaReservedConcurrency": "1"}) as local_api:
        assert local_api.spec.function.reserved_concurrency == 1
        start = threading.Barrier(12)
        results: list[tuple[int, Any]] = []
        retry_after: list[str | None] = []
        lock = threading.Lock()

        def client() -> None:
            start.wait(timeout=30)
            status, headers, doc = _call(local_api.url, "POST", "/predict", photo, {"Content-Type": "image/jpeg"})
            with lock:
                results.append((status, doc))
                if status == 429:
                    retry_after.append(headers.get("Retry-After"))

        threads = [threading.Thread(target=client) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert local_api.gateway is not None
        statuses = sorted(s for s, _ in results)
        assert local_api.gateway.limiter.peak == 1
        # template.yaml maps INTEGRATION_FAILURE (a throttled Lambda; a bare 500 by default) to 429 + Retry-After.
        assert set(statuses) <= {200, 429}, statuses
        assert 200 in statuses and 429 in statuses, statuses
        assert all(doc == {"message": "Too many requests, retry later"} for s, doc in results if s == 429)
        assert local_api.gateway.limiter.throttled == statuses.count(429)
        assert retry_after and set(retry_after) == {"1"}
