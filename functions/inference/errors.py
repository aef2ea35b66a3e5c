"""One error hierarchy for the inference function and the one place that maps errors to HTTP.

Client-input errors carry a short message written by us (it may name the bad value, truncated). Upstream errors
carry a fixed public message; whatever SageMaker said (messages, ARNs, the container's OriginalMessage) goes to
``detail``, which is logged and never returned.
"""

from __future__ import annotations

from typing import Any, ClassVar

from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError
from botocore.exceptions import ConnectionError as BotoConnectionError

_MAX_ECHO = 64


def echo(value: object) -> str:
    """Render a client-supplied value for an error message: repr, truncated, never unbounded."""
    text = repr(value)
    return text if len(text) <= _MAX_ECHO else text[: _MAX_ECHO - 3] + "..."


class InferenceError(Exception):
    """Base class: every error the function turns into an HTTP response."""

    status_code: ClassVar[int] = 502
    public_message: ClassVar[str] = "The model endpoint returned an error"
    retryable: ClassVar[bool] = False
    metric_name: ClassVar[str] = "UpstreamError"

    def __init__(self, message: str | None = None, *, detail: str | None = None) -> None:
        self.message = message or self.public_message
        self.detail = detail
        super().__init__(self.message)


class ClientInputError(InferenceError):
    """The request itself is wrong; the endpoint is never called."""

    status_code = 400
    public_message = "Bad request"
    metric_name = "ClientError"


class BadRequest(ClientInputError):
    status_code = 400


class PayloadTooLarge(ClientInputError):
    status_code = 413
    public_message = "Payload too large"


class UnsupportedMediaType(ClientInputError):
    status_code = 415
    public_message = "Unsupported media type"


class RouteNotFound(ClientInputError):
    status_code = 404
    public_message = "Not found; routes: GET /health, POST /predict, GET /demo"


class DemoPageDisabled(ClientInputError):
    status_code = 404
    public_message = "Not found: the demo page is off (template parameter DemoPage=Disabled)"


class EndpointNotFound(InferenceError):
    # NOTE: InvokeEndpoint answers ValidationError for a missing or not-yet-InService endpoint; the body size and
    # content type (its other causes) are validated before the call, so what is left means "no model deployed".
    status_code = 404
    public_message = "No model is deployed at the configured endpoint"


class ModelRejectedInput(InferenceError):
    status_code = 422
    public_message = "The model could not process this image"
    metric_name = "ClientError"


class ModelFailed(InferenceError):
    status_code = 502
    public_message = "The model failed to produce a prediction"


class ModelThrottled(InferenceError):
    status_code = 429
    public_message = "Too many requests for the model endpoint; retry later"
    retryable = True


class ModelNotReady(InferenceError):
    status_code = 503
    public_message = "The model is not ready; retry later"
    retryable = True


class ServiceUnavailable(InferenceError):
    status_code = 503
    public_message = "The model endpoint is unavailable; retry later"
    retryable = True


class UpstreamTimeout(InferenceError):
    status_code = 504
    public_message = "The model endpoint timed out"


class BadGateway(InferenceError):
    status_code = 502
    public_message = "The model endpoint returned an error"


class ConfigurationError(InferenceError):
    """The function is deployed with invalid settings (our fault, not the caller's)."""

    status_code = 500
    public_message = "The service is misconfigured"
    metric_name = "ConfigurationError"

    def __init__(self, detail: str) -> None:
        super().__init__(detail=detail)
        # NOTE: str(error) is the detail (operators read it in the init log); clients only get public_message.
        self.args = (detail,)


# SageMaker runtime error codes (botocore sagemaker-runtime service-2.json) → our errors.
_CLIENT_ERROR_CODES: dict[str, type[InferenceError]] = {
    "ValidationError": EndpointNotFound,
    "ModelNotReadyException": ModelNotReady,
    "ThrottlingException": ModelThrottled,
    "ServiceUnavailable": ServiceUnavailable,
    "InternalFailure": BadGateway,
    "InternalDependencyException": BadGateway,
}


def from_runtime_exception(exc: Exception) -> InferenceError:
    """Translate an exception raised by the sagemaker-runtime client into an InferenceError.

    Args:
        exc: what ``invoke_endpoint`` raised.

    Returns:
        The matching error; ``detail`` keeps the upstream text for the logs only.
    """
    if isinstance(exc, InferenceError):
        return exc
    if isinstance(exc, ClientError):
        response: dict[str, Any] = dict(exc.response)
        code = str(response.get("Error", {}).get("Code", ""))
        detail = f"{code}: {response.get('Error', {}).get('Message', '')}"
        if code == "ModelError":
            original = response.get("OriginalStatusCode")
            detail += f" (OriginalStatusCode={original}, OriginalMessage={response.get('OriginalMessage')!r})"
            if isinstance(original, int) and 400 <= original < 500:
                return ModelRejectedInput(detail=detail)
            return ModelFailed(detail=detail)
        return _CLIENT_ERROR_CODES.get(code, BadGateway)(detail=detail)
    if isinstance(exc, ReadTimeoutError):
        return UpstreamTimeout(detail=str(exc))
    if isinstance(exc, BotoConnectionError):
        # NOTE: connect timeouts and refused connections land here (ConnectTimeoutError and
        # EndpointConnectionError both derive from botocore's ConnectionError); read timeouts were handled above.
        return ServiceUnavailable(detail=str(exc))
    if isinstance(exc, BotoCoreError):
        return BadGateway(detail=str(exc))
    return BadGateway(detail=f"{type(exc).__name__}: {exc}")


def error_payload(
    error: InferenceError, request_id: str, retry_after_s: int
) -> tuple[int, dict[str, str], dict[str, str]]:
    """The HTTP status, JSON body and extra headers for an error.

    Args:
        error: the error to render.
        request_id: API Gateway request id (the correlation id in the logs).
        retry_after_s: seconds advertised in ``Retry-After`` for retryable errors.

    Returns:
        ``(status_code, body, headers)``.
    """
    headers = {"Retry-After": str(retry_after_s)} if error.retryable else {}
    return error.status_code, {"message": error.message, "request_id": request_id}, headers
