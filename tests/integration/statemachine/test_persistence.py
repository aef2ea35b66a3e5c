"""Execution records survive a restart of the local AWS; an execution a crash interrupted reads back ABORTED.

Real restarts need separate processes (moto is process-global), so each runtime here is ``python -m ops up --serve``
in a subprocess on one home dir: the first trains and serves the demo model, runs one execution to its end and is
SIGKILLed while a second execution waits on a real training job; a fresh runtime then starts on the same home. Every
check goes through the new process's APIs (Step Functions, SageMaker, SageMaker Runtime), plus ``/proc`` for what
the dead process left behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local_aws.constants import REGION, REPO_ROOT
from local_aws.processes import TAG_ENV
from tests.integration.statemachine.sfn_helpers import (
    Execution,
    describe,
    history,
    load_input,
    predict_version,
    quick_input,
    start,
    states,
    wait,
)

# The demo recipe, cut down: 40 images per class, one epoch, a gate any model passes.
UP_ARGS = ("--epochs", "1", "--per-class", "40", "--min-test-accuracy", "0")
START_TIMEOUT = 600.0
STOP_TIMEOUT = 60.0
GONE_TIMEOUT = 15.0
RECORDER_INTERVAL_S = 1.0  # ExecutionRecorder's default interval


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in (b"Z", b"X")


def _start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (tells a recycled pid from the original)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def tagged_processes(tags: set[str]) -> list[tuple[int, str]]:
    """(pid, command line) of every live process whose environment carries one of these process tags."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        values = {e.split(b"=", 1)[1].decode(errors="replace") for e in environ if e.startswith(f"{TAG_ENV}=".encode())}
        if values & tags and _alive(int(entry.name)):
            found.append((int(entry.name), cmdline.strip()))
    return found


def child_records(home: Path) -> list[dict[str, Any]]:
    """The children a runtime recorded in ``<home>/processes.json`` (empty when there is none)."""
    try:
        return list(json.loads((home / "processes.json").read_text())["processes"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return []


@dataclass
class Runtime:
    """One ``python -m ops up --serve`` process on a home dir, and clients on the AWS endpoint it serves."""

    home: Path
    proc: subprocess.Popen[bytes]
    log: Path
    doc: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def start(cls, home: Path, log: Path) -> Runtime:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
        cmd = [sys.executable, "-m", "ops", "--home", str(home), "up", "--serve", "--aws-port", "0",
               "--api-port", "0", *UP_ARGS]  # fmt: skip
        with log.open("wb") as out:
            proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        return cls(home, proc, log)

    def output_text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_serving(self, timeout: float = START_TIMEOUT) -> Runtime:
        """Wait until ``up`` says it serves (its demo predictions passed); then read runtime.json."""
        deadline = time.monotonic() + timeout
        while "serving; from another shell" not in self.output_text():
            assert self.proc.poll() is None, f"ops up exited {self.proc.returncode}:\n{self.output_text()[-4000:]}"
            assert time.monotonic() < deadline, f"ops up not serving after {timeout:g} s:\n{self.output_text()[-4000:]}"
            time.sleep(0.5)
        self.doc = json.loads((self.home / "runtime.json").read_text())
        assert self.doc["pid"] == self.proc.pid
        return self

    def client(self, service: str) -> Any:
        creds = json.loads((self.home / "credentials.json").read_text())
        session = boto3.session.Session(
            aws_access_key_id=creds["access_key_id"],
            aws_secret_access_key=creds["secret_access_key"],
            aws_session_token=None,
            region_name=REGION,
        )
        config = Config(retries={"max_attempts": 1, "mode": "standard"})
        return session.client(service, endpoint_url=self.doc["aws_url"], config=config)

    def outputs(self) -> dict[str, str]:
        stacks = self.client("cloudformation").describe_stacks(StackName=self.doc["stack"])["Stacks"]
        return {o["OutputKey"]: o["OutputValue"] for o in stacks[0]["Outputs"]}

    def kill(self, sig: int) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=STOP_TIMEOUT)


@dataclass
class Restart:
    """What happened around the SIGKILL, and the second runtime that now serves the same home."""

    second: Runtime
    outputs: dict[str, str]
    demo: Execution
    persisted: Execution
    persisted_history: list[dict[str, Any]]
    interrupted_arn: str
    interrupted_history: list[dict[str, Any]]
    interrupted_job: str
    first_pid: int
    children_before_kill: list[dict[str, Any]]
    tagged_before_kill: list[tuple[int, str]]
    leftovers: list[tuple[int, str]]
    endpoint_config: str
    model_version: str
    training_jobs: set[str]
    image: bytes


def _wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _training_jobs(sm: Any) -> set[str]:
    names: set[str] = set()
    for page in sm.get_paginator("list_training_jobs").paginate():
        names.update(j["TrainingJobName"] for j in page["TrainingJobSummaries"])
    return names


@pytest.fixture(scope="module")
def restart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Restart]:
    """Run the whole scenario once: serve, finish one execution, SIGKILL mid-training, restart on the same home."""
    home = tmp_path_factory.mktemp("persist-home")
    logs = tmp_path_factory.mktemp("persist-logs")
    first = Runtime.start(home, logs / "first.log")
    second: Runtime | None = None
    try:
        first.wait_serving()
        sfn, sm, outputs = first.client("stepfunctions"), first.client("sagemaker"), first.outputs()
        machine = outputs["StateMachineArn"]
        (demo_item,) = sfn.list_executions(stateMachineArn=machine)["executions"]
        demo = describe(sfn, demo_item["executionArn"])
        assert demo.status == "SUCCEEDED", demo.why
        # The demo uploaded its dataset and training code through S3; the executions here reuse them.
        demo_input = json.loads(demo.describe["input"])
        data, source = demo_input["TrainingData"], demo_input["SourceDir"]
        bucket, _, prefix = data.removeprefix("s3://").partition("/")
        s3 = first.client("s3")
        listing = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}test/")["Contents"]
        image = s3.get_object(Bucket=bucket, Key=next(o["Key"] for o in listing if o["Key"].endswith(".jpg")))[
            "Body"
        ].read()
        endpoint = sm.describe_endpoint(EndpointName=outputs["EndpointName"])
        assert endpoint["EndpointStatus"] == "InService"
        model_version = predict_version(first.client("sagemaker-runtime"), outputs["EndpointName"], image)

        # A real two-step training job that the gate rejects: a full run through SageMaker, cheap on CPU.
        persisted = wait(sfn, start(sfn, machine, quick_input(data, source, gate=0.5), "persisted"))
        persisted_history = history(sfn, persisted.arn)

        # A job far longer than the test (100 epochs, no early stop), polled every 30 s: the execution sits in
        # WaitForTraining while the job's host runs, and the SIGKILL comes seconds into it.
        slow = load_input("local_small", data, source)
        slow["Hyperparameters"].update(epochs="100", patience="0")
        slow["Polling"] = {"IntervalSeconds": 30, "MaxAttempts": 5}
        interrupted_arn = start(sfn, machine, slow, "interrupted")
        interrupted_job = f"{outputs['ResourcePrefix']}-{_md5('interrupted')}"
        _wait_for(lambda: "WaitForTraining" in states(history(sfn, interrupted_arn)), 60, "WaitForTraining")
        _wait_for(
            lambda: (
                sm.describe_training_job(TrainingJobName=interrupted_job)["SecondaryStatus"] == "Training"
                and any(r["kind"] == "training-host" and _alive(r["pid"]) for r in child_records(home))
            ),
            60,
            "a running training host",
        )
        # The recorder copies a running execution to disk once a second (executions.py): let it catch up, so what
        # the API shows now is what the record holds when the process dies (the next poll is 30 s away).
        time.sleep(3 * RECORDER_INTERVAL_S)
        assert describe(sfn, interrupted_arn).status == "RUNNING"
        interrupted_history = history(sfn, interrupted_arn)
        training_jobs = _training_jobs(sm)
        children = child_records(home)
        tags = {r["tag"] for r in children}
        tagged = tagged_processes(tags)

        assert first.kill(signal.SIGKILL) == -signal.SIGKILL
        deadline = time.monotonic() + GONE_TIMEOUT
        while True:
            recorded = [(r["pid"], r["argv"][0]) for r in children
                        if _alive(r["pid"]) and _start_time(r["pid"]) == r["start_time"]]  # fmt: skip
            leftovers = sorted(set(tagged_processes(tags)) | {(pid, str(argv)) for pid, argv in recorded})
            if not leftovers or time.monotonic() > deadline:
                break
            time.sleep(0.2)

        second = Runtime.start(home, logs / "second.log").wait_serving()
        yield Restart(
            second=second,
            outputs=second.outputs(),
            demo=demo,
            persisted=persisted,
            persisted_history=persisted_history,
            interrupted_arn=interrupted_arn,
            interrupted_history=interrupted_history,
            interrupted_job=interrupted_job,
            first_pid=first.proc.pid,
            children_before_kill=children,
            tagged_before_kill=tagged,
            leftovers=leftovers,
            endpoint_config=endpoint["EndpointConfigName"],
            model_version=model_version,
            training_jobs=training_jobs,
            image=image,
        )
    finally:
        for runtime in (second, first):
            if runtime is not None and runtime.proc.poll() is None:
                runtime.kill(signal.SIGTERM)


@pytest.mark.slow
def test_sigkill_leaves_no_process_of_the_dead_runtime(restart: Restart) -> None:
    """After SIGKILL, no training host or endpoint instance of the dead runtime is left running."""
    kinds = {r["kind"] for r in restart.children_before_kill}
    assert {"training-host", "endpoint-instance"} <= kinds  # both ran when it was killed: the check can fail
    assert len(restart.tagged_before_kill) >= 2
    assert restart.leftovers == []


@pytest.mark.slow
def test_finished_execution_reads_back_after_restart(restart: Restart) -> None:
    """An execution that ended before the restart is described, listed and replayed identically by the new process."""
    sfn, sm = restart.second.client("stepfunctions"), restart.second.client("sagemaker")
    live = restart.persisted
    assert (live.status, live.error) == ("FAILED", "GateRejected"), live.why

    record = describe(sfn, live.arn)
    assert (record.name, record.status, record.error, record.cause) == ("persisted", "FAILED", "GateRejected",
                                                                       live.cause)  # fmt: skip
    for key in ("input", "startDate", "stopDate", "stateMachineArn"):
        assert record.describe[key] == live.describe[key], key
    events = history(sfn, live.arn)
    assert events == restart.persisted_history
    entered = states(events)
    assert entered.index("DescribeTraining") < entered.index("BelowThreshold") < entered.index("Failed")
    job = f"{restart.outputs['ResourcePrefix']}-{_md5('persisted')}"
    assert record.cause is not None and job in record.cause
    assert sm.describe_training_job(TrainingJobName=job)["TrainingJobStatus"] == "Completed"
    demo = describe(sfn, restart.demo.arn)
    assert (demo.status, demo.output) == ("SUCCEEDED", restart.demo.output)


@pytest.mark.slow
def test_interrupted_execution_is_aborted_after_restart(restart: Restart) -> None:
    """An execution the SIGKILL interrupted reads back ABORTED (LocalRuntime.Stopped) with an ExecutionAborted event."""
    sfn, sm = restart.second.client("stepfunctions"), restart.second.client("sagemaker")
    record = describe(sfn, restart.interrupted_arn)

    assert (record.status, record.error) == ("ABORTED", "LocalRuntime.Stopped"), record.why
    assert record.cause is not None and f"pid {restart.first_pid}" in record.cause
    assert record.describe["stopDate"] >= record.describe["startDate"]
    events = history(sfn, restart.interrupted_arn)
    assert events[-1]["type"] == "ExecutionAborted"
    assert events[-1]["executionAbortedEventDetails"] == {"error": "LocalRuntime.Stopped", "cause": record.cause}
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert "WaitForTraining" in states(events)
    # What was recorded before the kill is kept as it was; only the abort is added.
    assert events[: len(restart.interrupted_history)] == restart.interrupted_history
    aborted = sfn.list_executions(stateMachineArn=restart.outputs["StateMachineArn"], statusFilter="ABORTED")
    assert [e["executionArn"] for e in aborted["executions"]] == [restart.interrupted_arn]
    # Its training job lost its host with the process: it ends Failed, not InProgress forever.
    job = sm.describe_training_job(TrainingJobName=restart.interrupted_job)
    assert job["TrainingJobStatus"] == "Failed" and job["FailureReason"]


@pytest.mark.slow
def test_listing_after_restart_holds_every_recorded_execution(restart: Restart) -> None:
    """ListExecutions of the new process holds the executions of the dead one, with their final statuses."""
    sfn = restart.second.client("stepfunctions")
    listed = sfn.list_executions(stateMachineArn=restart.outputs["StateMachineArn"])["executions"]
    assert {e["name"]: e["status"] for e in listed} == {
        restart.demo.name: "SUCCEEDED", "persisted": "FAILED", "interrupted": "ABORTED",
    }  # fmt: skip


@pytest.mark.slow
def test_names_used_before_the_restart_are_refused(restart: Restart) -> None:
    """StartExecution with a name recorded before the restart fails ExecutionAlreadyExists; a new name runs."""
    sfn = restart.second.client("stepfunctions")
    machine = restart.outputs["StateMachineArn"]
    payload = json.loads(restart.persisted.describe["input"])
    for name in ("persisted", "interrupted", restart.demo.name):
        with pytest.raises(ClientError) as caught:
            start(sfn, machine, payload, name)
        assert caught.value.response["Error"]["Code"] == "ExecutionAlreadyExists", name
    assert describe(sfn, restart.persisted.arn).describe["input"] == restart.persisted.describe["input"]
    fresh = wait(sfn, start(sfn, machine, {**payload, "Gate": {"MinTestAccuracy": 70}}, "after-restart"))
    assert (fresh.status, fresh.error) == ("FAILED", "InvalidInput"), fresh.why


@pytest.mark.slow
def test_restarted_runtime_serves_the_persisted_endpoint_without_retraining(restart: Restart) -> None:
    """The new process brings the endpoint back InService from its persisted model: same model, no new job."""
    second = restart.second
    assert "again (restored, no retraining)" in second.output_text()
    sm = second.client("sagemaker")
    endpoint = sm.describe_endpoint(EndpointName=restart.outputs["EndpointName"])
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", restart.endpoint_config)
    runtime = second.client("sagemaker-runtime")
    assert predict_version(runtime, restart.outputs["EndpointName"], restart.image) == restart.model_version
    assert _training_jobs(sm) == restart.training_jobs


@pytest.mark.slow
def test_sigterm_stops_the_restarted_runtime_in_order(restart: Restart) -> None:
    """SIGTERM stops the runtime cleanly: exit 0, runtime.json removed, none of its children left."""
    second = restart.second
    tags = {r["tag"] for r in child_records(second.home)}
    assert tags and tagged_processes(tags)  # its endpoint instance runs now

    assert second.kill(signal.SIGTERM) == 0, second.output_text()[-4000:]
    assert not (second.home / "runtime.json").exists()
    assert tagged_processes(tags) == []
