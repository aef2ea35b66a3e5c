"""Helpers for the sagemaker SDK tests: the SDK venvs, a clean subprocess environment, the driver scripts' results.

The SDKs never run in the test process: each path is a script under ``scripts/`` run by the interpreter of its own
venv (``.venv-sdk3``: ``sagemaker==3.27.*``; ``.venv-sdk2``: ``sagemaker>=2.250,<3``) with an explicit environment
that names only the local runtime, as a user's shell would after ``eval "$(python -m ops env)"``.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from local_aws.constants import REGION

REPO = Path(__file__).resolve().parents[3]
SCRIPTS = Path(__file__).resolve().parent / "scripts"
CENTROID_SOURCE = SCRIPTS / "centroid_source"
SDK3_VENV = REPO / ".venv-sdk3"
SDK2_VENV = REPO / ".venv-sdk2"
# Never pulled: the local runtime's own Python plays the image. The SDK v2 resolves the same URI offline.
TRAINING_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-cpu-py311"
INFERENCE_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5.1-cpu-py311"
CENTROID_METRICS = [
    {"Name": "centroid:loss", "Regex": r"CENTROID epoch=\d+ loss=([0-9.]+)"},
    {"Name": "centroid:accuracy", "Regex": r"CENTROID epoch=\d+ .*accuracy=([0-9.]+)"},
]
# Three well-separated classes of 2-D points, label,x1,x2: the centroid model classifies all of them right.
CENTROIDS = {"a": (0.0, 0.0), "b": (5.0, 5.0), "c": (0.0, 5.0)}
OFFSETS = ((0.3, 0.1), (-0.2, 0.4), (0.1, -0.3), (-0.4, -0.2))
RESULT_PREFIX = "SDK_RESULT "


@dataclass(frozen=True)
class SdkStack:
    """The deployed local stack as the SDK tests use it."""

    url: str
    access_key_id: str
    secret_access_key: str
    data_bucket: str
    artifact_bucket: str
    role: str
    centroid_data: str  # s3:// prefix of the centroid CSV, under the role's readable datasets/ prefix


@dataclass(frozen=True)
class DriverRun:
    """A driver script's outcome: its ``SDK_RESULT`` document and everything it printed."""

    result: dict[str, Any]
    output: str


def sdk_python(venv: Path, major: int) -> Path:
    """The venv's interpreter if it has ``sagemaker`` of that major version; else skip the test with the reason."""
    python = venv / "bin" / "python"
    if not python.is_file():
        if os.environ.get("CI"):
            # `make test` builds the venvs first: in CI a missing one is a broken setup, not a reason to skip.
            pytest.fail(f"{venv.name} is missing in CI; `make setup` should have created it")
        pytest.skip(f"{venv.name} is missing: create it with `make sdk-venvs` (docs/SAGEMAKER_SDK.md)")
    probe = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('sagemaker'))"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": os.defpath, "PYTHONNOUSERSITE": "1"},
        check=False,
    )
    version = probe.stdout.strip()
    if probe.returncode != 0 or not version.startswith(f"{major}."):
        pytest.skip(f"{venv.name} has no sagemaker {major}.x (found {version or probe.stderr.strip()[-200:]!r})")
    return python


def sdk_env(stack: SdkStack, home: Path, **extra: str) -> dict[str, str]:
    """The whole environment of a driver: the local runtime's endpoint and keys, a private HOME, nothing inherited.

    No ``AWS_SESSION_TOKEN`` (the runtime issued plain keys), no profile, no user SageMaker config (HOME is empty).
    """
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.defpath,
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONNOUSERSITE": "1",
        "PYTHONUNBUFFERED": "1",
        "AWS_ENDPOINT_URL": stack.url,
        "AWS_ACCESS_KEY_ID": stack.access_key_id,
        "AWS_SECRET_ACCESS_KEY": stack.secret_access_key,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
    }
    env.update(extra)
    return env


def run_driver(python: Path, script: str, env: dict[str, str], timeout: float = 240) -> DriverRun:
    """Run ``scripts/<script>`` with ``python`` and ``env``; fail the test with its output unless it succeeded."""
    proc = subprocess.run(
        [str(python), str(SCRIPTS / script)],
        env=env,
        cwd=env["HOME"],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = proc.stdout + "\n" + proc.stderr
    results = [line[len(RESULT_PREFIX) :] for line in proc.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    assert proc.returncode == 0 and results, f"{script} exited {proc.returncode}:\n{output[-6000:]}"
    return DriverRun(json.loads(results[-1]), output)


def centroid_csv() -> bytes:
    """The centroid training data: four points around each centroid."""
    rows = [f"{label},{cx + dx:.2f},{cy + dy:.2f}" for label, (cx, cy) in CENTROIDS.items() for dx, dy in OFFSETS]
    return ("\n".join(rows) + "\n").encode()


def centroid_model_tar() -> bytes:
    """A model.tar.gz of the centroid model as its training script writes it: ``model.json`` + ``code/`` handler."""
    model = {
        "labels": sorted(CENTROIDS),
        "centroids": {label: list(point) for label, point in CENTROIDS.items()},
        "tag": "fixture",
    }
    files = {
        "model.json": json.dumps(model).encode(),
        "code/centroid_inference.py": (CENTROID_SOURCE / "centroid_inference.py").read_bytes(),
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def read_tar(data: bytes) -> dict[str, bytes]:
    """Every regular file of a tar.gz, by member name."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def s3_bytes(s3: Any, uri: str) -> bytes:
    """The object at an ``s3://`` URI."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def job_log(logs: Any, job_name: str) -> list[str]:
    """Every line the job's hosts wrote to CloudWatch Logs (``/aws/sagemaker/TrainingJobs``, ``<job>/algo-N-*``)."""
    group = "/aws/sagemaker/TrainingJobs"
    streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=f"{job_name}/")["logStreams"]
    lines: list[str] = []
    for stream in streams:
        events = logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"], startFromHead=True)
        lines.extend(e["message"] for e in events["events"])
    return lines


def last_printed(lines: list[str], prefix: str, key: str) -> float:
    """The value of ``key=`` on the last line starting with ``prefix`` (what the metric regex must have captured)."""
    matching = [line for line in lines if line.startswith(prefix) and f" {key}=" in line]
    assert matching, f"no {prefix!r} line with {key}= in the job's log"
    return float(matching[-1].split(f" {key}=")[1].split()[0])
