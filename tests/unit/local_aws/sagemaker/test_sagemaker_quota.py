"""[chaos.quota]: ResourceLimitExceeded past an instance quota, counted from what is in use, through real boto3.

What is "in use" is put in the record store as the runtime itself persists it (a running job's record, an endpoint's
deployed snapshot), so no job or endpoint process has to run in a unit test.
"""

from __future__ import annotations

import time
import tomllib
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_aws import chaos
from local_aws.sagemaker import quota
from tests.unit.local_aws.sagemaker.sagemaker_app import ROLE, LocalSageMaker, training_job_request

TAIL = (
    "Please use AWS Service Quotas to request an increase for this quota. If AWS Service Quotas is not available, "
    "contact AWS support to request an increase for this quota."
)


def _running(app: LocalSageMaker, name: str, status: str = "InProgress", count: int = 1) -> None:
    record = {**training_job_request(name, count=count), "TrainingJobStatus": status, "SecondaryStatus": "Training"}
    app.control.records.put("training-jobs", name, record)


def _endpoint(app: LocalSageMaker, name: str, count: int, status: str = "InService") -> None:
    variant = {"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.m5.large"}
    config = {
        "EndpointConfigName": f"{name}-config",
        "ProductionVariants": [{**variant, "InitialInstanceCount": count}],
    }
    record = {
        "EndpointName": name,
        "EndpointArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{name}",
        "EndpointConfigName": config["EndpointConfigName"],
        "EndpointStatus": status,
        "CreationTime": time.time(),
        "LastModifiedTime": time.time(),
        "ProductionVariants": [{"VariantName": "AllTraffic", "CurrentInstanceCount": count}],
        "_deployed": {"config": config, "models": {}, "id": "1"},
    }
    app.control.records.put("endpoints", name, record)


def _refused(call: Any, **params: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**params)
    error = caught.value.response
    assert error["Error"]["Code"] == "ResourceLimitExceeded"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    return str(error["Error"]["Message"])


def test_create_training_job_past_the_quota_is_refused_naming_it(local_sagemaker: LocalSageMaker) -> None:
    sm = local_sagemaker.client()
    local_sagemaker.chaos('[chaos.quota.training]\n"ml.m5.large" = 1\n')
    _running(local_sagemaker, "busy")
    message = _refused(sm.create_training_job, **training_job_request("second"))
    assert message == (
        "The account-level service limit 'ml.m5.large for training job usage' is 1 Instances, with current "
        f"utilization of 1 Instances and a request delta of 1 Instances. {TAIL}"
    )
    with pytest.raises(sm.exceptions.ResourceLimitExceeded):  # botocore's modeled exception class
        sm.create_training_job(**training_job_request("third"))
    with pytest.raises(ClientError, match="ValidationException"):
        sm.describe_training_job(TrainingJobName="second")  # refused: never created


def test_finished_jobs_and_other_instance_types_use_no_quota(local_sagemaker: LocalSageMaker) -> None:
    sm = local_sagemaker.client()
    local_sagemaker.chaos('[chaos.quota.training]\n"ml.m5.large" = 1\n"ml.c5.xlarge" = 0\n')
    _running(local_sagemaker, "done", status="Completed")
    _running(local_sagemaker, "stopped", status="Stopped")
    sm.create_training_job(**training_job_request("admitted"))  # 0 in use + 1 <= 1
    sm.create_training_job(**training_job_request("no-quota", instance_type="ml.m5.xlarge"))  # no entry: no local quota
    message = _refused(sm.create_training_job, **training_job_request("zero", instance_type="ml.c5.xlarge"))
    assert "'ml.c5.xlarge for training job usage' is 0 Instances" in message


def test_a_stopping_job_still_holds_its_instances(local_sagemaker: LocalSageMaker) -> None:
    local_sagemaker.chaos('[chaos.quota.training]\n"ml.m5.large" = 2\n')
    _running(local_sagemaker, "stopping", status="Stopping", count=2)
    message = _refused(local_sagemaker.client().create_training_job, **training_job_request("next"))
    assert "current utilization of 2 Instances and a request delta of 1 Instances" in message


def test_a_tuning_job_asks_for_its_parallel_jobs_instances(local_sagemaker: LocalSageMaker) -> None:
    local_sagemaker.chaos('[chaos.quota.training]\n"ml.m5.large" = 3\n')
    job = training_job_request("unused", count=2)
    definition = {k: job[k] for k in ("AlgorithmSpecification", "RoleArn", "OutputDataConfig", "ResourceConfig")}
    definition["StoppingCondition"] = job["StoppingCondition"]
    message = _refused(
        local_sagemaker.client().create_hyper_parameter_tuning_job,
        HyperParameterTuningJobName="tune",
        HyperParameterTuningJobConfig={
            "Strategy": "Random",
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 4, "MaxParallelTrainingJobs": 2},
        },
        TrainingJobDefinition=definition,
    )
    assert "current utilization of 0 Instances and a request delta of 4 Instances" in message


def test_create_endpoint_counts_every_live_endpoints_instances(local_sagemaker: LocalSageMaker) -> None:
    sm = local_sagemaker.client()
    local_sagemaker.chaos('[chaos.quota.endpoint]\n"ml.m5.large" = 2\n')
    _endpoint(local_sagemaker, "serving", count=2)
    _endpoint(local_sagemaker, "broken", count=5, status="Failed")  # a failed endpoint holds nothing
    sm.create_model(ModelName="m", PrimaryContainer={"Image": "local"}, ExecutionRoleArn=ROLE)
    variant = {"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
    sm.create_endpoint_config(EndpointConfigName="c1", ProductionVariants=[variant])
    message = _refused(sm.create_endpoint, EndpointName="second", EndpointConfigName="c1")
    assert message.startswith(
        "The account-level service limit 'ml.m5.large for endpoint usage' is 2 Instances, with current "
        "utilization of 2 Instances and a request delta of 1 Instances."
    )
    # blue/green: an update brings the new fleet up beside the old one, so it needs the new config's instances too
    assert "request delta of 1 Instances" in _refused(
        sm.update_endpoint, EndpointName="serving", EndpointConfigName="c1"
    )


def test_a_capacity_change_asks_only_for_the_added_instances(local_sagemaker: LocalSageMaker) -> None:
    sm = local_sagemaker.client()
    local_sagemaker.chaos('[chaos.quota.endpoint]\n"ml.m5.large" = 3\n')
    _endpoint(local_sagemaker, "ep", count=2)
    desired = [{"VariantName": "AllTraffic", "DesiredInstanceCount": 4}]
    message = _refused(
        sm.update_endpoint_weights_and_capacities, EndpointName="ep", DesiredWeightsAndCapacities=desired
    )
    assert "current utilization of 2 Instances and a request delta of 2 Instances" in message
    desired = [{"VariantName": "AllTraffic", "DesiredInstanceCount": 3}]
    sm.update_endpoint_weights_and_capacities(EndpointName="ep", DesiredWeightsAndCapacities=desired)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ('[training]\n"ml.m5.large" = -1', "[chaos.quota.training] 'ml.m5.large' = -1 is not valid"),
        ('[training]\n"ml.m5.huge" = 1', "'ml.m5.huge' is not a SageMaker instance type for training"),
        ('[transform]\n"ml.m5.large" = 1', "unknown table 'transform'; valid: training, endpoint"),
        ("training = 1", "[chaos.quota.training] must be a table"),
    ],
)
def test_a_bad_section_names_the_key_and_the_valid_values(body: str, named: str) -> None:
    with pytest.raises(chaos.ChaosConfigError) as caught:
        quota.parse(tomllib.loads(body))
    assert named in str(caught.value)


def test_a_bad_section_is_a_400_naming_it(local_sagemaker: LocalSageMaker) -> None:
    local_sagemaker.chaos('[chaos.quota.training]\n"ml.m5.large" = "one"\n')
    with pytest.raises(ClientError) as caught:
        local_sagemaker.client().create_training_job(**training_job_request("x"))
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "[chaos.quota.training] 'ml.m5.large' = 'one' is not valid" in caught.value.response["Error"]["Message"]
