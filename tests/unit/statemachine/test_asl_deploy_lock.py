"""The deploy-lock states of the ASL, run for real in moto's interpreter against moto's DynamoDB (in-process).

The lock's states are cut out of the definition unchanged (StartDeployLock .. EndpointBusy, the release), wired to
stand-ins where the pipeline would go on (the lookup: release at once; Cleanup: fail), and executed with the lock
item in the state each case needs: free, owned by a RUNNING execution, owned by one that has ended.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local_aws.clock import ENV_TIME_SCALE
from local_aws.constants import ACCOUNT_ID, REGION
from local_aws.stepfunctions import interpreter

ASL_PATH = Path(__file__).resolve().parents[3] / "statemachine" / "train_and_deploy.asl.json"
PREFIX, ENDPOINT = "dogbreed-dev", "dogbreed-dev"
TABLE = f"{PREFIX}-deploy-lock"
ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/unit"
LOCK_STATES = (
    "StartDeployLock", "AcquireDeployLock", "ReadDeployLock", "DeployLockHeld", "DescribeLockOwner",
    "LockOwnerRunning", "TakeOverDeployLock", "SpendTakeOverPoll", "CountLockPoll", "WaitForDeployLock",
    "EndpointBusy", "ReleaseDeployLock",
)  # fmt: skip


def lock_machine() -> str:
    """The lock's states as one definition: acquire, then release and succeed; Cleanup becomes a failure."""
    text = ASL_PATH.read_text().replace("${ResourcePrefix}", PREFIX).replace("${EndpointName}", ENDPOINT)
    states = json.loads(text)["States"]
    cut = {name: copy.deepcopy(states[name]) for name in LOCK_STATES}
    cut["AcquireDeployLock"]["Next"] = "ReleaseDeployLock"  # in the pipeline: LookupEndpoint
    cut["ReleaseDeployLock"]["Next"] = "Released"
    for catch in cut["ReleaseDeployLock"]["Catch"]:
        catch["Next"] = "Released"
    for state in cut.values():
        if state.get("Next") == "Cleanup":
            state["Next"] = "Refused"
        for catch in state.get("Catch", []):
            if catch["Next"] == "Cleanup":
                catch["Next"] = "Broken"
    cut["Released"] = {"Type": "Succeed"}
    cut["Refused"] = {"Type": "Fail", "ErrorPath": "$.Error.Error", "CausePath": "$.Error.Cause"}
    cut["Broken"] = {"Type": "Fail", "Error": "Broken", "CausePath": "$.Error.Cause"}
    return json.dumps({"StartAt": "StartDeployLock", "States": cut})


def lock_input(budget: int) -> dict[str, Any]:
    return {
        "Poll": {"Remaining": budget, "Interval": 1, "Doubled": 2},
        "Config": {"Polling": {"IntervalSeconds": 1, "MaxIntervalSeconds": 60, "MaxAttempts": budget}},
        "Names": {"Base": f"{PREFIX}-job"},
    }


class Aws:
    def __init__(self) -> None:
        self.sfn = boto3.client("stepfunctions", region_name=REGION)
        self.ddb = boto3.client("dynamodb", region_name=REGION)
        self.ddb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "LockName", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "LockName", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        self.lock = self.sfn.create_state_machine(name="lock", definition=lock_machine(), roleArn=ROLE)[
            "stateMachineArn"
        ]
        holder = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 100000, "End": True}}}
        self.holder = self.sfn.create_state_machine(name="holder", definition=json.dumps(holder), roleArn=ROLE)[
            "stateMachineArn"
        ]

    def owner(self) -> str | None:
        item = self.ddb.get_item(TableName=TABLE, Key={"LockName": {"S": ENDPOINT}}, ConsistentRead=True)
        return item.get("Item", {}).get("Owner", {}).get("S")

    def hold(self) -> str:
        """A RUNNING execution that owns the lock."""
        arn = str(self.sfn.start_execution(stateMachineArn=self.holder)["executionArn"])
        self.ddb.put_item(TableName=TABLE, Item={"LockName": {"S": ENDPOINT}, "Owner": {"S": arn}})
        return arn

    def start(self, budget: int) -> str:
        return str(
            self.sfn.start_execution(stateMachineArn=self.lock, input=json.dumps(lock_input(budget)))["executionArn"]
        )

    def entered(self, arn: str) -> list[str]:
        events = self.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]

    def end(self, arn: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (doc := self.sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
            assert time.monotonic() < deadline, self.entered(arn)
            time.sleep(0.05)
        return dict(doc)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    monkeypatch.setenv(ENV_TIME_SCALE, "60")  # the lock's 60 s waits in 1 s
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    interpreter.apply()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield Aws()


def test_a_free_lock_is_taken_and_released(aws: Aws) -> None:
    arn = aws.start(budget=10)
    assert aws.end(arn)["status"] == "SUCCEEDED"
    assert aws.entered(arn) == ["StartDeployLock", "AcquireDeployLock", "ReleaseDeployLock", "Released"]
    assert aws.owner() is None


def test_a_running_owner_is_waited_for_then_a_finished_one_is_taken_over(aws: Aws) -> None:
    holder = aws.hold()
    arn = aws.start(budget=100)
    deadline = time.monotonic() + 20
    while aws.entered(arn).count("WaitForDeployLock") < 2:
        assert time.monotonic() < deadline, aws.entered(arn)
        time.sleep(0.05)
    assert aws.owner() == holder  # never overwritten while its owner runs
    aws.sfn.stop_execution(executionArn=holder)

    assert aws.end(arn)["status"] == "SUCCEEDED"
    order = aws.entered(arn)
    assert order.index("TakeOverDeployLock") < len(order) - order[::-1].index("AcquireDeployLock") - 1
    assert aws.owner() is None


def test_the_budget_runs_out_and_the_cause_names_the_owner(aws: Aws) -> None:
    holder = aws.hold()
    arn = aws.start(budget=7)  # two lock turns of 3 polls, then EndpointBusy
    doc = aws.end(arn)
    assert doc["status"] == "FAILED" and doc["error"] == "EndpointBusy", doc
    assert holder in doc["cause"] and "Polling.MaxAttempts=7" in doc["cause"]
    assert aws.entered(arn).count("WaitForDeployLock") == 2
    assert aws.owner() == holder
