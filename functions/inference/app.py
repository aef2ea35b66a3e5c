"""Lambda entry point: a thin Powertools REST resolver. The logic lives in service.py and predictor.py."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
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

logger = Logger(service=SERVICE_NAME)
# NOTE: patch only botocore (the InvokeEndpoint subsegment is the one call worth tracing). The default patches every
# library X-Ray knows (requests, httplib, sqlite3, ...), importing each at cold start; none of them runs here.
tracer = Tracer(service=SERVICE_NAME, patch_modules=TRACED_MODULES)
metrics = Metrics(namespace=os.getenv("POWERTOOLS_METRICS_NAMESPACE", "DogBreed"), service=SERVICE_NAME)
app = APIGatewayRestResolver()


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


def _request_id() -> str:
    request_context = app.current_event.get("requestContext") or {}
    return str(request_context.get("requestId") or app.lambda_context.aws_request_id)


def _json(status_code: int, body: Any, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status_code,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body),
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


@app.get("/health")
def health() -> Response[str]:
    metrics.add_metric(name="HealthCheck", unit=MetricUnit.Count, value=1)
    return _json(200, {"status": "ok", "request_id": _request_id()})


@app.post("/predict")
def predict() -> Response[str]:
    deps = dependencies()
    event = app.current_event
    request = service.parse_predict_request(
        body=event.body,
        is_base64_encoded=bool(event.is_base64_encoded),
        content_type=event.headers.get("content-type"),
        query=event.query_string_parameters,
        settings=deps.settings,
    )
    started = time.perf_counter()
    result = service.predict(request, deps.predictor, _request_id())
    elapsed_ms = (time.perf_counter() - started) * 1e3
    metrics.add_metric(name="EndpointLatency", unit=MetricUnit.Milliseconds, value=elapsed_ms)
    metrics.add_metric(name="Prediction", unit=MetricUnit.Count, value=1)
    logger.info("prediction served", extra={"image_format": request.info.format, "top_k": request.top_k})
    return _json(200, result)


@app.not_found
def not_found(_: NotFoundError) -> Response[str]:
    return render_error(RouteNotFound())


def render_error(error: InferenceError) -> Response[str]:
    # NOTE: the one place an error becomes a response; ``detail`` (upstream text) is logged, never returned.
    log = logger.warning if error.status_code < 500 else logger.error
    log(error.message, extra={"status_code": error.status_code, "error": type(error).__name__, "detail": error.detail})
    metrics.add_metric(name=error.metric_name, unit=MetricUnit.Count, value=1)
    retry_after = _dependencies.settings.retry_after_s if _dependencies else DEFAULT_RETRY_AFTER_S
    status_code, body, headers = error_payload(error, _request_id(), retry_after)
    return _json(status_code, body, headers)


def render_unexpected(error: Exception) -> Response[str]:
    logger.exception("unhandled error")
    return render_error(BadGateway(detail=f"{type(error).__name__}: {error}"))


app.exception_handler(InferenceError)(render_error)
# NOTE: the catch-all keeps tracebacks out of responses; unmatched routes still reach ``not_found`` because
# Powertools looks handlers up along the exception's MRO and NotFoundError has its own.
app.exception_handler(Exception)(render_unexpected)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)


if os.environ.get("ENDPOINT_NAME"):
    # NOTE: build the client during init (faster, and free with provisioned concurrency); a bad setting is
    # reported per request as a 500 instead of failing every cold start.
    try:
        dependencies()
    except ConfigurationError:
        logger.exception("invalid configuration")
