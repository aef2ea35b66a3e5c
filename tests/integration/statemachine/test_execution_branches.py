"""Execution tests for the branches the happy-path and failure tests never take (issue 8: every state is executed).

Each test reaches one state of the ASL for real, through StartExecution on the session's local AWS: a poll budget
that a running job outlives (TrainingTimedOut, TuningTimedOut), a training script that reports no test metric
(TestMetricMissing, TuningFoundNoBestJob), jobs that all fail or are stopped by someone else (TuningFailedWithReason,
TuningFailed, TrainingFailed), an endpoint left Failed (EndpointNotUpdatable), and an endpoint deployed by hand
(ServingWithoutRecord, the DeleteScalingPolicy Catch) moving to local storage (CreateEndpointConfigLocalStorage),
and names already taken by resources made outside the pipeline (the Retry and Catch edges of CreateTrainingJob,
CreateModel and CreateEndpointConfig: SageMaker refuses a duplicate name). The ASL coverage report
(tests/asl_coverage_plugin.py) reads these executions with the others. CPU is kept low: every job is stopped, fails
at its argument check, or runs a script that does no training; the tests that need a trained model train 2 steps.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.local_aws_fixtures import serving_endpoint, untrained_artifact, wait_endpoint
from tests.integration.statemachine.sfn_helpers import (
    Stack,
    history,
    metrics,
    quick,
    read_deployment,
    remove_endpoint,
    resources,
    run,
    scalable_targets,
    scaling_policies,
    sfn_event,
    start,
    states,
    wait,
)
from tools.source_package import package_source

# A SageMaker entry point that trains nothing: it logs training metrics in train.py's format (the ASL's
# MetricDefinitions read them from the log) and saves a model file, but reports neither valid:top1 nor test:top1.
NO_TEST_METRIC_SCRIPT = """\
import os, pathlib
print("METRIC split=train epoch=1 loss=0.75 top1=0.25", flush=True)
pathlib.Path(os.environ["SM_MODEL_DIR"], "model.txt").write_text("no test split was evaluated")
"""
# Polling that the jobs below outlive: the first check reads InProgress, the next one is over budget.
TIGHT_POLLING = {"IntervalSeconds": 0, "MaxAttempts": 1}


def entered(stack: Stack, arn: str) -> list[str]:
    return states(history(stack.sfn, arn))


def until(probe: Any, timeout: float = 120.0, every: float = 0.2) -> Any:
    """Call ``probe`` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        assert time.monotonic() < deadline, f"{probe} still false after {timeout:g} s"
        time.sleep(every)
    return value


def scheduled_parameters(stack: Stack, arn: str, resource: str) -> dict[str, Any] | None:
    """The parameters of the first ``aws-sdk`` task ``resource`` the execution scheduled, once it has."""
    for event in history(stack.sfn, arn):
        details = event.get("taskScheduledEventDetails")
        if details and details["resource"] == resource:
            parameters: dict[str, Any] = json.loads(details["parameters"])
            return parameters
    return None


def tuning_job_of(stack: Stack, arn: str) -> str:
    """The tuning job an execution created (its name is random: read it from the CreateTuningJob task)."""
    parameters = until(lambda: scheduled_parameters(stack, arn, "createHyperParameterTuningJob"))
    return str(parameters["HyperParameterTuningJobName"])


def settled_training(stack: Stack, name: str) -> dict[str, Any]:
    """DescribeTrainingJob once the job has ended (Stopping ends in Stopped)."""
    return dict(
        until(lambda: (job := stack.sm.describe_training_job(TrainingJobName=name))["TrainingJobStatus"]
              not in ("InProgress", "Stopping") and job)
    )  # fmt: skip


def settled_tuning(stack: Stack, name: str) -> dict[str, Any]:
    """DescribeHyperParameterTuningJob once the tuning job has ended."""
    describe = stack.sm.describe_hyper_parameter_tuning_job
    return dict(
        until(lambda: (job := describe(HyperParameterTuningJobName=name))["HyperParameterTuningJobStatus"]
              not in ("InProgress", "Stopping") and job)
    )  # fmt: skip


@pytest.fixture(scope="module")
def no_test_metric_source(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The SourceDir URI of a source bundle whose train.py reports no test (or validation) metric."""
    src = tmp_path_factory.mktemp("no-test-metric")
    (src / "train.py").write_text(NO_TEST_METRIC_SCRIPT)
    package = package_source(Path(src))
    bucket = stack.outputs["ArtifactBucketName"]
    stack.s3.put_object(Bucket=bucket, Key=f"code/{package.name}", Body=package.data)
    return f"s3://{bucket}/code/{package.name}"


def small_tuning(stack: Stack, **tuning: Any) -> dict[str, Any]:
    """The tuning event (a 2-point grid over learning-rate), with ``tuning`` over its Tuning section."""
    payload = sfn_event("tuning", stack)
    payload["Tuning"] = {**payload["Tuning"], **tuning}
    return payload


def test_training_past_the_poll_budget_is_stopped(stack: Stack) -> None:
    """A training job still running when Polling.MaxAttempts is spent fails TrainingTimedOut and is stopped."""
    payload = quick(stack, gate=1.0)
    payload["Polling"] = TIGHT_POLLING
    record = run(stack, payload, "train-budget")

    name = stack.job_name("train-budget")
    assert record.status == "FAILED" and record.error == "TrainingTimedOut", record.why
    assert (
        record.cause == f"Training job {name} still running after Polling.MaxAttempts=1 polls, so it is being stopped."
    )
    order = entered(stack, record.arn)
    assert order.count("DescribeTraining") == 2  # the budget: one check, one more after the first count
    assert order[order.index("TrainingTimedOut") :] == [
        "TrainingTimedOut", "Cleanup", "CleanupTraining", "StopTrainingJob", "CleanupDeployment", "Failed",
    ]  # fmt: skip
    job = settled_training(stack, name)
    assert job["TrainingJobStatus"] == "Stopped"  # StopTrainingJob reached the job, which never completed
    assert "ModelArtifacts" not in job or not metrics(job)


def test_tuning_past_the_poll_budget_is_stopped(stack: Stack) -> None:
    """A tuning job still running when the poll budget is spent fails TuningTimedOut and is stopped, children too."""
    payload = small_tuning(stack)
    payload["Polling"] = TIGHT_POLLING
    record = run(stack, payload, "tune-budget")

    tuning = tuning_job_of(stack, record.arn)
    assert record.status == "FAILED" and record.error == "TuningTimedOut", record.why
    assert record.cause is not None and tuning in record.cause
    order = entered(stack, record.arn)
    assert order[order.index("TuningTimedOut") :] == [
        "TuningTimedOut", "Cleanup", "StopTuningJob", "CleanupTraining", "CleanupDeployment", "Failed",
    ]  # fmt: skip
    assert "CreateTrainingJob" not in order  # no final training without a best job
    job = settled_tuning(stack, tuning)
    assert job["HyperParameterTuningJobStatus"] == "Stopped"
    children = stack.sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuning)
    for child in children["TrainingJobSummaries"]:
        assert settled_training(stack, child["TrainingJobName"])["TrainingJobStatus"] in ("Stopped", "Failed")


def test_training_without_a_test_metric_is_rejected(stack: Stack, no_test_metric_source: str) -> None:
    """A job that completes without reporting test:top1 is rejected by the gate, and nothing is deployed."""
    before = read_deployment(stack)
    payload = quick(stack, gate=0.0)
    payload["SourceDir"] = no_test_metric_source
    record = run(stack, payload, "no-test-metric")

    name = stack.job_name("no-test-metric")
    job = stack.sm.describe_training_job(TrainingJobName=name)
    assert job["TrainingJobStatus"] == "Completed"
    assert metrics(job) == {"train:loss": 0.75, "train:top1": 0.25}  # metrics were read, just not the gate's
    assert record.status == "FAILED" and record.error == "GateRejected", record.why
    assert record.cause == f"Training job {name} reported no test:top1 metric, so the gate cannot judge it."
    order = entered(stack, record.arn)
    assert order[order.index("CheckTestMetric") :][:4] == ["CheckTestMetric", "ListMetricNames", "HasTestMetric",
                                                          "TestMetricMissing"]  # fmt: skip
    assert "LookupEndpoint" not in order and "CreateModel" not in order
    assert resources(stack.sm, name) == (False, False)
    assert read_deployment(stack) == before


def test_tuning_without_an_objective_metric_finds_no_best_job(stack: Stack, no_test_metric_source: str) -> None:
    """A tuning job whose jobs all complete without the objective metric has no best job: the execution stops."""
    payload = small_tuning(stack)
    payload["SourceDir"] = no_test_metric_source
    record = run(stack, payload, "tune-no-best")

    tuning = settled_tuning(stack, tuning_job_of(stack, record.arn))
    assert tuning["HyperParameterTuningJobStatus"] == "Completed" and "BestTrainingJob" not in tuning
    assert record.status == "FAILED" and record.error == "TuningFailed", record.why
    assert record.cause == (
        f"Tuning job {tuning['HyperParameterTuningJobName']} completed without a best training job"
        " (no job reported valid:top1)."
    )
    order = entered(stack, record.arn)
    assert "TuningFoundNoBestJob" in order and "CreateTrainingJob" not in order
    assert "StopTuningJob" not in order  # a Completed tuning job is not stopped


def test_tuning_whose_jobs_all_fail_fails_with_the_first_reason(stack: Stack) -> None:
    """Every tuning job rejected by train.py: the tuning job fails, and the execution fails with its reason."""
    payload = small_tuning(stack, CategoricalRanges=[{"Name": "learning-rate", "Values": ["-1", "-2"]}])
    record = run(stack, payload, "tune-all-fail")

    tuning = settled_tuning(stack, tuning_job_of(stack, record.arn))
    assert tuning["HyperParameterTuningJobStatus"] == "Failed"
    assert (
        tuning["FailureReason"].startswith("All training jobs failed.") and "--learning-rate" in tuning["FailureReason"]
    )
    assert record.status == "FAILED" and record.error == "TuningFailed", record.why
    assert record.cause == f"Tuning job {tuning['HyperParameterTuningJobName']} failed: {tuning['FailureReason']}"
    assert "TuningFailedWithReason" in entered(stack, record.arn)


def test_tuning_stopped_by_someone_else_fails_the_execution(stack: Stack) -> None:
    """A tuning job stopped from outside ends Stopped; the execution fails TuningFailed and stops nothing itself."""
    payload = small_tuning(stack)
    payload["Polling"] = {"IntervalSeconds": 1, "MaxAttempts": 300}
    arn = start(stack.sfn, stack.machine_arn, payload, "tune-stopped")
    tuning = tuning_job_of(stack, arn)
    until(lambda: stack.sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuning))
    stack.sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuning)
    record = wait(stack.sfn, arn)

    assert settled_tuning(stack, tuning)["HyperParameterTuningJobStatus"] == "Stopped"
    assert record.status == "FAILED" and record.error == "TuningFailed", record.why
    assert record.cause == f"Tuning job {tuning} ended Stopped."
    order = entered(stack, arn)
    assert "TuningFailed" in order and "StopTuningJob" not in order and "CreateTrainingJob" not in order


def test_training_stopped_by_someone_else_fails_the_execution(stack: Stack) -> None:
    """A training job stopped from outside ends Stopped; the execution fails TrainingFailed and deploys nothing."""
    payload = quick(stack, gate=0.0)
    arn = start(stack.sfn, stack.machine_arn, payload, "train-stopped")
    name = stack.job_name("train-stopped")
    until(lambda: scheduled_parameters(stack, arn, "describeTrainingJob"))  # the job exists and is being polled
    stack.sm.stop_training_job(TrainingJobName=name)
    record = wait(stack.sfn, arn)

    assert settled_training(stack, name)["TrainingJobStatus"] == "Stopped"
    assert record.status == "FAILED" and record.error == "TrainingFailed", record.why
    assert record.cause is not None and record.cause.startswith(f"Training job {name} ended Stopped (")
    order = entered(stack, arn)
    assert "TrainingFailed" in order and "StopTrainingJob" not in order and "CreateModel" not in order
    assert resources(stack.sm, name) == (False, False)


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
    with serving_endpoint(stack.aws, stack.endpoint, "by-hand") as created:
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


def by_hand_model(stack: Stack, name: str) -> None:
    """A model called ``name`` created outside the pipeline (the untrained artifact, real serving code)."""
    bucket = stack.outputs["ArtifactBucketName"]
    key = f"by-hand/{name}/model.tar.gz"
    stack.s3.put_object(Bucket=bucket, Key=key, Body=untrained_artifact())
    stack.sm.create_model(
        ModelName=name,
        ExecutionRoleArn=stack.outputs["SageMakerExecutionRoleArn"],
        PrimaryContainer={"Image": "local", "ModelDataUrl": f"s3://{bucket}/{key}"},
    )


def attempts(stack: Stack, arn: str, resource: str) -> int:
    """How many times the execution scheduled the ``aws-sdk`` task ``resource`` (1 + its retries)."""
    return sum(1 for e in history(stack.sfn, arn) if e.get("taskScheduledEventDetails", {}).get("resource") == resource)


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
        "CreateTrainingJob", "Cleanup", "CleanupTraining", "CleanupDeployment", "Failed",
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
        "CreateEndpointConfig", "Cleanup", "CleanupTraining", "CleanupDeployment", "DeleteModel", "Failed",
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
        "CreateEndpointConfigLocalStorage", "Cleanup", "CleanupTraining", "CleanupDeployment", "DeleteModel", "Failed",
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
        "CreateTuningJob", "Cleanup", "CleanupTraining", "CleanupDeployment", "Failed",
    ]  # fmt: skip


@pytest.mark.slow
def test_a_serving_endpoint_whose_config_was_deleted_stops_the_deploy(fresh: Stack) -> None:
    """The serving endpoint's config was deleted (SageMaker allows it): the pipeline cannot read the variant it
    would keep, so it fails with SageMaker's error instead of guessing, and the endpoint keeps serving."""
    stack = fresh
    with serving_endpoint(stack.aws, stack.endpoint, "config-gone") as created:
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
            "DescribeServingConfig", "Cleanup", "CleanupTraining", "CleanupDeployment", "Failed",
        ]  # fmt: skip
        assert resources(stack.sm, name) == (False, False)
        after = stack.sm.describe_endpoint(EndpointName=stack.endpoint)
        assert (after["EndpointStatus"], after["EndpointConfigName"]) == ("InService", serving["EndpointConfigName"])
