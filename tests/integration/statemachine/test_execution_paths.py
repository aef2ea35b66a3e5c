"""Execution-path tests: the deployed state machine on the local AWS, every call over HTTP with boto3.

The ASL is the one ``deploy.py`` created from template.yaml (DefinitionSubstitutions applied); moto's interpreter runs
it and its SDK tasks reach the local SageMaker and Application Auto Scaling through the same signed edge as the
tests. Every training job really runs ``training/train.py`` on a rendered 16 px digits dataset and every endpoint
really serves ``training/inference.py``; each test drives one branch of issue 3 §6 and asserts what the services hold
and what the model answers, not only the execution status. The tests share one local AWS, so they run in file order
and each starts from the endpoint state its fixture (``fresh`` or ``serving``) sets up.
"""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import pytest

from tests.integration.statemachine.sfn_helpers import (
    EVENTS,
    TRAINING_LOG_GROUP,
    Deployment,
    Stack,
    exists,
    history,
    hp,
    metrics,
    predict_version,
    quick,
    read_deployment,
    resources,
    run,
    scalable_targets,
    scaling_policies,
    sdk_calls,
    sfn_event,
    states,
    training_log,
)


def entered(stack: Stack, arn: str) -> list[str]:
    """The states an execution entered, in order, read back through GetExecutionHistory."""
    return states(history(stack.sfn, arn))


def test_stack_values_come_from_the_deployment(stack: Stack) -> None:
    """The values the tests compare against are the deployed ones: outputs and substitutions agree."""
    subs, out = stack.substitutions, stack.outputs
    assert (subs["DataBucket"], subs["ArtifactBucket"]) == (out["DataBucketName"], out["ArtifactBucketName"])
    assert subs["SageMakerRoleArn"] == out["SageMakerExecutionRoleArn"] and subs["KmsKeyArn"] == out["KmsKeyArn"]
    assert (subs["EndpointName"], subs["ResourcePrefix"]) == (out["EndpointName"], out["ResourcePrefix"])
    machine = stack.sfn.describe_state_machine(stateMachineArn=stack.machine_arn)
    definition = machine["definition"]
    json.loads(definition)
    assert "${" not in definition  # every DefinitionSubstitution was applied
    for key in ("SageMakerRoleArn", "KmsKeyArn", "TrainingImageUri", "InferenceImageUri", "ArtifactBucket"):
        assert subs[key] in definition, key  # the values the tests compare against are in the deployed ASL
    assert machine["roleArn"] == out["StateMachineRoleArn"]


@pytest.mark.parametrize("name", ["local_small", "tuning"])
def test_event_fixtures_name_the_deployed_buckets(stack: Stack, name: str) -> None:
    """tests/events/sfn_*.json point at the stack's buckets, so `--input file://...` works on the local AWS as is."""
    raw = json.loads((EVENTS / f"sfn_{name}.json").read_text())
    assert (raw["TrainingData"], raw["SourceDir"]) == (stack.data_uri, stack.source_uri)


# One row per way an input can be wrong: (patch over the small event, text the cause must hold, Fail state reached).
# Together the rows reach every NotAnObject*/Invalid* state of ValidateInput (the ASL coverage report checks it).
INVALID_INPUTS: list[tuple[dict[str, Any], str, str]] = [
    ({"Hyperparameters": ["arch", "smallcnn"]}, "Hyperparameters must be a JSON object", "NotAnObjectHyperparameters"),
    ({"Training": "big"}, "Training", "NotAnObjectTraining"),
    ({"Tuning": True}, "Tuning must be a JSON object", "NotAnObjectTuning"),
    ({"Deploy": None}, "Deploy must be a JSON object", "NotAnObjectDeploy"),
    ({"Gate": 0.5}, "Gate must be a JSON object", "NotAnObjectGate"),
    ({"Polling": "fast"}, "Polling must be a JSON object", "NotAnObjectPolling"),
    ({"TrainingData": "/data/dogImages"}, "TrainingData", "Invalid00"),
    ({"SourceDir": "s3://bucket/code/train.py"}, "SourceDir must be an s3:// URI of a .tar.gz", "Invalid01"),
    ({"Training": {"InstanceType": "m5.xlarge"}}, "Training.InstanceType", "Invalid02"),
    ({"Training": {"InstanceCount": 0}}, "Training.InstanceCount", "Invalid03"),
    ({"Training": {"InstanceCount": "two"}}, "Training.InstanceCount", "Invalid03"),
    ({"Training": {"UseSpot": "yes"}}, "Training.UseSpot", "Invalid04"),
    ({"Training": {"MaxRuntimeSeconds": 59}}, "Training.MaxRuntimeSeconds", "Invalid05"),
    ({"Training": {"MaxRuntimeSeconds": 3600, "MaxWaitSeconds": 600}}, "Training.MaxWaitSeconds", "Invalid06"),
    ({"Training": {"VolumeSizeGB": 0}}, "Training.VolumeSizeGB", "Invalid07"),
    ({"Tuning": {"Enabled": "true"}}, "Tuning.Enabled", "Invalid08"),
    ({"Tuning": {"Strategy": "Genetic"}}, "Tuning.Strategy", "Invalid09"),
    ({"Tuning": {"MaxJobs": 501}}, "Tuning.MaxJobs", "Invalid10"),
    ({"Tuning": {"MaxJobs": 2, "MaxParallelJobs": 3}}, "Tuning.MaxParallelJobs", "Invalid11"),
    ({"Deploy": {"InstanceType": 5}}, "Deploy.InstanceType", "Invalid12"),
    ({"Deploy": {"InitialInstanceCount": 101}}, "Deploy.InitialInstanceCount", "Invalid13"),
    ({"Deploy": {"MinCapacity": 0}}, "Deploy.MinCapacity", "Invalid14"),
    ({"Deploy": {"MinCapacity": 3, "MaxCapacity": 2}}, "Deploy.MaxCapacity", "Invalid15"),
    ({"Deploy": {"TargetInvocationsPerInstance": 0}}, "Deploy.TargetInvocationsPerInstance", "Invalid16"),
    ({"Deploy": {"BakeSeconds": 3601}}, "Deploy.BakeSeconds", "Invalid17"),
    ({"Gate": {"MinTestAccuracy": 70}}, "Gate.MinTestAccuracy", "Invalid18"),
    ({"Polling": {"IntervalSeconds": -1}}, "Polling.IntervalSeconds", "Invalid19"),
    # The poll budget: a zero interval would spend it in seconds; past 2000 polls the history quota is at risk.
    ({"Polling": {"IntervalSeconds": 0}}, "Polling.IntervalSeconds", "Invalid19"),
    ({"Polling": {"MaxAttempts": 2001}}, "25,000-event quota", "Invalid20"),
    ({"Polling": {"IntervalSeconds": 60, "MaxIntervalSeconds": 30}}, "Polling.MaxIntervalSeconds", "Invalid23"),
    ({"PretrainedWeights": "/tmp/resnet50.pth"}, "PretrainedWeights", "Invalid21"),
    (
        {"Tuning": {"Strategy": "Grid", "CategoricalRanges": [{"Name": "arch", "Values": ["smallcnn"]}]}},
        "Grid",
        "Invalid22",
    ),
]


@pytest.mark.parametrize(("patch", "needle", "fail_state"), INVALID_INPUTS)
def test_invalid_input_fails_fast_naming_the_field(
    stack: Stack, patch: dict[str, Any], needle: str, fail_state: str
) -> None:
    """A bad input fails InvalidInput from its own Fail state, the cause names the field, and nothing trains."""
    execution = f"bad-{hashlib.md5(json.dumps(patch).encode()).hexdigest()[:10]}"
    record = run(stack, {**sfn_event("local_small", stack), **patch}, execution)

    assert record.status == "FAILED" and record.error == "InvalidInput", record.why
    assert record.cause is not None and needle in record.cause
    assert not exists(stack.sm.describe_training_job, TrainingJobName=stack.job_name(execution))
    order = entered(stack, record.arn)
    assert "CreateTrainingJob" not in order
    assert order[-2:] == [fail_state, "InvalidInput"]  # the branch's Fail state, then ValidateInput's Catch


@pytest.mark.slow
def test_new_endpoint_failed_keeps_the_config_it_references(fresh: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new endpoint that never gets healthy fails EndpointFailed and keeps the config and model it references."""
    # Real fault: the model server needs seconds to import torch, so no worker answers /ping within 0.5 s.
    monkeypatch.setenv("LOCAL_SAGEMAKER_STARTUP_TIMEOUT", "0.5")
    record = run(fresh, quick(fresh, gate=0.0), "create-fails")

    assert record.status == "FAILED" and record.error == "EndpointFailed", record.why
    endpoint = fresh.sm.describe_endpoint(EndpointName=fresh.endpoint)
    assert endpoint["EndpointStatus"] == "Failed"
    assert "did not pass the ping health check within 0.5 seconds" in endpoint["FailureReason"]
    assert record.cause is not None and endpoint["FailureReason"] in record.cause
    # The Failed endpoint still references this config (and its model): never delete what an endpoint runs on.
    assert endpoint["EndpointConfigName"] == fresh.job_name("create-fails")
    assert resources(fresh.sm, fresh.job_name("create-fails")) == (True, True)
    assert scalable_targets(fresh) == []


@pytest.mark.slow
def test_create_deploys_with_autoscaling_and_records_accuracy(fresh: Stack, test_image: bytes) -> None:
    """A first run creates the endpoint, registers autoscaling, tags the accuracy, and the new model answers."""
    stack, sm, subs = fresh, fresh.sm, fresh.substitutions
    payload = sfn_event("local_small", stack)
    record = run(stack, payload, "create-1")

    assert record.status == "SUCCEEDED", record.why
    out = record.output
    assert out is not None
    name = stack.job_name("create-1")
    assert (out["EndpointName"], out["TrainingJobName"], out["ModelName"], out["EndpointConfigName"]) == (
        stack.endpoint, name, name, name,
    )  # fmt: skip
    job = sm.describe_training_job(TrainingJobName=name)
    assert job["TrainingJobStatus"] == "Completed"
    final = metrics(job)
    assert out["Metrics"]["TestTop1"] == pytest.approx(final["test:top1"]) and final["test:top1"] >= 0.5
    assert out["Metrics"]["Threshold"] == pytest.approx(0.5)
    order = entered(stack, record.arn)
    assert "CreateEndpoint" in order and "UpdateEndpoint" not in order

    endpoint = sm.describe_endpoint(EndpointName=stack.endpoint)
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", name)
    assert predict_version(stack.runtime, stack.endpoint, test_image) == name  # the model this job trained answers
    tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=endpoint["EndpointArn"])["Tags"]}
    assert tags == {
        "dogbreed:test-top1": str(out["Metrics"]["TestTop1"]),
        "dogbreed:training-job": name,
        "dogbreed:model-name": name,
    }
    (target,) = scalable_targets(stack)
    assert (target["ResourceId"], target["MinCapacity"], target["MaxCapacity"]) == (stack.resource_id, 1, 2)
    assert target["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    (policy,) = scaling_policies(stack)
    config = policy["TargetTrackingScalingPolicyConfiguration"]
    assert config["PredefinedMetricSpecification"]["PredefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"
    assert config["TargetValue"] == 70

    # What the server was asked to run, as it recorded it.
    assert job["EnableNetworkIsolation"] is True and job["EnableInterContainerTrafficEncryption"] is True
    assert job["RoleArn"] == subs["SageMakerRoleArn"]
    assert job["AlgorithmSpecification"]["TrainingImage"] == subs["TrainingImageUri"]
    assert job["ResourceConfig"]["VolumeKmsKeyId"] == subs["KmsKeyArn"]
    assert job["OutputDataConfig"]["KmsKeyId"] == subs["KmsKeyArn"]
    assert job["OutputDataConfig"]["S3OutputPath"].startswith(f"s3://{subs['ArtifactBucket']}/")
    hps = job["HyperParameters"]
    assert hp(hps["sagemaker_program"]) == "train.py"
    assert hp(hps["sagemaker_submit_directory"]) == stack.source_uri
    assert {k: hp(hps[k]) for k in payload["Hyperparameters"]} == payload["Hyperparameters"]
    assert "sagemaker_torch_distributed_enabled" not in hps
    channel = job["InputDataConfig"][0]["DataSource"]["S3DataSource"]
    assert channel["S3DataDistributionType"] == "FullyReplicated" and channel["S3Uri"] == stack.data_uri
    model = sm.describe_model(ModelName=name)
    assert model["EnableNetworkIsolation"] is True and model["ExecutionRoleArn"] == subs["SageMakerRoleArn"]
    assert model["PrimaryContainer"]["ModelDataUrl"] == job["ModelArtifacts"]["S3ModelArtifacts"]
    assert model["PrimaryContainer"]["Image"] == subs["InferenceImageUri"]
    # The template's serving parameters, as the PyTorch inference toolkit reads them into TorchServe's config.
    environment = model["PrimaryContainer"]["Environment"]
    assert {k: environment[k] for k in environment if k.startswith("SAGEMAKER_TS_")} == {
        "SAGEMAKER_TS_MIN_WORKERS": subs["ModelWorkers"],
        "SAGEMAKER_TS_MAX_WORKERS": subs["ModelWorkers"],
        "SAGEMAKER_TS_BATCH_SIZE": subs["ServingBatchSize"],
        "SAGEMAKER_TS_MAX_BATCH_DELAY": subs["ServingMaxBatchDelayMs"],
    }
    assert sm.describe_endpoint_config(EndpointConfigName=name)["KmsKeyId"] == subs["KmsKeyArn"]


@pytest.mark.slow
def test_second_run_updates_endpoint_in_place(serving: Deployment, stack: Stack, test_image: bytes) -> None:
    """A second run with the same instance type updates the endpoint in place and leaves autoscaling as it was."""
    target_before = scalable_targets(stack)
    record = run(stack, sfn_event("local_small", stack), "update-2")

    assert record.status == "SUCCEEDED", record.why
    name = stack.job_name("update-2")
    order = entered(stack, record.arn)
    assert "UpdateEndpoint" in order and "CreateEndpoint" not in order
    # Same instance type: autoscaling is left registered as it was.
    assert "DeleteScalingPolicy" not in order and "DeregisterScalableTarget" not in order
    assert scalable_targets(stack) == target_before
    endpoint = stack.sm.describe_endpoint(EndpointName=stack.endpoint)
    assert endpoint["CreationTime"] == serving.creation_time  # the same endpoint, updated in place
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", name)
    assert predict_version(stack.runtime, stack.endpoint, test_image) == name
    deployed = read_deployment(stack)
    assert deployed is not None and deployed.training_job == name
    achieved = metrics(stack.sm.describe_training_job(TrainingJobName=name))["test:top1"]
    assert float(deployed.test_top1) == pytest.approx(achieved)
    # The gate let it through: same recipe and seed reproduce the serving accuracy, and equal is not below.
    assert float(deployed.test_top1) >= float(serving.test_top1)
    # The previous config and model are kept (rollback material), not deleted.
    assert resources(stack.sm, serving.config_name) == (True, True)


@pytest.mark.slow
def test_instance_type_change_deregisters_scaling_then_registers_again(serving: Deployment, stack: Stack) -> None:
    """An instance-type change removes autoscaling before UpdateEndpoint and registers it again after."""
    (target_before,) = scalable_targets(stack)
    (policy_before,) = scaling_policies(stack)
    bigger = sfn_event("local_small", stack)
    bigger["Deploy"]["InstanceType"] = "ml.c5.xlarge"
    record = run(stack, bigger, "resize-2")

    assert record.status == "SUCCEEDED", record.why
    events = history(stack.sfn, record.arn)
    order = states(events)
    assert order.index("DescribeServingScaling") < order.index("DeleteScalingPolicy")
    assert order.index("DeleteScalingPolicy") < order.index("DeregisterScalableTarget") < order.index("UpdateEndpoint")
    assert order.index("UpdateEndpoint") < order.index("RegisterScalableTarget") < order.index("PutScalingPolicy")
    # The autoscaling calls as the interpreter scheduled them, in order.
    assert sdk_calls(events, "applicationautoscaling") == [
        "describescalabletargets", "deletescalingpolicy", "deregisterscalabletarget",
        "registerscalabletarget", "putscalingpolicy",
    ]  # fmt: skip
    # Application Auto Scaling's record: one target and one policy again, both new registrations.
    (target,) = scalable_targets(stack)
    (policy,) = scaling_policies(stack)
    assert target["ResourceId"] == stack.resource_id and (target["MinCapacity"], target["MaxCapacity"]) == (1, 2)
    assert target["CreationTime"] > target_before["CreationTime"]
    assert policy["CreationTime"] > policy_before["CreationTime"]
    endpoint = stack.sm.describe_endpoint(EndpointName=stack.endpoint)
    assert endpoint["EndpointConfigName"] == stack.job_name("resize-2")
    new_config = stack.sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    assert new_config["ProductionVariants"][0]["InstanceType"] == "ml.c5.xlarge"
    old_config = stack.sm.describe_endpoint_config(EndpointConfigName=serving.config_name)
    assert old_config["ProductionVariants"][0]["InstanceType"] == serving.instance_type


@pytest.mark.slow
def test_endpoint_update_failure_rolls_back_and_keeps_previous_config(
    serving: Deployment, stack: Stack, test_image: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed update rolls back: the old fleet keeps serving and what the execution created is removed."""
    # Real fault: the new fleet's model server cannot answer /ping within 0.5 s, so the update fails.
    payload = sfn_event("local_small", stack)
    payload["Deploy"]["InstanceType"] = serving.instance_type  # a plain update: autoscaling stays as it is
    monkeypatch.setenv("LOCAL_SAGEMAKER_STARTUP_TIMEOUT", "0.5")
    record = run(stack, payload, "ep-fail-2")
    monkeypatch.delenv("LOCAL_SAGEMAKER_STARTUP_TIMEOUT")

    name = stack.job_name("ep-fail-2")
    assert record.status == "FAILED" and record.error == "DeploymentRolledBack", record.why
    assert record.cause is not None and serving.config_name in record.cause and name in record.cause
    endpoint = stack.sm.describe_endpoint(EndpointName=stack.endpoint)
    # SageMaker's behaviour for a failed update: the old fleet keeps serving, InService, with the reason recorded.
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", serving.config_name)
    assert "did not pass the ping health check" in endpoint["FailureReason"]
    assert predict_version(stack.runtime, stack.endpoint, test_image) == serving.training_job
    assert read_deployment(stack) == serving  # the serving record is untouched too
    # What this execution created is removed; the serving config and model are not.
    assert resources(stack.sm, name) == (False, False)
    assert resources(stack.sm, serving.config_name) == (True, True)
    assert "Cleanup" in entered(stack, record.arn)
    assert [t["ResourceId"] for t in scalable_targets(stack)] == [stack.resource_id]


@pytest.mark.slow
def test_training_failure_cleans_up_and_fails_with_the_reason(stack: Stack) -> None:
    """A training job that fails makes the execution fail TrainingFailed with the job's FailureReason."""
    before = read_deployment(stack)
    payload = sfn_event("local_small", stack)
    payload["Hyperparameters"]["learning-rate"] = "-1"  # train.py's own argument check rejects it
    record = run(stack, payload, "train-fails")

    name = stack.job_name("train-fails")
    job = stack.sm.describe_training_job(TrainingJobName=name)
    assert job["TrainingJobStatus"] == "Failed"
    assert "--learning-rate" in job["FailureReason"] and "'-1'" in job["FailureReason"]
    assert record.status == "FAILED" and record.error == "TrainingFailed", record.why
    assert record.cause == f"Training job {name} failed: {job['FailureReason']}"
    order = entered(stack, record.arn)
    assert "Cleanup" in order and "CreateModel" not in order
    assert resources(stack.sm, name) == (False, False)
    assert read_deployment(stack) == before


@pytest.mark.slow
def test_gate_below_threshold_deploys_nothing(stack: Stack) -> None:
    """A model below Gate.MinTestAccuracy is rejected with the achieved value and the threshold in the cause."""
    before = read_deployment(stack)
    record = run(stack, quick(stack, gate=0.5), "gate-low")

    name = stack.job_name("gate-low")
    achieved = metrics(stack.sm.describe_training_job(TrainingJobName=name))["test:top1"]
    assert achieved < 0.5  # two optimizer steps: near chance (0.1) on 10 classes
    assert record.status == "FAILED" and record.error == "GateRejected", record.why
    assert record.cause is not None
    assert f"test:top1 {achieved:g} " in record.cause and "threshold 0.5" in record.cause
    assert "CreateModel" not in entered(stack, record.arn)
    assert resources(stack.sm, name) == (False, False)
    assert read_deployment(stack) == before


@pytest.mark.slow
def test_gate_below_serving_model_keeps_serving_model(serving: Deployment, stack: Stack, test_image: bytes) -> None:
    """A model that passes the threshold but is worse than the serving one is rejected; the serving one stays."""
    record = run(stack, quick(stack, gate=0.0), "gate-serving")

    name = stack.job_name("gate-serving")
    achieved = metrics(stack.sm.describe_training_job(TrainingJobName=name))["test:top1"]
    assert achieved < float(serving.test_top1)  # the threshold (0) passes; only the serving record can reject it
    assert record.status == "FAILED" and record.error == "GateRejected", record.why
    assert record.cause is not None and "serving" in record.cause and serving.test_top1 in record.cause
    assert resources(stack.sm, name) == (False, False)
    assert read_deployment(stack) == serving
    assert predict_version(stack.runtime, stack.endpoint, test_image) == serving.training_job


@pytest.mark.slow
def test_failed_resize_keeps_autoscaling_of_the_serving_endpoint(
    serving: Deployment, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resize whose new fleet fails rolls back and registers the serving endpoint's autoscaling again."""
    (target_before,) = scalable_targets(stack)
    payload = sfn_event("local_small", stack)
    payload["Deploy"]["InstanceType"] = "ml.c5.2xlarge" if serving.instance_type != "ml.c5.2xlarge" else "ml.m5.large"
    monkeypatch.setenv("LOCAL_SAGEMAKER_STARTUP_TIMEOUT", "0.5")
    record = run(stack, payload, "resize-fails")
    monkeypatch.delenv("LOCAL_SAGEMAKER_STARTUP_TIMEOUT")

    assert record.status == "FAILED" and record.error == "DeploymentRolledBack", record.why
    assert "DeregisterScalableTarget" in entered(stack, record.arn)
    assert read_deployment(stack) == serving
    # The old fleet still serves, so its autoscaling must be in place again, with the same limits.
    (target,) = scalable_targets(stack)
    assert (target["ResourceId"], target["MinCapacity"], target["MaxCapacity"]) == (
        stack.resource_id, target_before["MinCapacity"], target_before["MaxCapacity"],
    )  # fmt: skip
    assert len(scaling_policies(stack)) == 1


@pytest.mark.slow
def test_tuning_retrains_with_the_best_jobs_hyperparameters(fresh: Stack, test_image: bytes) -> None:
    """Grid tuning runs the whole grid for real, then the final job retrains with the best job's values."""
    stack, sm = fresh, fresh.sm
    record = run(stack, sfn_event("tuning", stack), "tune-1")

    assert record.status == "SUCCEEDED", record.why
    summaries = sm.list_hyper_parameter_tuning_jobs(NameContains=stack.prefix)["HyperParameterTuningJobSummaries"]
    # Earlier tests of the session leave tuning jobs of their own: this execution's is the newest completed one.
    summary = max(
        (t for t in summaries if t["HyperParameterTuningJobStatus"] == "Completed"), key=lambda t: t["CreationTime"]
    )
    tuning = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=summary["HyperParameterTuningJobName"])
    config = tuning["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Grid"
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": "kept:top1"}
    assert len(tuning["HyperParameterTuningJobName"]) <= 32
    definition = tuning["TrainingJobDefinition"]
    assert definition["EnableNetworkIsolation"] is True and definition["EnableInterContainerTrafficEncryption"] is True

    children = sm.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=tuning["HyperParameterTuningJobName"]
    )["TrainingJobSummaries"]
    scores = {}
    for child in children:
        job = sm.describe_training_job(TrainingJobName=child["TrainingJobName"])
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
        scores[hp(job["HyperParameters"]["learning-rate"])] = metrics(job)["kept:top1"]
    assert set(scores) == {"0.001", "0.1"}  # the whole grid, each a real run
    assert scores["0.1"] != scores["0.001"]
    best_lr = max(scores, key=lambda lr: scores[lr])
    assert hp(tuning["BestTrainingJob"]["TunedHyperParameters"]["learning-rate"]) == best_lr

    assert record.output is not None
    final = sm.describe_training_job(TrainingJobName=record.output["TrainingJobName"])
    assert final["TrainingJobName"] == stack.job_name("tune-1") and "TuningJobArn" not in final
    assert hp(final["HyperParameters"]["learning-rate"]) == best_lr
    assert hp(final["HyperParameters"]["arch"]) == "smallcnn"
    assert record.output["Metrics"]["TestTop1"] == pytest.approx(metrics(final)["test:top1"])
    assert predict_version(stack.runtime, stack.endpoint, test_image) == stack.job_name("tune-1")


@pytest.mark.slow
def test_random_tuning_samples_the_continuous_range(stack: Stack) -> None:
    """Random tuning samples a ContinuousRange for real and the final job retrains with the best sample."""
    payload = quick(stack, gate=1.0)  # nothing reaches 1.0 in two steps: stop at the gate, deploy nothing
    payload["Tuning"] = {
        "Enabled": True,
        "Strategy": "Random",
        "MaxJobs": 2,
        "MaxParallelJobs": 2,
        "ContinuousRanges": [{"Name": "learning-rate", "MinValue": "0.01", "MaxValue": "0.2"}],
        "CategoricalRanges": [],
        "IntegerRanges": [],
    }
    before = read_deployment(stack)
    record = run(stack, payload, "tune-random")

    assert record.status == "FAILED" and record.error == "GateRejected", record.why
    sm = stack.sm
    summaries = sm.list_hyper_parameter_tuning_jobs(NameContains=stack.prefix)["HyperParameterTuningJobSummaries"]
    described = [
        sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=t["HyperParameterTuningJobName"])
        for t in summaries
    ]
    (tuning,) = [t for t in described if t["HyperParameterTuningJobConfig"]["Strategy"] == "Random"]
    assert tuning["HyperParameterTuningJobStatus"] == "Completed", tuning.get("FailureReason")
    ranges = tuning["HyperParameterTuningJobConfig"]["ParameterRanges"]
    (lr_range,) = ranges["ContinuousParameterRanges"]
    assert (lr_range["Name"], lr_range["MinValue"], lr_range["MaxValue"]) == ("learning-rate", "0.01", "0.2")
    children = sm.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=tuning["HyperParameterTuningJobName"]
    )["TrainingJobSummaries"]
    assert len(children) == 2
    sampled = [float(hp(c["TunedHyperParameters"]["learning-rate"])) for c in children]
    assert all(0.01 <= lr <= 0.2 for lr in sampled) and sampled[0] != sampled[1]
    best = hp(tuning["BestTrainingJob"]["TunedHyperParameters"]["learning-rate"])
    final = sm.describe_training_job(TrainingJobName=stack.job_name("tune-random"))
    assert final["TrainingJobStatus"] == "Completed" and hp(final["HyperParameters"]["learning-rate"]) == best
    assert read_deployment(stack) == before


@pytest.mark.slow
@pytest.mark.distributed
def test_multi_instance_spot_trains_as_one_distributed_group(stack: Stack) -> None:
    """Two spot instances train as one torch.distributed group, with checkpoints, encryption and KMS as on AWS."""
    payload = quick(stack, gate=1.0)  # nothing reaches 1.0 in two steps: stop at the gate, deploy nothing
    payload["Training"] = {
        "InstanceType": "ml.g5.xlarge",
        "InstanceCount": 2,
        "UseSpot": True,
        "MaxRuntimeSeconds": 3600,
        "MaxWaitSeconds": 7200,
    }
    record = run(stack, payload, "multi-spot")

    assert record.status == "FAILED" and record.error == "GateRejected", record.why
    name = stack.job_name("multi-spot")
    job = stack.sm.describe_training_job(TrainingJobName=name)
    assert job["TrainingJobStatus"] == "Completed"
    assert job["ResourceConfig"]["InstanceCount"] == 2
    assert hp(job["HyperParameters"]["sagemaker_torch_distributed_enabled"]) == "true"
    assert job["EnableInterContainerTrafficEncryption"] is True
    assert job["EnableManagedSpotTraining"] is True
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert job["CheckpointConfig"]["S3Uri"].startswith(f"s3://{stack.substitutions['ArtifactBucket']}/checkpoints/")
    # ml.g5 has local NVMe storage: SageMaker refuses a volume KMS key there (the disk is hardware-encrypted).
    assert "VolumeKmsKeyId" not in job["ResourceConfig"]
    assert job["OutputDataConfig"]["KmsKeyId"] == stack.substitutions["KmsKeyArn"]
    assert "world 2" in training_log(stack, name)  # both hosts joined one torch.distributed group


def test_every_training_host_gets_a_log_stream(stack: Stack) -> None:
    """Each host of a multi-instance job has its own CloudWatch stream, as on SageMaker (reuses the job above)."""
    name = stack.job_name("multi-spot")
    if not exists(stack.sm.describe_training_job, TrainingJobName=name):
        pytest.skip("needs test_multi_instance_spot_trains_as_one_distributed_group's job (run the whole file)")
    answer = stack.logs.describe_log_streams(logGroupName=TRAINING_LOG_GROUP, logStreamNamePrefix=f"{name}/")
    hosts = sorted(s["logStreamName"].split("/", 1)[1].rsplit("-", 1)[0] for s in answer["logStreams"])
    assert hosts == ["algo-1", "algo-2"]


@pytest.mark.slow
def test_pretrained_weights_travel_as_a_weights_channel(stack: Stack) -> None:
    """PretrainedWeights reaches train.py as a second 'weights' channel, and train.py loads it."""
    # Network isolation blocks torchvision's download on AWS, so the ASL passes weights as a second channel and
    # train.py (--pretrained auto) loads them from SM_CHANNEL_WEIGHTS.
    import torch

    import model as architectures

    key = "datasets/weights/smallcnn.pth"
    weights_uri = f"s3://{stack.outputs['DataBucketName']}/{key}"
    buffer = io.BytesIO()
    torch.save(architectures.create_model("smallcnn", 10).state_dict(), buffer)
    stack.s3.put_object(Bucket=stack.outputs["DataBucketName"], Key=key, Body=buffer.getvalue())
    payload = quick(stack, gate=1.0)  # stop at the gate: this test is about the channel, not about deploying
    payload["Hyperparameters"]["pretrained"] = "auto"
    payload["PretrainedWeights"] = weights_uri

    record = run(stack, payload, "weights-channel")

    assert record.status == "FAILED" and record.error == "GateRejected", record.why
    name = stack.job_name("weights-channel")
    channels = stack.sm.describe_training_job(TrainingJobName=name)["InputDataConfig"]
    assert [c["ChannelName"] for c in channels] == ["training", "weights"]
    assert channels[1]["DataSource"]["S3DataSource"]["S3Uri"] == weights_uri
    log = training_log(stack, name)
    assert "loaded pretrained weights from" in log and "smallcnn.pth" in log
