"""Deploy ``template.yaml`` into the local AWS, the way CloudFormation would, through the services' own APIs.

Buckets, IAM roles (with their trust and inline policies), log groups, CloudWatch alarms and the state machine
(``DefinitionUri`` with ``DefinitionSubstitutions`` applied textually, as CloudFormation does) are created with boto3
calls against the local edge, so what a deployment leaves is exactly what a user's own tools see. Names, ARNs and
values come from the one CloudFormation resolver. The REST API and its function are served by ``server.py`` from the
same template. Resource types with nothing to emulate here (KMS keys, bucket policies, usage plans) are listed as
skipped; the rest of the template's types are never silently ignored.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from local_aws.cloudformation import Resolver, definition_substitutions, load_template, make_resolver, stack_outputs
from local_aws.constants import SAMCONFIG_PATH, STATE_MACHINE_LOGICAL_ID, TEMPLATE_PATH

LOGGER = logging.getLogger("local_aws.deploy")
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
# Resource types the local runtime has nothing to run for (they only matter to AWS's control planes).
NOT_EMULATED = frozenset(
    {
        "AWS::KMS::Key",
        "AWS::KMS::Alias",
        "AWS::S3::BucketPolicy",
        "AWS::ApiGateway::Account",
        "AWS::ApiGateway::UsagePlan",
        "AWS::ApiGateway::UsagePlanKey",
        "AWS::ApiGateway::ApiKey",
    }
)
# Served by server.py (the REST API and its function), not created through an API.
SERVED = frozenset({"AWS::Serverless::Api", "AWS::Serverless::Function"})


class DeployError(RuntimeError):
    """The template cannot be deployed locally; the message names the resource."""


@dataclass
class StackRecord:
    """What a local deployment produced, and the resolver it resolved the template with.

    NOTE: ``resolver`` is kept so the REST API and its function are served from the same template and parameter
    values the stack was deployed with, without loading and resolving template.yaml again.
    """

    stack_name: str
    outputs: dict[str, str]
    resolver: Resolver = field(repr=False, compare=False)
    physical_ids: dict[str, str] = field(default_factory=dict)
    state_machine_arn: str = ""
    skipped: list[str] = field(default_factory=list)


def substitute(definition: str, substitutions: Mapping[str, str]) -> str:
    """Replace ``${Key}`` placeholders as DefinitionSubstitutions does; every placeholder must have a value.

    Raises:
        DeployError: a placeholder without a value.
    """
    missing = sorted(set(_PLACEHOLDER.findall(definition)) - set(substitutions))
    if missing:
        raise DeployError(f"definition placeholders without a DefinitionSubstitutions value: {missing}")
    return _PLACEHOLDER.sub(lambda m: substitutions[m.group(1)], definition)


def state_machine_definition(
    resolver: Resolver, template_path: Path = TEMPLATE_PATH, logical_id: str = STATE_MACHINE_LOGICAL_ID
) -> str:
    """The state machine's definition with the template's DefinitionSubstitutions applied (valid JSON).

    Args:
        resolver: the deployment's resolver (it holds the loaded template and its parameters).
        template_path: the template; DefinitionUri is relative to its directory.
        logical_id: the state machine.
    """
    props = resolver.template["Resources"][logical_id].get("Properties") or {}
    uri = props.get("DefinitionUri")
    if not isinstance(uri, str):
        raise DeployError(f"{logical_id}: DefinitionUri must be a local file path, got {uri!r}")
    text = (Path(template_path).resolve().parent / uri).read_text(encoding="utf-8")
    subs = definition_substitutions(resolver, logical_id=logical_id)
    definition = substitute(text, subs)
    json.loads(definition)  # a substitution must not break the JSON
    return definition


@contextlib.contextmanager
def _exists_ok(*codes: str) -> Iterator[None]:
    """Creating what a previous start already created is fine (the error code says it exists)."""
    try:
        yield
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in codes:
            raise


def deploy(
    clients: Mapping[str, Any],
    template_path: Path = TEMPLATE_PATH,
    overrides: Mapping[str, str] | None = None,
    *,
    samconfig: Path | None = SAMCONFIG_PATH,
    env: str = "default",
) -> StackRecord:
    """Create (or update) the template's resources in the local AWS.

    Args:
        clients: boto3 clients on the local edge, by service: ``s3``, ``iam``, ``logs``, ``stepfunctions``,
            ``cloudwatch``, ``dynamodb``, ``sns``, ``events``.
        template_path: the SAM template.
        overrides: parameter overrides on top of the samconfig environment's.
        samconfig: samconfig.toml (None: template defaults only).
        env: the samconfig environment.

    Returns:
        The stack's name, outputs, the physical ids it created and the resolver it deployed with.
    """
    template = load_template(template_path)
    resolver = make_resolver(template, overrides, samconfig=samconfig, env=env)
    record = StackRecord(stack_name=resolver.stack_name, outputs=stack_outputs(template, resolver), resolver=resolver)
    for logical_id, resource in template["Resources"].items():
        if not resolver.resource_exists(logical_id):
            continue
        rtype = resource.get("Type", "")
        props = resolver.resolve(resource.get("Properties") or {})
        if rtype == "AWS::S3::Bucket":
            name = resolver.ref(logical_id)
            with _exists_ok("BucketAlreadyOwnedByYou"):
                clients["s3"].create_bucket(Bucket=name)
        elif rtype == "AWS::IAM::Role":
            name = _deploy_role(clients["iam"], resolver.physical_name(logical_id), props)
        elif rtype == "AWS::Logs::LogGroup":
            name = resolver.ref(logical_id)
            with _exists_ok("ResourceAlreadyExistsException"):
                clients["logs"].create_log_group(logGroupName=name)
        elif rtype == "AWS::DynamoDB::Table":
            name = resolver.ref(logical_id)
            with _exists_ok("ResourceInUseException"):
                _deploy_table(clients["dynamodb"], name, props)
        elif rtype == "AWS::Serverless::StateMachine":
            definition = state_machine_definition(resolver, template_path, logical_id)
            name = _deploy_state_machine(clients["stepfunctions"], definition, props)
            record.state_machine_arn = name
        elif rtype == "AWS::CloudWatch::Alarm":
            name = resolver.ref(logical_id)
            _deploy_alarm(clients["cloudwatch"], str(name), props)
        elif rtype == "AWS::CloudWatch::Dashboard":
            name = resolver.ref(logical_id)
            clients["cloudwatch"].put_dashboard(DashboardName=name, DashboardBody=props["DashboardBody"])
        elif rtype == "AWS::SNS::Topic":
            name = _deploy_topic(clients["sns"], resolver.physical_name(logical_id), props)
        elif rtype == "AWS::SNS::TopicPolicy":
            name = resolver.ref(logical_id)
            for topic in props["Topics"]:
                clients["sns"].set_topic_attributes(
                    TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(props["PolicyDocument"])
                )
        elif rtype == "AWS::Events::Rule":
            name = resolver.ref(logical_id)
            _deploy_rule(clients["events"], str(name), props)
        elif rtype in NOT_EMULATED or rtype in SERVED:
            record.skipped.append(f"{logical_id} ({rtype})")
            continue
        else:
            raise DeployError(f"{logical_id}: resource type {rtype} has no local deployment; add it to deploy.py")
        record.physical_ids[logical_id] = str(name)
    return record


def _deploy_role(iam: Any, name: str, props: Mapping[str, Any]) -> str:
    trust = json.dumps(props.get("AssumeRolePolicyDocument") or {})
    try:
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust, Path=str(props.get("Path") or "/"))
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "EntityAlreadyExists":
            raise
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=trust)
    for policy in props.get("Policies") or []:
        iam.put_role_policy(
            RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(policy["PolicyDocument"])
        )
    return name


def _deploy_table(dynamodb: Any, name: str, props: Mapping[str, Any]) -> None:
    # The key and billing the template declares; moto serves the table (SSE and PITR have no local effect).
    dynamodb.create_table(
        TableName=name,
        KeySchema=props["KeySchema"],
        AttributeDefinitions=props["AttributeDefinitions"],
        BillingMode=str(props.get("BillingMode") or "PAY_PER_REQUEST"),
    )


def _deploy_state_machine(sfn: Any, definition: str, props: Mapping[str, Any]) -> str:
    name = str(props["Name"])
    role = str(props["Role"])
    for machine in sfn.list_state_machines()["stateMachines"]:
        if machine["name"] == name:
            sfn.update_state_machine(stateMachineArn=machine["stateMachineArn"], definition=definition, roleArn=role)
            return str(machine["stateMachineArn"])
    arn = sfn.create_state_machine(name=name, definition=definition, roleArn=role, type=props.get("Type", "STANDARD"))
    return str(arn["stateMachineArn"])


# AWS::CloudWatch::Alarm properties that are PutMetricAlarm parameters of the same name (CloudFormation's
# AWS::CloudWatch::Alarm reference); Threshold and the counts are numbers there, strings when they come from a Ref.
_ALARM_PASSTHROUGH = (
    "AlarmDescription",
    "ActionsEnabled",
    "AlarmActions",
    "OKActions",
    "InsufficientDataActions",
    "MetricName",
    "Namespace",
    "Statistic",
    "ExtendedStatistic",
    "Dimensions",
    "Unit",
    "ComparisonOperator",
    "TreatMissingData",
    "EvaluateLowSampleCountPercentile",
    "Metrics",
    "ThresholdMetricId",
    "Tags",
)
_ALARM_INTEGERS = ("Period", "EvaluationPeriods", "DatapointsToAlarm")


def _deploy_alarm(cloudwatch: Any, name: str, props: Mapping[str, Any]) -> None:
    """PutMetricAlarm, as CloudFormation creates (or, on a restart, updates) the alarm; the local CloudWatch
    evaluates it from then on (local_aws/cloudwatch)."""
    params: dict[str, Any] = {key: props[key] for key in _ALARM_PASSTHROUGH if key in props}
    params.update({key: int(props[key]) for key in _ALARM_INTEGERS if key in props})
    if "Threshold" in props:
        params["Threshold"] = float(props["Threshold"])
    cloudwatch.put_metric_alarm(AlarmName=name, **params)


def _deploy_topic(sns: Any, name: str, props: Mapping[str, Any]) -> str:
    """CreateTopic (idempotent for the same name and attributes) and the template's subscriptions; an e-mail
    subscription stays PendingConfirmation, as on AWS until the mail is confirmed (local_aws/events/delivery.py
    keeps what is published in the topic's inbox instead)."""
    attributes = {key: str(props[key]) for key in ("DisplayName", "KmsMasterKeyId") if props.get(key)}
    arn = str(sns.create_topic(Name=name, Attributes=attributes)["TopicArn"])
    for subscription in props.get("Subscription") or []:
        sns.subscribe(TopicArn=arn, Protocol=subscription["Protocol"], Endpoint=subscription["Endpoint"])
    return arn


def _deploy_rule(events: Any, name: str, props: Mapping[str, Any]) -> None:
    """PutRule + PutTargets on the default bus, as CloudFormation's AWS::Events::Rule does."""
    params: dict[str, Any] = {"Name": name, "State": props.get("State", "ENABLED")}
    if props.get("EventPattern") is not None:
        params["EventPattern"] = json.dumps(props["EventPattern"])
    if props.get("ScheduleExpression"):
        params["ScheduleExpression"] = props["ScheduleExpression"]
    if props.get("Description"):
        params["Description"] = props["Description"]
    events.put_rule(**params)
    if props.get("Targets"):
        events.put_targets(Rule=name, Targets=list(props["Targets"]))
