"""[[chaos.errors]] at the edge: any API's modeled error, in its protocol's wire shape, as boto3 raises it from AWS.

Real boto3 clients sign the requests and parse the answers; they reach the edge in-process
(tests/unit/local_aws/wsgi_boto3.py). The fallback app stands for the service behind the edge.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_aws import chaos
from local_aws.auth.actions import Operation
from local_aws.auth.credentials import IssuedCredentials, StaticCredentialStore
from local_aws.edge import Edge
from local_aws.injected_errors import InjectedErrors, parse
from tests.unit.local_aws.wsgi_boto3 import ACCESS_KEY_ID, SECRET_ACCESS_KEY, wsgi_client

CREDS = IssuedCredentials(
    ACCESS_KEY_ID, SECRET_ACCESS_KEY, "123456789012", "arn:aws:iam::123456789012:user/local-operator", "local-operator"
)
TARGET = {
    "ServiceNamespace": "sagemaker",
    "ResourceId": "endpoint/ep/variant/AllTraffic",
    "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
}


class Service:
    """The service behind the edge: answers every call with an empty JSON success and counts the calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        self.calls += 1
        start_response("200 OK", [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", "2")])
        return [b"{}"]


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    path = tmp_path / "config.toml"
    monkeypatch.setenv(chaos.ENV_CONFIG, str(path))

    def write(text: str) -> None:
        before = path.stat() if path.exists() else None
        path.write_text(text, encoding="utf-8")
        after = path.stat()
        if before is not None and (before.st_mtime_ns, before.st_size) == (after.st_mtime_ns, after.st_size):
            os.utime(path, ns=(after.st_atime_ns, after.st_mtime_ns + 1_000_000))  # a coarse file clock

    return write


@pytest.fixture
def service() -> Service:
    return Service()


@pytest.fixture
def edge(service: Service) -> Edge:
    return Edge(StaticCredentialStore(CREDS), {}, service, errors=InjectedErrors())


def rule(service: str, operation: str, code: str, count: int = 1, extra: str = "") -> str:
    return (
        f'[[chaos.errors]]\nservice = "{service}"\noperation = "{operation}"\ncode = "{code}"\ncount = {count}\n{extra}'
    )


def _raised(call: Callable[..., Any], **params: Any) -> ClientError:
    with pytest.raises(ClientError) as caught:
        call(**params)
    return caught.value


def test_a_rule_fails_the_next_count_calls_of_that_operation_only(
    config: Callable[[str], None], edge: Edge, service: Service
) -> None:
    aas = wsgi_client("application-autoscaling", edge)
    config(rule("application-autoscaling", "RegisterScalableTarget", "ConcurrentUpdateException", 2))
    for _ in range(2):
        # boto3 raises the modeled exception class, which Step Functions names ApplicationAutoScaling.<class>.
        with pytest.raises(aas.exceptions.ConcurrentUpdateException) as caught:
            aas.register_scalable_target(**TARGET, MinCapacity=1, MaxCapacity=2)
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert caught.value.response["Error"]["Message"].startswith("Concurrent updates caused an exception")
    assert service.calls == 0  # refused at the edge: the service never saw (nor applied) the calls
    aas.describe_scalable_targets(ServiceNamespace="sagemaker")  # another operation: untouched
    aas.register_scalable_target(**TARGET, MinCapacity=1, MaxCapacity=2)  # the count is spent
    assert service.calls == 2


def test_after_lets_the_first_calls_through_then_fails_the_next_count(
    config: Callable[[str], None], edge: Edge, service: Service
) -> None:
    aas = wsgi_client("application-autoscaling", edge)
    config(rule("application-autoscaling", "DescribeScalableTargets", "InternalServiceException", 2, "after = 1\n"))
    aas.describe_scalable_targets(ServiceNamespace="sagemaker")  # the first call passes
    for _ in range(2):
        with pytest.raises(aas.exceptions.InternalServiceException):
            aas.describe_scalable_targets(ServiceNamespace="sagemaker")
    aas.describe_scalable_targets(ServiceNamespace="sagemaker")  # the count is spent
    assert service.calls == 2


def test_a_principal_pattern_fails_only_that_callers_calls(config: Callable[[str], None]) -> None:
    """The state machine role's DescribeExecution fails; the operator's own polls of the same API do not."""
    errors = InjectedErrors()
    config(rule("stepfunctions", "DescribeExecution", "InvalidArn", 1, 'principal = "arn:aws:sts::*:assumed-role/*"\n'))
    call = Operation("states", "DescribeExecution", {})
    assert errors.take(call, CREDS.principal_arn) is None  # arn:aws:iam::...:user/local-operator
    session = "arn:aws:sts::123456789012:assumed-role/dogbreed-dev-StateMachineRole/execution"
    error = errors.take(call, session)
    assert error is not None and error.code == "InvalidArn"
    assert errors.take(call, session) is None  # the count is spent


def test_rewriting_the_file_rearms_every_rule(config: Callable[[str], None], edge: Edge, service: Service) -> None:
    aas = wsgi_client("application-autoscaling", edge)
    text = rule("application-autoscaling", "DeleteScalingPolicy", "ObjectNotFoundException", 1, 'message = "gone"\n')
    config(text)
    policy = {"PolicyName": "p", **TARGET}
    assert _raised(aas.delete_scaling_policy, **policy).response["Error"] == {
        "Code": "ObjectNotFoundException",
        "Message": "gone",
    }
    aas.delete_scaling_policy(**policy)
    config(text)
    assert _raised(aas.delete_scaling_policy, **policy).response["Error"]["Code"] == "ObjectNotFoundException"


@pytest.mark.parametrize(
    ("service_name", "operation", "code", "call", "params", "status", "parsed_code"),
    [
        # awsJson1_1 (SageMaker): a common code, not modeled, as SageMaker throttles (HTTP 400, "Rate exceeded").
        ("sagemaker", "DescribeEndpoint", "ThrottlingException", "describe_endpoint", {"EndpointName": "e"}, 400, None),
        # awsJson1_0 (Step Functions), a modeled error of the operation.
        (
            "stepfunctions",
            "DescribeExecution",
            "ExecutionDoesNotExist",
            "describe_execution",
            {"executionArn": "arn:aws:states:us-east-1:123456789012:execution:m:e"},
            400,
            None,
        ),
        # awsJson1_0 (DynamoDB, the deploy lock's service): the status comes from the shape's model.
        (
            "dynamodb",
            "DeleteItem",
            "ConditionalCheckFailedException",
            "delete_item",
            {"TableName": "t", "Key": {"LockName": {"S": "ep"}}},
            400,
            None,
        ),
        # query (IAM): the wire code is the shape's error.code, the status its httpStatusCode.
        ("iam", "GetRole", "NoSuchEntityException", "get_role", {"RoleName": "r"}, 404, "NoSuchEntity"),
        ("iam", "GetRole", "ServiceFailure", "get_role", {"RoleName": "r"}, 500, None),
        # S3's XML <Error>; NoSuchBucket is modeled for the service.
        ("s3", "ListObjectsV2", "NoSuchBucket", "list_objects_v2", {"Bucket": "b"}, 404, None),
        # rest-json (the SageMaker runtime): the code in x-amzn-ErrorType, the status from the model.
        (
            "sagemaker-runtime",
            "InvokeEndpoint",
            "ModelError",
            "invoke_endpoint",
            {"EndpointName": "e", "Body": b"{}"},
            424,
            None,
        ),
        # Application Auto Scaling's internal error carries no modeled status: a 5xx, as the service's fault.
        (
            "application-autoscaling",
            "DescribeScalableTargets",
            "InternalServiceException",
            "describe_scalable_targets",
            {"ServiceNamespace": "sagemaker"},
            500,
            None,
        ),
    ],
)
def test_each_protocol_gets_its_own_wire_shape(
    config: Callable[[str], None],
    edge: Edge,
    service_name: str,
    operation: str,
    code: str,
    call: str,
    params: dict[str, Any],
    status: int,
    parsed_code: str | None,
) -> None:
    client = wsgi_client(service_name, edge)
    config(rule(service_name, operation, code))
    error = _raised(getattr(client, call), **params)
    assert error.response["Error"]["Code"] == (parsed_code or code)
    assert error.response["Error"]["Message"]  # a message, AWS's wording from the model or the common one
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == status
    modeled = getattr(client.exceptions, code, None) or getattr(client.exceptions, parsed_code or code, None)
    if modeled is not None:
        assert isinstance(error, modeled)


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        ({"service": "no-such-service", "operation": "X", "code": "ValidationException"}, "service"),
        ({"service": "sagemaker", "operation": "describeEndpoint", "code": "ValidationException"}, "operation"),
        ({"service": "application-autoscaling", "operation": "PutScalingPolicy", "code": "NoSuchEntity"}, "code"),
        ({"service": "sagemaker", "operation": "DescribeEndpoint", "code": "ResourceInUse", "count": -1}, "count"),
        ({"service": "sagemaker", "operation": "DescribeEndpoint", "code": "ResourceInUse", "times": 1}, "'times'"),
        ({"service": "sagemaker", "operation": "DescribeEndpoint", "code": "ResourceInUse", "after": "1"}, "after"),
        (
            {"service": "sagemaker", "operation": "DescribeEndpoint", "code": "ResourceInUse", "principal": ""},
            "principal",
        ),
    ],
)
def test_a_bad_rule_is_refused_naming_the_key_and_the_valid_values(entry: dict[str, Any], named: str) -> None:
    with pytest.raises(chaos.ChaosConfigError) as caught:
        parse([entry])
    assert named in str(caught.value)
    assert "valid" in str(caught.value)


def test_a_refused_code_lists_the_operations_modeled_errors() -> None:
    with pytest.raises(chaos.ChaosConfigError) as caught:
        parse([{"service": "application-autoscaling", "operation": "PutScalingPolicy", "code": "NoSuchEntity"}])
    assert "FailedResourceAccessException" in str(caught.value)  # from botocore's model of PutScalingPolicy
    assert "ThrottlingException" in str(caught.value)


def test_a_bad_config_is_a_clear_400_in_the_services_shape(
    config: Callable[[str], None], edge: Edge, service: Service
) -> None:
    config(rule("application-autoscaling", "RegisterScalableTarget", "NoSuchThing"))
    error = _raised(wsgi_client("application-autoscaling", edge).describe_scalable_targets, ServiceNamespace="ecs")
    assert error.response["Error"]["Code"] == "ValidationException"
    assert "NoSuchThing" in error.response["Error"]["Message"]
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert service.calls == 0


def test_authentication_comes_before_the_injected_error(config: Callable[[str], None], edge: Edge) -> None:
    config(rule("application-autoscaling", "DescribeScalableTargets", "ConcurrentUpdateException"))
    client = wsgi_client("application-autoscaling", edge, secret="x" * 40)
    error = _raised(client.describe_scalable_targets, ServiceNamespace="sagemaker")
    assert error.response["Error"]["Code"] == "InvalidSignatureException"


def test_a_single_table_instead_of_an_array_is_refused(config: Callable[[str], None], edge: Edge) -> None:
    """``[chaos.errors]`` (one table) instead of ``[[chaos.errors]]``: a clear 400 naming the section, never a 500."""
    config('[chaos.errors]\nservice = "sagemaker"\n')
    error = _raised(wsgi_client("sagemaker", edge).list_endpoints)
    assert error.response["Error"]["Code"] == "ValidationException"
    assert "[[chaos.errors]] must be an array of tables" in error.response["Error"]["Message"]
