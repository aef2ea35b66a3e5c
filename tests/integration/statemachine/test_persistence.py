"""Execution records survive a restart of the local Step Functions."""

from __future__ import annotations

from pathlib import Path

from fake_sagemaker import FakeSageMakerServer
from sfn_fixtures import SUBSTITUTIONS, sfn_event

from local_runtime.stepfunctions import LocalStepFunctions

ENDPOINT = SUBSTITUTIONS["EndpointName"]
TIMEOUT = 60


def test_executions_persist_across_restart(tmp_path: Path, fake: FakeSageMakerServer) -> None:
    fake.state.metrics_for = lambda hps: {"valid:top1": 0.8, "test:top1": 0.8}
    with LocalStepFunctions(tmp_path, fake.url, substitutions=SUBSTITUTIONS) as first:
        arn = first.start_execution(sfn_event("local_small"), name="persisted")
        first.wait(arn, timeout=TIMEOUT)
    with LocalStepFunctions(tmp_path, fake.url, substitutions=SUBSTITUTIONS) as second:
        (record,) = second.list_executions()
        assert (record["name"], record["status"]) == ("persisted", "SUCCEEDED")
        assert record["output"]["EndpointName"] == ENDPOINT
        assert second.describe(arn)["status"] == "SUCCEEDED"
        assert any(e.get("state") == "CreateEndpoint" for e in second.history(arn))


def test_running_execution_is_reported_aborted_after_restart(tmp_path: Path, fake: FakeSageMakerServer) -> None:
    fake.state.metrics_for = lambda hps: {"valid:top1": 0.8, "test:top1": 0.8}
    slow = {**sfn_event("local_small"), "Polling": {"IntervalSeconds": 30, "MaxAttempts": 5}}
    with LocalStepFunctions(tmp_path, fake.url, substitutions=SUBSTITUTIONS) as first:
        arn = first.start_execution(slow, name="interrupted")
        assert first.describe(arn)["status"] == "RUNNING"
    with LocalStepFunctions(tmp_path, fake.url, substitutions=SUBSTITUTIONS) as second:
        record = second.describe(arn)
    assert record["status"] == "ABORTED" and record["error"] == "LocalRuntimeStopped"
