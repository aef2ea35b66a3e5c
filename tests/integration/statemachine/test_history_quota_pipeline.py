"""The pipeline against the execution-history quota: a polling loop that does not budget its events fails with
Step Functions' own error, States.Runtime, at the quota, and no Catch of the ASL sees it.

The break is made on purpose: the quota is lowered (on ``local_aws.constants``, read at every event) below what the
ASL's poll budget allows (2000 turns of 11 events), and 1 s polls run at ``LOCAL_AWS_TIME_SCALE`` 50, so the loop
reaches it while the training job still runs, in seconds instead of hours. What happens at the quota is what AWS
documents for 25,000.
"""

from __future__ import annotations

import contextlib
import uuid

import pytest
from botocore.exceptions import ClientError

from local_aws import constants
from tests.integration.statemachine.sfn_helpers import Stack, history, quick, run, states

QUOTA = 400


def test_an_unbudgeted_poll_loop_fails_at_the_quota(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(constants, "SFN_HISTORY_MAX_EVENTS", QUOTA)
    monkeypatch.setenv("LOCAL_AWS_TIME_SCALE", "50")  # a 1 s poll lasts 20 ms; training runs at its own pace
    payload = quick(stack, gate=0.0)
    payload["Hyperparameters"] = {**payload["Hyperparameters"], "epochs": "3", "max-steps": "200"}
    payload["Polling"] = {"IntervalSeconds": 1, "MaxIntervalSeconds": 1, "MaxAttempts": 2000}
    name = f"quota-{uuid.uuid4().hex[:8]}"
    try:
        record = run(stack, payload, name)
        events = history(stack.sfn, record.arn)
    finally:
        # States.Runtime skips the ASL's Cleanup, on AWS as here: the job is left running; stop it.
        with contextlib.suppress(ClientError):
            stack.sm.stop_training_job(TrainingJobName=stack.job_name(name))
    cause = f"The execution reached the maximum number of history events ({QUOTA})."
    assert (record.status, record.error, record.cause) == ("FAILED", "States.Runtime", cause)
    assert len(events) == QUOTA and events[-1]["type"] == "ExecutionFailed"
    assert events[-1]["executionFailedEventDetails"] == {"error": "States.Runtime", "cause": cause}
    entered = states(events)
    assert entered.count("DescribeTraining") > 10, entered  # it was the training poll loop that filled the history
    assert not any(state.startswith("Cleanup") for state in entered), entered
