"""template.yaml resource checks from the security checklist (reference/security-checklist.md §6), offline."""

from __future__ import annotations

import re
from typing import Any

import pytest

from local_aws.cloudformation import Resolver, definition_substitutions, stack_outputs
from local_aws.constants import ACCOUNT_ID as ACCOUNT
from local_aws.constants import REPO_ROOT
from tests.unit.stack.stack_helpers import CHECKOV_SKIP_ALLOWLIST, as_list, statements

# Ids from CONTRACTS.md §7, in the order given there.
SUBSTITUTION_KEYS = [
    "SageMakerRoleArn", "ArtifactBucket", "DataBucket", "KmsKeyArn", "TrainingImageUri", "InferenceImageUri",
    "EndpointName", "ResourcePrefix", "Rollback5xxAlarmName", "RollbackLatencyAlarmName",
    "DefaultTrainingInstanceType", "DefaultTrainingInstanceCount", "DefaultUseSpot", "DefaultEndpointInstanceType",
    "DefaultMinCapacity", "DefaultMaxCapacity", "DefaultTargetInvocations", "DefaultAccuracyThreshold",
    "ModelWorkers", "ServingBatchSize", "ServingMaxBatchDelayMs",
]  # fmt: skip

API_GATEWAY_TIMEOUT_S = 29
BINARY_TYPES = {"image/jpeg", "image/png", "application/x-image"}


def of_type(resources: dict[str, Any], rtype: str) -> dict[str, Any]:
    return {k: v for k, v in resources.items() if v["Type"] == rtype}


# ---------------------------------------------------------------------------------------------- parameters
def test_every_parameter_has_a_default_that_satisfies_its_constraints(template: dict[str, Any]) -> None:
    for name, spec in template["Parameters"].items():
        assert "Default" in spec, f"{name} has no default"
        value = str(spec["Default"])
        if "AllowedValues" in spec:
            assert value in [str(v) for v in spec["AllowedValues"]], name
        if "AllowedPattern" in spec:
            assert re.fullmatch(spec["AllowedPattern"], value), f"{name} default {value!r} breaks its pattern"
        if spec["Type"] == "Number":
            number = float(value)
            assert number >= spec.get("MinValue", float("-inf")), name
            assert number <= spec.get("MaxValue", float("inf")), name


def test_issue_parameters_exist_with_documented_defaults(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    assert params["ProjectName"]["Default"] == "dogbreed"
    assert params["EnvironmentName"]["Default"] == "dev"
    assert params["ApiAuthMode"]["Default"] == "IAM"
    assert set(params["ApiAuthMode"]["AllowedValues"]) == {"IAM", "API_KEY"}
    for name in (
        "TrainingImageUri", "InferenceImageUri", "TrainingInstanceType", "TrainingInstanceCount", "UseSpotTraining",
        "EndpointInstanceType", "EndpointMinCapacity", "EndpointMaxCapacity", "TargetInvocationsPerInstance",
        "LambdaReservedConcurrency", "LambdaProvisionedConcurrency", "ApiThrottlingRateLimit",
        "ApiThrottlingBurstLimit", "AccuracyThreshold",
    ):  # fmt: skip
        assert name in params, name
    assert params["LambdaReservedConcurrency"]["MinValue"] >= 1


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "ap-southeast-2"])
def test_default_images_are_the_regional_pytorch_dlcs(template: dict[str, Any], region: str) -> None:
    subs = Resolver(template, region=region).resolve(
        template["Resources"]["TrainDeployStateMachine"]["Properties"]["DefinitionSubstitutions"]
    )
    registry = f"763104351884.dkr.ecr.{region}.amazonaws.com"
    assert subs["TrainingImageUri"] == f"{registry}/pytorch-training:2.6.0-gpu-py312"
    assert subs["InferenceImageUri"] == f"{registry}/pytorch-inference:2.6.0-cpu-py312"


def test_image_parameters_override_the_dlc_defaults(template: dict[str, Any]) -> None:
    custom = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/dogbreed-train:1.0"
    for key, param in (("TrainingImageUri", "TrainingImageUri"), ("InferenceImageUri", "InferenceImageUri")):
        assert re.fullmatch(template["Parameters"][param]["AllowedPattern"], custom)
        subs = Resolver(template, {param: custom}).resolve(
            template["Resources"]["TrainDeployStateMachine"]["Properties"]["DefinitionSubstitutions"]
        )
        assert subs[key] == custom


def test_resource_names_are_lowercase_so_sagemaker_arns_match(template: dict[str, Any]) -> None:
    # SageMaker lowercases resource names in ARNs; mixed case in a policy would never match (checklist §2.6).
    for name in ("ProjectName", "EnvironmentName"):
        pattern = template["Parameters"][name]["AllowedPattern"]
        assert not re.fullmatch(pattern, "Dogbreed"), name
        assert re.fullmatch(pattern, "dogbreed"), name


# ---------------------------------------------------------------------------------------------- buckets
def test_buckets_are_private_versioned_encrypted_and_retained(resolved: dict[str, Any]) -> None:
    buckets = of_type(resolved["Resources"], "AWS::S3::Bucket")
    assert set(buckets) == {"DataBucket", "ArtifactBucket", "AccessLogBucket"}
    for name, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
        }, name  # fmt: skip
        assert props["VersioningConfiguration"]["Status"] == "Enabled", name
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"], name
        assert bucket["DeletionPolicy"] == "Retain", name
        assert bucket["UpdateReplacePolicy"] == "Retain", name
        assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}], name


@pytest.mark.parametrize("bucket", ["DataBucket", "ArtifactBucket"])
def test_data_and_artifacts_use_sse_kms_with_the_project_key_and_log_access(
    resources: dict[str, Any], bucket: str
) -> None:
    props = resources[bucket]["Properties"]
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == {"Fn::GetAtt": ["ProjectKey", "Arn"]}
    assert rule["BucketKeyEnabled"] is True
    assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": "AccessLogBucket"}


def test_access_log_bucket_uses_sse_s3_because_s3_logging_cannot_write_sse_kms(resources: dict[str, Any]) -> None:
    (rule,) = resources["AccessLogBucket"]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}


def test_every_bucket_policy_denies_plain_http_on_bucket_and_objects(resolved: dict[str, Any]) -> None:
    res = resolved["Resources"]
    policies = of_type(res, "AWS::S3::BucketPolicy")
    covered = set()
    for policy in policies.values():
        bucket_name = policy["Properties"]["Bucket"]
        bucket_id = next(
            k for k, v in of_type(res, "AWS::S3::Bucket").items() if v["Properties"]["BucketName"] == bucket_name
        )
        arn = f"arn:aws:s3:::{bucket_name}"
        for stmt in statements(policy["Properties"]["PolicyDocument"]):
            if (
                stmt["Effect"] == "Deny"
                and stmt["Principal"] == "*"
                and stmt["Action"] in ("s3:*", ["s3:*"])
                and stmt.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
                and set(as_list(stmt["Resource"])) == {arn, f"{arn}/*"}
            ):
                covered.add(bucket_id)
    assert covered == {"DataBucket", "ArtifactBucket", "AccessLogBucket"}


def test_access_log_delivery_is_limited_to_our_buckets_and_account(resolved: dict[str, Any]) -> None:
    doc = resolved["Resources"]["AccessLogBucketPolicy"]["Properties"]["PolicyDocument"]
    (allow,) = [s for s in statements(doc) if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert allow["Action"] == "s3:PutObject"
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
    assert set(allow["Condition"]["ArnLike"]["aws:SourceArn"]) == {
        f"arn:aws:s3:::dogbreed-dev-data-{ACCOUNT}-us-east-1",
        f"arn:aws:s3:::dogbreed-dev-artifacts-{ACCOUNT}-us-east-1",
    }


def test_bucket_names_fit_the_63_character_limit_for_the_longest_inputs(template: dict[str, Any]) -> None:
    longest = {"ProjectName": "a" * 16, "EnvironmentName": "b" * 8}
    assert re.fullmatch(template["Parameters"]["ProjectName"]["AllowedPattern"], longest["ProjectName"])
    assert re.fullmatch(template["Parameters"]["EnvironmentName"]["AllowedPattern"], longest["EnvironmentName"])
    resolver = Resolver(template, longest, region="ap-southeast-3")  # one of the longest region names
    for name, bucket in of_type(template["Resources"], "AWS::S3::Bucket").items():
        physical = resolver.resolve(bucket["Properties"]["BucketName"])
        assert len(physical) <= 63, (name, physical)
        assert re.fullmatch(r"[a-z0-9][a-z0-9.-]+[a-z0-9]", physical), physical


# ---------------------------------------------------------------------------------------------- KMS
def test_project_key_rotates_is_retained_and_names_the_roles(resources: dict[str, Any]) -> None:
    key = resources["ProjectKey"]
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"
    assert key["UpdateReplacePolicy"] == "Retain"
    principals: list[Any] = []
    for stmt in statements(key["Properties"]["KeyPolicy"]):
        assert stmt["Principal"] != "*", stmt["Sid"]
        assert stmt["Principal"].get("AWS") != "*", stmt["Sid"]
        principals.append(stmt["Principal"].get("AWS"))
    assert {"Fn::GetAtt": ["SageMakerExecutionRole", "Arn"]} in principals
    assert {"Fn::GetAtt": ["StateMachineRole", "Arn"]} in principals


def test_key_grants_are_only_for_aws_resources_and_logs_use_is_scoped(resolved: dict[str, Any]) -> None:
    for stmt in statements(resolved["Resources"]["ProjectKey"]["Properties"]["KeyPolicy"]):
        actions = as_list(stmt["Action"])
        if "kms:CreateGrant" in actions:
            assert stmt["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}, stmt["Sid"]
        service = stmt["Principal"].get("Service")
        if service == "logs.us-east-1.amazonaws.com":
            assert stmt["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"] == (
                f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:*"
            )
        elif service is not None:
            # The notification topic's publishers: use of the key to publish (Decrypt, GenerateDataKey*), no more.
            assert service in ("events.amazonaws.com", "cloudwatch.amazonaws.com"), stmt["Sid"]
            assert actions == ["kms:Decrypt", "kms:GenerateDataKey*"], stmt["Sid"]
            if service == "cloudwatch.amazonaws.com":  # only this stack's alarms (EventBridge sends no SourceArn)
                assert stmt["Condition"]["ArnLike"]["aws:SourceArn"] == (
                    f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:dogbreed-dev-*"
                )
        if actions == ["kms:*"]:
            assert stmt["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}


# ---------------------------------------------------------------------------------------------- logs
def test_every_log_group_has_retention_kms_and_explicit_policies(resources: dict[str, Any]) -> None:
    groups = of_type(resources, "AWS::Logs::LogGroup")
    assert set(groups) == {"InferenceFunctionLogGroup", "StateMachineLogGroup", "ApiAccessLogGroup"}
    for name, group in groups.items():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionInDays"}, name
        assert group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": ["ProjectKey", "Arn"]}, name
        assert "DeletionPolicy" in group and "UpdateReplacePolicy" in group, name


def test_lambda_log_group_is_declared_for_the_function(resolved: dict[str, Any]) -> None:
    res = resolved["Resources"]
    fn = res["InferenceFunction"]["Properties"]
    group = res["InferenceFunctionLogGroup"]["Properties"]["LogGroupName"]
    assert group == f"/aws/lambda/{fn['FunctionName']}"
    assert fn["LoggingConfig"]["LogGroup"] == group


# ---------------------------------------------------------------------------------------------- state machine
def test_state_machine_wiring(resources: dict[str, Any]) -> None:
    sm = resources["TrainDeployStateMachine"]
    assert sm["Type"] == "AWS::Serverless::StateMachine"
    props = sm["Properties"]
    assert props["DefinitionUri"] == "statemachine/train_and_deploy.asl.json"
    assert props["Role"] == {"Fn::GetAtt": ["StateMachineRole", "Arn"]}
    assert props["Tracing"] == {"Enabled": True}
    logging = props["Logging"]
    assert logging["Level"] in ("ALL", "ERROR")
    assert logging["IncludeExecutionData"] is False
    assert logging["Destinations"] == [
        {"CloudWatchLogsLogGroup": {"LogGroupArn": {"Fn::GetAtt": ["StateMachineLogGroup", "Arn"]}}}
    ]


def test_definition_substitutions_are_exactly_the_contract_keys(resources: dict[str, Any]) -> None:
    subs = resources["TrainDeployStateMachine"]["Properties"]["DefinitionSubstitutions"]
    assert sorted(subs) == sorted(SUBSTITUTION_KEYS)
    contracts = (REPO_ROOT / "docs" / "CONTRACTS.md").read_text()
    section = contracts.split("DefinitionSubstitutions keys", 1)[1].split("(Numbers/booleans", 1)[0]
    assert sorted(re.findall(r"`(\w+)`", section)) == sorted(SUBSTITUTION_KEYS)


def test_definition_substitutions_resolve_to_strings(template: dict[str, Any], resolver: Resolver) -> None:
    subs = resolver.resolve(template["Resources"]["TrainDeployStateMachine"]["Properties"]["DefinitionSubstitutions"])
    assert all(isinstance(v, str) and v for v in subs.values()), subs
    assert subs["EndpointName"] == subs["ResourcePrefix"] == "dogbreed-dev"
    assert subs["Rollback5xxAlarmName"] == "dogbreed-dev-endpoint-5xx"
    assert subs["RollbackLatencyAlarmName"] == "dogbreed-dev-endpoint-latency"
    assert subs["DataBucket"] == f"dogbreed-dev-data-{ACCOUNT}-us-east-1"
    assert subs["ArtifactBucket"] == f"dogbreed-dev-artifacts-{ACCOUNT}-us-east-1"
    # No RoleName: CloudFormation names the role <stack>-<LogicalId>-<random> (aws-properties-name.html).
    assert re.fullmatch(
        rf"arn:aws:iam::{ACCOUNT}:role/dogbreed-dev-SageMakerExecutionRole-[A-Z0-9]{{12}}", subs["SageMakerRoleArn"]
    )
    assert subs["DefaultUseSpot"] in ("true", "false")
    assert 0 <= float(subs["DefaultAccuracyThreshold"]) <= 1
    assert int(subs["DefaultMinCapacity"]) <= int(subs["DefaultMaxCapacity"])
    # The local runtime's DefinitionSubstitutions are these very values.
    assert definition_substitutions(template) == subs


def test_asl_placeholders_equal_the_substitution_keys(asl_text: str, resources: dict[str, Any]) -> None:
    placeholders = set(re.findall(r"\$\{([^}]*)\}", asl_text))
    subs = set(resources["TrainDeployStateMachine"]["Properties"]["DefinitionSubstitutions"])
    assert placeholders == subs


# ---------------------------------------------------------------------------------------------- function
def test_inference_function_settings(resources: dict[str, Any]) -> None:
    fn = resources["InferenceFunction"]
    props = fn["Properties"]
    assert fn["Metadata"]["BuildMethod"] == "makefile"
    assert props["CodeUri"] == "functions/inference/"
    assert props["Handler"] == "app.lambda_handler"
    assert props["Runtime"] == "python3.13"
    assert props["Role"] == {"Fn::GetAtt": ["InferenceFunctionRole", "Arn"]}
    assert props["ReservedConcurrentExecutions"] == {"Ref": "LambdaReservedConcurrency"}
    assert props["AutoPublishAlias"]
    assert props["Tracing"] == "Active"
    env = props["Environment"]["Variables"]
    assert env["ENDPOINT_NAME"] == {"Fn::Sub": "${ProjectName}-${EnvironmentName}"}
    assert {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"} <= set(env)


def test_function_timeout_is_below_the_api_gateway_limit_and_matches_the_code(resources: dict[str, Any]) -> None:
    props = resources["InferenceFunction"]["Properties"]
    assert props["Timeout"] < API_GATEWAY_TIMEOUT_S
    assert float(props["Environment"]["Variables"]["FUNCTION_TIMEOUT_SECONDS"]) == props["Timeout"]


def test_function_client_budget_fits_the_template_timeout(template: dict[str, Any], resolver: Resolver) -> None:
    config = pytest.importorskip("config", reason="functions/inference/config.py not written yet")
    env = resolver.resolve(template["Resources"]["InferenceFunction"]["Properties"]["Environment"]["Variables"])
    settings = config.Settings.from_env(env)  # raises ConfigurationError if the budget does not fit
    assert settings.endpoint_name == "dogbreed-dev"
    assert settings.worst_case_seconds < template["Resources"]["InferenceFunction"]["Properties"]["Timeout"]


@pytest.mark.parametrize(("provisioned", "expected"), [("0", None), ("3", {"ProvisionedConcurrentExecutions": "3"})])
def test_provisioned_concurrency_follows_its_condition(
    template: dict[str, Any], provisioned: str, expected: dict[str, str] | None
) -> None:
    props = Resolver(template, {"LambdaProvisionedConcurrency": provisioned}).resolve(
        template["Resources"]["InferenceFunction"]["Properties"]
    )
    assert props.get("ProvisionedConcurrencyConfig") == expected
    assert props["AutoPublishAlias"]  # provisioned concurrency attaches to the alias


# ---------------------------------------------------------------------------------------------- API
def test_api_is_explicit_traced_logged_and_throttled(resources: dict[str, Any]) -> None:
    api = resources["InferenceApi"]
    assert api["Type"] == "AWS::Serverless::Api"
    props = api["Properties"]
    assert props["TracingEnabled"] is True
    assert props["AccessLogSetting"]["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    assert "$context.requestId" in props["AccessLogSetting"]["Format"]
    settings, demo = props["MethodSettings"]
    assert settings["ResourcePath"] == "/*" and settings["HttpMethod"] == "*"
    assert settings["ThrottlingRateLimit"] == {"Ref": "ApiThrottlingRateLimit"}
    assert settings["ThrottlingBurstLimit"] == {"Ref": "ApiThrottlingBurstLimit"}
    # The demo page (open when enabled) has its own, lower limit; "~1" is "/" in a MethodSettings resource path.
    assert demo["ResourcePath"] == "/~1demo" and demo["HttpMethod"] == "GET"
    assert demo["ThrottlingRateLimit"] < 20 and demo["ThrottlingBurstLimit"] < 40  # below the stage defaults
    for setting in (settings, demo):
        assert setting.get("DataTraceEnabled") is False  # request bodies (images) never go to logs


def test_binary_media_types_are_the_image_types_and_not_a_wildcard(resources: dict[str, Any]) -> None:
    raw = resources["InferenceApi"]["Properties"]["BinaryMediaTypes"]
    types = {t.replace("~1", "/") for t in raw}
    assert types == BINARY_TYPES
    assert "*/*" not in types


def test_function_routes_are_the_contract_routes_on_the_explicit_api(resources: dict[str, Any]) -> None:
    events = resources["InferenceFunction"]["Properties"]["Events"]
    routes = set()
    for event in events.values():
        assert event["Type"] == "Api"
        assert event["Properties"]["RestApiId"] == {"Ref": "InferenceApi"}
        assert "Auth" not in event["Properties"], "auth is defined once, on the API definition"
        routes.add((event["Properties"]["Method"].upper(), event["Properties"]["Path"]))
    assert routes == {("POST", "/predict"), ("GET", "/health"), ("GET", "/demo")}


@pytest.mark.parametrize(("mode", "scheme"), [("IAM", "sigv4"), ("API_KEY", "api_key")])
def test_every_route_requires_the_selected_auth(template: dict[str, Any], mode: str, scheme: str) -> None:
    resolver = Resolver(template, {"ApiAuthMode": mode})
    body = resolver.resolve(template["Resources"]["InferenceApi"]["Properties"]["DefinitionBody"])
    schemes = body["securityDefinitions"]
    assert schemes["sigv4"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    assert schemes["api_key"] == {"type": "apiKey", "name": "x-api-key", "in": "header"}
    events = template["Resources"]["InferenceFunction"]["Properties"]["Events"].values()
    for event in events:
        method = body["paths"][event["Properties"]["Path"]][event["Properties"]["Method"].lower()]
        assert method["security"] == [{scheme: []}], (mode, event["Properties"]["Path"])
    # No route on the API is left without auth (DemoPage is Disabled by default).
    for path, methods in body["paths"].items():
        for verb, method in methods.items():
            assert method.get("security"), (path, verb)


@pytest.mark.parametrize(("mode", "scheme"), [("IAM", "sigv4"), ("API_KEY", "api_key")])
def test_demo_page_enabled_opens_only_its_own_get(template: dict[str, Any], mode: str, scheme: str) -> None:
    """Security checklist 14 (no method with auth NONE) has one opt-in exception: the static page, when enabled."""
    resolver = Resolver(template, {"ApiAuthMode": mode, "DemoPage": "Enabled"})
    body = resolver.resolve(template["Resources"]["InferenceApi"]["Properties"]["DefinitionBody"])
    open_methods = {
        (path, verb) for path, methods in body["paths"].items() for verb, m in methods.items() if not m["security"]
    }
    assert open_methods == {("/demo", "get")}
    assert body["paths"]["/predict"]["post"]["security"] == [{scheme: []}]
    env = resolver.resolve(template["Resources"]["InferenceFunction"]["Properties"]["Environment"]["Variables"])
    assert env["DEMO_PAGE"] == "Enabled" and env["API_AUTH_MODE"] == mode


@pytest.mark.parametrize("mode", ["IAM", "API_KEY"])
def test_usage_plan_and_key_exist_only_in_api_key_mode(template: dict[str, Any], mode: str) -> None:
    resolver = Resolver(template, {"ApiAuthMode": mode})
    for logical_id in ("ApiUsagePlan", "ApiKey", "ApiUsagePlanKey"):
        assert resolver.resource_exists(logical_id) is (mode == "API_KEY"), logical_id
        assert (logical_id in resolver.resolve_resources()) is (mode == "API_KEY"), logical_id
    plan = resolver.resolve(template["Resources"]["ApiUsagePlan"]["Properties"])
    assert plan["Throttle"] == {"RateLimit": "20", "BurstLimit": "40"}
    assert plan["Quota"]["Period"] == "DAY"


# ---------------------------------------------------------------------------------------------- alarms
@pytest.mark.parametrize(
    ("alarm", "metric", "substitution"),
    [
        ("EndpointInvocation5xxAlarm", "Invocation5XXErrors", "Rollback5xxAlarmName"),
        ("EndpointModelLatencyAlarm", "ModelLatency", "RollbackLatencyAlarmName"),
    ],
)
def test_rollback_alarms_watch_the_stable_endpoint(
    resolved: dict[str, Any], resources: dict[str, Any], alarm: str, metric: str, substitution: str
) -> None:
    props = resolved["Resources"][alarm]["Properties"]
    assert props["Namespace"] == "AWS/SageMaker"
    assert props["MetricName"] == metric
    dims = {d["Name"]: d["Value"] for d in props["Dimensions"]}
    assert dims["EndpointName"] == "dogbreed-dev"
    assert dims["VariantName"] == "AllTraffic"
    subs = resources["TrainDeployStateMachine"]["Properties"]["DefinitionSubstitutions"]
    assert subs[substitution] == {"Ref": alarm}


def test_alarm_variant_is_the_variant_the_asl_deploys(asl: dict[str, Any], resolved: dict[str, Any]) -> None:
    variants: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("VariantName"), str):
                variants.add(node["VariantName"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(asl)
    dims = {
        d["Name"]: d["Value"] for d in resolved["Resources"]["EndpointInvocation5xxAlarm"]["Properties"]["Dimensions"]
    }
    assert variants == {dims["VariantName"]}


# ---------------------------------------------------------------------------------------------- checkov / outputs
def test_every_checkov_skip_is_allowlisted_and_justified(template: dict[str, Any]) -> None:
    seen = 0
    for logical_id, resource in template["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            seen += 1
            assert skip["id"] in CHECKOV_SKIP_ALLOWLIST, (logical_id, skip["id"])
            assert logical_id in CHECKOV_SKIP_ALLOWLIST[skip["id"]], (logical_id, skip["id"])
            assert len(skip.get("comment", "").strip()) >= 40, f"{logical_id}/{skip['id']} needs a real reason"
    assert seen >= 1


def test_outputs_expose_what_operators_need(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    for name in (
        "ApiUrl", "StateMachineArn", "DataBucketName", "ArtifactBucketName", "EndpointName",
        "SageMakerExecutionRoleArn", "StateMachineRoleArn", "InferenceFunctionRoleArn",
    ):  # fmt: skip
        assert name in outputs, name
    resolver = Resolver(template)
    assert resolver.resolve(outputs["EndpointName"]["Value"]) == "dogbreed-dev"
    assert resolver.resolve(outputs["StateMachineArn"]["Value"]) == (
        f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:dogbreed-dev-train-deploy"
    )


@pytest.mark.parametrize("mode", ["IAM", "API_KEY"])
def test_stack_outputs_as_describe_stacks_reports_them(template: dict[str, Any], mode: str) -> None:
    resolver = Resolver(template, {"ApiAuthMode": mode})
    outputs = stack_outputs(template, resolver)
    # ApiKeyId has Condition UseApiKey: CloudFormation leaves it out otherwise (outputs-section-structure.html).
    assert ("ApiKeyId" in outputs) is (mode == "API_KEY")
    assert "DemoPageUrl" not in outputs  # Condition HasDemoPage: DemoPage is Disabled by default
    assert set(outputs) | {"ApiKeyId", "DemoPageUrl"} == set(template["Outputs"])
    assert outputs["DataBucketName"] == f"dogbreed-dev-data-{ACCOUNT}-us-east-1"
    assert outputs["StateMachineArn"] == resolver.ref("TrainDeployStateMachine")
    assert re.fullmatch(r"https://[a-z0-9]{10}\.execute-api\.us-east-1\.amazonaws\.com/v1", outputs["ApiUrl"])
    assert outputs["PredictUrl"] == outputs["ApiUrl"] + "/predict"
    assert outputs["SageMakerExecutionRoleArn"] == definition_substitutions(template)["SageMakerRoleArn"]
