"""SageMaker errors as the real service returns them (code, message, HTTP status), and resource ARNs."""

from __future__ import annotations

from local_aws.constants import ACCOUNT_ID, PARTITION, REGION
from local_aws.s3.store import S3Error, parse_uri


class SageMakerError(Exception):
    """A control-plane error, serialised as ``{"__type": code, "message": ...}`` (HTTP 400 unless said otherwise)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def validation(message: str) -> SageMakerError:
    """A ``ValidationException``: what real SageMaker returns for most bad or missing resources."""
    return SageMakerError("ValidationException", message)


def check_s3_uri(uri: str, what: str) -> None:
    """Refuse an S3 URI the local S3 cannot parse, as a ValidationException ``<what>: <reason>``.

    Raises:
        SageMakerError: the ValidationException.
    """
    try:
        parse_uri(uri)
    except S3Error as exc:
        raise validation(f"{what}: {exc.message}") from exc


def resource_in_use(message: str) -> SageMakerError:
    return SageMakerError("ResourceInUse", message)


def resource_not_found(message: str) -> SageMakerError:
    return SageMakerError("ResourceNotFound", message)


class RuntimeApiError(Exception):
    """A ``sagemaker-runtime`` error: rest-json, the code in the ``x-amzn-ErrorType`` header, members in the body."""

    def __init__(self, code: str, message: str, status: int, **members: object) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.members = members


def endpoint_not_found(name: str) -> RuntimeApiError:
    """InvokeEndpoint on an endpoint that does not exist (or is not serving yet): what SageMaker Runtime answers."""
    return RuntimeApiError("ValidationError", f"Endpoint {name} of account {ACCOUNT_ID} not found.", 400)


def no_instance(name: str, status: str) -> RuntimeApiError:
    return RuntimeApiError("ServiceUnavailable", f"Endpoint {name} is {status} and has no instance yet.", 503)


def arn(kind: str, name: str) -> str:
    """ARN of a SageMaker resource; the service lower-cases the name part."""
    return f"arn:{PARTITION}:sagemaker:{REGION}:{ACCOUNT_ID}:{kind}/{name.lower()}"
