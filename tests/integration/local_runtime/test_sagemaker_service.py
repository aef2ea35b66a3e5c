"""The local SageMaker service through unmodified boto3 (waiters included) and awscli."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, WaiterError

from local_runtime.s3 import LocalS3
from local_runtime.sagemaker.server import SageMakerServer

ASSETS = Path(__file__).parent / "assets"
ROLE = "arn:aws:iam::123456789012:role/sagemaker"
METRICS = [
    {"Name": "train:loss", "Regex": r"METRIC split=train .*loss=([0-9.]+)"},
    {"Name": "valid:top1", "Regex": r"METRIC split=valid .*top1=([0-9.]+)"},
]
WAIT = {"Delay": 1, "MaxAttempts": 120}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sm-home")
    s3 = LocalS3(root / "s3")
    for i in range(4):
        s3.put_bytes(f"s3://data/train/part-{i}.txt", f"{i} {i}".encode())
    s3.upload_dir(ASSETS, "s3://code/src/")
    return root


@pytest.fixture(scope="module")
def server(home: Path) -> Iterator[SageMakerServer]:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    srv = SageMakerServer(home).start()
    yield srv
    srv.stop()


def clients(url: str) -> tuple[Any, Any]:
    cfg = Config(region_name="us-east-1", retries={"max_attempts": 1})
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    return session.client("sagemaker", endpoint_url=url, config=cfg), session.client(
        "sagemaker-runtime", endpoint_url=url, config=cfg
    )


@pytest.fixture(scope="module")
def sm(server: SageMakerServer) -> Any:
    return clients(server.url)[0]


@pytest.fixture(scope="module")
def runtime(server: SageMakerServer) -> Any:
    return clients(server.url)[1]


def job_request(name: str, count: int = 1, sharded: bool = False, **hps: str) -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "RoleArn": ROLE,
        "AlgorithmSpecification": {"TrainingImage": "local", "TrainingInputMode": "File", "MetricDefinitions": METRICS},
        "HyperParameters": {
            "sagemaker_program": '"tiny_train.py"',
            "sagemaker_submit_directory": '"s3://code/src/"',
            "epochs": "2",
            **hps,
        },
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": "s3://data/train",
                        "S3DataDistributionType": "ShardedByS3Key" if sharded else "FullyReplicated",
                    }
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": "s3://out/models"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": count, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }


def wait_job(sm: Any, name: str) -> dict[str, Any]:
    """The real waiter; it raises on Failed (a terminal failure acceptor), which some tests expect."""
    try:
        sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName=name, WaiterConfig=WAIT)
    except WaiterError as exc:
        assert exc.last_response["TrainingJobStatus"] == "Failed"
    return sm.describe_training_job(TrainingJobName=name)


def train(sm: Any, name: str, **kwargs: Any) -> dict[str, Any]:
    sm.create_training_job(**job_request(name, **kwargs))
    return wait_job(sm, name)


def deploy(sm: Any, name: str, model_data: str, count: int = 1, env: dict[str, str] | None = None) -> str:
    sm.create_model(
        ModelName=name, ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": "local", "ModelDataUrl": model_data, "Environment": env or {}},
    )  # fmt: skip
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": name,
                "InitialInstanceCount": count,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    return name


@pytest.fixture(scope="module")
def trained(sm: Any) -> dict[str, Any]:
    return train(sm, "tiny-2hosts", count=2, sharded=True, scale="0.5")


def test_two_host_job_completes_as_one_distributed_group(trained: dict[str, Any], home: Path) -> None:
    assert trained["TrainingJobStatus"] == "Completed", trained.get("FailureReason")
    assert [t["Status"] for t in trained["SecondaryStatusTransitions"]] == [
        "Starting", "Downloading", "Training", "Uploading", "Completed",
    ]  # fmt: skip
    metrics = {m["MetricName"]: m["Value"] for m in trained["FinalMetricDataList"]}
    assert metrics == {"train:loss": pytest.approx(1.0), "valid:top1": pytest.approx(0.2)}  # last epoch's values
    uri = trained["ModelArtifacts"]["S3ModelArtifacts"]
    assert uri == "s3://out/models/tiny-2hosts/output/model.tar.gz"
    with tarfile.open(LocalS3(home / "s3").path(uri)) as tar:
        assert {"model.json", "code/inference.py"} <= set(tar.getnames())
        model = json.loads(tar.extractfile("model.json").read())  # type: ignore[union-attr]
    # ShardedByS3Key gave each host 2 of the 4 files; all_reduce over the group summed all of them.
    assert model == {"total": 12.0, "count": 4.0, "scale": 0.5}
    logs = home / "logs" / "TrainingJobs" / "tiny-2hosts"
    assert "RANK 1 WORLD 2 FILES 2" in (logs / "algo-2.log").read_text()
    assert "RANK 0 WORLD 2 FILES 2" in (logs / "algo-1.log").read_text()
    assert "ARGS ['--epochs', '2', '--scale', '0.5']" in (logs / "algo-1.log").read_text()


def test_duplicate_and_missing_training_jobs_return_the_real_errors(sm: Any, trained: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as dup:
        sm.create_training_job(**job_request("tiny-2hosts"))
    assert dup.value.response["Error"]["Code"] == "ResourceInUse"
    with pytest.raises(ClientError) as missing:
        sm.describe_training_job(TrainingJobName="no-such-job")
    assert missing.value.response["Error"] == {
        "Code": "ValidationException",
        "Message": "Requested resource not found.",
    }
    with pytest.raises(ClientError) as bad:
        sm.create_training_job(**{**job_request("bad-name_x")})
    assert bad.value.response["Error"]["Code"] == "ValidationException"
    assert "trainingJobName" in bad.value.response["Error"]["Message"]
    names = [s["TrainingJobName"] for s in sm.list_training_jobs(NameContains="tiny-2")["TrainingJobSummaries"]]
    assert names == ["tiny-2hosts"]


def test_failure_file_becomes_failure_reason(sm: Any) -> None:
    failed = train(sm, "tiny-fails", fail="bad learning rate: -1")
    assert failed["TrainingJobStatus"] == "Failed"
    assert failed["FailureReason"] == "AlgorithmError: bad learning rate: -1"
    crashed = train(sm, "tiny-crashes", crash="exploded")
    assert crashed["TrainingJobStatus"] == "Failed"
    assert crashed["FailureReason"].startswith("AlgorithmError: ExecuteUserScriptError:\nExitCode 1\n")
    assert "RuntimeError: exploded" in crashed["FailureReason"]


def test_stop_and_max_runtime(sm: Any) -> None:
    sm.create_training_job(**job_request("tiny-stopped", epochs="100", sleep="1"))
    deadline = time.time() + 60
    while sm.describe_training_job(TrainingJobName="tiny-stopped")["SecondaryStatus"] != "Training":
        assert time.time() < deadline
        time.sleep(0.2)
    sm.stop_training_job(TrainingJobName="tiny-stopped")
    assert sm.describe_training_job(TrainingJobName="tiny-stopped")["TrainingJobStatus"] in ("Stopping", "Stopped")
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName="tiny-stopped", WaiterConfig=WAIT)
    stopped = sm.describe_training_job(TrainingJobName="tiny-stopped")
    assert (stopped["TrainingJobStatus"], stopped["SecondaryStatus"]) == ("Stopped", "Stopped")

    request = job_request("tiny-timeout", epochs="100", sleep="1")
    request["StoppingCondition"] = {"MaxRuntimeInSeconds": 2}
    sm.create_training_job(**request)
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName="tiny-timeout", WaiterConfig=WAIT)
    timed_out = sm.describe_training_job(TrainingJobName="tiny-timeout")
    assert (timed_out["TrainingJobStatus"], timed_out["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")


def test_checkpoints_sync_to_s3_and_resume(sm: Any, home: Path) -> None:
    checkpoint = {"S3Uri": "s3://out/checkpoints/resume", "LocalPath": "/opt/ml/checkpoints"}
    first = job_request("tiny-ckpt-1", epochs="2")
    first["CheckpointConfig"] = checkpoint
    sm.create_training_job(**first)
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName="tiny-ckpt-1", WaiterConfig=WAIT)
    assert json.loads(LocalS3(home / "s3").path("s3://out/checkpoints/resume/state.json").read_text()) == {"epoch": 2}
    second = job_request("tiny-ckpt-2", epochs="3")
    second["CheckpointConfig"] = checkpoint
    done = train_from(sm, second)
    assert done["TrainingJobStatus"] == "Completed"
    log = (home / "logs" / "TrainingJobs" / "tiny-ckpt-2" / "algo-1.log").read_text()
    assert "RESUMED from epoch 2" in log and "epoch=3" in log and "epoch=1 " not in log


def train_from(sm: Any, request: dict[str, Any]) -> dict[str, Any]:
    sm.create_training_job(**request)
    sm.get_waiter("training_job_completed_or_stopped").wait(
        TrainingJobName=request["TrainingJobName"], WaiterConfig=WAIT
    )
    return sm.describe_training_job(TrainingJobName=request["TrainingJobName"])


def test_grid_tuning_runs_real_jobs_and_reports_the_best(sm: Any) -> None:
    definition = job_request("unused")
    definition.pop("TrainingJobName")
    definition["StaticHyperParameters"] = definition.pop("HyperParameters")
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="tiny-grid",
        HyperParameterTuningJobConfig={
            "Strategy": "Grid",
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "valid:top1"},
            "ResourceLimits": {"MaxParallelTrainingJobs": 1},
            "ParameterRanges": {"CategoricalParameterRanges": [{"Name": "scale", "Values": ["0.5", "2"]}]},
        },
        TrainingJobDefinition=definition,
    )
    deadline = time.time() + 120
    while (desc := sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="tiny-grid"))[
        "HyperParameterTuningJobStatus"
    ] == "InProgress":
        assert time.time() < deadline
        time.sleep(1)
    assert desc["HyperParameterTuningJobStatus"] == "Completed"
    assert desc["TrainingJobStatusCounters"]["Completed"] == 2
    best = desc["BestTrainingJob"]
    assert best["TunedHyperParameters"] == {"scale": "2"}
    assert best["FinalHyperParameterTuningJobObjectiveMetric"] == {
        "Type": "Maximize", "MetricName": "valid:top1", "Value": pytest.approx(0.8),
    }  # fmt: skip
    jobs = sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName="tiny-grid")
    assert len(jobs["TrainingJobSummaries"]) == 2
    hps = sm.describe_training_job(TrainingJobName=best["TrainingJobName"])["HyperParameters"]
    assert hps["_tuning_objective_metric"] == "valid:top1"


def test_endpoint_serves_real_predictions_and_maps_errors(sm: Any, runtime: Any, trained: dict[str, Any]) -> None:
    deploy(sm, "tiny-ep", trained["ModelArtifacts"]["S3ModelArtifacts"], count=2)
    sm.create_endpoint(EndpointName="tiny-ep", EndpointConfigName="tiny-ep", Tags=[{"Key": "k", "Value": "v"}])
    assert sm.describe_endpoint(EndpointName="tiny-ep")["EndpointStatus"] == "Creating"
    sm.get_waiter("endpoint_in_service").wait(EndpointName="tiny-ep", WaiterConfig=WAIT)
    pids = set()
    for _ in range(4):
        response = runtime.invoke_endpoint(
            EndpointName="tiny-ep", Body=b'{"x": [1, 2]}', ContentType="application/json"
        )
        body = json.loads(response["Body"].read())
        assert body["prediction"] == pytest.approx(3 * 0.5 + 12.0)
        assert response["InvokedProductionVariant"] == "AllTraffic"
        pids.add(body["pid"])
    assert len(pids) == 2  # load-balanced across both instances

    with pytest.raises(ClientError) as client_fault:
        runtime.invoke_endpoint(EndpointName="tiny-ep", Body=b'{"x": 1}', ContentType="application/json")
    err = client_fault.value.response
    assert err["Error"]["Code"] == "ModelError" and err["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert err["OriginalStatusCode"] == 400
    assert err["OriginalMessage"].startswith("field 'x' must be a list of numbers")
    assert err["Error"]["Message"].startswith('Received client error (400) from primary with message "field')
    assert err["LogStreamArn"].endswith(":log-group:/aws/sagemaker/Endpoints/tiny-ep")
    with pytest.raises(ClientError) as server_fault:
        runtime.invoke_endpoint(EndpointName="tiny-ep", Body=b'{"x": [-1]}', ContentType="application/json")
    assert server_fault.value.response["OriginalStatusCode"] == 500
    with pytest.raises(ClientError) as unknown:
        runtime.invoke_endpoint(EndpointName="nope", Body=b"{}", ContentType="application/json")
    assert unknown.value.response["Error"] == {
        "Code": "ValidationError", "Message": "Endpoint nope of account 123456789012 not found.",
    }  # fmt: skip
    with pytest.raises(ClientError) as missing:
        sm.describe_endpoint(EndpointName="nope")
    assert missing.value.response["Error"]["Message"] == (
        'Could not find endpoint "arn:aws:sagemaker:us-east-1:123456789012:endpoint/nope".'
    )
    arn = sm.describe_endpoint(EndpointName="tiny-ep")["EndpointArn"]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "dogbreed:test-top1", "Value": "0.9"}])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [
        {"Key": "k", "Value": "v"}, {"Key": "dogbreed:test-top1", "Value": "0.9"},
    ]  # fmt: skip


def test_awscli_describe_and_invoke(server: SageMakerServer, sm: Any, trained: dict[str, Any], tmp_path: Path) -> None:
    if sm.describe_endpoint(EndpointName="tiny-ep")["EndpointStatus"] != "InService":
        pytest.skip("needs tiny-ep from the previous test")
    aws = str(Path(sys.executable).with_name("aws"))
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL_SAGEMAKER": server.url,
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": server.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    described = subprocess.run(
        [aws, "sagemaker", "describe-endpoint", "--endpoint-name", "tiny-ep"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert json.loads(described.stdout)["EndpointStatus"] == "InService"
    (tmp_path / "in.json").write_text('{"x": [4]}')
    subprocess.run(
        [aws, "sagemaker-runtime", "invoke-endpoint", "--endpoint-name", "tiny-ep", "--content-type",
         "application/json", "--body", f"fileb://{tmp_path / 'in.json'}", str(tmp_path / "out.json")],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert json.loads((tmp_path / "out.json").read_text())["prediction"] == pytest.approx(4 * 0.5 + 12.0)
    missing = subprocess.run(
        [aws, "sagemaker", "describe-endpoint", "--endpoint-name", "nope"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert missing.returncode != 0 and "ValidationException" in missing.stderr


def test_blue_green_update_drops_no_request(sm: Any, runtime: Any, trained: dict[str, Any]) -> None:
    model_data = trained["ModelArtifacts"]["S3ModelArtifacts"]
    deploy(sm, "bg-v1", model_data, env={"MODEL_VERSION": "v1"})
    deploy(sm, "bg-v2", model_data, env={"MODEL_VERSION": "v2"})
    deploy(sm, "bg-broken", model_data, env={"TINY_FAIL_LOAD": "corrupt weights"})
    sm.create_endpoint(EndpointName="bg", EndpointConfigName="bg-v1")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="bg", WaiterConfig=WAIT)
    results: list[str] = []
    errors: list[str] = []
    stop = threading.Event()

    def client() -> None:
        _, rt = clients(sm.meta.endpoint_url)
        while not stop.is_set():
            try:
                r = rt.invoke_endpoint(EndpointName="bg", Body=b'{"x": [1]}', ContentType="application/json")
                results.append(json.loads(r["Body"].read())["version"])
            except Exception as exc:
                errors.append(repr(exc))

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    deadline = time.time() + 30
    while len(results) < 5 and time.time() < deadline:
        time.sleep(0.1)
    sm.update_endpoint(EndpointName="bg", EndpointConfigName="bg-v2")
    assert sm.describe_endpoint(EndpointName="bg")["EndpointStatus"] == "Updating"
    sm.get_waiter("endpoint_in_service").wait(EndpointName="bg", WaiterConfig=WAIT)
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    assert "v1" in results and results[-1] == "v2"
    assert results.index("v2") > results.index("v1")
    assert "v1" not in results[results.index("v2") :]  # the switch is atomic: never back to the old fleet

    # A failed update rolls back: the old config keeps serving, InService with a FailureReason.
    sm.update_endpoint(EndpointName="bg", EndpointConfigName="bg-broken")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="bg", WaiterConfig=WAIT)
    described = sm.describe_endpoint(EndpointName="bg")
    assert described["EndpointConfigName"] == "bg-v2"
    assert "corrupt weights" in described["FailureReason"]
    r = runtime.invoke_endpoint(EndpointName="bg", Body=b'{"x": [1]}', ContentType="application/json")
    assert json.loads(r["Body"].read())["version"] == "v2"

    # A create that never gets healthy ends Failed, and the waiter reports it.
    sm.create_endpoint(EndpointName="bg-fails", EndpointConfigName="bg-broken")
    with pytest.raises(Exception, match="Failed"):
        sm.get_waiter("endpoint_in_service").wait(EndpointName="bg-fails", WaiterConfig=WAIT)
    assert "corrupt weights" in sm.describe_endpoint(EndpointName="bg-fails")["FailureReason"]
    sm.delete_endpoint(EndpointName="bg-fails")
    sm.get_waiter("endpoint_deleted").wait(EndpointName="bg-fails", WaiterConfig=WAIT)


def test_restart_serves_again_from_persisted_state(tmp_path: Path, trained: dict[str, Any], home: Path) -> None:
    other = tmp_path / "home"
    s3 = LocalS3(other / "s3")
    s3.upload_file(LocalS3(home / "s3").path(trained["ModelArtifacts"]["S3ModelArtifacts"]), "s3://m/model.tar.gz")
    first = SageMakerServer(other).start()
    try:
        sm, _ = clients(first.url)
        deploy(sm, "persist", "s3://m/model.tar.gz")
        sm.create_endpoint(EndpointName="persist", EndpointConfigName="persist")
        sm.get_waiter("endpoint_in_service").wait(EndpointName="persist", WaiterConfig=WAIT)
        s3.upload_dir(ASSETS, "s3://code/src/")
        s3.put_bytes("s3://data/train/a.txt", b"1")
        request = job_request("interrupted", epochs="100", sleep="1")
        sm.create_training_job(**request)
    finally:
        first.stop()
    second = SageMakerServer(other).start()
    try:
        sm, rt = clients(second.url)
        interrupted = sm.describe_training_job(TrainingJobName="interrupted")
        assert interrupted["TrainingJobStatus"] == "Failed"
        assert "local runtime was shut down" in interrupted["FailureReason"]
        assert sm.describe_endpoint(EndpointName="persist")["EndpointStatus"] in ("SystemUpdating", "InService")
        sm.get_waiter("endpoint_in_service").wait(EndpointName="persist", WaiterConfig=WAIT)
        r = rt.invoke_endpoint(EndpointName="persist", Body=b'{"x": [2]}', ContentType="application/json")
        assert json.loads(r["Body"].read())["prediction"] == pytest.approx(2 * 0.5 + 12.0)
        assert [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]] == ["persist"]
    finally:
        second.stop()


def test_unknown_operation_and_bad_json(server: SageMakerServer) -> None:
    import urllib.error
    import urllib.request

    def post(target: str, body: bytes) -> tuple[int, dict[str, Any]]:
        req = urllib.request.Request(
            server.url, data=body, method="POST",
            headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    assert post("SageMaker.NoSuchOp", b"{}") == (
        400, {"__type": "UnknownOperationException", "message": "Unknown operation NoSuchOp"},
    )  # fmt: skip
    assert post("SageMaker.DescribeEndpoint", b"{not json")[1]["__type"] == "SerializationException"
    status, doc = post("SageMaker.DescribeEndpoint", b"{}")
    assert status == 400 and doc["__type"] == "ValidationException" and "endpointName" in doc["message"]
    assert uuid.UUID  # keep import used for readers adding request-id checks
