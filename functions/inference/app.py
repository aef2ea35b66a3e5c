"""Lambda entry point: three routes of the REST API's proxy events, with Powertools' Logger, Metrics and Tracer.

The logic lives in service.py and predictor.py. The routing is a dict: Powertools' REST resolver would do the same
for three fixed routes, but importing ``aws_lambda_powertools.event_handler`` loads every resolver it has (AppSync,
Bedrock agents, VPC Lattice, OpenAPI, every event data class) at cold start: 75 ms CPU of the handler's 110 ms over
a bare boto3 client, measured (bench/lambda_init.py), for code this function never runs.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

import service
from config import Settings
from errors import BadGateway, ConfigurationError, InferenceError, RouteNotFound, error_payload
from predictor import Predictor, SageMakerPredictor, build_runtime_client

if TYPE_CHECKING:  # typing only: one module fewer to load at cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext

SERVICE_NAME = os.getenv("POWERTOOLS_SERVICE_NAME", "dogbreed-inference")
DEFAULT_RETRY_AFTER_S = 5
TRACED_MODULES = ("botocore",)
JSON_CONTENT_TYPE = "application/json"

logger = Logger(service=SERVICE_NAME)
# NOTE: patch only botocore (the InvokeEndpoint subsegment is the one call worth tracing). The default patches every
# library X-Ray knows (requests, httplib, sqlite3, ...), importing each at cold start; none of them runs here.
tracer = Tracer(service=SERVICE_NAME, patch_modules=TRACED_MODULES)
metrics = Metrics(namespace=os.getenv("POWERTOOLS_METRICS_NAMESPACE", "DogBreed"), service=SERVICE_NAME)

ProxyResponse = dict[str, Any]


@dataclass(frozen=True)
class Dependencies:
    settings: Settings
    predictor: Predictor


_dependencies: Dependencies | None = None


def dependencies() -> Dependencies:
    """Settings and the sagemaker-runtime client, built once per cold start and reused while warm."""
    global _dependencies
    if _dependencies is None:
        settings = Settings.from_env()
        _dependencies = Dependencies(settings, SageMakerPredictor(build_runtime_client(settings), settings))
    return _dependencies


@dataclass(frozen=True)
class Request:
    """What the handlers read from an API Gateway REST proxy (payload v1) event."""

    event: Mapping[str, Any]
    request_id: str

    def header(self, name: str) -> str | None:
        """A header's value, case-insensitively (API Gateway keeps the client's spelling of names)."""
        wanted = name.lower()
        for key, value in (self.event.get("headers") or {}).items():
            if str(key).lower() == wanted:
                return str(value)
        return None

    @property
    def query(self) -> dict[str, str]:
        return dict(self.event.get("queryStringParameters") or {})


def _json(status_code: int, body: Any, headers: dict[str, str] | None = None) -> ProxyResponse:
    """A proxy response: JSON body, never cached; multiValueHeaders as Powertools' REST resolver writes them."""
    all_headers = {"Content-Type": JSON_CONTENT_TYPE, "Cache-Control": "no-store", **(headers or {})}
    return {
        "statusCode": status_code,
        "body": json.dumps(body),
        "isBase64Encoded": False,
        "multiValueHeaders": {name: [value] for name, value in all_headers.items()},
    }


def health(request: Request) -> ProxyResponse:
    metrics.add_metric(name="HealthCheck", unit=MetricUnit.Count, value=1)
    return _json(200, {"status": "ok", "request_id": request.request_id})


def predict(request: Request) -> ProxyResponse:
    deps = dependencies()
    parsed = service.parse_predict_request(
        body=request.event.get("body"),
        is_base64_encoded=bool(request.event.get("isBase64Encoded")),
        content_type=request.header("content-type"),
        query=request.query,
        settings=deps.settings,
    )
    started = time.perf_counter()
    result = service.predict(parsed, deps.predictor, request.request_id)
    elapsed_ms = (time.perf_counter() - started) * 1e3
    metrics.add_metric(name="EndpointLatency", unit=MetricUnit.Milliseconds, value=elapsed_ms)
    metrics.add_metric(name="Prediction", unit=MetricUnit.Count, value=1)
    logger.info("prediction served", extra={"image_format": parsed.info.format, "top_k": parsed.top_k})
    return _json(200, result)


def demo(request: Request) -> ProxyResponse:
    # NOTE: imported here, not at the top: only GET /demo reads the page (and the predict path's cold start
    # stays as measured by bench/lambda_init.py).
    import demo_page

    page = demo_page.page_for()
    metrics.add_metric(name="DemoPageView", unit=MetricUnit.Count, value=1)
    headers = {
        "Content-Type": "text/html; charset=utf-8",
        "Cache-Control": "no-cache",
        "Content-Security-Policy": page.content_security_policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    return {
        "statusCode": 200,
        "body": page.body,
        "isBase64Encoded": False,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
    }


# (method, API Gateway resource) → handler; the resources are template.yaml's Api events.
ROUTES: dict[tuple[str, str], Callable[[Request], ProxyResponse]] = {
    ("GET", "/health"): health,
    ("POST", "/predict"): predict,
    ("GET", "/demo"): demo,
}


def render_error(error: InferenceError, request_id: str) -> ProxyResponse:
    # NOTE: the one place an error becomes a response; ``detail`` (upstream text) is logged, never returned.
    log = logger.warning if error.status_code < 500 else logger.error
    log(error.message, extra={"status_code": error.status_code, "error": type(error).__name__, "detail": error.detail})
    metrics.add_metric(name=error.metric_name, unit=MetricUnit.Count, value=1)
    retry_after = _dependencies.settings.retry_after_s if _dependencies else DEFAULT_RETRY_AFTER_S
    status_code, body, headers = error_payload(error, request_id, retry_after)
    return _json(status_code, body, headers)


def resolve(event: Mapping[str, Any], context: LambdaContext) -> ProxyResponse:
    """Route one event; every failure becomes a JSON error response, never a traceback."""
    request_context = event.get("requestContext") or {}
    request = Request(event, str(request_context.get("requestId") or context.aws_request_id))
    route = ROUTES.get((str(event.get("httpMethod", "")).upper(), str(event.get("resource") or event.get("path"))))
    try:
        if route is None:
            raise RouteNotFound()
        return route(request)
    except InferenceError as error:
        return render_error(error, request.request_id)
    except Exception as error:  # the function's boundary: a bug is a 502 with a generic message
        logger.exception("unhandled error")
        return render_error(BadGateway(detail=f"{type(error).__name__}: {error}"), request.request_id)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> ProxyResponse:
    return resolve(event, context)


if os.environ.get("ENDPOINT_NAME"):
    # NOTE: build the client during init (faster, and free with provisioned concurrency); a bad setting is
    # reported per request as a 500 instead of failing every cold start.
    try:
        dependencies()
    except ConfigurationError:
        logger.exception("invalid configuration")
