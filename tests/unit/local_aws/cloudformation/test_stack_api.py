"""local_aws.cloudformation.api: DescribeStacks of the local stack, parsed by botocore's query-protocol parser."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

import pytest
from botocore.exceptions import ClientError

from local_aws.cloudformation import Resolver
from local_aws.cloudformation.api import StackApi, localize_outputs
from tests.unit.local_aws.wsgi_boto3 import wsgi_client

StartResponse = Callable[..., Any]
OUTPUTS = {
    "StateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:dogbreed-dev-train-deploy",
    "ApiUrl": "http://127.0.0.1:3000",
    "Note": 'a < b & c > "d"',
}


class FakeMoto:
    """moto's app for every other CloudFormation call: records the request body it receives."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, list[str]]] = []

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        self.bodies.append(parse_qs(environ["wsgi.input"].read(length).decode()))
        body = (
            b'<ListStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><ListStacksResult>'
            b"<StackSummaries/></ListStacksResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>"
            b"</ListStacksResponse>"
        )
        start_response("200 OK", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
        return [body]


@pytest.fixture
def moto() -> FakeMoto:
    return FakeMoto()


@pytest.fixture
def stacks(moto: FakeMoto) -> StackApi:
    api = StackApi(moto)
    api.publish("dogbreed-dev", OUTPUTS, {"EnvironmentName": "dev"})
    return api


@pytest.fixture
def cfn(stacks: StackApi) -> Any:
    return wsgi_client("cloudformation", stacks)


def test_describe_stacks_returns_the_published_outputs_and_parameters(cfn: Any) -> None:
    """Outputs and parameters come back through botocore's parser, XML special characters intact."""
    stack = cfn.describe_stacks(StackName="dogbreed-dev")["Stacks"][0]
    assert stack["StackName"] == "dogbreed-dev"
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]} == OUTPUTS
    assert stack["Parameters"] == [{"ParameterKey": "EnvironmentName", "ParameterValue": "dev"}]
    assert stack["StackId"].startswith("arn:aws:cloudformation:us-east-1:123456789012:stack/dogbreed-dev/")
    assert isinstance(stack["CreationTime"], datetime)
    assert "LastUpdatedTime" not in stack


def test_the_stack_id_is_the_templates_aws_stack_id(cfn: Any) -> None:
    """On AWS, DescribeStacks' StackId and the AWS::StackId pseudo parameter are one value."""
    stack = cfn.describe_stacks(StackName="dogbreed-dev")["Stacks"][0]
    template = {"Resources": {"B": {"Type": "AWS::S3::Bucket"}}}
    assert stack["StackId"] == Resolver(template, stack_name="dogbreed-dev").ref("AWS::StackId")


def test_describe_by_stack_id_and_without_a_name(cfn: Any, stacks: StackApi) -> None:
    """The StackId names the stack too; without StackName every local stack is listed."""
    stack_id = stacks.stacks["dogbreed-dev"]["StackId"]
    assert cfn.describe_stacks(StackName=stack_id)["Stacks"][0]["StackName"] == "dogbreed-dev"
    stacks.publish("dogbreed-qa", {}, {})
    assert [s["StackName"] for s in cfn.describe_stacks()["Stacks"]] == ["dogbreed-dev", "dogbreed-qa"]


def test_an_unknown_stack_is_cloudformations_validation_error(cfn: Any) -> None:
    """An unknown stack is the ValidationError botocore parses, with CloudFormation's message."""
    with pytest.raises(ClientError) as info:
        cfn.describe_stacks(StackName="nope")
    error = info.value.response["Error"]
    assert (error["Code"], error["Message"]) == ("ValidationError", "Stack with id nope does not exist")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_publishing_again_is_an_update(cfn: Any, stacks: StackApi) -> None:
    """A redeploy keeps StackId and CreationTime, sets LastUpdatedTime and UPDATE_COMPLETE, replaces outputs."""
    before = cfn.describe_stacks(StackName="dogbreed-dev")["Stacks"][0]
    assert stacks.publish("dogbreed-dev", {"ApiUrl": "http://127.0.0.1:3001"}, {}) == before["StackId"]
    after = cfn.describe_stacks(StackName="dogbreed-dev")["Stacks"][0]
    assert after["StackStatus"] == "UPDATE_COMPLETE"
    assert after["CreationTime"] == before["CreationTime"]
    assert after["LastUpdatedTime"] >= after["CreationTime"]
    assert after["Outputs"] == [{"OutputKey": "ApiUrl", "OutputValue": "http://127.0.0.1:3001"}]


def test_other_actions_reach_moto_with_their_body_intact(cfn: Any, moto: FakeMoto) -> None:
    """Everything but DescribeStacks goes to moto, which can still read the (already consumed) body."""
    assert cfn.list_stacks()["StackSummaries"] == []
    assert moto.bodies[-1]["Action"] == ["ListStacks"]


def test_the_execute_api_url_becomes_the_local_api_url() -> None:
    """``https://<id>.execute-api.<region>.amazonaws.com/<stage>`` becomes the local API; other values stay."""
    outputs = {
        "ApiUrl": "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/v1",
        "PredictUrl": "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/v1/predict",
        "ChinaUrl": "https://abc123.execute-api.cn-north-1.amazonaws.com.cn/v1",
        "Bucket": "dogbreed-dev-artifacts",
        "Docs": "https://docs.aws.amazon.com/apigateway/",
    }
    local = localize_outputs(outputs, "http://127.0.0.1:3000/")
    assert local == {
        "ApiUrl": "http://127.0.0.1:3000",
        "PredictUrl": "http://127.0.0.1:3000/predict",
        "ChinaUrl": "http://127.0.0.1:3000",
        "Bucket": "dogbreed-dev-artifacts",
        "Docs": "https://docs.aws.amazon.com/apigateway/",
    }


def test_a_query_string_request_is_understood(stacks: StackApi) -> None:
    """DescribeStacks sent as a GET query string (as some tools do) is answered too."""
    chunks: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        chunks.append(status)

    environ = {
        "REQUEST_METHOD": "GET",
        "QUERY_STRING": "Action=DescribeStacks&StackName=dogbreed-dev",
        "wsgi.input": io.BytesIO(b""),
    }
    body = b"".join(stacks(environ, start_response))
    assert chunks == ["200 OK"]
    assert b"<StackName>dogbreed-dev</StackName>" in body
