"""DescribeScalingActivities on the local Application Auto Scaling: AWS's shapes and AWS's validation errors."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.integration.local_aws_fixtures import Aws


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
