"""Which AWS service a request addressed, and which wire protocol (so which error shape) that service speaks.

Signing names (the fourth element of a SigV4 credential scope) are not botocore's service names: Step Functions signs
as ``states``, CloudWatch as ``monitoring``, both SageMaker APIs as ``sagemaker``. The protocol comes from botocore's
own service model (``ServiceModel.resolved_protocol``, the protocol botocore itself speaks), so an error is always
rendered in the shape the client's parser expects.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl

import botocore.exceptions
import botocore.loaders
import botocore.model

Family = Literal["json", "rest-json", "query", "s3", "execute-api"]

# Signing name -> botocore service name, where they differ. execute-api has no botocore model (it is whatever REST
# API the user deployed); sagemaker-runtime signs as "sagemaker" too, so a caller that knows it addressed the runtime
# passes "sagemaker-runtime" (a botocore name, accepted as well).
SIGNING_TO_BOTOCORE: Mapping[str, str] = {
    "states": "stepfunctions",
    "monitoring": "cloudwatch",
    "email": "ses",
}
# The services the local runtime serves, in the order a query-protocol ``Action`` is attributed (STS first: its
# actions are the ones an unconfigured client sends first).
QUERY_SERVICES = ("sts", "iam", "sns", "cloudformation", "cloudwatch")
JSON_SERVICES = ("sagemaker", "stepfunctions", "logs", "application-autoscaling", "events", "cloudwatch")
FORM_TYPE = "application/x-www-form-urlencoded"
FORM_GUESS_MAX_BYTES = 64 * 1024  # enough for any Action=...&Version=...; never parse a huge body for a guess
# The first "Credential=" component, exactly as sigv4._parse_header reads it, so a guess never disagrees with the
# scope the verifier then finds (the edge decides from the guess whether to read the body).
_CREDENTIAL_RE = re.compile(r"^\s*AWS4-HMAC-SHA256 (?:[^,]*,)*?\s*Credential\s*=([^,]*)")


@dataclass(frozen=True)
class Protocol:
    """How a service's errors look on the wire.

    Attributes:
        family: ``json`` (awsJson1_0/1_1), ``rest-json``, ``query`` (and ec2/rest-xml non-S3), ``s3``, ``execute-api``.
        json_version: ``1.0`` or ``1.1`` for the ``application/x-amz-json-*`` content type.
        xml_namespace: The ``xmlns`` of a query service's ``ErrorResponse``.
        query_compatible: The JSON service replaced a query API (``awsQueryCompatible``): its errors also carry the
            query error code in ``x-amzn-query-error``, which botocore prefers.
    """

    family: Family
    json_version: str = "1.1"
    xml_namespace: str = ""
    query_compatible: bool = False


@functools.cache
def _loader() -> Any:
    return botocore.loaders.create_loader()


@functools.cache
def service_model(name: str) -> Any | None:
    """botocore's ``ServiceModel`` for a botocore service name, or None when botocore has no such service."""
    try:
        return botocore.model.ServiceModel(_loader().load_service_model(name, "service-2"), service_name=name)
    except botocore.exceptions.UnknownServiceError:
        return None


def botocore_name(service: str) -> str:
    """The botocore service name for a signing name (or a botocore name, returned as is)."""
    return SIGNING_TO_BOTOCORE.get(service, service)


@functools.cache
def protocol_for(service: str) -> Protocol:
    """The error protocol of ``service`` (a signing name such as ``states``, or a botocore name).

    Args:
        service: What the request addressed: the credential scope's service, or ``guess_service``'s answer.

    Returns:
        The wire shape; an unknown service gets the JSON shape, the most common AWS protocol.
    """
    if service == "execute-api":
        return Protocol("execute-api")
    if service == "s3":
        return Protocol("s3")
    model = service_model(botocore_name(service))
    if model is None:
        return Protocol("json")
    proto = str(model.resolved_protocol)
    meta: Mapping[str, Any] = model.metadata
    if proto == "json" or proto == "smithy-rpc-v2-cbor":
        return Protocol("json", str(meta.get("jsonVersion", "1.0")), query_compatible="awsQueryCompatible" in meta)
    if proto == "rest-json":
        return Protocol("rest-json")
    # query, ec2 and rest-xml services other than S3 all answer <ErrorResponse><Error><Type>/<Code>/<Message>.
    return Protocol("query", xml_namespace=str(meta.get("xmlNamespace", "")))


@functools.cache
def _target_prefixes() -> Mapping[str, str]:
    """``X-Amz-Target`` prefix (``SageMaker``, ``AWSStepFunctions``, ...) -> signing name, from botocore's models."""
    out: dict[str, str] = {}
    for name in JSON_SERVICES:
        model = service_model(name)
        if model is not None and model.metadata.get("targetPrefix"):
            out[str(model.metadata["targetPrefix"])] = str(model.signing_name)
    return out


@functools.cache
def _query_versions() -> Mapping[str, str]:
    """Query API ``Version=`` value -> signing name (each query API has its own version date)."""
    out: dict[str, str] = {}
    for name in QUERY_SERVICES:
        model = service_model(name)
        if model is not None:
            out.setdefault(str(model.api_version), str(model.signing_name))
    return out


@functools.cache
def _query_actions() -> Mapping[str, str]:
    """Query API ``Action=`` value -> signing name; the first service in ``QUERY_SERVICES`` wins a shared name."""
    out: dict[str, str] = {}
    for name in QUERY_SERVICES:
        model = service_model(name)
        if model is not None:
            for op in model.operation_names:
                out.setdefault(str(op), str(model.signing_name))
    return out


def _service_from_credential(credential: str) -> str | None:
    parts = credential.split("/")
    return parts[3] if len(parts) == 5 and parts[3] else None


def guess_service(environ: Mapping[str, Any], body: bytes) -> str:
    """Best guess of the service an unsigned or garbled request addressed, so its error has the right shape.

    Order: a readable credential scope (header or presigned query) names the service; else the ``X-Amz-Target``
    prefix (JSON protocols); else a query-protocol ``Version=``/``Action=`` (form body or query string); else a
    SageMaker runtime invocation path; else ``s3``, because a plain unsigned GET/PUT on the AWS endpoint is S3's.

    Args:
        environ: The WSGI environ.
        body: The request body as read (only a small form body is parsed).

    Returns:
        A signing name (``s3``, ``states``, ``sts``, ...) or ``sagemaker-runtime``; ``render_auth_error`` takes both.
    """
    match = _CREDENTIAL_RE.search(str(environ.get("HTTP_AUTHORIZATION", "")))
    if match and (found := _service_from_credential(match.group(1).strip())):
        return found
    query = parse_qsl(str(environ.get("QUERY_STRING", "")), keep_blank_values=True)
    for key, value in query:
        if key == "X-Amz-Credential" and (found := _service_from_credential(value)):
            return found
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    if target:
        found = _target_prefixes().get(target.split(".", 1)[0])
        if found:
            return found
    params = list(query)
    content_type = str(environ.get("CONTENT_TYPE", "")).split(";", 1)[0].strip().lower()
    if content_type == FORM_TYPE and body and len(body) <= FORM_GUESS_MAX_BYTES:
        params += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    fields = dict(reversed(params))  # first occurrence wins, as AWS reads a repeated parameter
    if "Action" in fields:
        by_version = _query_versions().get(fields.get("Version", ""))
        if by_version:
            return by_version
        by_action = _query_actions().get(fields["Action"])
        if by_action:
            return by_action
    path = str(environ.get("PATH_INFO", ""))
    if path.startswith("/endpoints/") and path.rstrip("/").endswith("/invocations"):
        return "sagemaker-runtime"
    return "s3"
