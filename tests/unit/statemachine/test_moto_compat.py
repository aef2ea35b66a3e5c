"""local_runtime.moto_compat gives moto AWS's names for Step Functions aws-sdk errors and services."""

from __future__ import annotations

from datetime import UTC, datetime

from botocore.exceptions import ClientError
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import StateTaskService
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
    StateTaskServiceAwsSdk,
)

from local_runtime import moto_compat


def _error_name(service: str, exc: Exception) -> str:
    prefix = StateTaskServiceAwsSdk._normalise_service_error_name(service)
    return StateTaskServiceAwsSdk._normalise_exception_name(prefix, exc)


def test_apply_is_idempotent_and_complete() -> None:
    moto_compat.apply()
    moto_compat.apply()
    assert moto_compat.is_applied()


def test_error_names_follow_aws() -> None:
    moto_compat.apply()
    unmodeled = ClientError(
        {"Error": {"Code": "ValidationException", "Message": "Could not find endpoint"}}, "DescribeEndpoint"
    )
    assert _error_name("sagemaker", unmodeled) == "SageMaker.SageMakerException"

    class ResourceNotFound(ClientError):  # botocore names modeled errors after their shape
        pass

    modeled = ResourceNotFound(
        {"Error": {"Code": "ResourceNotFound", "Message": "x"}}, "DescribeHyperParameterTuningJob"
    )
    assert _error_name("sagemaker", modeled) == "SageMaker.ResourceNotFoundException"

    class ObjectNotFoundException(ClientError):
        pass

    aas = ObjectNotFoundException({"Error": {"Code": "ObjectNotFoundException", "Message": "x"}}, "DeleteScalingPolicy")
    assert _error_name("applicationautoscaling", aas) == "ApplicationAutoScaling.ObjectNotFoundException"


def test_application_autoscaling_maps_to_the_boto3_client_name() -> None:
    moto_compat.apply()
    assert StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES["applicationautoscaling"] == "application-autoscaling"


def test_sdk_timestamps_become_json() -> None:
    stamp = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    data = {
        "CreationTime": stamp,
        "FinalMetricDataList": [{"MetricName": "test:top1", "Value": 0.9, "Timestamp": stamp}],
    }
    assert moto_compat._jsonable(data) == {
        "CreationTime": "2024-05-01T12:00:00+00:00",
        "FinalMetricDataList": [{"MetricName": "test:top1", "Value": 0.9, "Timestamp": "2024-05-01T12:00:00+00:00"}],
    }
