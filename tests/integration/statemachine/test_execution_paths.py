"""Execution-path tests: the real ASL in moto's interpreter, SageMaker answered over HTTP by the fake.

Each test drives one branch of issue 3 §6 and checks what SageMaker and Application Auto Scaling were actually asked
to do, not only the final status.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from fake_sagemaker import FakeSageMakerServer
from sfn_fixtures import SUBSTITUTIONS, sfn_event

from local_runtime.stepfunctions import LocalStepFunctions

ENDPOINT = SUBSTITUTIONS["EndpointName"]
RESOURCE_ID = f"endpoint/{ENDPOINT}/variant/AllTraffic"
TIMEOUT = 60


def run(sfn: LocalStepFunctions, payload: dict[str, Any], name: str) -> dict[str, Any]:
    return sfn.wait(sfn.start_execution(payload, name=name), timeout=TIMEOUT)


def states(sfn: LocalStepFunctions, record: dict[str, Any]) -> list[str]:
    """Names of the states entered, in order."""
    return [e["state"] for e in sfn.history(record["executionArn"]) if e["type"].endswith("StateEntered")]


def with_accuracy(value: float):  # type: ignore[no-untyped-def]
    return lambda hps: {"valid:top1": value, "test:top1": value, "test:top5": min(1.0, value + 0.1)}


def test_create_deploys_with_autoscaling_and_records_accuracy(
    sfn: LocalStepFunctions, fake: FakeSageMakerServer
) -> None:
    fake.state.metrics_for = with_accuracy(0.82)
    record = run(sfn, sfn_event("local_small"), "create-1")

    assert record["status"] == "SUCCEEDED", record
    out = record["output"]
    assert out["EndpointName"] == ENDPOINT
    assert out["TrainingJobName"] == out["ModelName"] == out["EndpointConfigName"]
    assert out["TrainingJobName"].startswith("dogbreed-dev-") and len(out["TrainingJobName"]) <= 63
    assert out["Metrics"]["TestTop1"] == pytest.approx(0.82)
    endpoint = fake.state.endpoints[ENDPOINT]
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["EndpointConfigName"] == out["EndpointConfigName"]
    assert [b["EndpointName"] for b in fake.state.ops("CreateEndpoint")] == [ENDPOINT]
    assert fake.state.ops("UpdateEndpoint") == []
    assert fake.state.tags[endpoint["EndpointArn"]] == {
        "dogbreed:test-top1": "0.82",
        "dogbreed:training-job": out["TrainingJobName"],
        "dogbreed:model-name": out["ModelName"],
    }
    (target,) = sfn.scalable_targets()
    assert (target["ResourceId"], target["MinCapacity"], target["MaxCapacity"]) == (RESOURCE_ID, 1, 2)
    (policy,) = sfn.scaling_policies()
    config = policy["TargetTrackingScalingPolicyConfiguration"]
    assert config["PredefinedMetricSpecification"]["PredefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"
    assert config["TargetValue"] == 70

    (request,) = fake.state.ops("CreateTrainingJob")
    assert request["EnableNetworkIsolation"] is True
    assert request["EnableInterContainerTrafficEncryption"] is True
    assert request["ResourceConfig"]["VolumeKmsKeyId"] == SUBSTITUTIONS["KmsKeyArn"]
    assert request["OutputDataConfig"]["KmsKeyId"] == SUBSTITUTIONS["KmsKeyArn"]
    assert request["HyperParameters"]["sagemaker_program"] == "train.py"
    assert request["HyperParameters"]["sagemaker_submit_directory"] == sfn_event("local_small")["SourceDir"]
    assert request["HyperParameters"]["arch"] == "smallcnn"
    assert "sagemaker_torch_distributed_enabled" not in request["HyperParameters"]
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400}
    channel = request["InputDataConfig"][0]["DataSource"]["S3DataSource"]
    assert channel["S3DataDistributionType"] == "FullyReplicated"
    (model,) = fake.state.ops("CreateModel")
    assert model["EnableNetworkIsolation"] is True and model["ExecutionRoleArn"] == SUBSTITUTIONS["SageMakerRoleArn"]
    (endpoint_config,) = fake.state.ops("CreateEndpointConfig")
    assert endpoint_config["KmsKeyId"] == SUBSTITUTIONS["KmsKeyArn"]


def test_second_run_updates_endpoint_in_place(sfn: LocalStepFunctions, fake: FakeSageMakerServer) -> None:
    fake.state.metrics_for = with_accuracy(0.8)
    first = run(sfn, sfn_event("local_small"), "update-1")
    fake.state.metrics_for = with_accuracy(0.85)
    second = run(sfn, sfn_event("local_small"), "update-2")

    assert (first["status"], second["status"]) == ("SUCCEEDED", "SUCCEEDED"), second
    assert len(fake.state.ops("CreateEndpoint")) == 1
    (update,) = fake.state.ops("UpdateEndpoint")
    assert update["EndpointConfigName"] == second["output"]["EndpointConfigName"]
    blue_green = update["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert blue_green["TrafficRoutingConfiguration"]["Type"] == "ALL_AT_ONCE"
    alarms = [a["AlarmName"] for a in update["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]]
    assert alarms == [SUBSTITUTIONS["Rollback5xxAlarmName"], SUBSTITUTIONS["RollbackLatencyAlarmName"]]
    assert fake.state.endpoints[ENDPOINT]["EndpointConfigName"] == second["output"]["EndpointConfigName"]
    # Same instance type: autoscaling stays registered, nothing deregistered, the previous config is kept.
    assert "DeregisterScalableTarget" not in states(sfn, second)
    assert first["output"]["EndpointConfigName"] in fake.state.endpoint_configs
    assert fake.state.tags[fake.state.endpoints[ENDPOINT]["EndpointArn"]]["dogbreed:test-top1"] == "0.85"
    assert len(sfn.scalable_targets()) == 1


def test_instance_type_change_deregisters_scaling_then_registers_again(
    sfn: LocalStepFunctions, fake: FakeSageMakerServer
) -> None:
    fake.state.metrics_for = with_accuracy(0.8)
    assert run(sfn, sfn_event("local_small"), "resize-1")["status"] == "SUCCEEDED"
    bigger = sfn_event("local_small")
    bigger["Deploy"]["InstanceType"] = "ml.c5.xlarge"
    second = run(sfn, bigger, "resize-2")

    assert second["status"] == "SUCCEEDED", second
    order = states(sfn, second)
    assert order.index("DeleteScalingPolicy") < order.index("DeregisterScalableTarget") < order.index("UpdateEndpoint")
    assert order.index("UpdateEndpoint") < order.index("RegisterScalableTarget") < order.index("PutScalingPolicy")
    (target,) = sfn.scalable_targets()
    assert target["ResourceId"] == RESOURCE_ID
    assert len(sfn.scaling_policies()) == 1
    new_config = fake.state.endpoint_configs[fake.state.endpoints[ENDPOINT]["EndpointConfigName"]]
    assert new_config["ProductionVariants"][0]["InstanceType"] == "ml.c5.xlarge"


def test_training_failure_cleans_up_and_fails_with_the_reason(
    sfn: LocalStepFunctions, fake: FakeSageMakerServer
) -> None:
    fake.state.training_failure = 'AlgorithmError: ExecuteUserScriptError:\nExitCode 1\nErrorMessage "bad data"'
    record = run(sfn, sfn_event("local_small"), "train-fails")

    assert record["status"] == "FAILED"
    assert record["error"] == "TrainingFailed"
    assert "bad data" in record["cause"] and "dogbreed-dev-" in record["cause"]
    assert "Cleanup" in states(sfn, record)
    assert fake.state.ops("CreateModel") == [] and fake.state.ops("CreateEndpointConfig") == []
    assert fake.state.endpoints == {}


def test_gate_below_threshold_deploys_nothing(sfn: LocalStepFunctions, fake: FakeSageMakerServer) -> None:
    fake.state.metrics_for = with_accuracy(0.3)
    record = run(sfn, sfn_event("local_small"), "gate-low")

    assert record["status"] == "FAILED" and record["error"] == "GateRejected"
    assert "0.3" in record["cause"] and "0.5" in record["cause"]
    assert fake.state.ops("CreateModel") == [] and fake.state.endpoints == {}
    assert sfn.scalable_targets() == []


def test_gate_below_serving_model_keeps_serving_model(sfn: LocalStepFunctions, fake: FakeSageMakerServer) -> None:
    fake.state.metrics_for = with_accuracy(0.9)
    first = run(sfn, sfn_event("local_small"), "gate-serving-1")
    fake.state.metrics_for = with_accuracy(0.8)  # above the 0.5 threshold, below the serving 0.9
    second = run(sfn, sfn_event("local_small"), "gate-serving-2")

    assert second["status"] == "FAILED" and second["error"] == "GateRejected", second
    assert "serving" in second["cause"] and "0.9" in second["cause"]
    assert len(fake.state.ops("CreateModel")) == 1
    assert fake.state.endpoints[ENDPOINT]["EndpointConfigName"] == first["output"]["EndpointConfigName"]


def test_endpoint_update_failed_keeps_previous_config(sfn: LocalStepFunctions, fake: FakeSageMakerServer) -> None:
    fake.state.metrics_for = with_accuracy(0.8)
    first = run(sfn, sfn_event("local_small"), "ep-fail-1")
    previous = first["output"]["EndpointConfigName"]
    fake.state.endpoint_outcome = "Failed"
    second = run(sfn, sfn_event("local_small"), "ep-fail-2")

    assert second["status"] == "FAILED" and second["error"] == "EndpointFailed", second
    assert "ping health check" in second["cause"]
    assert previous in fake.state.endpoint_configs
    assert fake.state.endpoints[ENDPOINT]["EndpointConfigName"] == previous
    assert first["output"]["ModelName"] in fake.state.models
    # What this execution created is removed; the serving config and model are not.
    deleted_configs = [b["EndpointConfigName"] for b in fake.state.ops("DeleteEndpointConfig")]
    deleted_models = [b["ModelName"] for b in fake.state.ops("DeleteModel")]
    assert deleted_configs == deleted_models and len(deleted_configs) == 1 and previous not in deleted_configs
    assert deleted_configs[0] not in fake.state.endpoint_configs


def test_update_rolled_back_fails_and_removes_only_new_resources(
    sfn: LocalStepFunctions, fake: FakeSageMakerServer
) -> None:
    fake.state.metrics_for = with_accuracy(0.8)
    first = run(sfn, sfn_event("local_small"), "rollback-1")
    fake.state.endpoint_outcome = "RolledBack"
    second = run(sfn, sfn_event("local_small"), "rollback-2")

    assert second["status"] == "FAILED" and second["error"] == "DeploymentRolledBack", second
    assert fake.state.endpoints[ENDPOINT]["EndpointConfigName"] == first["output"]["EndpointConfigName"]
    assert set(fake.state.endpoint_configs) == {first["output"]["EndpointConfigName"]}


def test_new_endpoint_failed_keeps_the_config_it_references(sfn: LocalStepFunctions, fake: FakeSageMakerServer) -> None:
    fake.state.metrics_for = with_accuracy(0.8)
    fake.state.endpoint_outcome = "Failed"
    record = run(sfn, sfn_event("local_small"), "create-fails")

    assert record["status"] == "FAILED" and record["error"] == "EndpointFailed"
    assert fake.state.endpoints[ENDPOINT]["EndpointStatus"] == "Failed"
    # The Failed endpoint still references this config: never delete what an endpoint runs on.
    assert fake.state.ops("DeleteEndpointConfig") == []


def test_tuning_retrains_with_the_best_jobs_hyperparameters(sfn: LocalStepFunctions, fake: FakeSageMakerServer) -> None:
    # valid:top1 peaks at learning-rate 10**-2.5, so the tuner has a real best job to find.
    def metrics(hps: dict[str, str]) -> dict[str, float]:
        lr = float(hps.get("learning-rate", "0.001"))
        score = max(0.0, 0.95 - 0.2 * abs(math.log10(lr) + 2.5))
        return {"valid:top1": score, "test:top1": score}

    fake.state.metrics_for = metrics
    record = run(sfn, sfn_event("tuning"), "tune-1")

    assert record["status"] == "SUCCEEDED", record
    (tuning,) = fake.state.ops("CreateHyperParameterTuningJob")
    config = tuning["HyperParameterTuningJobConfig"]
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": "valid:top1"}
    assert len(tuning["HyperParameterTuningJobName"]) <= 32
    definition = tuning["TrainingJobDefinition"]
    assert definition["EnableNetworkIsolation"] is True and definition["EnableInterContainerTrafficEncryption"] is True
    children = [j for j in fake.state.training_jobs.values() if "TuningJobArn" in j]
    assert len(children) == 4
    best = max(children, key=lambda j: metrics(j["HyperParameters"])["valid:top1"])
    final = fake.state.training_jobs[record["output"]["TrainingJobName"]]
    assert "TuningJobArn" not in final
    assert final["HyperParameters"]["learning-rate"] == best["HyperParameters"]["learning-rate"]
    assert final["HyperParameters"]["arch"] == "smallcnn"


def test_multi_instance_spot_on_local_storage_instances(sfn: LocalStepFunctions, fake: FakeSageMakerServer) -> None:
    payload = sfn_event("local_small")
    payload["Training"] = {
        "InstanceType": "ml.g5.xlarge",
        "InstanceCount": 2,
        "UseSpot": True,
        "MaxRuntimeSeconds": 3600,
        "MaxWaitSeconds": 7200,
    }
    payload["Deploy"]["InstanceType"] = "ml.g5.xlarge"
    record = run(sfn, payload, "multi-spot")

    assert record["status"] == "SUCCEEDED", record
    (request,) = fake.state.ops("CreateTrainingJob")
    assert request["ResourceConfig"]["InstanceCount"] == 2
    assert request["HyperParameters"]["sagemaker_torch_distributed_enabled"] == "true"
    assert request["EnableInterContainerTrafficEncryption"] is True
    assert request["EnableManagedSpotTraining"] is True
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert request["CheckpointConfig"]["S3Uri"].startswith(f"s3://{SUBSTITUTIONS['ArtifactBucket']}/checkpoints/")
    # ml.g5 has local NVMe storage: SageMaker refuses a volume KMS key there (the disk is hardware-encrypted).
    assert "VolumeKmsKeyId" not in request["ResourceConfig"]
    assert request["OutputDataConfig"]["KmsKeyId"] == SUBSTITUTIONS["KmsKeyArn"]
    (endpoint_config,) = fake.state.ops("CreateEndpointConfig")
    assert "KmsKeyId" not in endpoint_config


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
    ],
)
def test_invalid_input_fails_fast_naming_the_field(
    sfn: LocalStepFunctions, fake: FakeSageMakerServer, patch: dict[str, Any], needle: str
) -> None:
    record = run(sfn, {**sfn_event("local_small"), **patch}, f"bad-{abs(hash(json.dumps(patch))) % 10**8}")

    assert record["status"] == "FAILED" and record["error"] == "InvalidInput", record
    assert needle in record["cause"]
    assert fake.state.calls == []
