"""The local SageMaker across restarts of its runtime (a subprocess): endpoints come back, running jobs end Failed.

moto is process-global, so each runtime here is its own process (``local_aws_process.py``) on its own home.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from sagemaker_helpers import WAIT, Stack, deploy, job_request, put_source, tiny_files, wait_for

from local_aws.constants import REPO_ROOT

SERVE = Path(__file__).resolve().parent / "local_aws_process.py"
pytestmark = pytest.mark.slow
# LocalAws.stop: jobs get the training stop grace (10 s) + 15 s, instances 30 s, the supervisor 10 s.
STOP_TIMEOUT_S = 120.0


class Runtime:
    """One local AWS process on ``home``, with clients signed by the credentials it issued."""

    def __init__(self, home: Path, log: Path) -> None:
        self.home = home
        self.log = log
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        env["OMP_NUM_THREADS"] = "1"
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(SERVE), str(home)], cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        doc = wait_for(self._runtime_doc, lambda d: d is not None, timeout=90)
        creds = json.loads((home / "credentials.json").read_text())
        self.session = boto3.session.Session(
            aws_access_key_id=creds["access_key_id"],
            aws_secret_access_key=creds["secret_access_key"],
            aws_session_token=None,
            region_name="us-east-1",
        )
        self.url = doc["aws_url"]

    def _runtime_doc(self) -> dict[str, Any] | None:
        assert self.proc.poll() is None, f"the runtime exited with {self.proc.returncode}"
        try:
            doc: dict[str, Any] = json.loads((self.home / "runtime.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return doc if doc.get("pid") == self.proc.pid else None

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.url, config=Config(retries={"max_attempts": 1}))

    def output(self, key: str) -> str:
        stack = self.client("cloudformation").describe_stacks(StackName="dogbreed-dev")["Stacks"][0]
        return next(o["OutputValue"] for o in stack["Outputs"] if o["OutputKey"] == key)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> None:
        """Signal the runtime and wait for it to exit; a hang dumps its threads' stacks into the log, then fails."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGUSR1)
            time.sleep(2)
            self.proc.kill()
            self.proc.wait(timeout=30)
            tail = self.log.read_text(errors="replace")[-20000:]
            pytest.fail(f"the runtime did not exit {timeout:g} s after signal {sig}; its log ends:\n{tail}")


def processes_under(root: Path) -> list[int]:
    """Pids of live processes whose working directory lies under ``root`` (job hosts, endpoint instances)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = (entry / "cwd").resolve(strict=True)
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z" and cwd.is_relative_to(root):
            found.append(int(entry.name))
    return found


@pytest.fixture
def runtimes(tmp_path: Path) -> Iterator[list[Runtime]]:
    """Started runtimes, stopped (SIGTERM) at the end whatever happens."""
    started: list[Runtime] = []
    yield started
    for runtime in started:
        if runtime.proc.poll() is None:
            runtime.stop()


def invoke(runtime: Runtime, x: float) -> float:
    body = json.dumps({"x": [x]}).encode()
    response = runtime.client("sagemaker-runtime").invoke_endpoint(
        EndpointName="persist", Body=body, ContentType="application/json"
    )
    return float(json.loads(response["Body"].read())["prediction"])


def start_long_job(runtime: Runtime, name: str) -> None:
    """Start a job that runs for minutes, and wait until its host is Training."""
    sm, s3 = runtime.client("sagemaker"), runtime.client("s3")
    artifacts, data = runtime.output("ArtifactBucketName"), runtime.output("DataBucketName")
    source = put_source(s3, artifacts, "code/tiny/sourcedir.tar.gz", tiny_files())
    s3.put_object(Bucket=data, Key="train/a.txt", Body=b"1")
    stack = Stack(data, artifacts, runtime.output("SageMakerExecutionRoleArn"))
    sm.create_training_job(**job_request(stack, name, source, f"s3://{data}/train", epochs="300", sleep="1"))
    wait_for(lambda: sm.describe_training_job(TrainingJobName=name)["SecondaryStatus"], lambda s: s == "Training")


def test_restart_serves_again_from_persisted_state(
    tmp_path: Path, s3: Any, trained: dict[str, Any], runtimes: list[Runtime]
) -> None:
    """After a SIGTERM stop the endpoint serves again without retraining and the running job ended Failed; after a
    SIGKILL crash every child died with the runtime, and the next start reports the lost job and serves again."""
    home, log = tmp_path / "home", tmp_path / "runtime.log"
    artifact = trained["ModelArtifacts"]["S3ModelArtifacts"].removeprefix("s3://").split("/", 1)
    model_tar = s3.get_object(Bucket=artifact[0], Key=artifact[1])["Body"].read()

    first = Runtime(home, log)
    runtimes.append(first)
    bucket = first.output("ArtifactBucketName")
    first.client("s3").put_object(Bucket=bucket, Key="m/model.tar.gz", Body=model_tar)
    sm = first.client("sagemaker")
    deploy(sm, first.output("SageMakerExecutionRoleArn"), "persist", f"s3://{bucket}/m/model.tar.gz")
    sm.create_endpoint(EndpointName="persist", EndpointConfigName="persist")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="persist", WaiterConfig=WAIT)
    assert invoke(first, 2) == pytest.approx(2 * 0.5 + 12.0)
    start_long_job(first, "interrupted")
    first.stop(signal.SIGTERM)
    assert processes_under(home) == []

    second = Runtime(home, log)
    runtimes.append(second)
    sm = second.client("sagemaker")
    interrupted = sm.describe_training_job(TrainingJobName="interrupted")
    assert interrupted["TrainingJobStatus"] == "Failed"
    assert "local runtime was shut down" in interrupted["FailureReason"]
    assert sm.describe_endpoint(EndpointName="persist")["EndpointStatus"] in ("SystemUpdating", "InService")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="persist", WaiterConfig=WAIT)
    assert invoke(second, 2) == pytest.approx(2 * 0.5 + 12.0)
    assert [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]] == ["persist"]

    start_long_job(second, "lost")
    assert processes_under(home)  # the job's host and the endpoint's instance run
    second.stop(signal.SIGKILL)
    wait_for(lambda: processes_under(home), lambda pids: pids == [], timeout=15)  # PDEATHSIG took them down

    third = Runtime(home, log)
    runtimes.append(third)
    sm = third.client("sagemaker")
    lost = sm.describe_training_job(TrainingJobName="lost")
    assert lost["TrainingJobStatus"] == "Failed"
    assert "host processes were lost" in lost["FailureReason"]
    sm.get_waiter("endpoint_in_service").wait(EndpointName="persist", WaiterConfig=WAIT)
    assert invoke(third, 4) == pytest.approx(4 * 0.5 + 12.0)
    third.stop(signal.SIGTERM)
    assert processes_under(home) == []
