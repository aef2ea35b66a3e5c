"""The SageMaker wire protocols as one WSGI app: the control plane (JSON 1.1) and the runtime (rest-json).

Both sign as service ``sagemaker``, so the edge sends both here: ``POST /endpoints/<name>/invocations`` is
InvokeEndpoint (botocore's sagemaker-runtime model), anything else is a control-plane call named by
``X-Amz-Target: SageMaker.<Operation>``. No traceback, path or exception name ever reaches a client: unexpected
errors are logged here and answered with the service's generic ``InternalFailure``.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

from werkzeug.wrappers import Request, Response

from local_aws.chaos import ChaosConfigError
from local_aws.sagemaker.control import ControlPlane
from local_aws.sagemaker.errors import RuntimeApiError, SageMakerError
from local_aws.sagemaker.invocations import invoke

LOGGER = logging.getLogger("local_aws.sagemaker")
TARGET_PREFIX = "SageMaker."
JSON_11 = "application/x-amz-json-1.1"
RUNTIME_HEADERS = (
    "Content-Type",
    "Accept",
    "X-Amzn-SageMaker-Custom-Attributes",
    "X-Amzn-SageMaker-Target-Variant",
    "X-Amzn-SageMaker-Inference-Id",
)
INTERNAL_FAILURE = "The request processing has failed because of an internal error, exception or failure."


def _json(status: int, doc: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(doc, default=str).encode("utf-8")
    response = Response(body, status=status, content_type=JSON_11)
    response.headers["x-amzn-RequestId"] = str(uuid.uuid4())
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _error(code: str, message: str, status: int = 400) -> Response:
    return _json(status, {"__type": code, "message": message}, {"x-amzn-ErrorType": code})


class SageMakerApi:
    """WSGI app serving one ``ControlPlane``."""

    def __init__(self, control: ControlPlane) -> None:
        self.control = control

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        response = self.dispatch(request)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        parts = request.path.strip("/").split("/")
        if request.method == "POST" and len(parts) == 3 and parts[0] == "endpoints" and parts[2] == "invocations":
            return self._invoke(unquote(parts[1]), request)
        target = request.headers.get("X-Amz-Target", "")
        if request.method != "POST" or not target.startswith(TARGET_PREFIX):
            return _error("UnknownOperationException", "The requested operation is not supported.")
        return self._control(target[len(TARGET_PREFIX) :], request.get_data())

    def _control(self, op_name: str, body: bytes) -> Response:
        try:
            params = json.loads(body or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            return _error("SerializationException", "Start of structure or map found where not expected.")
        try:
            result = self.control.call(op_name, params)
        except SageMakerError as exc:
            return _error(exc.code, exc.message, exc.status)
        except ChaosConfigError as exc:  # the operator's own fault switch is wrong: say so, never a 500
            return _error("ValidationException", f"Local runtime chaos config: {exc}")
        except Exception:  # the service boundary: never a traceback to the client
            LOGGER.exception("SageMaker.%s failed", op_name)
            return _error("InternalFailure", INTERNAL_FAILURE, 500)
        return _json(200, result)

    def _throttle_invoke(self) -> None:
        """``[chaos.throttle]`` naming InvokeEndpoint: the runtime's rest-json throttle (code in x-amzn-ErrorType)."""
        try:
            self.control.throttle.check("InvokeEndpoint")
        except SageMakerError as exc:
            raise RuntimeApiError(exc.code, exc.message, exc.status) from None
        except ChaosConfigError as exc:
            raise RuntimeApiError("ValidationError", f"Local runtime chaos config: {exc}", 400) from None

    def _invoke(self, endpoint: str, request: Request) -> Response:
        headers = {name: request.headers[name] for name in RUNTIME_HEADERS if name in request.headers}
        try:
            self._throttle_invoke()
            payload, out_headers = invoke(self.control.endpoints, endpoint, request.get_data(), headers)
        except RuntimeApiError as exc:
            doc = {"Message": exc.message, "message": exc.message, **exc.members}
            response = Response(json.dumps(doc), status=exc.status, content_type="application/json")
            response.headers["x-amzn-ErrorType"] = exc.code
            response.headers["x-amzn-RequestId"] = str(uuid.uuid4())
            return response
        except Exception:  # the service boundary
            LOGGER.exception("InvokeEndpoint %s failed", endpoint)
            response = Response(json.dumps({"message": INTERNAL_FAILURE}), status=500, content_type="application/json")
            response.headers["x-amzn-ErrorType"] = "InternalFailure"
            return response
        response = Response(payload, status=200)
        for key, value in out_headers.items():
            response.headers[key] = value
        response.headers["x-amzn-RequestId"] = str(uuid.uuid4())
        return response
