"""Policy as tests: the IAM in template.yaml grants exactly what the ASL and the function use, on scoped ARNs."""

from __future__ import annotations

import re
from typing import Any

import pytest

from local_aws.cloudformation import Resolver, definition_substitutions
from local_aws.constants import ACCOUNT_ID as ACCOUNT
from tests.unit.stack.stack_helpers import CONTRACTS_PATH, as_list, role_statements, statements

PREFIX = "dogbreed-dev"
SM_ARN = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}"
SLR_ARN = (
    f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
    "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
)

# Step Functions needs these for logging and X-Ray; the ASL never calls them (checklist §2.3).
SFN_SERVICE_ACTIONS = {
    ("logs", "CreateLogDelivery"), ("logs", "GetLogDelivery"), ("logs", "UpdateLogDelivery"),
    ("logs", "DeleteLogDelivery"), ("logs", "ListLogDeliveries"), ("logs", "PutResourcePolicy"),
    ("logs", "DescribeResourcePolicies"), ("logs", "DescribeLogGroups"),
    ("xray", "PutTraceSegments"), ("xray", "PutTelemetryRecords"), ("xray", "GetSamplingRules"),
    ("xray", "GetSamplingTargets"),
}  # fmt: skip
# Implicit in the ASL's calls: CreateTrainingJob/CreateModel/CreateHyperParameterTuningJob pass the SageMaker role,
# and the first RegisterScalableTarget creates the autoscaling service-linked role (CONTRACTS.md §7).
# Checked by AWS on the caller's behalf, never called by the ASL: PassRole (CreateTrainingJob/CreateModel), the
# autoscaling service-linked role and the variant resize that RegisterScalableTarget requires of the caller.
IMPLICIT_ACTIONS = {
    ("iam", "PassRole"),
    ("iam", "CreateServiceLinkedRole"),
    ("sagemaker", "UpdateEndpointWeightsAndCapacities"),
}

# The only statements allowed to use Resource "*", each because the action has no resource-level permission.
STAR_RESOURCE_ALLOWLIST = {
    ("StateMachineRole", "LogDelivery"),
    ("StateMachineRole", "XRay"),
    ("StateMachineRole", "DescribeScalableTargets"),
    ("SageMakerExecutionRole", "EcrAuthToken"),
    ("SageMakerExecutionRole", "SageMakerMetrics"),
    ("InferenceFunctionRole", "XRay"),
}
SERVICE_PREFIX = {"applicationautoscaling": "application-autoscaling", "sfn": "states"}


def asl_service_actions(asl: dict[str, Any]) -> set[tuple[str, str]]:
    """(IAM service prefix, PascalCase action) for every aws-sdk (or optimized DynamoDB) Task Resource in the ASL."""
    found: set[tuple[str, str]] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            resource = node.get("Resource")
            if node.get("Type") == "Task" and isinstance(resource, str):
                match = re.fullmatch(r"arn:aws:states:::(?:aws-sdk:)?([a-z0-9]+):([a-zA-Z0-9]+)(\.\w+)?", resource)
                assert match, f"not an aws-sdk integration: {resource}"
                service, action = match.group(1), match.group(2)
                found.add((SERVICE_PREFIX.get(service, service), action[0].upper() + action[1:]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(asl)
    return found


def granted_actions(stmts: list[dict[str, Any]]) -> set[tuple[str, str]]:
    pairs = set()
    for stmt in stmts:
        assert stmt["Effect"] == "Allow", stmt.get("Sid")
        for action in as_list(stmt["Action"]):
            service, name = action.split(":", 1)
            pairs.add((service, name))
    return pairs


def contract_actions() -> set[tuple[str, str]]:
    text = CONTRACTS_PATH.read_text()
    section = text.split("Service actions the ASL calls", 1)[1].split("If the ASL needs one more", 1)[0]
    pairs = set()
    for service, actions in re.findall(
        r"(?:\n|; )(sagemaker|application-autoscaling|dynamodb|states):\s*([^;]+?)(?=;|\.\s)", section
    ):
        pairs |= {(service, a.strip()) for a in actions.split(",") if a.strip()}
    return pairs


@pytest.fixture(scope="module")
def sfn_statements(resolved: dict[str, Any]) -> list[dict[str, Any]]:
    return role_statements(resolved, "StateMachineRole")


# ---------------------------------------------------------------------------------------------- state machine role
def test_contract_lists_the_actions_the_role_grants(sfn_statements: list[dict[str, Any]]) -> None:
    contract = contract_actions()
    assert len(contract) == 25, sorted(contract)  # 16 sagemaker + 5 application-autoscaling + 3 dynamodb + 1 states
    assert granted_actions(sfn_statements) - SFN_SERVICE_ACTIONS - IMPLICIT_ACTIONS == contract


def test_state_machine_role_grants_exactly_what_the_asl_calls(
    asl: dict[str, Any], sfn_statements: list[dict[str, Any]]
) -> None:
    called = asl_service_actions(asl)
    granted = granted_actions(sfn_statements) - SFN_SERVICE_ACTIONS - IMPLICIT_ACTIONS
    assert called - granted == set(), "the ASL calls actions the role does not grant"
    assert granted - called == set(), "the role grants actions the ASL never calls"


def test_sagemaker_actions_are_on_prefix_scoped_arns(sfn_statements: list[dict[str, Any]]) -> None:
    allowed = {
        f"{SM_ARN}:training-job/{PREFIX}-*",
        f"{SM_ARN}:hyper-parameter-tuning-job/{PREFIX}-*",
        f"{SM_ARN}:model/{PREFIX}-*",
        f"{SM_ARN}:endpoint-config/{PREFIX}-*",
        f"{SM_ARN}:endpoint/{PREFIX}",
    }
    for stmt in sfn_statements:
        if any(a.startswith("sagemaker:") for a in as_list(stmt["Action"])):
            resources = set(as_list(stmt["Resource"]))
            assert resources <= allowed, (stmt["Sid"], resources - allowed)


def test_endpoint_calls_cover_the_endpoint_and_its_configs(sfn_statements: list[dict[str, Any]]) -> None:
    # Create/UpdateEndpoint are authorized against both ARNs (checklist §2.2).
    for action in ("sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint"):
        resources = {r for s in sfn_statements if action in as_list(s["Action"]) for r in as_list(s["Resource"])}
        assert {f"{SM_ARN}:endpoint/{PREFIX}", f"{SM_ARN}:endpoint-config/{PREFIX}-*"} <= resources, action


def test_pass_role_is_only_the_sagemaker_role_and_conditioned(
    template: dict[str, Any], resolver: Resolver, resolved: dict[str, Any]
) -> None:
    found = []
    for role_id in ("StateMachineRole", "SageMakerExecutionRole", "InferenceFunctionRole"):
        for stmt in role_statements(resolved, role_id):
            actions = as_list(stmt["Action"])
            assert not any(a in ("iam:*", "iam:Pass*") for a in actions), role_id
            if "iam:PassRole" in actions:
                found.append((role_id, stmt))
    assert len(found) == 1
    role_id, stmt = found[0]
    assert role_id == "StateMachineRole"
    assert as_list(stmt["Action"]) == ["iam:PassRole"]
    # The role CloudFormation creates for SageMakerExecutionRole (no RoleName, so a generated name) ...
    sagemaker_role = resolver.get_att("SageMakerExecutionRole", "Arn")
    assert re.fullmatch(
        rf"arn:aws:iam::{ACCOUNT}:role/dogbreed-dev-SageMakerExecutionRole-[A-Z0-9]{{12}}", sagemaker_role
    )
    assert as_list(stmt["Resource"]) == [sagemaker_role]
    # ... which is the role the ASL passes to SageMaker.
    assert definition_substitutions(template)["SageMakerRoleArn"] == sagemaker_role
    assert stmt.get("Condition") == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


def test_service_linked_role_creation_is_conditioned(sfn_statements: list[dict[str, Any]]) -> None:
    (stmt,) = [s for s in sfn_statements if "iam:CreateServiceLinkedRole" in as_list(s["Action"])]
    assert as_list(stmt["Action"]) == ["iam:CreateServiceLinkedRole"]
    assert as_list(stmt["Resource"]) == [SLR_ARN]
    condition = stmt["Condition"].get("StringLike") or stmt["Condition"].get("StringEquals")
    assert condition == {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}


def test_autoscaling_actions_are_enumerated(sfn_statements: list[dict[str, Any]]) -> None:
    actions = [a for s in sfn_statements for a in as_list(s["Action"]) if a.startswith("application-autoscaling:")]
    assert actions and not any("*" in a for a in actions)
    for stmt in sfn_statements:
        if any(a.startswith("application-autoscaling:") and a != "application-autoscaling:DescribeScalableTargets"
               for a in as_list(stmt["Action"])):  # fmt: skip
            assert as_list(stmt["Resource"]) == [
                f"arn:aws:application-autoscaling:us-east-1:{ACCOUNT}:scalable-target/*"
            ], stmt["Sid"]


def test_state_machine_role_trusts_only_step_functions_in_this_account(resolved: dict[str, Any]) -> None:
    (stmt,) = statements(resolved["Resources"]["StateMachineRole"]["Properties"]["AssumeRolePolicyDocument"])
    assert stmt["Principal"] == {"Service": "states.amazonaws.com"}
    assert stmt["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


# ---------------------------------------------------------------------------------------------- all roles
def test_no_star_action_and_star_resources_only_where_documented(resolved: dict[str, Any]) -> None:
    roles = {k for k, v in resolved["Resources"].items() if v["Type"] == "AWS::IAM::Role"}
    star = set()
    for role_id in roles:
        for stmt in role_statements(resolved, role_id):
            assert stmt["Effect"] == "Allow"
            for action in as_list(stmt["Action"]):
                assert action != "*" and not action.endswith(":*"), (role_id, action)
            if "*" in as_list(stmt["Resource"]):
                star.add((role_id, stmt["Sid"]))
    assert star == STAR_RESOURCE_ALLOWLIST


def test_star_resource_statements_hold_only_unscopable_actions(resolved: dict[str, Any]) -> None:
    # Each allowlisted "*" statement must stay as narrow as it is today: adding an action to it fails here.
    expected = {
        ("StateMachineRole", "XRay"): {
            "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
        },
        ("InferenceFunctionRole", "XRay"): {"xray:PutTraceSegments", "xray:PutTelemetryRecords"},
        ("StateMachineRole", "DescribeScalableTargets"): {"application-autoscaling:DescribeScalableTargets"},
        ("SageMakerExecutionRole", "EcrAuthToken"): {"ecr:GetAuthorizationToken"},
        ("SageMakerExecutionRole", "SageMakerMetrics"): {"cloudwatch:PutMetricData"},
        ("StateMachineRole", "LogDelivery"): {f"logs:{a}" for s, a in SFN_SERVICE_ACTIONS if s == "logs"},
    }  # fmt: skip
    for (role_id, sid), actions in expected.items():
        (stmt,) = [s for s in role_statements(resolved, role_id) if s["Sid"] == sid]
        assert set(as_list(stmt["Action"])) == actions, (role_id, sid)
    (metrics,) = [s for s in role_statements(resolved, "SageMakerExecutionRole") if s["Sid"] == "SageMakerMetrics"]
    assert metrics["Condition"] == {"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}}


@pytest.mark.parametrize(
    ("role_id", "service"),
    [
        ("SageMakerExecutionRole", "sagemaker.amazonaws.com"),
        ("StateMachineRole", "states.amazonaws.com"),
        ("InferenceFunctionRole", "lambda.amazonaws.com"),
        ("ApiGatewayCloudWatchRole", "apigateway.amazonaws.com"),
    ],
)
def test_each_role_trusts_exactly_one_service(resolved: dict[str, Any], role_id: str, service: str) -> None:
    (stmt,) = statements(resolved["Resources"][role_id]["Properties"]["AssumeRolePolicyDocument"])
    assert stmt["Effect"] == "Allow"
    assert stmt["Action"] == "sts:AssumeRole"
    assert stmt["Principal"] == {"Service": service}


def test_only_the_api_gateway_logging_role_uses_a_managed_policy(resolved: dict[str, Any]) -> None:
    for role_id, res in resolved["Resources"].items():
        if res["Type"] != "AWS::IAM::Role":
            continue
        managed = res["Properties"].get("ManagedPolicyArns", [])
        if role_id == "ApiGatewayCloudWatchRole":
            assert managed == ["arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"]
        else:
            assert managed == [], role_id


# ---------------------------------------------------------------------------------------------- lambda role
def test_lambda_role_invokes_only_the_one_endpoint(resolved: dict[str, Any]) -> None:
    stmts = role_statements(resolved, "InferenceFunctionRole")
    sagemaker = [s for s in stmts if any(a.startswith("sagemaker:") for a in as_list(s["Action"]))]
    assert len(sagemaker) == 1
    (stmt,) = sagemaker
    assert as_list(stmt["Action"]) == ["sagemaker:InvokeEndpoint"]
    (arn,) = as_list(stmt["Resource"])
    endpoint = resolved["Resources"]["InferenceFunction"]["Properties"]["Environment"]["Variables"]["ENDPOINT_NAME"]
    assert arn == f"{SM_ARN}:endpoint/{endpoint}"
    assert arn == arn.lower()
    others = granted_actions([s for s in stmts if s is not stmt])
    assert others == {("logs", "CreateLogStream"), ("logs", "PutLogEvents"), ("xray", "PutTraceSegments"),
                      ("xray", "PutTelemetryRecords")}  # fmt: skip
    (logs,) = [s for s in stmts if "logs:PutLogEvents" in as_list(s["Action"])]
    group = resolved["Resources"]["InferenceFunctionLogGroup"]["Properties"]["LogGroupName"]
    assert as_list(logs["Resource"]) == [f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:{group}:*"]


# ---------------------------------------------------------------------------------------------- sagemaker role
def _s3_grants(resolved: dict[str, Any], action: str) -> list[str]:
    return [
        r
        for s in role_statements(resolved, "SageMakerExecutionRole")
        if action in as_list(s["Action"])
        for r in as_list(s["Resource"])
    ]


def test_sagemaker_role_s3_is_limited_to_our_buckets_and_prefixes(resolved: dict[str, Any]) -> None:
    data = f"arn:aws:s3:::{PREFIX}-data-{ACCOUNT}-us-east-1"
    artifacts = f"arn:aws:s3:::{PREFIX}-artifacts-{ACCOUNT}-us-east-1"
    for stmt in role_statements(resolved, "SageMakerExecutionRole"):
        actions = as_list(stmt["Action"])
        if not any(a.startswith("s3:") for a in actions):
            continue
        assert set(actions) <= {"s3:ListBucket", "s3:GetObject", "s3:PutObject"}, stmt["Sid"]
        for resource in as_list(stmt["Resource"]):
            if "s3:ListBucket" in actions:
                assert resource in (data, artifacts)
                assert stmt["Condition"]["StringLike"]["s3:prefix"]
            else:
                assert re.fullmatch(rf"({re.escape(data)}|{re.escape(artifacts)})/[a-z-]+/\*", resource), resource
    # Data is read-only for SageMaker.
    assert not [r for r in _s3_grants(resolved, "s3:PutObject") if r.startswith(data)]


def test_every_s3_location_in_the_asl_is_granted_to_the_sagemaker_role(asl_text: str, resolved: dict[str, Any]) -> None:
    subs = {
        "ArtifactBucket": f"{PREFIX}-artifacts-{ACCOUNT}-us-east-1",
        "DataBucket": f"{PREFIX}-data-{ACCOUNT}-us-east-1",
    }
    locations = set(re.findall(r"s3://\$\{(ArtifactBucket|DataBucket)\}/([a-z0-9-]+)/", asl_text))
    assert locations, "the ASL names no S3 location under the stack's buckets"
    readable = set(_s3_grants(resolved, "s3:GetObject"))
    writable = set(_s3_grants(resolved, "s3:PutObject"))
    listed = {
        p.rstrip("*")
        for s in role_statements(resolved, "SageMakerExecutionRole")
        if "s3:ListBucket" in as_list(s["Action"])
        for p in s["Condition"]["StringLike"]["s3:prefix"]
    }
    for bucket_key, prefix in locations:
        arn = f"arn:aws:s3:::{subs[bucket_key]}/{prefix}/*"
        assert arn in readable, arn
        assert f"{prefix}/" in listed, prefix
        if bucket_key == "ArtifactBucket" and prefix != "code":
            assert arn in writable, arn  # training/tuning output and checkpoints are written by SageMaker


def test_sagemaker_role_pulls_only_dlc_and_project_repositories(resolved: dict[str, Any]) -> None:
    (stmt,) = [s for s in role_statements(resolved, "SageMakerExecutionRole") if s["Sid"] == "PullProjectImages"]
    assert set(as_list(stmt["Resource"])) == {
        "arn:aws:ecr:us-east-1:763104351884:repository/pytorch-training",
        "arn:aws:ecr:us-east-1:763104351884:repository/pytorch-inference",
        f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/{PREFIX.split('-')[0]}-*",
    }


def test_sagemaker_role_reads_only_the_rollback_alarms(resolved: dict[str, Any]) -> None:
    (stmt,) = [s for s in role_statements(resolved, "SageMakerExecutionRole") if s["Sid"] == "RollbackAlarms"]
    names = {
        resolved["Resources"][a]["Properties"]["AlarmName"]
        for a in ("EndpointInvocation5xxAlarm", "EndpointModelLatencyAlarm")
    }
    assert set(as_list(stmt["Resource"])) == {f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:{n}" for n in names}
