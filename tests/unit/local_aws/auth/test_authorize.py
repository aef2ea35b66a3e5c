"""local_aws.auth.authorize + role_sessions at the edge: role sessions get exactly what the template's policies allow.

The roles are template.yaml's own (resolved as the deployment resolves them) in moto's IAM; the sessions are moto
STS sessions, as Step Functions' and Lambda's are locally. Real boto3 clients sign with the session's key, secret and
token and reach the edge in-process; the service behind it only records what got through.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.iam.models import iam_backends
from werkzeug.test import Client

from local_aws.auth import actions
from local_aws.auth.credentials import ChainCredentialStore, IssuedCredentials, StaticCredentialStore
from local_aws.auth.role_sessions import (
    LAMBDA_SERVICE,
    STATES_SERVICE,
    AssumedRoleStore,
    RoleCredentials,
    RoleNotAssumable,
    RoleSessions,
    assume_role,
)
from local_aws.cloudformation import load_template, make_resolver
from local_aws.constants import ACCOUNT_ID, ASL_PATH, PARTITION, TEMPLATE_PATH
from local_aws.edge import Edge
from tests.unit.local_aws.wsgi_boto3 import ACCESS_KEY_ID, ENDPOINT, REGION, SECRET_ACCESS_KEY, route_to_app

OPERATOR = IssuedCredentials(
    ACCESS_KEY_ID, SECRET_ACCESS_KEY, ACCOUNT_ID, f"arn:aws:iam::{ACCOUNT_ID}:user/local-operator", "local-operator"
)
PREFIX = "dogbreed-dev"  # the template's ProjectName-EnvironmentName defaults
SM_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT_ID}"


class Recorder:
    """The service behind the edge: answers ``{}`` and records each operation that got through."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        self.calls.append(str(environ.get("HTTP_X_AMZ_TARGET") or environ.get("PATH_INFO")))
        start_response("200 OK", [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", "2")])
        return [b"{}"]


def _template_role(logical_id: str, drop: str | None = None) -> dict[str, Any]:
    """The role's properties from template.yaml, resolved; ``drop`` removes one action from every statement."""
    template = load_template(TEMPLATE_PATH)
    props: dict[str, Any] = make_resolver(template, {}).resolve(template["Resources"][logical_id]["Properties"])
    for policy in props["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            statement["Action"] = [a for a in actions if a != drop] or ["none:Nothing"]
    return props


@pytest.fixture
def make_role() -> Iterator[Callable[..., str]]:
    """Create a role in moto's IAM with the template's policies of ``logical_id`` (named uniquely); returns its ARN."""
    backend = iam_backends[ACCOUNT_ID][PARTITION]
    made: list[str] = []

    def make(logical_id: str, drop: str | None = None, extra: dict[str, Any] | None = None) -> str:
        props = _template_role(logical_id, drop)
        name = f"{logical_id}-{uuid.uuid4().hex[:8]}"
        role = backend.create_role(name, json.dumps(props["AssumeRolePolicyDocument"]), "/", None, "", [], None)
        for policy in props["Policies"]:
            backend.put_role_policy(name, policy["PolicyName"], json.dumps(policy["PolicyDocument"]))
        if extra is not None:
            backend.put_role_policy(name, "extra", json.dumps(extra))
        made.append(name)
        return str(role.arn)

    yield make
    for name in made:
        for policy in backend.list_role_policies(name):
            backend.delete_role_policy(name, policy)
        backend.delete_role(name)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def edge(recorder: Recorder) -> Edge:
    store = ChainCredentialStore(StaticCredentialStore(OPERATOR), AssumedRoleStore())
    return Edge(store, {"sagemaker": recorder, "application-autoscaling": recorder}, recorder)


def _client(service: str, edge: Edge, creds: RoleCredentials | None) -> Any:
    keys = (
        {"aws_access_key_id": ACCESS_KEY_ID, "aws_secret_access_key": SECRET_ACCESS_KEY}
        if creds is None
        else {
            "aws_access_key_id": creds.access_key_id,
            "aws_secret_access_key": creds.secret_access_key,
            "aws_session_token": creds.session_token,
        }
    )
    client = boto3.client(
        service, endpoint_url=ENDPOINT, region_name=REGION, config=Config(retries={"total_max_attempts": 1}), **keys
    )
    return route_to_app(client, edge)


def _denied(exc: pytest.ExceptionInfo[ClientError], session: RoleCredentials, action: str, resource: str) -> None:
    error = exc.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert error["Message"] == (
        f"User: {session.session_arn} is not authorized to perform: {action} on resource: {resource} "
        f"because no identity-based policy allows the {action} action"
    )
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_the_state_machine_role_may_make_the_calls_its_policy_grants(
    edge: Edge, recorder: Recorder, make_role: Callable[..., str]
) -> None:
    """CreateEndpointConfig on the project's prefix is allowed; on another name it is not (resource-scoped)."""
    session = assume_role(make_role("StateMachineRole"), "exec-1")
    sm = _client("sagemaker", edge, session)
    variants = [{"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.m5.large"}]
    sm.create_endpoint_config(EndpointConfigName=f"{PREFIX}-cfg-1", ProductionVariants=variants)
    assert recorder.calls == ["SageMaker.CreateEndpointConfig"]
    with pytest.raises(ClientError) as exc:
        sm.create_endpoint_config(EndpointConfigName="Other-Cfg", ProductionVariants=variants)
    _denied(exc, session, "sagemaker:CreateEndpointConfig", f"{SM_ARN}:endpoint-config/other-cfg")
    assert recorder.calls == ["SageMaker.CreateEndpointConfig"]


def test_removing_an_action_from_the_template_denies_exactly_that_call(
    edge: Edge, recorder: Recorder, make_role: Callable[..., str]
) -> None:
    """The template's role without sagemaker:CreateEndpointConfig: that call fails with AWS's text, others pass."""
    session = assume_role(make_role("StateMachineRole", drop="sagemaker:CreateEndpointConfig"), "exec-2")
    sm = _client("sagemaker", edge, session)
    sm.describe_endpoint_config(EndpointConfigName=f"{PREFIX}-cfg-1")
    with pytest.raises(ClientError) as exc:
        sm.create_endpoint_config(
            EndpointConfigName=f"{PREFIX}-cfg-1",
            ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.m5.large"}],
        )
    _denied(exc, session, "sagemaker:CreateEndpointConfig", f"{SM_ARN}:endpoint-config/{PREFIX}-cfg-1")
    assert recorder.calls == ["SageMaker.DescribeEndpointConfig"]


def test_update_endpoint_is_also_authorised_on_the_endpoint_config(edge: Edge, make_role: Callable[..., str]) -> None:
    """UpdateEndpoint names two resources; a config outside the project's prefix is refused by name."""
    session = assume_role(make_role("StateMachineRole"), "exec-3")
    with pytest.raises(ClientError) as exc:
        _client("sagemaker", edge, session).update_endpoint(EndpointName=PREFIX, EndpointConfigName="elsewhere")
    _denied(exc, session, "sagemaker:UpdateEndpoint", f"{SM_ARN}:endpoint-config/elsewhere")


def test_passing_a_role_needs_iam_pass_role_on_that_role(
    edge: Edge, recorder: Recorder, make_role: Callable[..., str]
) -> None:
    """CreateTrainingJob passes RoleArn: the template lets the pipeline pass the SageMaker role, and no other."""
    sagemaker_role = make_role("SageMakerExecutionRole")
    machine_role = make_role("StateMachineRole")
    # The template's PassRole statement names the SageMaker role by its template ARN; grant this test's copy too.
    backend = iam_backends[ACCOUNT_ID][PARTITION]
    name = machine_role.rsplit("/", 1)[1]
    statement = {
        "Effect": "Allow",
        "Action": "iam:PassRole",
        "Resource": sagemaker_role,
        "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
    }
    backend.put_role_policy(name, "pass-copy", json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
    session = assume_role(machine_role, "exec-4")
    sm = _client("sagemaker", edge, session)
    job = {
        "AlgorithmSpecification": {"TrainingImage": "local", "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": "s3://b/p"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
    }
    sm.create_training_job(TrainingJobName=f"{PREFIX}-job-1", RoleArn=sagemaker_role, **job)
    other = f"arn:aws:iam::{ACCOUNT_ID}:role/admin"
    with pytest.raises(ClientError) as exc:
        sm.create_training_job(TrainingJobName=f"{PREFIX}-job-2", RoleArn=other, **job)
    _denied(exc, session, "iam:PassRole", other)
    assert recorder.calls == ["SageMaker.CreateTrainingJob"]


def test_an_explicit_deny_wins_and_says_so(edge: Edge, make_role: Callable[..., str]) -> None:
    statement = {"Effect": "Deny", "Action": "sagemaker:Describe*", "Resource": "*"}
    deny = {"Version": "2012-10-17", "Statement": [statement]}
    session = assume_role(make_role("StateMachineRole", extra=deny), "exec-5")
    with pytest.raises(ClientError) as exc:
        _client("sagemaker", edge, session).describe_endpoint(EndpointName=PREFIX)
    assert exc.value.response["Error"]["Message"] == (
        f"User: {session.session_arn} is not authorized to perform: sagemaker:DescribeEndpoint on resource: "
        f"{SM_ARN}:endpoint/{PREFIX} with an explicit deny in an identity-based policy"
    )


def test_the_function_role_may_invoke_only_the_project_endpoint(
    edge: Edge, recorder: Recorder, make_role: Callable[..., str]
) -> None:
    """sagemaker-runtime (REST): the operation comes from the URI; another endpoint is AccessDeniedException, 400."""
    session = assume_role(make_role("InferenceFunctionRole"), f"{PREFIX}-inference")
    runtime = _client("sagemaker-runtime", edge, session)
    runtime.invoke_endpoint(EndpointName=PREFIX, Body=b"x", ContentType="application/x-image")
    assert recorder.calls == [f"/endpoints/{PREFIX}/invocations"]
    with pytest.raises(ClientError) as exc:
        runtime.invoke_endpoint(EndpointName="someone-else", Body=b"x", ContentType="application/x-image")
    _denied(exc, session, "sagemaker:InvokeEndpoint", f"{SM_ARN}:endpoint/someone-else")
    denied = make_role("InferenceFunctionRole", drop="sagemaker:InvokeEndpoint")
    session = assume_role(denied, f"{PREFIX}-inference")
    with pytest.raises(ClientError) as exc:
        _client("sagemaker-runtime", edge, session).invoke_endpoint(EndpointName=PREFIX, Body=b"x")
    _denied(exc, session, "sagemaker:InvokeEndpoint", f"{SM_ARN}:endpoint/{PREFIX}")


def test_the_operator_key_stays_all_allowed(edge: Edge, recorder: Recorder) -> None:
    _client("sagemaker", edge, None).describe_endpoint(EndpointName="anything")
    assert recorder.calls == ["SageMaker.DescribeEndpoint"]


def test_a_role_the_template_did_not_create_cannot_be_assumed() -> None:
    with pytest.raises(RoleNotAssumable, match="does not exist"):
        assume_role(f"arn:aws:iam::{ACCOUNT_ID}:role/never-created", "s")


def test_an_expired_session_is_expired_token(edge: Edge, make_role: Callable[..., str]) -> None:
    session = assume_role(make_role("StateMachineRole"), "exec-6", duration_s=0)
    with pytest.raises(ClientError) as exc:
        _client("sagemaker", edge, session).describe_endpoint(EndpointName=PREFIX)
    error = exc.value.response["Error"]
    assert (error["Code"], error["Message"]) == (
        "ExpiredTokenException",
        "The security token included in the request is expired",
    )
    with pytest.raises(ClientError) as exc:
        _client("sts", edge, session).get_caller_identity()
    assert exc.value.response["Error"]["Code"] == "ExpiredToken"


def test_a_key_sts_never_issued_is_not_recognised(edge: Edge) -> None:
    expiry = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    forged = RoleCredentials("ASIAFORGED0000000000", "s" * 40, "token", expiry, "arn:aws:sts::1:assumed-role/r/s")
    with pytest.raises(ClientError) as exc:
        _client("sagemaker", edge, forged).describe_endpoint(EndpointName=PREFIX)
    assert exc.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_an_unsigned_sts_form_post_gets_sts_error_shape(edge: Edge) -> None:
    """An unsigned query-protocol POST is answered in STS's XML, not S3's."""
    response = Client(edge).post(
        "/",
        data="Action=GetCallerIdentity&Version=2011-06-15",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    assert response.status_code == 403
    body = response.get_data(as_text=True)
    assert "<ErrorResponse" in body and "<Code>MissingAuthenticationToken</Code>" in body
    assert "https://sts.amazonaws.com/doc/2011-06-15/" in body


def test_every_sagemaker_call_of_the_asl_is_authorised_on_its_resource() -> None:
    """A SageMaker operation without a resource entry is checked against ``*``, which the template's resource-scoped
    grants never match: a new call in the ASL must come with its entry in local_aws/auth/actions.py."""
    called = set(re.findall(r"arn:aws:states:::aws-sdk:sagemaker:(\w+)", ASL_PATH.read_text(encoding="utf-8")))
    operations = {name[0].upper() + name[1:] for name in called}
    assert operations, "the ASL calls SageMaker"
    known = set(actions._SAGEMAKER_RESOURCES) | set(actions._SAGEMAKER_ARN_PARAM)
    assert operations <= known, sorted(operations - known)


def test_a_service_assumes_only_a_role_whose_trust_policy_names_it(make_role: Callable[..., str]) -> None:
    """The template's state machine role trusts states.amazonaws.com (in this account), the function's role Lambda."""
    machine, function = make_role("StateMachineRole"), make_role("InferenceFunctionRole")
    assert (
        RoleSessions(service=STATES_SERVICE)
        .credentials(machine)
        .session_arn.startswith(f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{machine.rsplit('/', 1)[1]}/")
    )
    assert RoleSessions("fn", service=LAMBDA_SERVICE).credentials(function).session_arn.endswith("/fn")
    with pytest.raises(RoleNotAssumable) as exc:
        RoleSessions(service=STATES_SERVICE).credentials(function)
    assert str(exc.value) == (
        "Neither the global service principal states.amazonaws.com, nor the regional one is authorized to assume "
        "the provided role."
    )
    with pytest.raises(RoleNotAssumable, match="cannot be assumed by Lambda"):
        RoleSessions(service=LAMBDA_SERVICE).credentials(machine)


def test_the_state_machine_role_may_use_only_its_deploy_lock(
    edge: Edge, recorder: Recorder, make_role: Callable[..., str]
) -> None:
    """The deploy lock's calls: the lock table's items and this state machine's executions, nothing else."""
    session = assume_role(make_role("StateMachineRole"), "exec-lock")
    ddb = _client("dynamodb", edge, session)
    ddb.get_item(TableName=f"{PREFIX}-deploy-lock", Key={"LockName": {"S": PREFIX}})
    with pytest.raises(ClientError) as exc:
        ddb.put_item(TableName="other-table", Item={"LockName": {"S": PREFIX}})
    _denied(exc, session, "dynamodb:PutItem", f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT_ID}:table/other-table")
    sfn = _client("stepfunctions", edge, session)
    execution = f"arn:{PARTITION}:states:{REGION}:{ACCOUNT_ID}:execution"
    sfn.describe_execution(executionArn=f"{execution}:{PREFIX}-train-deploy:run-1")
    with pytest.raises(ClientError) as exc:
        sfn.describe_execution(executionArn=f"{execution}:other-machine:run-1")
    _denied(exc, session, "states:DescribeExecution", f"{execution}:other-machine:run-1")
    assert recorder.calls == ["DynamoDB_20120810.GetItem", "AWSStepFunctions.DescribeExecution"]
