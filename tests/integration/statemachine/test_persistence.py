"""Execution records survive a restart of the local Step Functions (SageMaker: the real local server)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import pytest
from sfn_fixtures import SUBSTITUTIONS, TIMEOUT, quick

from local_runtime.sagemaker.server import SageMakerServer
from local_runtime.stepfunctions import LocalStepFunctions


@pytest.mark.slow
def test_executions_persist_across_restart(tmp_path: Path, sagemaker: SageMakerServer, sm: Any) -> None:
    # A real two-step training job that the gate rejects: a full run through SageMaker, cheap on CPU.
    with LocalStepFunctions(tmp_path, sagemaker.url, substitutions=SUBSTITUTIONS) as first:
        arn = first.start_execution(quick(gate=0.5), name="persisted")
        live = first.wait(arn, timeout=TIMEOUT)
        live_history = first.history(arn)
    with LocalStepFunctions(tmp_path, sagemaker.url, substitutions=SUBSTITUTIONS) as second:
        (record,) = second.list_executions()
        assert (record["name"], record["status"], record["error"]) == ("persisted", "FAILED", "GateRejected")
        assert record["cause"] == live["cause"]
        assert second.describe(arn)["status"] == "FAILED"
        history = second.history(arn)
    assert history == live_history
    entered = [e["state"] for e in history if e["type"].endswith("StateEntered")]
    assert entered.index("DescribeTraining") < entered.index("BelowThreshold") < entered.index("Failed")
    job = f"{SUBSTITUTIONS['ResourcePrefix']}-{hashlib.md5(b'persisted').hexdigest()}"
    assert job in record["cause"]
    assert sm.describe_training_job(TrainingJobName=job)["TrainingJobStatus"] == "Completed"


@pytest.mark.slow
def test_running_execution_is_reported_aborted_after_restart(
    tmp_path: Path, sagemaker: SageMakerServer, sm: Any
) -> None:
    slow = {**quick(gate=0.5), "Polling": {"IntervalSeconds": 30, "MaxAttempts": 5}}
    job = f"{SUBSTITUTIONS['ResourcePrefix']}-{hashlib.md5(b'interrupted').hexdigest()}"
    with LocalStepFunctions(tmp_path, sagemaker.url, substitutions=SUBSTITUTIONS) as first:
        arn = first.start_execution(slow, name="interrupted")
        deadline = time.monotonic() + 30
        # Stop while it waits on a real training job, mid-execution.
        while not any(e.get("state") == "WaitForTraining" for e in first.history(arn)):
            assert time.monotonic() < deadline, first.history(arn)
            time.sleep(0.2)
        assert first.describe(arn)["status"] == "RUNNING"
    try:
        with LocalStepFunctions(tmp_path, sagemaker.url, substitutions=SUBSTITUTIONS) as second:
            record = second.describe(arn)
        assert record["status"] == "ABORTED" and record["error"] == "LocalRuntimeStopped"
    finally:
        sm.stop_training_job(TrainingJobName=job)  # free the CPU: nothing will ever read this job's result
