"""What ``Ref`` and ``Fn::GetAtt`` return for each resource type: names, ids and ARNs, fake but stable.

Each type's return values are the ones its page in the CloudFormation resource reference documents ("Return
values"; docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-template-resource-type-ref.html). A
type or attribute missing here raises ``TemplateError`` instead of getting a made-up value; add it here.

A resource without its name property gets a generated physical name ``<stack>-<LogicalId>-<SUFFIX>``, like
CloudFormation's ``MyStack-MyBucket-abcdefghijk1`` (lowercase where the service requires it), truncated to the type's
name limit (docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-name.html). Generated
parts are hashes of account, region, stack and logical id, so they are the same on every run.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from local_aws.cloudformation.template import TemplateError

_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class Identity:
    """Where the stack lives: the values of the account/region/partition pseudo parameters and the stack name."""

    stack_name: str
    region: str
    account_id: str
    partition: str
    url_suffix: str


@dataclass(frozen=True)
class Kind:
    """One resource type: its name property, its ``Ref`` value and ``GetAtt`` attributes, as format patterns.

    Patterns may use ``{partition} {region} {account} {url_suffix}`` and the per-resource fields of
    ``ResourceFields``: ``{name}`` (physical name), ``{id}``/``{id2}`` (10-character ids like API Gateway's),
    ``{uuid}``, ``{upper_id}`` (17 characters, as in IAM unique ids), ``{path}`` (IAM path) and ``{function}``
    (the function a Lambda version or alias belongs to).
    """

    name_property: str | None
    ref: str
    attributes: Mapping[str, str] = field(default_factory=dict)
    max_length: int = 255
    lowercase: bool = False


_FUNCTION_ARN = "arn:{partition}:lambda:{region}:{account}:function:{name}"
_STATE_MACHINE_ARN = "arn:{partition}:states:{region}:{account}:stateMachine:{name}"
_TOPIC_ARN = "arn:{partition}:sns:{region}:{account}:{name}"
_QUEUE_URL = "https://sqs.{region}.{url_suffix}/{account}/{name}"
_BUCKET = Kind(
    "BucketName",
    "{name}",
    {
        "Arn": "arn:{partition}:s3:::{name}",
        "DomainName": "{name}.s3.{url_suffix}",
        "RegionalDomainName": "{name}.s3.{region}.{url_suffix}",
        "DualStackDomainName": "{name}.s3.dualstack.{region}.{url_suffix}",
        "WebsiteURL": "http://{name}.s3-website-{region}.{url_suffix}",
    },
    max_length=63,
    lowercase=True,
)
_FUNCTION = Kind("FunctionName", "{name}", {"Arn": _FUNCTION_ARN}, max_length=64)
_REST_API = Kind(None, "{id}", {"RestApiId": "{id}", "RootResourceId": "{id2}"})

KINDS: dict[str, Kind] = {
    "AWS::S3::Bucket": _BUCKET,
    "AWS::KMS::Key": Kind(
        None, "{uuid}", {"Arn": "arn:{partition}:kms:{region}:{account}:key/{uuid}", "KeyId": "{uuid}"}
    ),
    "AWS::KMS::Alias": Kind("AliasName", "{name}"),
    "AWS::IAM::Role": Kind(
        "RoleName",
        "{name}",
        {"Arn": "arn:{partition}:iam::{account}:role{path}{name}", "RoleId": "AROA{upper_id}"},
        max_length=64,
    ),
    "AWS::IAM::ManagedPolicy": Kind(
        "ManagedPolicyName",
        "arn:{partition}:iam::{account}:policy{path}{name}",
        {"PolicyArn": "arn:{partition}:iam::{account}:policy{path}{name}", "PolicyId": "ANPA{upper_id}"},
        max_length=128,
    ),
    "AWS::Logs::LogGroup": Kind(
        "LogGroupName", "{name}", {"Arn": "arn:{partition}:logs:{region}:{account}:log-group:{name}:*"}, max_length=512
    ),
    "AWS::CloudWatch::Alarm": Kind(
        "AlarmName", "{name}", {"Arn": "arn:{partition}:cloudwatch:{region}:{account}:alarm:{name}"}
    ),
    "AWS::Lambda::Function": _FUNCTION,
    "AWS::Serverless::Function": _FUNCTION,
    # A version's Ref is its ARN; templates here publish one version, so it is version 1.
    "AWS::Lambda::Version": Kind(
        None,
        "arn:{partition}:lambda:{region}:{account}:function:{function}:1",
        {"Version": "1", "FunctionArn": "arn:{partition}:lambda:{region}:{account}:function:{function}:1"},
    ),
    "AWS::Lambda::Alias": Kind(
        "Name",
        "arn:{partition}:lambda:{region}:{account}:function:{function}:{name}",
        {"AliasArn": "arn:{partition}:lambda:{region}:{account}:function:{function}:{name}"},
    ),
    "AWS::StepFunctions::StateMachine": Kind(
        "StateMachineName", _STATE_MACHINE_ARN, {"Arn": _STATE_MACHINE_ARN, "Name": "{name}"}, max_length=80
    ),
    "AWS::Serverless::StateMachine": Kind(
        "Name", _STATE_MACHINE_ARN, {"Arn": _STATE_MACHINE_ARN, "Name": "{name}"}, max_length=80
    ),
    "AWS::SNS::Topic": Kind("TopicName", _TOPIC_ARN, {"TopicArn": _TOPIC_ARN, "TopicName": "{name}"}, max_length=256),
    "AWS::SNS::TopicPolicy": Kind(None, "{id}", {"Id": "{id}"}),
    # A rule on the default event bus: Ref is its name (AWS::Events::Rule return values).
    "AWS::Events::Rule": Kind(
        "Name", "{name}", {"Arn": "arn:{partition}:events:{region}:{account}:rule/{name}"}, max_length=64
    ),
    "AWS::CloudWatch::Dashboard": Kind("DashboardName", "{name}"),
    "AWS::SQS::Queue": Kind(
        "QueueName",
        _QUEUE_URL,
        {"Arn": "arn:{partition}:sqs:{region}:{account}:{name}", "QueueName": "{name}", "QueueUrl": _QUEUE_URL},
        max_length=80,
    ),
    "AWS::DynamoDB::Table": Kind(
        "TableName", "{name}", {"Arn": "arn:{partition}:dynamodb:{region}:{account}:table/{name}"}
    ),
    "AWS::ApiGateway::RestApi": _REST_API,
    "AWS::Serverless::Api": _REST_API,
    "AWS::ApiGateway::Stage": Kind("StageName", "{name}"),
    "AWS::ApiGateway::Deployment": Kind(None, "{id}", {"DeploymentId": "{id}"}),
    "AWS::ApiGateway::ApiKey": Kind(None, "{id}", {"APIKeyId": "{id}"}),
    "AWS::ApiGateway::UsagePlan": Kind(None, "{id}", {"Id": "{id}"}),
    "AWS::ApiGateway::UsagePlanKey": Kind(None, "{id}", {"Id": "{id}"}),
    "AWS::ApiGateway::Account": Kind(None, "{id}", {"Id": "{id}"}),
}


def kind_of(logical_id: str, resource: Mapping[str, Any]) -> Kind:
    """The ``Kind`` of a resource, or ``TemplateError`` naming the type this module does not model."""
    rtype = str(resource.get("Type", ""))
    if rtype not in KINDS:
        raise TemplateError(
            f"no local value for Ref/GetAtt of {logical_id} ({rtype or 'no Type'}); model the type in "
            "local_aws/cloudformation/resources.py"
        )
    return KINDS[rtype]


def token(seed: str, length: int, alphabet: str = _ALNUM) -> str:
    """A stable pseudo-random string of ``length`` characters from ``alphabet``."""
    number = int.from_bytes(hashlib.sha256(seed.encode()).digest(), "big")
    chars = []
    for _ in range(length):
        number, index = divmod(number, len(alphabet))
        chars.append(alphabet[index])
    return "".join(chars)


def generated_name(identity: Identity, logical_id: str, kind: Kind) -> str:
    """The physical name CloudFormation generates when the template sets none: ``<stack>-<LogicalId>-<SUFFIX>``."""
    suffix = token(f"{identity.account_id}/{identity.region}/{identity.stack_name}/{logical_id}/name", 12)
    prefix = f"{identity.stack_name}-{logical_id}"[: kind.max_length - len(suffix) - 1]
    name = f"{prefix}-{suffix}"
    return name.lower() if kind.lowercase else name


class ResourceFields(dict[str, str]):
    """The format fields of one resource, each computed on first use (a name may need intrinsics resolved)."""

    def __init__(
        self,
        identity: Identity,
        logical_id: str,
        resource: Mapping[str, Any],
        resolve: Callable[[Any], Any],
    ) -> None:
        """Fields of ``logical_id``; ``resolve`` resolves a property value, returning None for AWS::NoValue."""
        super().__init__(
            partition=identity.partition,
            region=identity.region,
            account=identity.account_id,
            url_suffix=identity.url_suffix,
        )
        self.identity = identity
        self.logical_id = logical_id
        self.kind = kind_of(logical_id, resource)
        self.properties: Mapping[str, Any] = resource.get("Properties") or {}
        self.resolve = resolve

    def _seed(self, what: str) -> str:
        ident = self.identity
        return f"{ident.account_id}/{ident.region}/{ident.stack_name}/{self.logical_id}/{what}"

    def _property_text(self, name: str) -> str | None:
        if name not in self.properties:
            return None
        value = self.resolve(self.properties[name])
        if value is None or isinstance(value, str):
            return value
        raise TemplateError(f"{self.logical_id}.{name} must resolve to a string, got {value!r}")

    def __missing__(self, key: str) -> str:
        value: str | None
        if key == "name":
            prop = self.kind.name_property
            value = self._property_text(prop) if prop else None
            value = value or generated_name(self.identity, self.logical_id, self.kind)
        elif key in ("id", "id2"):
            value = token(self._seed(key), 10, "0123456789abcdefghijklmnopqrstuvwxyz")
        elif key == "upper_id":
            value = token(self._seed(key), 17)
        elif key == "uuid":
            value = str(uuid.uuid5(uuid.NAMESPACE_URL, self._seed("uuid")))
        elif key == "path":
            value = self._property_text("Path") or "/"
        elif key == "function":
            target = self._property_text("FunctionName")
            if target is None:
                raise TemplateError(f"{self.logical_id} has no FunctionName")
            # FunctionName may be a name or an ARN (arn:aws:lambda:region:account:function:name[:qualifier]).
            value = target.split(":function:", 1)[1].split(":", 1)[0] if ":function:" in target else target
        else:
            raise TemplateError(f"resource pattern field {{{key}}} is not defined")
        self[key] = value
        return value
