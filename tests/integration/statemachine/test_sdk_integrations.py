"""The services the ASL's ``aws-sdk`` tasks call through moto answer on the edge as AWS does (minimal wire checks).

The state machine registers autoscaling with ``arn:aws:states:::aws-sdk:applicationautoscaling:*`` tasks; those
calls go from moto's interpreter to the edge and on to moto's Application Auto Scaling. When such a call fails, the
interpreter builds the task error from botocore's ``ResponseMetadata.RequestId`` (moto
``state_task_service_aws_sdk.py``), so every error answer must carry ``x-amzn-RequestId`` as AWS's do; without it the
task fails ``States.Runtime KeyError('RequestId')``, which no Catch in the ASL can handle.
"""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from local_aws.constants import REGION
from tests.integration.statemachine.sfn_helpers import Stack


def test_application_autoscaling_answers_through_the_edge(stack: Stack) -> None:
    """Application Auto Scaling's reads answer 200 through the edge (moto serves them as text/html: not an error)."""
    targets = stack.autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")
    assert targets["ResponseMetadata"]["HTTPStatusCode"] == 200 and isinstance(targets["ScalableTargets"], list)
    policies = stack.autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")
    assert policies["ResponseMetadata"]["HTTPStatusCode"] == 200 and isinstance(policies["ScalingPolicies"], list)
    assert targets["ResponseMetadata"]["RequestId"] and policies["ResponseMetadata"]["RequestId"]


def test_a_request_moto_cannot_serve_gets_an_error_with_a_request_id(stack: Stack) -> None:
    """An operation moto does not implement gets a 4xx in the JSON protocol, with the x-amzn-RequestId header."""
    body = b"{}"
    request = AWSRequest(
        method="POST",
        url=f"{stack.aws.url}/",
        data=body,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "AnyScaleFrontendService.NoSuchOperation",
        },
    )
    SigV4Auth(stack.aws.session().get_credentials(), "application-autoscaling", REGION).add_auth(request)
    prepared = request.prepare()
    sent = urllib.request.Request(prepared.url, data=body, headers=dict(prepared.headers), method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(sent, timeout=30)
    assert 400 <= caught.value.code < 500
    assert caught.value.headers.get("x-amzn-RequestId")
