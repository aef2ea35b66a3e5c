"""Injected AWS errors for any service, at the edge: ``[[chaos.errors]]`` fails the next N calls of one API.

Switch (``$LOCAL_RUNTIME_HOME/config.toml``, see ``local_aws/chaos.py``; re-read on every call, no restart)::

    [[chaos.errors]]
    service = "application-autoscaling"   # boto3 service name (botocore's model name)
    operation = "RegisterScalableTarget"  # API operation name, as in botocore's model
    code = "ConcurrentUpdateException"    # an error the operation (or the service) models, or a common one
    message = "optional"                  # default: the error shape's documentation, as AWS words it
    count = 5                             # the next N matching calls fail, counted from when the file changed
    after = 0                             # optional: first let this many matching calls through
    principal = "*:assumed-role/*"        # optional: only calls signed by a matching principal ARN (* wildcards)

Each rule counts on its own; every rewrite of the file re-arms all counts. ``after`` reaches a call in the middle of
a run: the pipeline's first DescribeEndpoint is its lookup of the serving endpoint, so ``after = 1`` leaves that one
alone and fails the status reads of the endpoint it then creates. ``principal`` picks the caller, matched like an IAM
ARN pattern against the signer's ARN (``arn:aws:sts::<account>:assumed-role/<role>/<session>`` for a role session,
``arn:aws:iam::<account>:user/<name>`` for the operator's key): a rule for the state machine role's
DescribeExecution then leaves a user's own DescribeExecution polls alone. The call is refused after the edge has
authenticated and authorised it (an unauthorised call still gets AccessDenied first), before the service sees it, so
it changes nothing; that is how a throttled or conflicting AWS call behaves. The Step Functions interpreter's SDK
calls go through the edge too (signed with the state machine role's session: ``stepfunctions/interpreter.py``), so a
rule fails an ASL task's call as well as a user's.

What is accepted and what is sent comes from botocore's service models (the shapes the SDKs raise, so a client sees
exactly the exception class it would get from AWS), not a hand-written table:

* ``code``: an error shape of the operation, or of the service (boto3 raises those too), by shape name or by its
  wire code (``error.code``: IAM's ``NoSuchEntity``), or one of ``COMMON_CODES``, the errors every AWS API may
  return ("Common Errors" in each API reference, e.g. docs.aws.amazon.com/sagemaker/latest/APIReference/
  CommonErrors.html).
* status: the shape's ``error.httpStatusCode``; else 500 for a ``fault`` shape or an internal-failure code, 503 for
  ServiceUnavailable, otherwise 400 (a JSON-protocol error without a modeled status is a 400, as botocore's own
  ``_retry.json`` expects of ThrottlingException).
* wire shape: the service's protocol (``auth/services.protocol_for``): JSON 1.0/1.1 ``__type`` + ``message``
  (plus ``x-amzn-query-error`` for query-compatible services), rest-json ``x-amzn-ErrorType``, the query
  ``<ErrorResponse>``, S3's ``<Error>``.
"""

from __future__ import annotations

import fnmatch
import html
import json
import re
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from local_aws import chaos
from local_aws.auth.actions import Operation
from local_aws.auth.services import Protocol, botocore_name, protocol_for, service_model

SECTION = "errors"
KEYS = ("service", "operation", "code", "message", "count", "after", "principal")
# Common Errors of every AWS API reference, with the message AWS sends (SageMaker's Common Errors page; the throttle
# text users quote from real AWS, as in local_aws/sagemaker/throttle.py).
COMMON_CODES: Mapping[str, str] = {
    "ThrottlingException": "Rate exceeded",
    "ThrottledException": "Rate exceeded",
    "InternalFailure": "The request processing has failed because of an unknown error, exception or failure.",
    "ServiceUnavailable": "The request has failed due to a temporary failure of the server.",
    "AccessDeniedException": "You do not have sufficient access to perform this action.",
    "ValidationException": "The input fails to satisfy the constraints specified by an AWS service.",
}
_TAGS = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class InjectedError:
    """One error to send: the code on the wire, botocore's shape name, the status and the message."""

    code: str
    shape: str
    status: int
    message: str
    fault: bool  # the service's fault (query ``Receiver``), not the caller's


@dataclass
class Rule:
    """A validated ``[[chaos.errors]]`` entry and how many calls it has failed since the file changed."""

    service: str
    operation: str
    error: InjectedError
    count: int
    after: int = 0
    principal: str = "*"  # an ARN pattern the signer's ARN must match
    passed: int = 0  # matching calls let through, up to ``after``
    used: int = 0


def _bad(index: int, key: str, value: Any, valid: str) -> chaos.ChaosConfigError:
    return chaos.ChaosConfigError(f"[[chaos.{SECTION}]] #{index + 1}: {key} = {value!r} is not valid; valid: {valid}")


def _status(shape_meta: Mapping[str, Any], code: str) -> int:
    modeled = shape_meta.get("error", {}).get("httpStatusCode")
    if isinstance(modeled, int):
        return modeled
    if "ServiceUnavailable" in code:
        return 503
    if shape_meta.get("fault") or code.startswith(("Internal", "ServiceFailure")):
        return 500
    return 400


def _default_message(documentation: str) -> str:
    """The shape's documentation as plain text: AWS's own description of the error (botocore has no message)."""
    text = " ".join(html.unescape(_TAGS.sub(" ", documentation or "")).split())
    return text or "An error occurred."


def resolve_error(service: str, operation: str, code: str, message: str | None = None) -> InjectedError | None:
    """The error ``operation`` of ``service`` would send for ``code``, or None when botocore models no such error."""
    model = service_model(service)
    if model is None or operation not in model.operation_names:
        return None
    shapes = [*model.operation_model(operation).error_shapes, *model.error_shapes]
    for shape in shapes:
        wire = str(shape.metadata.get("error", {}).get("code", shape.name))
        if code in (shape.name, wire):
            meta = shape.metadata
            fault = bool(meta.get("fault")) or not meta.get("error", {}).get("senderFault", True)
            status = _status(meta, wire)
            return InjectedError(
                wire, shape.name, status, message or _default_message(shape.documentation), fault or status >= 500
            )
    if code in COMMON_CODES:
        status = _status({}, code)
        return InjectedError(code, code, status, message or COMMON_CODES[code], status >= 500)
    return None


def parse(entries: list[dict[str, Any]]) -> list[Rule]:
    """Validate the rules.

    Raises:
        chaos.ChaosConfigError: an unknown key or a bad value, naming it and the valid values.
    """
    rules = []
    for index, entry in enumerate(entries):
        unknown = sorted(set(entry) - set(KEYS))
        if unknown:
            raise chaos.ChaosConfigError(
                f"[[chaos.{SECTION}]] #{index + 1}: unknown key {unknown[0]!r}; valid keys: {', '.join(KEYS)}"
            )
        service = str(entry.get("service"))
        model = service_model(service) if isinstance(entry.get("service"), str) else None
        if model is None:
            raise _bad(index, "service", entry.get("service"), 'a boto3 service name, e.g. "application-autoscaling"')
        operation = str(entry.get("operation"))
        if entry.get("operation") not in model.operation_names:
            sample = ", ".join(list(model.operation_names)[:3])
            raise _bad(index, "operation", entry.get("operation"), f"an operation of {service}, e.g. {sample}")
        message = entry.get("message")
        if message is not None and not isinstance(message, str):
            raise _bad(index, "message", message, "a string")
        code = entry.get("code")
        error = resolve_error(service, operation, code, message) if isinstance(code, str) else None
        if error is None:
            modeled = [s.name for s in model.operation_model(operation).error_shapes] or [
                s.name for s in model.error_shapes
            ]
            raise _bad(index, "code", code, ", ".join([*modeled, *COMMON_CODES]))
        count = entry.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise _bad(index, "count", count, "an integer >= 0")
        skip = entry.get("after", 0)
        if isinstance(skip, bool) or not isinstance(skip, int) or skip < 0:
            raise _bad(index, "after", skip, "an integer >= 0")
        principal = entry.get("principal", "*")
        if not isinstance(principal, str) or not principal:
            raise _bad(index, "principal", principal, 'an ARN pattern, e.g. "arn:aws:sts::*:assumed-role/MyRole/*"')
        rules.append(Rule(service, operation, error, count, skip, principal))
    return rules


class InjectedErrors:
    """Decides, call by call, whether a call fails with an injected error (thread-safe: the edge serves threads)."""

    def __init__(self, home: str | Path | None = None) -> None:
        self.home = home
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] | None = None  # the list last seen: a new object = the file changed
        self._rules: list[Rule] = []

    def take(self, op: Operation, principal_arn: str = "") -> InjectedError | None:
        """The error for this call, counting it against the first rule that matches and has calls left.

        A rule still letting its first ``after`` calls through counts this one as passed and leaves it to the rules
        after it.

        Raises:
            chaos.ChaosConfigError: the section is not valid.
        """
        entries = chaos.tables(SECTION, self.home)
        service = botocore_name(op.service)
        with self._lock:
            if entries is not self._entries:
                self._rules = parse(entries)
                self._entries = entries
            for rule in self._rules:
                if rule.service != service or rule.operation != op.name:
                    continue
                if not fnmatch.fnmatchcase(principal_arn, rule.principal):
                    continue
                if rule.passed < rule.after:
                    rule.passed += 1
                elif rule.used < rule.count:
                    rule.used += 1
                    return rule.error
        return None


Rendered = tuple[int, list[tuple[str, str]], bytes]


def render(error: InjectedError, service: str) -> Rendered:
    """``(status, headers, body)`` of ``error`` in the wire shape of ``service`` (a signing or botocore name)."""
    rid = str(uuid.uuid4())
    proto: Protocol = protocol_for(service)
    if proto.family == "s3":
        body = (
            f"<?xml version='1.0' encoding='UTF-8'?>\n<Error><Code>{escape(error.code)}</Code>"
            f"<Message>{escape(error.message)}</Message><RequestId>{rid}</RequestId><HostId>{rid}</HostId></Error>"
        )
        return error.status, [("Content-Type", "application/xml"), ("x-amz-request-id", rid)], body.encode()
    if proto.family == "query":
        xmlns = f' xmlns="{escape(proto.xml_namespace)}"' if proto.xml_namespace else ""
        kind = "Receiver" if error.fault else "Sender"
        body = (
            f"<ErrorResponse{xmlns}><Error><Type>{kind}</Type><Code>{escape(error.code)}</Code>"
            f"<Message>{escape(error.message)}</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>"
        )
        return error.status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", rid)], body.encode()
    headers = [("x-amzn-RequestId", rid), ("x-amzn-ErrorType", error.shape)]
    if proto.family in ("rest-json", "execute-api"):
        return (
            error.status,
            [("Content-Type", "application/json"), *headers],
            json.dumps({"message": error.message}).encode(),
        )
    headers.insert(0, ("Content-Type", f"application/x-amz-json-{proto.json_version}"))
    if proto.query_compatible:
        # awsQueryCompatible services name the query API's code here; botocore reports it as the error code.
        headers.append(("x-amzn-query-error", f"{error.code};{'Receiver' if error.fault else 'Sender'}"))
    return error.status, headers, json.dumps({"__type": error.shape, "message": error.message}).encode()
