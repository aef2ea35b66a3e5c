"""Helpers for the local SageMaker integration tests: requests, waits, code tarballs, logs and output-shape checks.

Everything goes through the public APIs (SageMaker, S3, CloudWatch Logs) of a running local AWS, as a user's tools do.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import json
import re
import tarfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.session
from botocore.exceptions import WaiterError
from botocore.model import Shape

from local_aws.constants import METRIC_DEFINITIONS_PATH

ASSETS = Path(__file__).resolve().parent / "assets"
METRICS = [
    {"Name": "train:loss", "Regex": r"METRIC split=train .*loss=([0-9.]+)"},
    {"Name": "valid:top1", "Regex": r"METRIC split=valid .*top1=([0-9.]+)"},
]
WAIT = {"Delay": 1, "MaxAttempts": 180}
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
ACCOUNT = "123456789012"
REGION = "us-east-1"


@dataclass(frozen=True)
class Stack:
    """What the tests use of the deployed local stack: its buckets and the SageMaker execution role."""

    data_bucket: str
    artifact_bucket: str
    role: str


# ----------------------------------------------------------------------------------------------- code and data
def tarball(files: Mapping[str, bytes | str | Path]) -> bytes:
    """A ``sourcedir.tar.gz`` holding ``files`` (name → content or a file to copy)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in sorted(files.items()):
            if isinstance(content, Path):
                data = content.read_bytes()
            elif isinstance(content, str):
                data = content.encode("utf-8")
            else:
                data = content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def put_source(s3: Any, bucket: str, key: str, files: Mapping[str, bytes | str | Path]) -> str:
    """Upload ``files`` as a tar.gz with the S3 API; returns its ``s3://`` URI."""
    s3.put_object(Bucket=bucket, Key=key, Body=tarball(files))
    return f"s3://{bucket}/{key}"


def tiny_files() -> dict[str, bytes | str | Path]:
    """The tiny training script and its inference handlers (the source dir the tests share)."""
    return {"tiny_train.py": ASSETS / "tiny_train.py", "tiny_inference.py": ASSETS / "tiny_inference.py"}


# ----------------------------------------------------------------------------------------------- requests
def job_request(
    stack: Stack,
    name: str,
    source: str,
    data: str,
    *,
    count: int = 1,
    sharded: bool = False,
    program: str = "tiny_train.py",
    **hps: str,
) -> dict[str, Any]:
    """A CreateTrainingJob request for the tiny script: one ``train`` channel, output in the artifact bucket."""
    hyperparameters = {
        "sagemaker_program": json.dumps(program),
        "sagemaker_submit_directory": json.dumps(source),
        "epochs": "2",
    }
    hyperparameters.update(hps)
    return {
        "TrainingJobName": name,
        "RoleArn": stack.role,
        "AlgorithmSpecification": {"TrainingImage": "local", "TrainingInputMode": "File", "MetricDefinitions": METRICS},
        "HyperParameters": hyperparameters,
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": data,
                        "S3DataDistributionType": "ShardedByS3Key" if sharded else "FullyReplicated",
                    }
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{stack.artifact_bucket}/models"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": count, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }


# The PyTorch training image the SDK would pick; the local SageMaker runs training/ the same way for any image.
PYTORCH_TRAINING_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.6.0-cpu-py312"


def real_training_request(
    stack: Stack,
    name: str,
    code: str,
    data: str,
    *,
    count: int = 1,
    instance_type: str = "ml.m5.large",
    **hps: str,
) -> dict[str, Any]:
    """A CreateTrainingJob request for the real training/ (``code``: its sourcedir tarball URI) on the digits in
    ``data`` (one ``training`` channel), with the repo's MetricDefinitions and smallcnn at 16 px; ``hps`` on top."""
    hyperparameters = {
        "sagemaker_program": '"train.py"',
        "sagemaker_submit_directory": json.dumps(code),
        "arch": '"smallcnn"',
        "epochs": "1",
        "image-size": "16",
        "batch-size": "16",
        "augment": '"crop"',
        "num-workers": "0",
        "pretrained": '"none"',
        **hps,
    }
    return {
        "TrainingJobName": name,
        "RoleArn": stack.role,
        "AlgorithmSpecification": {
            "TrainingImage": PYTORCH_TRAINING_IMAGE,
            "TrainingInputMode": "File",
            "MetricDefinitions": json.loads(METRIC_DEFINITIONS_PATH.read_text()),
        },
        "HyperParameters": hyperparameters,
        "InputDataConfig": [
            {
                "ChannelName": "training",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": data,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{stack.artifact_bucket}/models"},
        "ResourceConfig": {"InstanceType": instance_type, "InstanceCount": count, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 900},
    }


def wait_job(sm: Any, name: str) -> dict[str, Any]:
    """Wait with the real waiter; it raises on Failed (a terminal failure acceptor), which some tests expect."""
    try:
        sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName=name, WaiterConfig=WAIT)
    except WaiterError as exc:
        assert exc.last_response.get("TrainingJobStatus") == "Failed", exc.last_response
    described: dict[str, Any] = sm.describe_training_job(TrainingJobName=name)
    return described


def train(sm: Any, request: dict[str, Any]) -> dict[str, Any]:
    """Create the job and wait for its end."""
    sm.create_training_job(**request)
    return wait_job(sm, request["TrainingJobName"])


def wait_for(probe: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 60.0, every: float = 0.2) -> Any:
    """Call ``probe`` until ``done(result)``; returns that result (fails the test after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if done(result):
            return result
        assert time.monotonic() < deadline, f"timed out waiting; last value {result!r}"
        time.sleep(every)


def deploy(sm: Any, role: str, name: str, model_data: str, count: int = 1, env: dict[str, str] | None = None) -> str:
    """CreateModel + CreateEndpointConfig (same name) for one ``AllTraffic`` variant; returns the config name."""
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn=role,
        PrimaryContainer={"Image": "local", "ModelDataUrl": model_data, "Environment": env or {}},
    )
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


# ----------------------------------------------------------------------------------------------- logs
def host_log(logs: Any, job: str, host: str = "algo-1") -> str:
    """Every line a training host wrote, read back from CloudWatch Logs (stream ``<job>/<host>-<epoch>``)."""
    streams = logs.describe_log_streams(logGroupName=TRAINING_LOG_GROUP, logStreamNamePrefix=f"{job}/{host}-")
    names = [s["logStreamName"] for s in streams["logStreams"]]
    assert len(names) == 1, f"expected one log stream for {job}/{host}, found {names}"
    lines: list[str] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"logGroupName": TRAINING_LOG_GROUP, "logStreamName": names[0], "startFromHead": True}
        if token:
            kwargs["nextToken"] = token
        page = logs.get_log_events(**kwargs)
        lines.extend(e["message"] for e in page["events"])
        if not page["events"] or page["nextForwardToken"] == token:
            break
        token = page["nextForwardToken"]
    return "\n".join(lines)


def job_streams(logs: Any, job: str) -> list[str]:
    """The log streams of a training job (none when no host process ever started)."""
    try:
        streams = logs.describe_log_streams(logGroupName=TRAINING_LOG_GROUP, logStreamNamePrefix=f"{job}/")
    except logs.exceptions.ResourceNotFoundException:
        return []
    return [s["logStreamName"] for s in streams["logStreams"]]


# ----------------------------------------------------------------------------------------------- output shapes
@functools.cache
def _sagemaker_model() -> Any:
    return botocore.session.get_session().get_service_model("sagemaker")


def output_shape(operation: str) -> Shape:
    """The output shape of a SageMaker control-plane operation in botocore's model."""
    shape = _sagemaker_model().operation_model(operation).output_shape
    assert shape is not None, operation
    return shape


@functools.cache
def _pattern(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:  # a Java-only construct: not checkable here
        return None


def shape_errors(shape: Shape, value: Any, path: str = "$") -> list[str]:
    """Where ``value`` (a *raw* JSON 1.1 document) breaks ``shape``: required members, types, enums, lengths, ranges.

    Unknown structure members are errors too: botocore drops them silently, so a client would never see them.
    """
    errors: list[str] = []
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{path}: expected an object, got {type(value).__name__}"]
        errors += [f"{path}.{req}: required member missing" for req in shape.required_members if value.get(req) is None]
        for key, item in value.items():
            member = shape.members.get(key)
            if member is None:
                errors.append(f"{path}.{key}: not a member of {shape.name}")
            elif item is not None:
                errors += shape_errors(member, item, f"{path}.{key}")
    elif kind == "list":
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {type(value).__name__}"]
        errors += _length_errors(shape, len(value), path)
        for index, item in enumerate(value):
            errors += shape_errors(shape.member, item, f"{path}[{index}]")
    elif kind == "map":
        if not isinstance(value, dict):
            return [f"{path}: expected a map, got {type(value).__name__}"]
        errors += _length_errors(shape, len(value), path)
        for key, item in value.items():
            errors += shape_errors(shape.key, key, f"{path}<key {key!r}>")
            errors += shape_errors(shape.value, item, f"{path}[{key!r}]")
    elif kind == "string":
        if not isinstance(value, str):
            return [f"{path}: expected a string, got {type(value).__name__} {value!r}"]
        if shape.enum and value not in shape.enum:
            errors.append(f"{path}: {value!r} is not one of {shape.name}'s enum {shape.enum}")
        errors += _length_errors(shape, len(value), path)
        pattern = shape.metadata.get("pattern")
        rx = _pattern(pattern) if pattern else None
        if rx is not None and not rx.fullmatch(value):
            errors.append(f"{path}: {value!r} does not match {shape.name}'s pattern {pattern}")
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"{path}: expected an integer, got {type(value).__name__} {value!r}"]
        errors += _range_errors(shape, value, path)
    elif kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return [f"{path}: expected a number, got {type(value).__name__} {value!r}"]
        errors += _range_errors(shape, value, path)
    elif kind == "boolean":
        if not isinstance(value, bool):
            errors.append(f"{path}: expected a boolean, got {type(value).__name__} {value!r}")
    elif kind == "timestamp":
        # JSON 1.1 sends epoch seconds; botocore would also parse an ISO string, the service never sends one.
        if isinstance(value, bool) or not isinstance(value, int | float):
            errors.append(f"{path}: expected epoch seconds, got {type(value).__name__} {value!r}")
    elif kind == "blob" and not isinstance(value, str):
        errors.append(f"{path}: expected base64 text, got {type(value).__name__}")
    return errors


def _length_errors(shape: Shape, size: int, path: str) -> list[str]:
    lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
    out = []
    if lo is not None and size < lo:
        out.append(f"{path}: length {size} < min {lo}")
    if hi is not None and size > hi:
        out.append(f"{path}: length {size} > max {hi}")
    return out


def _range_errors(shape: Shape, value: float, path: str) -> list[str]:
    lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
    out = []
    if lo is not None and value < lo:
        out.append(f"{path}: {value} < min {lo}")
    if hi is not None and value > hi:
        out.append(f"{path}: {value} > max {hi}")
    return out


class RawResponses:
    """Keeps the raw JSON body of every answer a client gets (botocore's parsed dict hides unknown members).

    Usage: ``raw = RawResponses(client)``, then ``raw.call("DescribeTrainingJob", TrainingJobName=...)``.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.last: dict[str, Any] | None = None
        client.meta.events.register("after-call.sagemaker", self._keep)

    def _keep(self, http_response: Any, **_: Any) -> None:
        self.last = json.loads(http_response.content or b"{}")

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        """Run ``operation`` and return its raw JSON answer."""
        method = getattr(self.client, _snake(operation))
        self.last = None
        method(**params)
        assert self.last is not None
        return self.last


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def assert_output_shape(operation: str, raw: dict[str, Any]) -> None:
    """Fail with every place where ``raw`` breaks the operation's botocore output shape."""
    errors = shape_errors(output_shape(operation), raw)
    assert errors == [], f"{operation} answer breaks botocore's output shape:\n" + "\n".join(errors)


def epoch(value: dt.datetime | float) -> float:
    """A botocore timestamp (datetime) or raw epoch seconds, as epoch seconds."""
    return value.timestamp() if isinstance(value, dt.datetime) else float(value)
