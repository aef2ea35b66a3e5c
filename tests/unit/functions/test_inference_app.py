"""Every fixture input and every error mapping, through the real ``app.lambda_handler``."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

import app
from config import MAX_IMAGE_BYTES, Settings
from predictor import content_type_for
from tests.conftest import load_event
from tests.unit.functions.conftest import (
    BREEDS,
    ENDPOINT,
    ENDPOINT_ARN,
    LOG_STREAM_ARN,
    SECRET_ORIGINAL_MESSAGE,
    Runtime,
    endpoint_body,
    streaming,
)

PROBS = [0.62, 0.21, 0.09, 0.05, 0.03]


def call(event: dict[str, Any], context: Any) -> tuple[int, dict[str, Any], dict[str, list[str]]]:
    response = app.lambda_handler(event, context)
    headers = dict(response["multiValueHeaders"])
    assert headers["Content-Type"] == ["application/json"]
    return response["statusCode"], json.loads(response["body"]), headers


def image_of(event: dict[str, Any]) -> bytes:
    if event["headers"].get("Content-Type") == "application/json":
        return base64.b64decode(json.loads(event["body"])["image"])
    return base64.b64decode(event["body"])


def assert_no_leak(raw: str) -> None:
    for needle in ("arn:", "Traceback", "inference.py", "OriginalMessage", "123456789012", ENDPOINT):
        assert needle not in raw, f"{needle!r} leaked into {raw!r}"


def test_health(lambda_context: Any) -> None:
    event = load_event("apigw_health")
    status, body, _ = call(event, lambda_context)
    assert status == 200
    assert body == {"status": "ok", "request_id": event["requestContext"]["requestId"]}


def test_unknown_route_is_404_json(lambda_context: Any) -> None:
    status, body, _ = call(load_event("apigw_not_found"), lambda_context)
    assert status == 404
    assert "POST /predict" in body["message"]


@pytest.mark.parametrize(
    ("fixture", "top_k"),
    [
        ("apigw_predict_jpeg", 3),  # raw binary JPEG, top_k from the query string
        ("apigw_predict_png", 5),  # default top_k
        ("apigw_predict_x_image", 5),  # application/x-image, format sniffed
        ("apigw_predict_json_base64", 3),  # JSON {"image": b64, "top_k": 3}
    ],
)
def test_valid_inputs_reach_the_endpoint_as_the_raw_image_bytes(
    fixture: str, top_k: int, runtime: Runtime, lambda_context: Any
) -> None:
    event = load_event(fixture)
    image = image_of(event)
    media = "image/png" if image.startswith(b"\x89PNG") else "image/jpeg"
    runtime.stubber.add_response(
        "invoke_endpoint",
        {"Body": streaming(endpoint_body(PROBS[:top_k])), "ContentType": "application/json"},
        expected_params={
            "EndpointName": ENDPOINT,
            "Body": image,
            "ContentType": f"{media}; top_k={top_k}",
            "Accept": "application/json",
        },
    )
    status, body, headers = call(event, lambda_context)
    assert status == 200, body
    assert set(body) == {"predictions", "model_version", "request_id"}
    assert body["request_id"] == event["requestContext"]["requestId"]
    assert body["model_version"] == "dogbreed-dev-20250409-1200"
    assert [p["label"] for p in body["predictions"]] == BREEDS[:top_k]
    assert [p["probability"] for p in body["predictions"]] == PROBS[:top_k]
    assert all(set(p) == {"label", "probability"} for p in body["predictions"])
    assert headers["Cache-Control"] == ["no-store"]
    runtime.stubber.assert_no_pending_responses()
    # The endpoint gets the exact bytes the client sent: no second base64, whatever the request's own encoding.
    assert runtime.calls[0]["Body"] == image


def test_predictions_are_sorted_and_cut_to_top_k(runtime: Runtime, lambda_context: Any) -> None:
    unsorted = [0.1, 0.5, 0.05, 0.3, 0.05]
    runtime.stubber.add_response("invoke_endpoint", {"Body": streaming(endpoint_body(unsorted))})
    status, body, _ = call(load_event("apigw_predict_jpeg"), lambda_context)
    assert status == 200
    assert [p["probability"] for p in body["predictions"]] == [0.5, 0.3, 0.1]


BAD_INPUTS = [
    ("apigw_predict_empty_body", 400, "body is empty"),
    ("apigw_predict_missing_content_type", 415, "Content-Type header is required"),
    ("apigw_predict_unsupported_content_type", 415, "'text/plain'"),
    ("apigw_predict_bad_json", 400, "not valid JSON"),
    ("apigw_predict_bad_base64", 400, "not valid base64"),
    ("apigw_predict_bad_top_k", 400, "top_k must be an integer from 1 to 10; got 0"),
    ("apigw_predict_bad_top_k_query", 400, "got 'all'"),
    ("apigw_predict_unknown_field", 400, "unknown JSON field(s) ['img']; allowed: image, top_k"),
    ("apigw_predict_gif", 415, "unsupported image format GIF; supported: JPEG, PNG"),
    ("apigw_predict_webp", 415, "unsupported image format WebP; supported: JPEG, PNG"),
    ("apigw_predict_type_mismatch", 415, "Content-Type image/jpeg does not match the image data, which is PNG"),
    ("apigw_predict_truncated_png", 400, "truncated or corrupt"),
    ("apigw_predict_tiny_image", 400, "at least 8 px"),
    ("apigw_predict_decompression_bomb", 413, "100000x100000"),
    ("apigw_predict_not_base64_encoded", 400, "did not arrive base64-encoded"),
    ("apigw_predict_deep_json", 400, "nested too deeply"),
]


@pytest.mark.parametrize(("fixture", "status_code", "message"), BAD_INPUTS)
def test_bad_inputs_are_4xx_and_never_call_the_endpoint(
    fixture: str, status_code: int, message: str, runtime: Runtime, lambda_context: Any
) -> None:
    event = load_event(fixture)
    status, body, headers = call(event, lambda_context)
    assert status == status_code
    assert message in body["message"]
    assert body["request_id"] == event["requestContext"]["requestId"]
    assert set(body) == {"message", "request_id"}
    assert "Retry-After" not in headers
    assert runtime.calls == []


def test_oversize_fixture_with_a_lowered_limit(runtime: Runtime, lambda_context: Any) -> None:
    # The same limit events/env.small-limit.json sets for `sam local invoke`.
    runtime.use(Settings(endpoint_name=ENDPOINT, max_image_bytes=32768))
    status, body, _ = call(load_event("apigw_predict_oversize"), lambda_context)
    assert status == 413
    assert "the limit is 32768 bytes" in body["message"]
    assert runtime.calls == []


def image_of_size(size: int) -> bytes:
    """A JPEG header followed by padding: ``size`` bytes the handler sniffs as a JPEG."""
    jpeg = base64.b64decode(json.loads(load_event("apigw_predict_json_base64")["body"])["image"])
    return jpeg + b"\0" * (size - len(jpeg))


def test_the_image_limit_is_what_fits_the_lambda_event_base64_encoded() -> None:
    # 6,291,456-byte event, 24 KiB for headers and context, 4 base64 characters per 3 image bytes.
    assert MAX_IMAGE_BYTES == 4_700_160
    assert Settings(endpoint_name=ENDPOINT).max_image_bytes == MAX_IMAGE_BYTES


def test_raw_body_over_the_image_limit_is_413_naming_it(runtime: Runtime, lambda_context: Any) -> None:
    event = load_event("apigw_predict_jpeg")
    event["body"] = base64.b64encode(image_of_size(MAX_IMAGE_BYTES + 1)).decode()
    status, body, headers = call(event, lambda_context)
    assert status == 413
    assert "the limit is 4700160 bytes" in body["message"]
    assert "Retry-After" not in headers
    assert runtime.calls == []


def test_raw_body_at_the_image_limit_reaches_the_endpoint_unchanged(runtime: Runtime, lambda_context: Any) -> None:
    image = image_of_size(MAX_IMAGE_BYTES)
    event = load_event("apigw_predict_jpeg")
    event["body"] = base64.b64encode(image).decode()
    runtime.stubber.add_response("invoke_endpoint", {"Body": streaming(endpoint_body(PROBS))})
    status, _, _ = call(event, lambda_context)
    assert status == 200
    assert runtime.calls[0]["Body"] == image
    assert runtime.calls[0]["ContentType"] == content_type_for("JPEG", 3)


def test_json_body_over_the_image_limit_is_413(runtime: Runtime, lambda_context: Any) -> None:
    event = load_event("apigw_predict_json_base64")
    event["body"] = json.dumps({"image": base64.b64encode(image_of_size(MAX_IMAGE_BYTES + 1)).decode(), "top_k": 3})
    status, _, _ = call(event, lambda_context)
    assert status == 413
    assert runtime.calls == []


@pytest.mark.parametrize("body", ["[" * 100_000 + "]" * 100_000, '{"image": ' + "[" * 100_000 + "]" * 100_000 + "}"])
def test_deeply_nested_json_is_400_not_502(body: str, runtime: Runtime, lambda_context: Any) -> None:
    event = load_event("apigw_predict_json_base64")
    event["body"] = body
    status, payload, headers = call(event, lambda_context)
    assert status == 400, payload
    assert "nested too deeply" in payload["message"]
    assert "Retry-After" not in headers
    assert runtime.calls == []


ERRORS = [
    # (code, SageMaker HTTP status, modeled fields, our status, Retry-After expected)
    ("ValidationError", 400, {}, 404, False),
    ("ModelError", 424, {"OriginalStatusCode": 400}, 422, False),
    ("ModelError", 424, {"OriginalStatusCode": 415}, 422, False),
    ("ModelError", 424, {"OriginalStatusCode": 500}, 502, False),
    ("ModelError", 424, {}, 502, False),
    ("ModelNotReadyException", 429, {}, 503, True),
    ("ServiceUnavailable", 503, {}, 503, True),
    ("ThrottlingException", 400, {}, 429, True),
    ("InternalFailure", 500, {}, 502, False),
    ("InternalDependencyException", 530, {}, 502, False),
    ("AccessDeniedException", 400, {}, 502, False),
]


@pytest.mark.parametrize(("code", "http_status", "fields", "status_code", "retry_after"), ERRORS)
def test_endpoint_errors_map_to_http_without_leaking(
    code: str,
    http_status: int,
    fields: dict[str, Any],
    status_code: int,
    retry_after: bool,
    runtime: Runtime,
    lambda_context: Any,
    log_records: Callable[[], list[dict[str, Any]]],
) -> None:
    modeled = dict(fields)
    if code == "ModelError":
        modeled |= {"OriginalMessage": SECRET_ORIGINAL_MESSAGE, "LogStreamArn": LOG_STREAM_ARN}
    runtime.stubber.add_client_error(
        "invoke_endpoint",
        service_error_code=code,
        service_message=f"Endpoint {ENDPOINT} of account 123456789012 failed: {ENDPOINT_ARN}",
        http_status_code=http_status,
        modeled_fields=modeled or None,
    )
    event = load_event("apigw_predict_jpeg")
    response = app.lambda_handler(event, lambda_context)
    body = json.loads(response["body"])
    assert response["statusCode"] == status_code
    assert set(body) == {"message", "request_id"}
    assert body["request_id"] == event["requestContext"]["requestId"]
    assert ("Retry-After" in response["multiValueHeaders"]) is retry_after
    if retry_after:
        assert response["multiValueHeaders"]["Retry-After"] == ["5"]
    assert_no_leak(json.dumps(response))
    runtime.stubber.assert_no_pending_responses()
    # The detail is not lost: it is in the structured log, under the request's correlation id.
    error_log = next(entry for entry in log_records() if entry.get("status_code") == status_code)
    assert error_log["correlation_id"] == event["requestContext"]["requestId"]
    assert code in error_log["detail"]


@pytest.mark.parametrize(
    ("exc", "status_code"),
    [
        (ReadTimeoutError(endpoint_url="https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/x"), 504),
        (EndpointConnectionError(endpoint_url="https://runtime.sagemaker.us-east-1.amazonaws.com"), 503),
        (ConnectTimeoutError(endpoint_url="https://runtime.sagemaker.us-east-1.amazonaws.com"), 503),
    ],
    ids=["read-timeout", "connection-refused", "connect-timeout"],
)
def test_transport_errors_are_retried_then_mapped(
    exc: Exception, status_code: int, runtime: Runtime, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real client (standard retries, no Stubber response) fails at send time, attempt after attempt."""
    sends: list[str] = []
    sleeps: list[float] = []

    def fail(request: Any, **_: Any) -> None:
        sends.append(request.url)
        raise exc

    runtime.stubber.deactivate()
    runtime.client.meta.events.register_first("before-send.sagemaker-runtime.InvokeEndpoint", fail)
    monkeypatch.setattr("botocore.endpoint.time.sleep", sleeps.append)
    status, body, headers = call(load_event("apigw_predict_jpeg"), lambda_context)
    assert status == status_code
    assert len(sends) == runtime.settings.max_attempts == 2
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 1.0
    assert_no_leak(json.dumps(body))
    assert ("Retry-After" in headers) is (status_code == 503)


class ExplodingPredictor:
    def predict(self, image: bytes, image_format: str, top_k: int) -> Any:
        raise RuntimeError(f"bug with secret {ENDPOINT_ARN}")


def test_unexpected_exception_is_502_without_traceback(lambda_context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(endpoint_name=ENDPOINT)
    monkeypatch.setattr(app, "_dependencies", app.Dependencies(settings, ExplodingPredictor()))
    response = app.lambda_handler(load_event("apigw_predict_jpeg"), lambda_context)
    assert response["statusCode"] == 502
    assert_no_leak(json.dumps(response))


@pytest.mark.parametrize(
    "payload",
    [
        b"<html>502 Bad Gateway</html>",
        json.dumps({"predictions": []}).encode(),
        json.dumps({"predictions": [[{"label": "x", "probability": 1.7}]]}).encode(),
        json.dumps({"predictions": [[{"label": "x"}]]}).encode(),
    ],
    ids=["not-json", "no-images", "probability-out-of-range", "missing-probability"],
)
def test_malformed_endpoint_response_is_502(payload: bytes, runtime: Runtime, lambda_context: Any) -> None:
    runtime.stubber.add_response("invoke_endpoint", {"Body": streaming(payload)})
    status, body, _ = call(load_event("apigw_predict_jpeg"), lambda_context)
    assert status == 502
    assert body["message"] == "The model endpoint returned an error"


def test_missing_endpoint_name_is_a_generic_500(lambda_context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app, "_dependencies", None)
    monkeypatch.delenv("ENDPOINT_NAME", raising=False)
    status, body, _ = call(load_event("apigw_predict_jpeg"), lambda_context)
    assert status == 500
    assert body["message"] == "The service is misconfigured"


def test_metrics_and_correlation_id_are_emitted(
    runtime: Runtime,
    lambda_context: Any,
    capsys: pytest.CaptureFixture[str],
    log_records: Callable[[], list[dict[str, Any]]],
) -> None:
    runtime.stubber.add_response("invoke_endpoint", {"Body": streaming(endpoint_body(PROBS))})
    event = load_event("apigw_predict_png")
    call(event, lambda_context)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    emf = [line for line in lines if "_aws" in line]
    names = {m["Name"] for line in emf for d in line["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {"Prediction", "EndpointLatency"} <= names
    logs = log_records()
    served = next(line for line in logs if line.get("message") == "prediction served")
    assert served["correlation_id"] == event["requestContext"]["requestId"]
    # Payloads and predictions never go to the logs.
    assert not any(BREEDS[0] in json.dumps(line) or event["body"][:40] in json.dumps(line) for line in logs)


def test_sam_fixtures_and_test_fixtures_are_the_same_files(repo_root: Any) -> None:
    sam = {p.stem: p.read_bytes() for p in (repo_root / "events").glob("*.json") if not p.stem.startswith("env.")}
    tests = {
        p.stem.removeprefix("apigw_"): p.read_bytes() for p in (repo_root / "tests" / "events").glob("apigw_*.json")
    }
    assert sam == tests
    tested = {name.removeprefix("apigw_") for name, *_ in BAD_INPUTS} | {
        "predict_jpeg",
        "predict_png",
        "predict_x_image",
        "predict_json_base64",
        "health",
        "not_found",
        "predict_oversize",
        "demo",  # test_inference_demo_page.py
    }
    assert tested == set(sam), "every fixture is exercised by a test above"
