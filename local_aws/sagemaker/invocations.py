"""InvokeEndpoint: route to an instance, forward the request, and answer with SageMaker Runtime's own errors.

Error shapes follow botocore's sagemaker-runtime model and observed answers (sagemaker-contract.md §4.4): an unknown
endpoint is ``ValidationError`` 400 "Endpoint <name> of account <id> not found."; a container answering 4xx/5xx
becomes ``ModelError`` 424 with the container's own message (``OriginalStatusCode``, ``OriginalMessage``,
``LogStreamArn``) and nothing of the local runtime's internals; a container that does not answer within 60 s, or
whose connection breaks mid-request (its process died), is a ``ModelError`` with status 0; with no healthy instance
to route to, ``ServiceUnavailable`` 503 (fleet.no_healthy_instance). A refused connection (the instance died since
its last health check) marks it unhealthy and the request goes to another instance.
"""

from __future__ import annotations

import http.client
import os
import time

from local_aws.constants import ACCOUNT_ID, HOST, INVOKE_ENDPOINT_MAX_BYTES, PARTITION, REGION
from local_aws.sagemaker.endpoints import Endpoints
from local_aws.sagemaker.errors import RuntimeApiError
from local_aws.sagemaker.fleet import Instance

# The container must answer within 60 s (sagemaker-contract.md §3).
INVOKE_TIMEOUT_S = 60.0
FORWARDED_HEADERS = ("Content-Type", "Accept", "X-Amzn-SageMaker-Custom-Attributes", "X-Amzn-SageMaker-Inference-Id")
MAX_ORIGINAL_MESSAGE = 1024
TIMED_OUT = (
    "Your invocation timed out while waiting for a response from container primary. Review the latency metrics for "
    "each container in Amazon CloudWatch, resolve the issue, and try again."
)


def _log_group(name: str) -> str:
    return f"/aws/sagemaker/Endpoints/{name}"


def _see_logs(name: str) -> str:
    group = _log_group(name)
    return (
        f"See https://{REGION}.console.aws.amazon.com/cloudwatch/home?region={REGION}#logEventViewer:"
        f"group={group} in account {ACCOUNT_ID} for more information."
    )


def _log_stream_arn(name: str) -> str:
    return f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT_ID}:log-group:{_log_group(name)}"


def _model_error(name: str, status: int, message: str, original: str | None = None) -> RuntimeApiError:
    """SageMaker Runtime's ModelError for a container answer (or a timeout: status 0).

    Args:
        original: the OriginalMessage member, when it is not the message itself (the timeout's is shorter).
    """
    kind = "client" if 400 <= status < 500 else "server"
    shown = message[:MAX_ORIGINAL_MESSAGE]
    return RuntimeApiError(
        "ModelError",
        f'Received {kind} error ({status}) from primary with message "{shown}". {_see_logs(name)}',
        424,
        OriginalStatusCode=status,
        OriginalMessage=shown if original is None else original,
        LogStreamArn=_log_stream_arn(name),
    )


def invoke(endpoints: Endpoints, name: str, body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    """InvokeEndpoint.

    Args:
        endpoints: the endpoints of this server.
        name: the endpoint name from the URL.
        body: the raw payload.
        headers: the SageMaker request headers that were sent (canonical names).

    Returns:
        The response body and headers (Content-Type, x-Amzn-Invoked-Production-Variant, custom attributes).

    Raises:
        RuntimeApiError: ValidationError, ModelError, ServiceUnavailable.
    """
    if len(body) > INVOKE_ENDPOINT_MAX_BYTES:
        # botocore's model: Body max 6291456 bytes.
        raise RuntimeApiError(
            "ValidationError",
            f"Request payload exceeds the maximum allowed size of {INVOKE_ENDPOINT_MAX_BYTES} bytes.",
            400,
        )
    started = time.perf_counter()
    target = headers.get("X-Amzn-SageMaker-Target-Variant")
    for attempt in range(2):
        instance = endpoints.acquire(name, target)
        try:
            answer = _forward(endpoints, name, instance, body, headers, started)
            endpoints.faults.after_invocation(name, instance)
            return answer
        except _Refused as exc:
            # The instance died since its last health check. The connection never reached a container, so the
            # request goes to another instance once, as a load balancer retries a refused connection.
            if attempt:
                endpoints.record_invocation(name, instance, 0, None, (time.perf_counter() - started) * 1e6)
                raise _no_response(name) from exc
        finally:
            endpoints.release(instance)
    raise AssertionError("unreachable")


class _Refused(Exception):
    """The instance refused the connection (its process is gone): it is marked unhealthy."""


def _no_response(name: str) -> RuntimeApiError:
    # Observed when an endpoint's workers die (aws-failure-behaviours.md §4, IS-2815).
    return _model_error(
        name,
        0,
        f"Amazon SageMaker could not get a response from the {name} endpoint. This can occur when CPU or memory "
        "utilization is high. To check your utilization, see Amazon CloudWatch. To fix this problem, use an instance "
        "type with more CPU capacity or memory.",
    )


def _forward(
    endpoints: Endpoints, name: str, instance: Instance, body: bytes, headers: dict[str, str], started: float
) -> tuple[bytes, dict[str, str]]:
    forwarded = {"Content-Length": str(len(body))}
    for key in FORWARDED_HEADERS:
        if headers.get(key):
            forwarded[key] = headers[key]
    timeout = float(os.environ.get("LOCAL_SAGEMAKER_INVOKE_TIMEOUT", INVOKE_TIMEOUT_S))
    conn = http.client.HTTPConnection(HOST, instance.port, timeout=timeout)
    sent = time.perf_counter()
    status = 0
    refused = False
    try:
        conn.request("POST", "/invocations", body=body, headers=forwarded)
        response = conn.getresponse()
        payload = response.read()
        status = response.status
        content_type = response.getheader("Content-Type") or "application/json"
        custom = response.getheader("X-Amzn-SageMaker-Custom-Attributes")
    except ConnectionRefusedError as exc:
        instance.healthy = False
        refused = True
        raise _Refused() from exc
    except TimeoutError as exc:
        raise _model_error(name, 0, TIMED_OUT, original="Invocation timed out") from exc
    except OSError as exc:  # the connection broke mid-request: the container died while answering
        instance.healthy = False
        raise _no_response(name) from exc
    finally:
        conn.close()
        if not refused:
            done = time.perf_counter()
            model_us = (done - sent) * 1e6
            endpoints.record_invocation(name, instance, status, model_us, max(0.0, (done - started) * 1e6 - model_us))
    if status >= 400:
        raise _model_error(name, status, payload.decode("utf-8", errors="replace"))
    out = {"Content-Type": content_type, "x-Amzn-Invoked-Production-Variant": instance.variant}
    if custom:
        out["X-Amzn-SageMaker-Custom-Attributes"] = custom
    return payload, out
