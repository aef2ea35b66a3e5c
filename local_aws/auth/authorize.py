"""IAM authorisation of role sessions: the role's policies from the local IAM, evaluated by moto's policy engine, and
AWS's AccessDenied answer in each protocol's shape.

Why moto's evaluator (``moto.iam.access_control.IAMPolicyStatement``): it is the maintained engine already in the
environment (no other policy evaluator is installed), and it evaluates what this project's policies use: Action and
NotAction, Resource with ``*`` wildcards, Effect Allow/Deny with an explicit Deny winning, and ``StringEquals``
conditions on the keys the caller supplies. What it does not do, and so what the local check does not either:
other condition operators (``StringLike``, ``ArnLike``, ...) are treated as met, keys not supplied pass, ``?``
wildcards and NotResource are not understood, and action names are matched case-sensitively (the template and this
runtime both spell them as the Service Authorization Reference does). One correction is made on top: moto reports
a statement whose condition fails as an explicit deny; IAM ignores such a statement (IAM User Guide, "Condition":
a statement applies only when its conditions are met), so it is treated as not applying.

Only role sessions are authorised. The operator's own long-term key is the account's administrator, as the key a
user configures for the AWS CLI usually is, and stays all-allowed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from xml.sax.saxutils import escape

from moto.iam.access_control import IAMPolicy, IAMPolicyStatement, PermissionResult
from moto.iam.models import iam_backends

from local_aws.auth.actions import Check, checks_for, operation_of
from local_aws.auth.services import protocol_for
from local_aws.constants import ACCOUNT_ID, PARTITION

Decision = Literal["allow", "implicit_deny", "explicit_deny"]
Rendered = tuple[int, list[tuple[str, str]], bytes]


@dataclass(frozen=True)
class Denial:
    """A refused check, and who asked."""

    principal_arn: str
    check: Check
    decision: Decision
    service: str  # the API that refused: a signing name, or "sagemaker-runtime"

    @property
    def message(self) -> str:
        """IAM's text for an identity-policy denial (IAM User Guide, "Troubleshoot access denied error messages":
        "...because no identity-based policy allows the <action> action" / "...with an explicit deny in an
        identity-based policy")."""
        head = (
            f"User: {self.principal_arn} is not authorized to perform: {self.check.action} "
            f"on resource: {self.check.resource}"
        )
        if self.decision == "explicit_deny":
            return f"{head} with an explicit deny in an identity-based policy"
        return f"{head} because no identity-based policy allows the {self.check.action} action"


def role_name_of(principal_arn: str) -> str | None:
    """``<role>`` of ``arn:aws:sts::<account>:assumed-role/<role>/<session>``; None for any other principal."""
    prefix = f"arn:{PARTITION}:sts::{ACCOUNT_ID}:assumed-role/"
    if not principal_arn.startswith(prefix):
        return None
    role, _, session = principal_arn[len(prefix) :].partition("/")
    return role if role and session else None


def role_policy_documents(role_name: str) -> list[dict[str, Any]]:
    """The role's inline and attached managed policies (default versions), as the local IAM holds them now."""
    backend = iam_backends[ACCOUNT_ID][PARTITION]
    try:
        role = backend.get_role(role_name)
    except Exception:  # moto's NotFoundException: a deleted role grants nothing
        return []
    docs: list[dict[str, Any]] = []
    for document in role.policies.values():
        docs.append(json.loads(document) if isinstance(document, str) else dict(document))
    for managed in role.managed_policies.values():
        docs.append(IAMPolicy(managed)._policy_json)
    return docs


def _statements(document: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    statements = document.get("Statement") or []
    return [statements] if isinstance(statements, dict) else statements


def evaluate(documents: Iterable[Mapping[str, Any]], check: Check) -> Decision:
    """IAM's decision for one check against identity policies: an explicit Deny wins, else any Allow, else deny."""
    allowed = False
    for document in documents:
        for statement in _statements(document):
            engine = IAMPolicyStatement(dict(statement))
            # NOTE: moto answers DENIED for any statement whose condition fails, Allow or Deny; in IAM such a
            # statement does not apply. The conditions are asked first, with moto's own check.
            if not engine._check_conditions(dict(check.context)):
                continue
            result = engine.is_action_permitted(check.action, check.resource, None, dict(check.context))
            if result == PermissionResult.DENIED:
                return "explicit_deny"
            if result == PermissionResult.PERMITTED:
                allowed = True
    return "allow" if allowed else "implicit_deny"


def authorize(principal_arn: str, service: str, environ: Mapping[str, Any], body: bytes | None) -> Denial | None:
    """None when a role session may make this request; else the first refused check.

    Args:
        principal_arn: the verified caller.
        service: the credential scope's signing name.
        environ: the WSGI environ.
        body: the body as read (None for streamed S3 bodies: S3 authorises from the URI alone).
    """
    role = role_name_of(principal_arn)
    if role is None:
        return None
    operation = operation_of(service, environ, body)
    if operation is None:
        # No operation of the service's model matches: the service itself answers that (UnknownOperation), and
        # nothing is done, so there is nothing to authorise.
        return None
    documents = role_policy_documents(role)
    for check in checks_for(operation):
        decision = evaluate(documents, check)
        if decision != "allow":
            return Denial(principal_arn, check, decision, operation.service)
    return None


def render_access_denied(denial: Denial) -> Rendered:
    """AWS's AccessDenied answer in the addressed service's protocol.

    JSON services (SageMaker, Application Auto Scaling, Step Functions, Logs) and the SageMaker runtime: 400
    ``AccessDeniedException`` (SageMaker API Reference, "Common Errors": "AccessDeniedException ... HTTP Status Code:
    400"; observed for SageMaker in aws-failure-behaviours.md §7). Query services (IAM, STS, SNS, CloudWatch): 403
    ``AccessDenied`` in ``<ErrorResponse>``. Other REST-JSON services: 403 ``AccessDeniedException``. S3: 403
    ``AccessDenied``.
    """
    rid = str(uuid.uuid4())
    message, service = denial.message, denial.service
    proto = protocol_for(service)
    if proto.family == "s3":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
            f"<Message>{escape(message)}</Message><RequestId>{rid}</RequestId></Error>"
        )
        return 403, [("Content-Type", "application/xml"), ("x-amz-request-id", rid)], body.encode()
    if proto.family == "query":
        xmlns = f' xmlns="{escape(proto.xml_namespace)}"' if proto.xml_namespace else ""
        body = (
            f"<ErrorResponse{xmlns}><Error><Type>Sender</Type><Code>AccessDenied</Code>"
            f"<Message>{escape(message)}</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>"
        )
        return 403, [("Content-Type", "text/xml"), ("x-amzn-RequestId", rid)], body.encode()
    code = "AccessDeniedException"
    headers = [("x-amzn-RequestId", rid), ("x-amzn-ErrorType", code)]
    if proto.family == "json":
        headers.insert(0, ("Content-Type", f"application/x-amz-json-{proto.json_version}"))
        if proto.query_compatible:
            headers.append(("x-amzn-query-error", "AccessDenied;Sender"))
        return 400, headers, json.dumps({"__type": code, "message": message}).encode()
    status = 400 if service in ("sagemaker", "sagemaker-runtime") else 403
    return status, [("Content-Type", "application/json"), *headers], json.dumps({"message": message}).encode()
