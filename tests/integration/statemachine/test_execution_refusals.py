"""Execution tests for the branches that SageMaker's refusals and outside changes take (issue 8: every edge).

Each test sets up, through the public APIs, a state someone else left behind and runs the pipeline on it: an endpoint
left Failed (EndpointNotUpdatable); an endpoint deployed by hand with a bare scalable target moving to local storage
(ServingWithoutRecord, the DeleteScalingPolicy ObjectNotFound Catch, CreateEndpointConfigLocalStorage); names already
taken (SageMaker refuses a duplicate training job, model or endpoint config: the Retry and Catch edges of the create
tasks); an instance type or a tuning range SageMaker refuses; the serving endpoint's config deleted; an endpoint with
no room left for the record's tags; a throttled endpoint lookup (LookupFailed, from ``[chaos.throttle]``); no
instance quota left for the endpoint ([chaos.quota]), also with Cleanup's deletes throttled. Jobs that must complete
train 2 steps (or run a script that does no training).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from local_aws.clock import ENV_TIME_SCALE
from tests.integration.local_aws.sagemaker.chaos_helpers import ChaosFile
from tests.integration.local_aws_fixtures import serving_endpoint, untrained_artifact, wait_endpoint
from tests.integration.statemachine.sfn_helpers import (
    Stack,
    predict_version,
    quick,
    read_deployment,
    remove_endpoint,
    resources,
    run,
    scalable_targets,
    scaling_policies,
)
from tests.integration.statemachine.sfn_probes import (
    attempts,
    by_hand_model,
    entered,
    settled_training,
    small_tuning,
    upload_no_test_metric_source,
)

# Exist to take every ASL state and Catch edge; `make test-exhaustive` runs them (they would push CI past 45 min).
pytestmark = pytest.mark.exhaustive


@pytest.fixture(scope="module")
def no_test_metric_source(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The SourceDir URI of a source bundle whose train.py reports no test (or validation) metric."""
    return upload_no_test_metric_source(stack, tmp_path_factory.mktemp("no-test-metric"))


@pytest.fixture
def failed_endpoint(fresh: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The stack's endpoint in status Failed: created outside the pipeline, its only instance never healthy."""
    stack, sm = fresh, fresh.sm
    suffix = uuid.uuid4().hex[:8]
    name, key = f"{stack.prefix}-broken-{suffix}", f"broken/{suffix}/model.tar.gz"
    bucket = stack.outputs["ArtifactBucketName"]
    stack.s3.put_object(Bucket=bucket, Key=key, Body=untrained_artifact())
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn=stack.outputs["SageMakerExecutionRoleArn"],
        PrimaryContainer={"Image": "local", "ModelDataUrl": f"s3://{bucket}/{key}"},
    )
    variant = {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant])
    # Real fault: the model server needs seconds to import torch, so no worker answers /ping within 0.5 s.
    monkeypatch.setenv("LOCAL_SAGEMAKER_STARTUP_TIMEOUT", "0.5")
    sm.create_endpoint(EndpointName=stack.endpoint, EndpointConfigName=name)
    endpoint = wait_endpoint(sm, stack.endpoint)
    monkeypatch.delenv("LOCAL_SAGEMAKER_STARTUP_TIMEOUT")
    assert endpoint["EndpointStatus"] == "Failed", endpoint
    yield endpoint
    remove_endpoint(stack)
    sm.delete_endpoint_config(EndpointConfigName=name)
    sm.delete_model(ModelName=name)


def test_failed_endpoint_is_not_updated(stack: Stack, failed_endpoint: dict[str, Any]) -> None:
    """A trained model is not deployed onto a Failed endpoint: EndpointNotUpdatable, with the status in the cause."""
    record = run(stack, quick(stack, gate=0.0), "ep-not-updatable")

    name = stack.job_name("ep-not-updatable")
    assert stack.sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "Completed"
    assert record.status == "FAILED" and record.error == "EndpointNotUpdatable", record.why
    assert record.cause is not None and f"Endpoint {stack.endpoint} is Failed." in record.cause
    order = entered(stack, record.arn)
    assert order[order.index("LookupEndpoint") :][:3] == ["LookupEndpoint", "ServingState", "EndpointNotUpdatable"]
    assert "CreateModel" not in order and resources(stack.sm, name) == (False, False)
    endpoint = stack.sm.describe_endpoint(EndpointName=stack.endpoint)
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == (
        "Failed",
        failed_endpoint["EndpointConfigName"],
    )


@pytest.mark.slow
def test_unrecorded_endpoint_with_a_bare_scaling_target_moves_to_local_storage(fresh: Stack) -> None:
    """An endpoint deployed by hand (no accuracy record; a scalable target but no policy) moves to local NVMe.

    The gate has no serving record to compare against; the instance-type change deregisters the target, and the
    policy it never had is AWS's ObjectNotFoundException, which the ASL catches; the new config carries no volume
    KMS key (SageMaker refuses one on local-storage instance types).
    """
    stack = fresh
    # Named under the stack's prefix: the state machine role may read only those (template.yaml, IAM enforced).
    with serving_endpoint(stack.aws, stack.endpoint, f"{stack.prefix}-by-hand") as created:
        assert created
        stack.autoscaling.register_scalable_target(
            ServiceNamespace="sagemaker",
            ResourceId=stack.resource_id,
            ScalableDimension="sagemaker:variant:DesiredInstanceCount",
            MinCapacity=1,
            MaxCapacity=2,
        )
        assert scaling_policies(stack) == []
        payload = quick(stack, gate=0.0)
        payload["Deploy"] = {**payload["Deploy"], "InstanceType": "ml.m5d.large"}
        record = run(stack, payload, "by-hand-to-nvme")

        assert record.status == "SUCCEEDED", record.why
        name = stack.job_name("by-hand-to-nvme")
        order = entered(stack, record.arn)
        assert order[order.index("HasServingTags") :][:3] == ["HasServingTags", "ServingWithoutRecord", "Gate"]
        assert "CreateEndpointConfigLocalStorage" in order and "CreateEndpointConfig" not in order
        assert (
            order.index("DeleteScalingPolicy") < order.index("DeregisterScalableTarget") < order.index("UpdateEndpoint")
        )
        config = stack.sm.describe_endpoint_config(EndpointConfigName=name)
        assert config["ProductionVariants"][0]["InstanceType"] == "ml.m5d.large" and "KmsKeyId" not in config
        endpoint = stack.sm.describe_endpoint(EndpointName=stack.endpoint)
        assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", name)
        deployed = read_deployment(stack)
        assert deployed is not None and deployed.training_job == name  # the record is written now
        (target,) = scalable_targets(stack)
        assert target["ResourceId"] == stack.resource_id and len(scaling_policies(stack)) == 1


def test_a_taken_training_job_name_fails_without_touching_that_job(stack: Stack, no_test_metric_source: str) -> None:
    """A training job of the same name made outside the pipeline: CreateTrainingJob fails, and Cleanup leaves it be."""
    name = stack.job_name("job-name-taken")
    subs = stack.substitutions
    stack.sm.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": subs["TrainingImageUri"], "TrainingInputMode": "File"},
        RoleArn=subs["SageMakerRoleArn"],
        HyperParameters={"sagemaker_program": "train.py", "sagemaker_submit_directory": no_test_metric_source},
        OutputDataConfig={"S3OutputPath": f"s3://{subs['ArtifactBucket']}/by-hand/"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
    )
    record = run(stack, quick(stack, gate=0.0), "job-name-taken")

    assert record.status == "FAILED" and record.error is not None and record.error.startswith("SageMaker."), record.why
    assert record.cause is not None and "a training job with this name already exists" in record.cause
    order = entered(stack, record.arn)
    assert order[order.index("CreateTrainingJob") :] == [
        "CreateTrainingJob", "Cleanup", "CleanupTraining", "CleanupDeployment", "ReleaseLockBeforeFailing", "Failed",
    ]  # fmt: skip
    # Not this execution's job: never stopped, it runs to its own end.
    assert settled_training(stack, name)["TrainingJobStatus"] == "Completed"


def test_a_taken_model_name_is_retried_then_fails_keeping_that_model(fresh: Stack) -> None:
    """A model of the same name made outside the pipeline: CreateModel is retried, fails, and that model is kept."""
    stack = fresh
    name = stack.job_name("model-name-taken")
    by_hand_model(stack, name)
    record = run(stack, quick(stack, gate=0.0), "model-name-taken")

    assert record.status == "FAILED" and record.error == "SageMaker.SageMakerException", record.why
    assert record.cause is not None and "Cannot create already existing model" in record.cause
    assert attempts(stack, record.arn, "createModel") == 4  # the first call and the Retry's 3 attempts
    order = entered(stack, record.arn)
    assert order[order.index("CreateModel") :] == ["CreateModel", "Cleanup", "CleanupTraining", "CleanupDeployment",
                                                   "ReleaseLockBeforeFailing", "ReleaseDeployLockAfterFailure",
                                                   "Failed"]  # fmt: skip
    assert resources(stack.sm, name) == (True, False)  # the model it did not create is still there
    stack.sm.delete_model(ModelName=name)


def test_a_taken_endpoint_config_name_fails_and_deletes_only_the_new_model(fresh: Stack) -> None:
    """An endpoint config of the same name made outside the pipeline: the execution deletes its own model only."""
    stack = fresh
    name = stack.job_name("config-name-taken")
    other = f"{name[:50]}-other"
    by_hand_model(stack, other)
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": other,
        "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large",
    }
    stack.sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant])
    record = run(stack, quick(stack, gate=0.0), "config-name-taken")

    assert record.status == "FAILED" and record.error == "SageMaker.SageMakerException", record.why
    assert record.cause is not None and "Cannot create already existing endpoint configuration" in record.cause
    assert attempts(stack, record.arn, "createEndpointConfig") == 4
    order = entered(stack, record.arn)
    assert order[order.index("CreateEndpointConfig") :] == [
        "CreateEndpointConfig", "Cleanup", "CleanupTraining", "CleanupDeployment", "DeleteModel",
        "ReleaseLockBeforeFailing", "ReleaseDeployLockAfterFailure", "Failed",
    ]  # fmt: skip
    assert resources(stack.sm, name) == (False, True)  # its own model is deleted, the config it did not make is kept
    assert stack.sm.describe_endpoint_config(EndpointConfigName=name)["ProductionVariants"][0]["ModelName"] == other
    stack.sm.delete_endpoint_config(EndpointConfigName=name)
    stack.sm.delete_model(ModelName=other)


def test_an_unknown_local_storage_instance_type_fails_at_its_endpoint_config(fresh: Stack) -> None:
    """Deploy.InstanceType passes the ASL's ``ml.*`` check, but SageMaker's enum refuses it at CreateEndpointConfig.

    The typo costs a training run (the ASL cannot list SageMaker's instance types); the model it made is deleted.
    """
    stack = fresh
    payload = quick(stack, gate=0.0)
    payload["Deploy"] = {**payload["Deploy"], "InstanceType": "ml.m5d.huge"}
    record = run(stack, payload, "nvme-typo")

    name = stack.job_name("nvme-typo")
    assert record.status == "FAILED" and record.error == "SageMaker.SageMakerException", record.why
    assert record.cause is not None and "ml.m5d.huge" in record.cause and "enum value set" in record.cause
    order = entered(stack, record.arn)
    assert order[order.index("CreateEndpointConfigLocalStorage") :] == [
        "CreateEndpointConfigLocalStorage", "Cleanup", "CleanupTraining", "CleanupDeployment", "DeleteModel",
        "ReleaseLockBeforeFailing", "ReleaseDeployLockAfterFailure", "Failed",
    ]  # fmt: skip
    assert resources(stack.sm, name) == (False, False)


def test_an_empty_tuning_range_is_refused_by_sagemaker_before_any_job(stack: Stack) -> None:
    """A ContinuousRange with MinValue above MaxValue passes the ASL's checks; SageMaker's CreateTuningJob refuses."""
    payload = small_tuning(
        stack,
        Strategy="Random",
        CategoricalRanges=[],
        ContinuousRanges=[{"Name": "learning-rate", "MinValue": "0.2", "MaxValue": "0.01"}],
    )
    record = run(stack, payload, "tune-empty-range")

    assert record.status == "FAILED" and record.error == "SageMaker.SageMakerException", record.why
    assert record.cause is not None and "learning-rate: MinValue 0.2 is greater than MaxValue 0.01" in record.cause
    assert attempts(stack, record.arn, "createHyperParameterTuningJob") == 4  # the first call and 3 retries
    order = entered(stack, record.arn)
    assert order[order.index("CreateTuningJob") :] == [
        "CreateTuningJob", "Cleanup", "CleanupTraining", "CleanupDeployment", "ReleaseLockBeforeFailing", "Failed",
    ]  # fmt: skip


@pytest.mark.slow
def test_a_serving_endpoint_whose_config_was_deleted_stops_the_deploy(fresh: Stack) -> None:
    """The serving endpoint's config was deleted (SageMaker allows it): the pipeline cannot read the variant it
    would keep, so it fails with SageMaker's error instead of guessing, and the endpoint keeps serving."""
    stack = fresh
    with serving_endpoint(stack.aws, stack.endpoint, f"{stack.prefix}-config-gone") as created:
        assert created
        serving = stack.sm.describe_endpoint(EndpointName=stack.endpoint)
        stack.sm.delete_endpoint_config(EndpointConfigName=serving["EndpointConfigName"])
        record = run(stack, quick(stack, gate=0.0), "serving-config-gone")

        name = stack.job_name("serving-config-gone")
        assert record.status == "FAILED" and record.error == "SageMaker.SageMakerException", record.why
        assert record.cause is not None and "Could not find endpoint configuration" in record.cause
        assert attempts(stack, record.arn, "describeEndpointConfig") == 4
        order = entered(stack, record.arn)
        assert order[order.index("DescribeServingConfig") :] == [
            "DescribeServingConfig", "Cleanup", "CleanupTraining", "CleanupDeployment", "ReleaseLockBeforeFailing",
            "ReleaseDeployLockAfterFailure", "Failed",
        ]  # fmt: skip
        assert resources(stack.sm, name) == (False, False)
        after = stack.sm.describe_endpoint(EndpointName=stack.endpoint)
        assert (after["EndpointStatus"], after["EndpointConfigName"]) == ("InService", serving["EndpointConfigName"])


@pytest.mark.slow
def test_an_endpoint_with_no_room_for_the_record_serves_the_new_model_but_fails(
    fresh: Stack, test_image: bytes
) -> None:
    """An endpoint already carrying 48 of SageMaker's 50 tags: the update succeeds, the 3 record tags do not fit.

    AddTags is refused (retried, then caught), so the execution fails although the new model serves: the config and
    model it runs on are kept, and no accuracy record is written for the next gate to read.
    """
    stack = fresh
    with serving_endpoint(stack.aws, stack.endpoint, f"{stack.prefix}-tagged") as created:
        assert created
        endpoint_arn = stack.sm.describe_endpoint(EndpointName=stack.endpoint)["EndpointArn"]
        team_tags = [{"Key": f"team:{i:02d}", "Value": "x"} for i in range(48)]
        stack.sm.add_tags(ResourceArn=endpoint_arn, Tags=team_tags)
        record = run(stack, quick(stack, gate=0.0), "no-room-for-tags")

        name = stack.job_name("no-room-for-tags")
        assert record.status == "FAILED" and record.error == "SageMaker.SageMakerException", record.why
        assert record.cause is not None and "50 tags" in record.cause
        assert attempts(stack, record.arn, "addTags") == 4
        order = entered(stack, record.arn)
        assert order[order.index("RecordServingMetrics") :] == [
            "RecordServingMetrics", "Cleanup", "CleanupTraining", "CleanupDeployment", "CheckEndpointBeforeCleanup",
            "RestoreScalingNeeded", "ConfigStillReferenced", "ReleaseLockBeforeFailing",
            "ReleaseDeployLockAfterFailure", "Failed",
        ]  # fmt: skip
        endpoint = stack.sm.describe_endpoint(EndpointName=stack.endpoint)
        assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", name)
        assert predict_version(stack.runtime, stack.endpoint, test_image) == name
        assert resources(stack.sm, name) == (True, True)  # what the endpoint runs on is never deleted
        tags = stack.sm.list_tags(ResourceArn=endpoint_arn)["Tags"]
        assert sorted(t["Key"] for t in tags) == [t["Key"] for t in team_tags]  # no record: the next gate has none


def test_a_throttled_endpoint_lookup_waits_then_fails_with_the_throttle_as_its_reason(stack: Stack) -> None:
    """DescribeEndpoint throttled at every call ([chaos.throttle]): the lookup is polled again on the shared budget
    (a throttle is not "Could not find endpoint", so the pipeline cannot tell whether an endpoint serves); when the
    budget is spent it stops with SageMaker's message instead of guessing. The trained job is kept."""
    chaos = ChaosFile(stack.aws.home)
    chaos.write('[chaos.throttle]\noperations = ["DescribeEndpoint"]\nrate = 1.0\n')
    payload = quick(stack, gate=0.0)
    payload["Polling"] = {"IntervalSeconds": 2, "MaxIntervalSeconds": 4, "MaxAttempts": 40}
    try:
        record = run(stack, payload, "lookup-throttled")
    finally:
        chaos.remove()

    name = stack.job_name("lookup-throttled")
    assert stack.sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "Completed"
    assert record.status == "FAILED" and record.error == "EndpointLookupFailed", record.why
    assert record.cause is not None and "Rate exceeded" in record.cause
    order = entered(stack, record.arn)
    after = order[order.index("LookupEndpoint") :]
    assert after.count("CountLookupPoll") >= 1 and after.count("WaitBeforeLookup") == after.count("CountLookupPoll")
    assert after[-9:] == [
        "LookupEndpoint", "EndpointFound", "LookupFailed", "Cleanup", "CleanupTraining", "CleanupDeployment",
        "ReleaseLockBeforeFailing", "ReleaseDeployLockAfterFailure", "Failed",
    ]  # fmt: skip
    assert resources(stack.sm, name) == (False, False)


def test_an_endpoint_quota_of_zero_refuses_the_new_endpoint_and_cleans_up(
    fresh: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No instance quota left for endpoints ([chaos.quota]): CreateEndpoint is retried with backoff, then fails
    QuotaExceeded with SageMaker's quota text; Cleanup proves no endpoint exists, so it deletes the config and model."""
    stack = fresh
    monkeypatch.setenv(ENV_TIME_SCALE, "600")  # the ~24 min of quota backoff in a few seconds
    chaos = ChaosFile(stack.aws.home)
    chaos.write('[chaos.quota.endpoint]\n"ml.m5.large" = 0\n')
    try:
        record = run(stack, quick(stack, gate=0.0), "endpoint-quota")
    finally:
        chaos.remove()

    name = stack.job_name("endpoint-quota")
    assert record.status == "FAILED" and record.error == "QuotaExceeded", record.why
    assert record.cause is not None and "'ml.m5.large for endpoint usage' is 0 Instances" in record.cause
    assert attempts(stack, record.arn, "createEndpoint") == 6  # the call and 5 retries with backoff
    order = entered(stack, record.arn)
    assert order[order.index("CreateEndpoint") :] == [
        "CreateEndpoint", "QuotaExceeded", "Cleanup", "CleanupTraining", "CleanupDeployment",
        "CheckEndpointBeforeCleanup", "CleanupEndpointGone", "DeleteEndpointConfig", "DeleteModel",
        "ReleaseLockBeforeFailing", "ReleaseDeployLockAfterFailure", "Failed",
    ]  # fmt: skip
    assert resources(stack.sm, name) == (False, False)
    assert not scalable_targets(stack)


def test_an_update_past_the_endpoint_quota_is_refused_and_the_old_fleet_serves(
    fresh: Stack, test_image: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A blue/green update needs the new fleet beside the old one: with a quota of 1 instance it is retried, then
    refused; the old fleet keeps serving, and Cleanup deletes only what this execution made."""
    stack = fresh
    with serving_endpoint(stack.aws, stack.endpoint, f"{stack.prefix}-quota") as created:
        assert created
        blue = stack.sm.describe_endpoint(EndpointName=stack.endpoint)["EndpointConfigName"]
        monkeypatch.setenv(ENV_TIME_SCALE, "600")
        chaos = ChaosFile(stack.aws.home)
        chaos.write('[chaos.quota.endpoint]\n"ml.m5.large" = 1\n')
        try:
            record = run(stack, quick(stack, gate=0.0), "update-quota")
        finally:
            chaos.remove()
            monkeypatch.delenv(ENV_TIME_SCALE)

        name = stack.job_name("update-quota")
        assert record.status == "FAILED" and record.error == "QuotaExceeded", record.why
        assert record.cause is not None and "current utilization of 1 Instances" in record.cause
        order = entered(stack, record.arn)
        assert order[order.index("UpdateEndpoint") :][:3] == ["UpdateEndpoint", "QuotaExceeded", "Cleanup"]
        assert order[-5:] == [
            "DeleteEndpointConfig", "DeleteModel", "ReleaseLockBeforeFailing",
            "ReleaseDeployLockAfterFailure", "Failed",
        ]  # fmt: skip
        endpoint = stack.sm.describe_endpoint(EndpointName=stack.endpoint)
        assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", blue)
        assert predict_version(stack.runtime, stack.endpoint, test_image) == "probe-v1"  # the untrained model
        assert resources(stack.sm, name) == (False, False)


def test_a_throttled_cleanup_leaves_the_config_and_model_behind(fresh: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """The endpoint quota refuses the endpoint and Cleanup's deletes are throttled at every try: each is retried,
    then given up; the execution still fails with the quota, and the config and model it made are left behind."""
    stack = fresh
    monkeypatch.setenv(ENV_TIME_SCALE, "600")
    chaos = ChaosFile(stack.aws.home)
    chaos.write(
        '[chaos.quota.endpoint]\n"ml.m5.large" = 0\n'
        '[chaos.throttle]\noperations = ["DeleteEndpointConfig", "DeleteModel"]\nrate = 1.0\n'
    )
    try:
        record = run(stack, quick(stack, gate=0.0), "cleanup-throttled")
    finally:
        chaos.remove()

    name = stack.job_name("cleanup-throttled")
    assert record.status == "FAILED" and record.error == "QuotaExceeded", record.why
    assert attempts(stack, record.arn, "deleteEndpointConfig") == 4 and attempts(stack, record.arn, "deleteModel") == 4
    order = entered(stack, record.arn)
    assert order[-7:] == [
        "CheckEndpointBeforeCleanup", "CleanupEndpointGone", "DeleteEndpointConfig", "DeleteModel",
        "ReleaseLockBeforeFailing", "ReleaseDeployLockAfterFailure", "Failed",
    ]  # fmt: skip
    assert resources(stack.sm, name) == (True, True)  # left behind under their deterministic names
    stack.sm.delete_endpoint_config(EndpointConfigName=name)
    stack.sm.delete_model(ModelName=name)
