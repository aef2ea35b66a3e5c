"""What a signed request asks IAM for: the action, the resource ARN and the condition keys, per the Service
Authorization Reference.

The operation comes from the request as its protocol names it (``X-Amz-Target`` for JSON services, ``Action=`` for
query services, method + URI template from botocore's model for REST services); the IAM action is the service
prefix and the operation (``sagemaker:CreateTrainingJob``), except where the reference names another action (S3's
``HeadObject`` is ``s3:GetObject``). Resources follow the reference's resource types for the operations this project
calls; any other operation is checked against ``*``, which a resource-scoped Allow never matches, so an unlisted
operation is denied unless the policy grants it on ``*`` (the safe side of an incomplete table). Where the real API
also checks ``iam:PassRole`` (SageMaker's RoleArn / ExecutionRoleArn, "Passing a role" in the SageMaker developer
guide), that is a second check, with ``iam:PassedToService``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from local_aws.auth.services import botocore_name, protocol_for, service_model
from local_aws.constants import ACCOUNT_ID, PARTITION, REGION

# Signing name -> IAM service prefix, where they differ (Service Authorization Reference, "service prefix").
IAM_PREFIX: Mapping[str, str] = {"monitoring": "cloudwatch", "email": "ses", "sagemaker-runtime": "sagemaker"}
SAGEMAKER_SERVICE = "sagemaker.amazonaws.com"


@dataclass(frozen=True)
class Check:
    """One authorisation IAM makes for a request: ``action`` on ``resource`` with condition ``context``."""

    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Operation:
    """The API operation a request calls and its parameters (JSON body, query fields or URI labels)."""

    service: str  # signing name, or "sagemaker-runtime"
    name: str
    params: Mapping[str, Any]


# SageMaker operation -> (resource type, name parameter) pairs ("Actions defined by Amazon SageMaker AI"). SageMaker
# ARNs carry the name in lower case (security-checklist.md: "Endpoint ARNs are lowercase").
_SAGEMAKER_RESOURCES: Mapping[str, tuple[tuple[str, str], ...]] = {
    **dict.fromkeys(
        ("CreateTrainingJob", "DescribeTrainingJob", "StopTrainingJob", "UpdateTrainingJob"),
        (("training-job", "TrainingJobName"),),
    ),
    **dict.fromkeys(
        (
            "CreateHyperParameterTuningJob",
            "DescribeHyperParameterTuningJob",
            "StopHyperParameterTuningJob",
            "ListTrainingJobsForHyperParameterTuningJob",
        ),
        (("hyper-parameter-tuning-job", "HyperParameterTuningJobName"),),
    ),
    **dict.fromkeys(("CreateModel", "DeleteModel", "DescribeModel"), (("model", "ModelName"),)),
    **dict.fromkeys(
        ("CreateEndpointConfig", "DeleteEndpointConfig", "DescribeEndpointConfig"),
        (("endpoint-config", "EndpointConfigName"),),
    ),
    # "Create/UpdateEndpoint are authorized against the endpoint and the endpoint-config ARN" (security-checklist.md,
    # aws/aws-cdk#11594: the AccessDenied names endpoint-config/<name>).
    "CreateEndpoint": (("endpoint", "EndpointName"), ("endpoint-config", "EndpointConfigName")),
    "UpdateEndpoint": (("endpoint", "EndpointName"), ("endpoint-config", "EndpointConfigName")),
    **dict.fromkeys(
        (
            "DeleteEndpoint",
            "DescribeEndpoint",
            "UpdateEndpointWeightsAndCapacities",
            "InvokeEndpoint",
            "InvokeEndpointAsync",
            "InvokeEndpointWithResponseStream",
        ),
        (("endpoint", "EndpointName"),),
    ),
}
_SAGEMAKER_ARN_PARAM = {"AddTags": "ResourceArn", "ListTags": "ResourceArn", "DeleteTags": "ResourceArn"}
# Operations that pass a role to SageMaker, and where the role ARN sits in the request.
_SAGEMAKER_PASSED_ROLES: Mapping[str, tuple[str, ...]] = {
    "CreateTrainingJob": ("RoleArn",),
    "CreateProcessingJob": ("RoleArn",),
    "CreateModel": ("ExecutionRoleArn",),
    "CreateHyperParameterTuningJob": ("TrainingJobDefinition.RoleArn", "TrainingJobDefinitions[].RoleArn"),
}
# Application Auto Scaling: the writes act on a scalable target ("Actions defined by Application Auto Scaling").
# DynamoDB item operations act on the "table" resource type (arn:...:dynamodb:<region>:<account>:table/<name>), and
# Step Functions' DescribeExecution on the "execution" one, named by its executionArn ("Actions defined by Amazon
# DynamoDB" / "by AWS Step Functions", Service Authorization Reference): the deploy lock's calls.
_DYNAMODB_TABLE_OPS = frozenset({"GetItem", "PutItem", "DeleteItem", "UpdateItem"})
_STATES_EXECUTION_OPS = frozenset({"DescribeExecution", "StopExecution", "GetExecutionHistory"})
_SCALABLE_TARGET_OPS = frozenset(
    {"RegisterScalableTarget", "DeregisterScalableTarget", "PutScalingPolicy", "DeleteScalingPolicy"}
    | {"PutScheduledAction", "DeleteScheduledAction"}
)
# S3 operations whose IAM action has another name ("Actions defined by Amazon S3"; "Amazon S3 actions" in the S3
# user guide: HEAD needs s3:GetObject, ListObjects[V2] and HeadBucket need s3:ListBucket).
_S3_ACTIONS = {
    "HeadObject": "GetObject",
    "ListObjectsV2": "ListBucket",
    "ListObjects": "ListBucket",
    "HeadBucket": "ListBucket",
    "CreateMultipartUpload": "PutObject",
    "UploadPart": "PutObject",
    "CompleteMultipartUpload": "PutObject",
    "CopyObject": "PutObject",
    "DeleteObjects": "DeleteObject",
    "ListParts": "ListMultipartUploadParts",
    "ListMultipartUploads": "ListBucketMultipartUploads",
}


def sagemaker_arn(resource_type: str, name: str) -> str:
    """``arn:aws:sagemaker:<region>:<account>:<type>/<name>`` with the name lower-cased, as SageMaker spells ARNs."""
    return f"arn:{PARTITION}:sagemaker:{REGION}:{ACCOUNT_ID}:{resource_type}/{name.lower()}"


def scalable_target_arn(params: Mapping[str, Any]) -> str:
    """The target's ARN. AWS assigns an opaque id at registration; here it is a digest of what identifies the target
    (ServiceNamespace, ResourceId, ScalableDimension), so every call on one target names the same ARN."""
    key = "|".join(str(params.get(k, "")) for k in ("ServiceNamespace", "ResourceId", "ScalableDimension"))
    return (
        f"arn:{PARTITION}:application-autoscaling:{REGION}:{ACCOUNT_ID}:scalable-target/"
        + (hashlib.sha256(key.encode()).hexdigest()[:36])
    )


def operation_of(service: str, environ: Mapping[str, Any], body: bytes | None) -> Operation | None:
    """The operation a verified request calls, or None when the service's model names none that matches."""
    family = protocol_for(service).family
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    if service == "sagemaker" and not target:  # both SageMaker APIs sign as "sagemaker"; the runtime is REST
        return _rest_operation("sagemaker-runtime", str(environ.get("REQUEST_METHOD", "GET")), environ)
    if family == "json":
        if "." not in target:
            return None
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            params = {}
        return Operation(service, target.rsplit(".", 1)[1], params if isinstance(params, dict) else {})
    if family == "query":
        query = parse_qsl(str(environ.get("QUERY_STRING", "")), keep_blank_values=True)
        form = parse_qsl((body or b"").decode("utf-8", "replace"), keep_blank_values=True)
        fields = dict(reversed(query + form))
        return Operation(service, fields["Action"], fields) if fields.get("Action") else None
    return _rest_operation(service, str(environ.get("REQUEST_METHOD", "GET")), environ)


def _rest_operation(service: str, method: str, environ: Mapping[str, Any]) -> Operation | None:
    model = service_model(botocore_name(service))
    if model is None:
        return None
    path = unquote(str(environ.get("PATH_INFO", "")))
    query = {k for k, _ in parse_qsl(str(environ.get("QUERY_STRING", "")), keep_blank_values=True)}
    best: tuple[int, Operation] | None = None
    for name in model.operation_names:
        http = model.operation_model(name).http
        if http.get("method") != method:
            continue
        template, _, markers = str(http.get("requestUri", "/")).partition("?")
        if any(marker.split("=", 1)[0] not in query for marker in markers.split("&") if marker):
            continue
        labels = _match_uri(template, path)
        if labels is None:
            continue
        score = len(re.sub(r"\{[^}]*\}", "", template)) + 10 * len([m for m in markers.split("&") if m])
        if best is None or score > best[0]:
            best = (score, Operation(service, name, labels))
    return best[1] if best else None


def _match_uri(template: str, path: str) -> dict[str, str] | None:
    pattern = ""
    for part in re.split(r"(\{[^}]+\})", template):
        if part.startswith("{"):
            label = part[1:-1]
            greedy = label.endswith("+")
            pattern += f"(?P<{label.rstrip('+')}>{'.+' if greedy else '[^/]+'})"
        else:
            pattern += re.escape(part)
    found = re.fullmatch(pattern.rstrip("/") + "/?" if pattern != "/" else "/?", path)
    return dict(found.groupdict()) if found else None


def checks_for(op: Operation) -> list[Check]:
    """Every authorisation the operation needs: its own action on each resource, then any iam:PassRole."""
    prefix = IAM_PREFIX.get(op.service, op.service)
    if op.service == "s3":
        return _s3_checks(op)
    action = f"{prefix}:{op.name}"
    resources = ["*"]
    if prefix == "sagemaker":
        if op.name in _SAGEMAKER_RESOURCES:
            resources = [
                sagemaker_arn(kind, str(op.params[param]))
                for kind, param in _SAGEMAKER_RESOURCES[op.name]
                if op.params.get(param)
            ] or ["*"]
        elif op.name in _SAGEMAKER_ARN_PARAM and op.params.get(_SAGEMAKER_ARN_PARAM[op.name]):
            resources = [str(op.params[_SAGEMAKER_ARN_PARAM[op.name]])]
    elif prefix == "application-autoscaling" and op.name in _SCALABLE_TARGET_OPS:
        resources = [scalable_target_arn(op.params)]
    elif prefix == "dynamodb" and op.name in _DYNAMODB_TABLE_OPS and op.params.get("TableName"):
        resources = [f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT_ID}:table/{op.params['TableName']}"]
    elif prefix == "states" and op.name in _STATES_EXECUTION_OPS and op.params.get("executionArn"):
        resources = [str(op.params["executionArn"])]
    elif prefix == "iam" and op.params.get("RoleName"):
        resources = [f"arn:{PARTITION}:iam::{ACCOUNT_ID}:role/{op.params['RoleName']}"]
    elif prefix == "sts" and op.params.get("RoleArn"):
        resources = [str(op.params["RoleArn"])]
    checks = [Check(action, resource) for resource in resources]
    if prefix == "sagemaker":
        for role in _passed_roles(op.params, _SAGEMAKER_PASSED_ROLES.get(op.name, ())):
            checks.append(Check("iam:PassRole", role, {"iam:PassedToService": SAGEMAKER_SERVICE}))
    return checks


def _passed_roles(params: Mapping[str, Any], paths: tuple[str, ...]) -> Iterator[str]:
    seen: set[str] = set()
    for path in paths:
        values: list[Any] = [params]
        for part in path.split("."):
            many = part.endswith("[]")
            key = part.removesuffix("[]")
            nxt: list[Any] = []
            for value in values:
                item = value.get(key) if isinstance(value, dict) else None
                if many and isinstance(item, list):
                    nxt.extend(item)
                elif item is not None:
                    nxt.append(item)
            values = nxt
        for value in values:
            if isinstance(value, str) and value and value not in seen:
                seen.add(value)
                yield value


def _s3_checks(op: Operation) -> list[Check]:
    bucket, key = str(op.params.get("Bucket", "")), str(op.params.get("Key", ""))
    action = "s3:" + _S3_ACTIONS.get(op.name, op.name)
    if key:
        resource = f"arn:{PARTITION}:s3:::{bucket}/{key}"
    elif bucket:
        resource = f"arn:{PARTITION}:s3:::{bucket}"
    else:
        resource = "*"
    return [Check(action, resource)]
