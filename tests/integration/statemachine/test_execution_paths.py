"""Execution-path tests: the real ASL in moto's interpreter, SageMaker answered by the local runtime.

Every training job really runs ``training/train.py`` on a rendered 16 px digits dataset and every endpoint really
serves ``training/inference.py``; each test drives one branch of issue 3 §6 and asserts what the server holds and what
the model answers, not only the execution status. The tests share one server, so they run in file order and each
starts from the endpoint state its fixture (``fresh`` or ``serving``) sets up.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import Deployment, predict_version, read_deployment
from sfn_fixtures import ENDPOINT, RESOURCE_ID, SOURCE_URI, SUBSTITUTIONS, metrics, quick, run, sfn_event, states

from local_runtime.sagemaker.server import SageMakerServer
from local_runtime.stepfunctions import LocalStepFunctions


def job_name(execution: str) -> str:
    """The name the ASL gives this execution's training job, model and endpoint config (CONTRACTS §6)."""
    return f"{SUBSTITUTIONS['ResourcePrefix']}-{hashlib.md5(execution.encode()).hexdigest()}"


def hp(value: str) -> str:
    """A hyperparameter as the training toolkit reads it (JSON-decoded when it is a JSON string, else raw)."""
    return json.loads(value) if value.startswith('"') else value


def exists(call: Any, **kwargs: Any) -> bool:
    try:
        call(**kwargs)
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "ValidationException", exc
        return False
    return True


def resources(sm: Any, name: str) -> tuple[bool, bool]:
    """Whether the model and the endpoint config called ``name`` exist on the server."""
    return (
        exists(sm.describe_model, ModelName=name),
        exists(sm.describe_endpoint_config, EndpointConfigName=name),
    )


@pytest.mark.parametrize(
    ("patch", "needle"),
    [
        ({"Training": {"InstanceCount": 0}}, "Training.InstanceCount"),
        ({"Training": {"InstanceCount": "two"}}, "Training.InstanceCount"),
        ({"Training": "big"}, "Training"),
        ({"Gate": {"MinTestAccuracy": 70}}, "Gate.MinTestAccuracy"),
        ({"Deploy": {"MinCapacity": 3, "MaxCapacity": 2}}, "Deploy.MaxCapacity"),
        ({"TrainingData": "/data/dogImages"}, "TrainingData"),
        ({"Tuning": {"Strategy": "Genetic"}}, "Tuning.Strategy"),
        ({"Tuning": {"Strategy": "Grid", "CategoricalRanges": [{"Name": "arch", "Values": ["smallcnn"]}]}}, "Grid"),
        ({"PretrainedWeights": "/tmp/resnet50.pth"}, "PretrainedWeights"),
    ],
)
def test_invalid_input_fails_fast_naming_the_field(
    sfn: LocalStepFunctions, sm: Any, patch: dict[str, Any], needle: str
) -> None:
    execution = f"bad-{hashlib.md5(json.dumps(patch).encode()).hexdigest()[:10]}"
    record = run(sfn, {**sfn_event("local_small"), **patch}, execution)

    assert record["status"] == "FAILED" and record["error"] == "InvalidInput", (
        record.get("error"),
        record.get("cause"),
    )
    assert needle in record["cause"]
    assert not exists(sm.describe_training_job, TrainingJobName=job_name(execution))
    assert "CreateTrainingJob" not in states(sfn, record)


@pytest.mark.slow
def test_new_endpoint_failed_keeps_the_config_it_references(
    fresh: LocalStepFunctions, sm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Real fault: the model server needs seconds to import torch, so no worker answers /ping within 0.5 s.
    monkeypatch.setenv("LOCAL_SAGEMAKER_STARTUP_TIMEOUT", "0.5")
    record = run(fresh, quick(gate=0.0), "create-fails")

    assert record["status"] == "FAILED" and record["error"] == "EndpointFailed", (
        record.get("error"),
        record.get("cause"),
    )
    endpoint = sm.describe_endpoint(EndpointName=ENDPOINT)
    assert endpoint["EndpointStatus"] == "Failed"
    assert "did not pass the ping health check within 0.5 seconds" in endpoint["FailureReason"]
    assert endpoint["FailureReason"] in record["cause"]
    # The Failed endpoint still references this config (and its model): never delete what an endpoint runs on.
    assert endpoint["EndpointConfigName"] == job_name("create-fails")
    assert resources(sm, job_name("create-fails")) == (True, True)
    assert fresh.scalable_targets() == []


@pytest.mark.slow
def test_create_deploys_with_autoscaling_and_records_accuracy(
    fresh: LocalStepFunctions, sm: Any, runtime: Any, test_image: bytes
) -> None:
    payload = sfn_event("local_small")
    record = run(fresh, payload, "create-1")

    assert record["status"] == "SUCCEEDED", (record.get("error"), record.get("cause"))
    out = record["output"]
    name = job_name("create-1")
    assert (out["EndpointName"], out["TrainingJobName"], out["ModelName"], out["EndpointConfigName"]) == (
        ENDPOINT, name, name, name,
    )  # fmt: skip
    job = sm.describe_training_job(TrainingJobName=name)
    assert job["TrainingJobStatus"] == "Completed"
    final = metrics(job)
    assert out["Metrics"]["TestTop1"] == pytest.approx(final["test:top1"]) and final["test:top1"] >= 0.5
    assert out["Metrics"]["Threshold"] == pytest.approx(0.5)
    assert "CreateEndpoint" in states(fresh, record) and "UpdateEndpoint" not in states(fresh, record)

    endpoint = sm.describe_endpoint(EndpointName=ENDPOINT)
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", name)
    assert predict_version(runtime, test_image) == name  # the model this job trained is the one answering
    tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=endpoint["EndpointArn"])["Tags"]}
    assert tags == {
        "dogbreed:test-top1": str(out["Metrics"]["TestTop1"]),
        "dogbreed:training-job": name,
        "dogbreed:model-name": name,
    }
    (target,) = fresh.scalable_targets()
    assert (target["ResourceId"], target["MinCapacity"], target["MaxCapacity"]) == (RESOURCE_ID, 1, 2)
    (policy,) = fresh.scaling_policies()
    config = policy["TargetTrackingScalingPolicyConfiguration"]
    assert config["PredefinedMetricSpecification"]["PredefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"
    assert config["TargetValue"] == 70

    # What the server was asked to run, as it recorded it.
    assert job["EnableNetworkIsolation"] is True and job["EnableInterContainerTrafficEncryption"] is True
    assert job["ResourceConfig"]["VolumeKmsKeyId"] == SUBSTITUTIONS["KmsKeyArn"]
    assert job["OutputDataConfig"]["KmsKeyId"] == SUBSTITUTIONS["KmsKeyArn"]
    hps = job["HyperParameters"]
    assert hp(hps["sagemaker_program"]) == "train.py"
    assert hp(hps["sagemaker_submit_directory"]) == SOURCE_URI
    assert {k: hp(hps[k]) for k in payload["Hyperparameters"]} == payload["Hyperparameters"]
    assert "sagemaker_torch_distributed_enabled" not in hps
    channel = job["InputDataConfig"][0]["DataSource"]["S3DataSource"]
    assert channel["S3DataDistributionType"] == "FullyReplicated"
    model = sm.describe_model(ModelName=name)
    assert model["EnableNetworkIsolation"] is True and model["ExecutionRoleArn"] == SUBSTITUTIONS["SageMakerRoleArn"]
    assert model["PrimaryContainer"]["ModelDataUrl"] == job["ModelArtifacts"]["S3ModelArtifacts"]
    assert sm.describe_endpoint_config(EndpointConfigName=name)["KmsKeyId"] == SUBSTITUTIONS["KmsKeyArn"]


@pytest.mark.slow
def test_second_run_updates_endpoint_in_place(
    serving: Deployment, sfn: LocalStepFunctions, sm: Any, runtime: Any, test_image: bytes
) -> None:
    target_before = sfn.scalable_targets()
    record = run(sfn, sfn_event("local_small"), "update-2")

    assert record["status"] == "SUCCEEDED", (record.get("error"), record.get("cause"))
    name = job_name("update-2")
    order = states(sfn, record)
    assert "UpdateEndpoint" in order and "CreateEndpoint" not in order
    # Same instance type: autoscaling is left registered as it was.
    assert "DeleteScalingPolicy" not in order and "DeregisterScalableTarget" not in order
    assert sfn.scalable_targets() == target_before
    endpoint = sm.describe_endpoint(EndpointName=ENDPOINT)
    assert endpoint["CreationTime"] == serving.creation_time  # the same endpoint, updated in place
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", name)
    assert predict_version(runtime, test_image) == name
    deployed = read_deployment(sm)
    assert deployed is not None and deployed.training_job == name
    achieved = metrics(sm.describe_training_job(TrainingJobName=name))["test:top1"]
    assert float(deployed.test_top1) == pytest.approx(achieved)
    # The gate let it through: same recipe and seed reproduce the serving accuracy, and equal is not below.
    assert float(deployed.test_top1) >= float(serving.test_top1)
    # The previous config and model are kept (rollback material), not deleted.
    assert resources(sm, serving.config_name) == (True, True)


@pytest.mark.slow
def test_instance_type_change_deregisters_scaling_then_registers_again(
    serving: Deployment, sfn: LocalStepFunctions, sm: Any
) -> None:
    (target_before,) = sfn.scalable_targets()
    (policy_before,) = sfn.scaling_policies()
    bigger = sfn_event("local_small")
    bigger["Deploy"]["InstanceType"] = "ml.c5.xlarge"
    record = run(sfn, bigger, "resize-2")

    assert record["status"] == "SUCCEEDED", (record.get("error"), record.get("cause"))
    order = states(sfn, record)
    assert order.index("DescribeServingScaling") < order.index("DeleteScalingPolicy")
    assert order.index("DeleteScalingPolicy") < order.index("DeregisterScalableTarget") < order.index("UpdateEndpoint")
    assert order.index("UpdateEndpoint") < order.index("RegisterScalableTarget") < order.index("PutScalingPolicy")
    # The autoscaling calls as moto's interpreter issued them, in order.
    scaling = [
        e["resource"].lower()
        for e in sfn.history(record["executionArn"])
        if e["type"] == "TaskScheduled" and "applicationautoscaling" in e.get("resourceType", "")
    ]
    assert scaling == [
        "describescalabletargets", "deletescalingpolicy", "deregisterscalabletarget",
        "registerscalabletarget", "putscalingpolicy",
    ]  # fmt: skip
    # moto's record: one target and one policy again, both new registrations.
    (target,) = sfn.scalable_targets()
    (policy,) = sfn.scaling_policies()
    assert target["ResourceId"] == RESOURCE_ID and (target["MinCapacity"], target["MaxCapacity"]) == (1, 2)
    assert target["CreationTime"] > target_before["CreationTime"]
    assert policy["CreationTime"] > policy_before["CreationTime"]
    endpoint = sm.describe_endpoint(EndpointName=ENDPOINT)
    assert endpoint["EndpointConfigName"] == job_name("resize-2")
    new_config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    assert new_config["ProductionVariants"][0]["InstanceType"] == "ml.c5.xlarge"
    old_config = sm.describe_endpoint_config(EndpointConfigName=serving.config_name)
    assert old_config["ProductionVariants"][0]["InstanceType"] == "ml.m5.large"


@pytest.mark.slow
def test_endpoint_update_failure_rolls_back_and_keeps_previous_config(
    serving: Deployment,
    sfn: LocalStepFunctions,
    sm: Any,
    runtime: Any,
    test_image: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Real fault: the new fleet's model server cannot answer /ping within 0.5 s, so the update fails.
    payload = sfn_event("local_small")
    payload["Deploy"]["InstanceType"] = serving.instance_type  # a plain update: autoscaling stays as it is
    monkeypatch.setenv("LOCAL_SAGEMAKER_STARTUP_TIMEOUT", "0.5")
    record = run(sfn, payload, "ep-fail-2")
    monkeypatch.delenv("LOCAL_SAGEMAKER_STARTUP_TIMEOUT")

    name = job_name("ep-fail-2")
    assert record["status"] == "FAILED" and record["error"] == "DeploymentRolledBack", (
        record.get("error"),
        record.get("cause"),
    )
    assert serving.config_name in record["cause"] and name in record["cause"]
    endpoint = sm.describe_endpoint(EndpointName=ENDPOINT)
    # SageMaker's behaviour for a failed update: the old fleet keeps serving, InService, with the reason recorded.
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", serving.config_name)
    assert "did not pass the ping health check" in endpoint["FailureReason"]
    assert predict_version(runtime, test_image) == serving.training_job
    assert read_deployment(sm) == serving  # the serving record is untouched too
    # What this execution created is removed; the serving config and model are not.
    assert resources(sm, name) == (False, False)
    assert resources(sm, serving.config_name) == (True, True)
    assert "Cleanup" in states(sfn, record)
    assert [t["ResourceId"] for t in sfn.scalable_targets()] == [RESOURCE_ID]


@pytest.mark.slow
def test_training_failure_cleans_up_and_fails_with_the_reason(sfn: LocalStepFunctions, sm: Any) -> None:
    before = read_deployment(sm)
    payload = sfn_event("local_small")
    payload["Hyperparameters"]["learning-rate"] = "-1"  # train.py's own argument check rejects it
    record = run(sfn, payload, "train-fails")

    name = job_name("train-fails")
    job = sm.describe_training_job(TrainingJobName=name)
    assert job["TrainingJobStatus"] == "Failed"
    assert "--learning-rate" in job["FailureReason"] and "'-1'" in job["FailureReason"]
    assert record["status"] == "FAILED" and record["error"] == "TrainingFailed", (
        record.get("error"),
        record.get("cause"),
    )
    assert record["cause"] == f"Training job {name} failed: {job['FailureReason']}"
    order = states(sfn, record)
    assert "Cleanup" in order and "CreateModel" not in order
    assert resources(sm, name) == (False, False)
    assert read_deployment(sm) == before


@pytest.mark.slow
def test_gate_below_threshold_deploys_nothing(sfn: LocalStepFunctions, sm: Any) -> None:
    before = read_deployment(sm)
    record = run(sfn, quick(gate=0.5), "gate-low")

    name = job_name("gate-low")
    achieved = metrics(sm.describe_training_job(TrainingJobName=name))["test:top1"]
    assert achieved < 0.5  # two optimizer steps: near chance (0.1) on 10 classes
    assert record["status"] == "FAILED" and record["error"] == "GateRejected", (
        record.get("error"),
        record.get("cause"),
    )
    assert f"test:top1 {achieved:g} " in record["cause"] and "threshold 0.5" in record["cause"]
    assert "CreateModel" not in states(sfn, record)
    assert resources(sm, name) == (False, False)
    assert read_deployment(sm) == before


@pytest.mark.slow
def test_gate_below_serving_model_keeps_serving_model(
    serving: Deployment, sfn: LocalStepFunctions, sm: Any, runtime: Any, test_image: bytes
) -> None:
    record = run(sfn, quick(gate=0.0), "gate-serving")

    name = job_name("gate-serving")
    achieved = metrics(sm.describe_training_job(TrainingJobName=name))["test:top1"]
    assert achieved < float(serving.test_top1)  # the threshold (0) passes; only the serving record can reject it
    assert record["status"] == "FAILED" and record["error"] == "GateRejected", (
        record.get("error"),
        record.get("cause"),
    )
    assert "serving" in record["cause"] and serving.test_top1 in record["cause"]
    assert resources(sm, name) == (False, False)
    assert read_deployment(sm) == serving
    assert predict_version(runtime, test_image) == serving.training_job


@pytest.mark.slow
def test_failed_resize_keeps_autoscaling_of_the_serving_endpoint(
    serving: Deployment, sfn: LocalStepFunctions, sm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    (target_before,) = sfn.scalable_targets()
    payload = sfn_event("local_small")
    payload["Deploy"]["InstanceType"] = "ml.c5.2xlarge" if serving.instance_type != "ml.c5.2xlarge" else "ml.m5.large"
    monkeypatch.setenv("LOCAL_SAGEMAKER_STARTUP_TIMEOUT", "0.5")
    record = run(sfn, payload, "resize-fails")
    monkeypatch.delenv("LOCAL_SAGEMAKER_STARTUP_TIMEOUT")

    assert record["status"] == "FAILED" and record["error"] == "DeploymentRolledBack", (
        record.get("error"),
        record.get("cause"),
    )
    assert "DeregisterScalableTarget" in states(sfn, record)
    assert read_deployment(sm) == serving
    # The old fleet still serves, so its autoscaling must be in place again, with the same limits.
    (target,) = sfn.scalable_targets()
    assert (target["ResourceId"], target["MinCapacity"], target["MaxCapacity"]) == (
        RESOURCE_ID, target_before["MinCapacity"], target_before["MaxCapacity"],
    )  # fmt: skip
    assert len(sfn.scaling_policies()) == 1


@pytest.mark.slow
def test_tuning_retrains_with_the_best_jobs_hyperparameters(
    fresh: LocalStepFunctions, sm: Any, runtime: Any, test_image: bytes
) -> None:
    payload = sfn_event("tuning")
    record = run(fresh, payload, "tune-1")

    assert record["status"] == "SUCCEEDED", (record.get("error"), record.get("cause"))
    (summary,) = [
        t
        for t in sm.list_hyper_parameter_tuning_jobs(NameContains=SUBSTITUTIONS["ResourcePrefix"])[
            "HyperParameterTuningJobSummaries"
        ]
        if t["HyperParameterTuningJobStatus"] == "Completed"
    ]
    tuning = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=summary["HyperParameterTuningJobName"])
    config = tuning["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Grid"
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": "valid:top1"}
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
        scores[hp(job["HyperParameters"]["learning-rate"])] = metrics(job)["valid:top1"]
    assert set(scores) == {"0.001", "0.1"}  # the whole grid, each a real run
    assert scores["0.1"] != scores["0.001"]
    best_lr = max(scores, key=lambda lr: scores[lr])
    assert hp(tuning["BestTrainingJob"]["TunedHyperParameters"]["learning-rate"]) == best_lr

    final = sm.describe_training_job(TrainingJobName=record["output"]["TrainingJobName"])
    assert final["TrainingJobName"] == job_name("tune-1") and "TuningJobArn" not in final
    assert hp(final["HyperParameters"]["learning-rate"]) == best_lr
    assert hp(final["HyperParameters"]["arch"]) == "smallcnn"
    assert record["output"]["Metrics"]["TestTop1"] == pytest.approx(metrics(final)["test:top1"])
    assert predict_version(runtime, test_image) == job_name("tune-1")


@pytest.mark.slow
@pytest.mark.distributed
def test_multi_instance_spot_trains_as_one_distributed_group(
    sfn: LocalStepFunctions, sm: Any, sagemaker: SageMakerServer
) -> None:
    payload = quick(gate=1.0)  # nothing reaches 1.0 in two steps: stop at the gate, deploy nothing
    payload["Training"] = {
        "InstanceType": "ml.g5.xlarge",
        "InstanceCount": 2,
        "UseSpot": True,
        "MaxRuntimeSeconds": 3600,
        "MaxWaitSeconds": 7200,
    }
    record = run(sfn, payload, "multi-spot")

    assert record["status"] == "FAILED" and record["error"] == "GateRejected", (
        record.get("error"),
        record.get("cause"),
    )
    job = sm.describe_training_job(TrainingJobName=job_name("multi-spot"))
    assert job["TrainingJobStatus"] == "Completed"
    assert job["ResourceConfig"]["InstanceCount"] == 2
    assert hp(job["HyperParameters"]["sagemaker_torch_distributed_enabled"]) == "true"
    assert job["EnableInterContainerTrafficEncryption"] is True
    assert job["EnableManagedSpotTraining"] is True
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert job["CheckpointConfig"]["S3Uri"].startswith(f"s3://{SUBSTITUTIONS['ArtifactBucket']}/checkpoints/")
    # ml.g5 has local NVMe storage: SageMaker refuses a volume KMS key there (the disk is hardware-encrypted).
    assert "VolumeKmsKeyId" not in job["ResourceConfig"]
    assert job["OutputDataConfig"]["KmsKeyId"] == SUBSTITUTIONS["KmsKeyArn"]
    log = (sagemaker.home / "logs" / "TrainingJobs" / job_name("multi-spot") / "algo-1.log").read_text()
    assert "world 2" in log  # both hosts joined one torch.distributed group


def test_pretrained_weights_travel_as_a_weights_channel(
    sfn: LocalStepFunctions, sm: Any, sagemaker: SageMakerServer
) -> None:
    # Network isolation blocks torchvision's download on AWS, so the ASL passes weights as a second channel and
    # train.py (--pretrained auto) loads them from SM_CHANNEL_WEIGHTS.
    import io

    import torch

    import model as architectures
    from local_runtime.s3 import LocalS3

    weights_uri = f"s3://{SUBSTITUTIONS['DataBucket']}/datasets/weights/smallcnn.pth"
    buffer = io.BytesIO()
    torch.save(architectures.create_model("smallcnn", 10).state_dict(), buffer)
    LocalS3(sagemaker.home / "s3").put_bytes(weights_uri, buffer.getvalue())
    payload = quick(gate=1.0)  # stop at the gate: this test is about the channel, not about deploying
    payload["Hyperparameters"]["pretrained"] = "auto"
    payload["PretrainedWeights"] = weights_uri

    record = run(sfn, payload, "weights-channel")

    assert record["status"] == "FAILED" and record["error"] == "GateRejected", (
        record.get("error"),
        record.get("cause"),
    )
    name = job_name("weights-channel")
    channels = sm.describe_training_job(TrainingJobName=name)["InputDataConfig"]
    assert [c["ChannelName"] for c in channels] == ["training", "weights"]
    assert channels[1]["DataSource"]["S3DataSource"]["S3Uri"] == weights_uri
    log = "".join(p.read_text() for p in (sagemaker.home / "logs" / "TrainingJobs" / name).glob("*.log"))
    assert "loaded pretrained weights from" in log and "smallcnn.pth" in log
