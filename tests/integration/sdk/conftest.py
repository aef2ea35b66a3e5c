"""Fixtures of the sagemaker SDK tests: the stack as the SDK sees it, the centroid data, one endpoint to invoke."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.local_aws_fixtures import Aws
from tests.integration.sdk.sdk_helpers import INFERENCE_IMAGE, SdkStack, centroid_csv, centroid_model_tar


@pytest.fixture(scope="session")
def sdk_stack(local_aws: Aws) -> SdkStack:
    """The session's local AWS, its stack's buckets and role, and the centroid CSV uploaded under ``datasets/``."""
    creds = local_aws.runtime.credentials
    assert creds is not None
    data_bucket = local_aws.output("DataBucketName")
    # datasets/ is the prefix the stack's SageMaker role may read (template.yaml, ReadTrainingData).
    local_aws.client("s3").put_object(Bucket=data_bucket, Key="datasets/sdk-centroid/points.csv", Body=centroid_csv())
    return SdkStack(
        url=local_aws.url,
        access_key_id=creds.access_key_id,
        secret_access_key=creds.secret_access_key,
        data_bucket=data_bucket,
        artifact_bucket=local_aws.output("ArtifactBucketName"),
        role=local_aws.output("SageMakerExecutionRoleArn"),
        centroid_data=f"s3://{data_bucket}/datasets/sdk-centroid/",
    )


@pytest.fixture(scope="session")
def centroid_endpoint(local_aws: Aws, sdk_stack: SdkStack) -> Iterator[str]:
    """An InService endpoint serving the centroid model (created with boto3, so no SDK is needed to make it)."""
    name = "sdk-centroid"
    sm: Any = local_aws.client("sagemaker")
    key = "training-output/sdk-fixture/model.tar.gz"
    local_aws.client("s3").put_object(Bucket=sdk_stack.artifact_bucket, Key=key, Body=centroid_model_tar())
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn=sdk_stack.role,
        PrimaryContainer={
            "Image": INFERENCE_IMAGE,
            "ModelDataUrl": f"s3://{sdk_stack.artifact_bucket}/{key}",
            "Environment": {"SAGEMAKER_PROGRAM": "centroid_inference.py"},
        },
    )
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
        ],
    )
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    yield name
    sm.delete_endpoint(EndpointName=name)
