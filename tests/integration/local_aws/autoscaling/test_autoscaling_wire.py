"""The local Application Auto Scaling on the wire: DescribeScalingActivities, and the errors AWS sends."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.local_aws_fixtures import Aws

DIMENSION = "sagemaker:variant:DesiredInstanceCount"


def test_no_activities_for_an_unknown_resource(local_aws: Aws) -> None:
    aas = local_aws.client("application-autoscaling")
    found = aas.describe_scaling_activities(ServiceNamespace="sagemaker", ResourceId="endpoint/nope/variant/AllTraffic")
    assert found["ScalingActivities"] == []


def test_bad_namespace_is_a_validation_exception(local_aws: Aws) -> None:
    aas = local_aws.client("application-autoscaling")
    with pytest.raises(ClientError) as caught:
        aas.describe_scaling_activities(ServiceNamespace="sagemakr")
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert "Value 'sagemakr' at 'serviceNamespace' failed to satisfy constraint" in error["Message"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_max_results_above_50_is_refused(local_aws: Aws) -> None:
    aas = local_aws.client("application-autoscaling")
    with pytest.raises(ClientError) as caught:
        aas.describe_scaling_activities(ServiceNamespace="sagemaker", MaxResults=51)
    assert caught.value.response["Error"]["Message"] == (
        "1 validation error detected: Value '51' at 'maxResults' failed to satisfy constraint: "
        "Member must have value less than or equal to 50"
    )


def _code_and_message(call: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    return str(error["Code"]), str(error["Message"])


def test_missing_targets_and_policies_are_object_not_found(local_aws: Aws) -> None:
    # The ASL catches ApplicationAutoScaling.ObjectNotFoundException on DeleteScalingPolicy and
    # DeregisterScalableTarget: locally these must be the errors AWS sends, not ValidationException.
    aas = local_aws.client("application-autoscaling")
    resource = f"endpoint/missing-{uuid.uuid4().hex[:8]}/variant/AllTraffic"
    where = {"ServiceNamespace": "sagemaker", "ResourceId": resource, "ScalableDimension": DIMENSION}
    code, message = _code_and_message(lambda: aas.deregister_scalable_target(**where))
    assert (code, message) == (
        "ObjectNotFoundException",
        f"No scalable target found for service namespace: sagemaker, resource ID: {resource}, "
        f"scalable dimension: {DIMENSION}",
    )
    code, message = _code_and_message(lambda: aas.delete_scaling_policy(PolicyName="p", **where))
    assert code == "ObjectNotFoundException" and message.startswith("No scaling policy found")
    config = {
        "TargetValue": 100.0,
        "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
    }
    code, message = _code_and_message(
        lambda: aas.put_scaling_policy(
            PolicyName="p", PolicyType="TargetTrackingScaling", TargetTrackingScalingPolicyConfiguration=config, **where
        )
    )
    assert (code, message) == (
        "ObjectNotFoundException",
        f"No scalable target registered for service namespace: sagemaker, resource ID: {resource}, "
        f"scalable dimension: {DIMENSION}",
    )
    assert aas.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=resource)["ScalingPolicies"] == []
