"""local_aws.application_autoscaling: a missing policy or target is AWS's ObjectNotFoundException, not moto's
ValidationException (botocore's model: DeleteScalingPolicy and DeregisterScalableTarget list ObjectNotFoundException,
"thrown if the resource cannot be found")."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local_aws import application_autoscaling

TARGET = {
    "ServiceNamespace": "sagemaker",
    "ResourceId": "endpoint/dogbreed-dev/variant/AllTraffic",
    "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
}


@pytest.fixture
def autoscaling() -> Iterator[Any]:
    application_autoscaling.apply()
    application_autoscaling.apply()  # idempotent: patching twice must not wrap twice
    with mock_aws():
        yield boto3.client("application-autoscaling", region_name="us-east-1")


def error_of(call: Any, **kwargs: Any) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    error = caught.value.response["Error"]
    return error["Code"], error["Message"], caught.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_deleting_a_policy_that_does_not_exist_is_object_not_found(autoscaling: Any) -> None:
    autoscaling.register_scalable_target(**TARGET, MinCapacity=1, MaxCapacity=2)
    code, message, status = error_of(autoscaling.delete_scaling_policy, PolicyName="nope", **TARGET)
    assert (code, status) == ("ObjectNotFoundException", 400)
    assert message.startswith("No scaling policy found for service namespace: sagemaker") and "nope" in message


def test_deregistering_a_target_that_does_not_exist_is_object_not_found(autoscaling: Any) -> None:
    code, message, status = error_of(autoscaling.deregister_scalable_target, **TARGET)
    assert (code, status) == ("ObjectNotFoundException", 400)
    assert TARGET["ResourceId"] in message


def test_other_validation_errors_stay_validation_errors(autoscaling: Any) -> None:
    autoscaling.register_scalable_target(**TARGET, MinCapacity=1, MaxCapacity=2)
    code, _, status = error_of(autoscaling.put_scaling_policy, PolicyName="p", PolicyType="Bogus", **TARGET)
    assert (code, status) == ("ValidationException", 400)


def test_existing_policy_and_target_are_still_removed(autoscaling: Any) -> None:
    autoscaling.register_scalable_target(**TARGET, MinCapacity=1, MaxCapacity=2)
    autoscaling.put_scaling_policy(
        PolicyName="p",
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 70.0,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
        },
        **TARGET,
    )
    autoscaling.delete_scaling_policy(PolicyName="p", **TARGET)
    autoscaling.deregister_scalable_target(**TARGET)
    assert autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
