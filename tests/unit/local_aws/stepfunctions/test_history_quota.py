"""local_aws.stepfunctions.history_quota: an execution that passes the history quota fails as Step Functions fails it.

Tiny machines run in moto's real interpreter, in-process. The quota is lowered on ``local_aws.constants`` so each run
takes a second; the event that would pass it, the error, the cause and the count are the ones AWS documents for
25,000 (aws-failure-behaviours.md §7). One run at the real 25,000 took 118 s here (scripts in the report).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import botocore.loaders
import pytest
from moto.stepfunctions.parser.api import HistoryEventType

from local_aws import constants
from local_aws.moto_services import MotoServices
from local_aws.stepfunctions import interpreter

ROLE = "arn:aws:iam::123456789012:role/quota-test"
COUNT_LOOP = {
    "StartAt": "Count",
    "States": {
        "Count": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)"}, "Next": "More"},
        "More": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.n", "NumericLessThan": 1_000_000, "Next": "Count"}],
            "Default": "Done",
        },
        "Done": {"Type": "Succeed"},
    },
}


@pytest.fixture(scope="module")
def moto() -> MotoServices:
    services = MotoServices()
    interpreter.apply()
    return services


def _run(moto: MotoServices, definition: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    def call(op: str, params: dict[str, Any]) -> dict[str, Any]:
        return moto.call_json("states", f"AWSStepFunctions.{op}", params)

    name = f"q-{uuid.uuid4().hex[:8]}"
    machine = call("CreateStateMachine", {"name": name, "definition": json.dumps(definition), "roleArn": ROLE})
    arn = call("StartExecution", {"stateMachineArn": machine["stateMachineArn"], "input": '{"n": 0}'})["executionArn"]
    deadline = time.monotonic() + 60
    while (described := call("DescribeExecution", {"executionArn": arn}))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution never ended"
        time.sleep(0.05)
    time.sleep(0.2)  # nothing may be written after the end
    return described, call("GetExecutionHistory", {"executionArn": arn})["events"]


def _assert_failed_at_quota(described: dict[str, Any], events: list[dict[str, Any]], limit: int) -> None:
    cause = f"The execution reached the maximum number of history events ({limit})."
    assert (described["status"], described["error"], described["cause"]) == ("FAILED", "States.Runtime", cause)
    assert len(events) == limit
    last = events[-1]
    assert (last["id"], last["previousEventId"], last["type"]) == (limit, limit - 1, "ExecutionFailed")
    assert last["executionFailedEventDetails"] == {"error": "States.Runtime", "cause": cause}


def test_the_quota_is_aws_25000() -> None:
    assert constants.SFN_HISTORY_MAX_EVENTS == 25_000


def test_a_looping_execution_fails_on_the_event_that_reaches_the_quota(
    moto: MotoServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(constants, "SFN_HISTORY_MAX_EVENTS", 301)
    described, events = _run(moto, COUNT_LOOP)
    _assert_failed_at_quota(described, events, 301)
    # Counted as Step Functions counts: Pass and Choice write Entered + Exited each, 4 events per turn.
    turn = ["PassStateEntered", "PassStateExited", "ChoiceStateEntered", "ChoiceStateExited"]
    assert [e["type"] for e in events[1:5]] == turn


def test_an_execution_whose_last_event_is_exactly_the_quota_succeeds(
    moto: MotoServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ExecutionStarted, PassStateEntered, PassStateExited, ExecutionSucceeded: 4 events fit a quota of 4, not 3."""
    one_pass = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    monkeypatch.setattr(constants, "SFN_HISTORY_MAX_EVENTS", 4)
    described, events = _run(moto, one_pass)
    assert described["status"] == "SUCCEEDED" and [e["id"] for e in events] == [1, 2, 3, 4]
    monkeypatch.setattr(constants, "SFN_HISTORY_MAX_EVENTS", 3)
    described, events = _run(moto, one_pass)
    _assert_failed_at_quota(described, events, 3)


def test_no_catch_sees_the_quota(moto: MotoServices, monkeypatch: pytest.MonkeyPatch) -> None:
    """The loop inside a Parallel branch with Catch States.ALL: the execution still fails with States.Runtime."""
    guarded = {
        "StartAt": "Guard",
        "States": {
            "Guard": {
                "Type": "Parallel",
                "Branches": [COUNT_LOOP],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Succeed"},
        },
    }
    monkeypatch.setattr(constants, "SFN_HISTORY_MAX_EVENTS", 203)
    described, events = _run(moto, guarded)
    _assert_failed_at_quota(described, events, 203)
    assert "ParallelStateFailed" not in {e["type"] for e in events}


def test_every_event_type_moto_writes_is_a_step_functions_history_event_type() -> None:
    """moto's HistoryEventType values are the model's HistoryEventType enum: the counted events are AWS's."""
    model = botocore.loaders.create_loader().load_service_model("stepfunctions", "service-2")
    aws_types = set(model["shapes"]["HistoryEventType"]["enum"])
    assert {t.value for t in HistoryEventType} <= aws_types
