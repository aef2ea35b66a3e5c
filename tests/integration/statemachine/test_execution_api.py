"""The Step Functions API of the local AWS as users call it: the real awscli and boto3 against the deployed machine.

Names, listing and history paging follow the Step Functions API reference: StartExecution without ``name`` gets a
UUID; ListExecutions and GetExecutionHistory page with ``maxResults``/``nextToken`` (and ``reverseOrder``); a name
already used by a closed execution is refused with ExecutionAlreadyExists. Every execution here fails fast in input
validation, so no training job runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.statemachine.sfn_helpers import Stack, history, history_pages, sfn_event, start, states, wait

AWS_CLI = Path(sys.executable).with_name("aws")
Cli = Callable[..., Any]


def invalid(stack: Stack) -> dict[str, Any]:
    """An input the ASL rejects at the end of ValidateInput (a gate above 1): the execution ends in a second."""
    return {**sfn_event("local_small", stack), "Gate": {"MinTestAccuracy": 70}}


@pytest.fixture(scope="module")
def aws_cli(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """Run the real awscli against the local AWS with the runtime's credentials; the user's config cannot leak in."""
    home = tmp_path_factory.mktemp("awscli-home")
    (home / "config").write_text("")
    (home / "credentials").write_text("")
    creds = stack.aws.runtime.credentials
    assert creds is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {
        "AWS_ACCESS_KEY_ID": creds.access_key_id, "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": str(home / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"), "AWS_MAX_ATTEMPTS": "1", "HOME": str(home),
    }  # fmt: skip

    def cli(*args: str) -> Any:
        cmd = [str(AWS_CLI), "--endpoint-url", stack.aws.url, "--output", "json", *args]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
        return json.loads(done.stdout) if done.stdout.strip() else None

    return cli


def test_start_execution_without_name_gets_a_uuid_name(stack: Stack, aws_cli: Cli) -> None:
    """``aws stepfunctions start-execution`` without ``--name``: each execution gets its own UUID name and runs."""
    payload = json.dumps(invalid(stack))
    arns = [
        aws_cli("stepfunctions", "start-execution", "--state-machine-arn", stack.machine_arn, "--input", payload)[
            "executionArn"
        ]
        for _ in range(2)
    ]

    assert arns[0] != arns[1]
    names = [arn.rsplit(":", 1)[1] for arn in arns]
    for arn, name in zip(arns, names, strict=True):
        assert str(uuid.UUID(name)) == name  # the canonical 36-character form, not "None" or a suffix
        assert arn == f"{stack.machine_arn.replace(':stateMachine:', ':execution:')}:{name}"
        record = wait(stack.sfn, arn)
        assert (record.name, record.status, record.error) == (name, "FAILED", "InvalidInput"), record.why
        assert "CreateTrainingJob" not in states(history(stack.sfn, arn))
    described = aws_cli("stepfunctions", "describe-execution", "--execution-arn", arns[1])
    assert (described["name"], described["status"]) == (names[1], "FAILED")
    listed = {e["executionArn"] for e in stack.sfn.list_executions(stateMachineArn=stack.machine_arn)["executions"]}
    assert set(arns) <= listed


def test_list_executions_pages_with_max_results(stack: Stack, aws_cli: Cli) -> None:
    """ListExecutions pages: maxResults caps each page, nextToken walks them all, nothing repeats or goes missing."""
    tag = uuid.uuid4().hex[:8]
    mine = [start(stack.sfn, stack.machine_arn, invalid(stack), f"page-{tag}-{i}") for i in range(3)]
    for arn in mine:
        assert wait(stack.sfn, arn).status == "FAILED"

    pages: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"stateMachineArn": stack.machine_arn, "maxResults": 2}
    while True:
        answer = stack.sfn.list_executions(**kwargs)
        pages.append(answer)
        if not answer.get("nextToken"):
            break
        kwargs["nextToken"] = answer["nextToken"]
    paged = [e["executionArn"] for page in pages for e in page["executions"]]
    listing = stack.sfn.list_executions(stateMachineArn=stack.machine_arn, maxResults=1000)
    whole = [e["executionArn"] for e in listing["executions"]]

    assert len(pages) >= 2 and all(len(p["executions"]) == 2 for p in pages[:-1]) and len(pages[-1]["executions"]) <= 2
    assert paged == whole and len(set(paged)) == len(paged)
    assert set(mine) <= set(paged)
    # The awscli's paginator follows the same tokens, two at a time.
    by_cli = aws_cli("stepfunctions", "list-executions", "--state-machine-arn", stack.machine_arn, "--page-size", "2")
    assert [e["executionArn"] for e in by_cli["executions"]] == whole
    first = aws_cli("stepfunctions", "list-executions", "--state-machine-arn", stack.machine_arn, "--max-items", "2")
    assert [e["executionArn"] for e in first["executions"]] == whole[:2] and first.get("NextToken")
    failed = stack.sfn.list_executions(stateMachineArn=stack.machine_arn, statusFilter="FAILED", maxResults=1000)
    assert set(mine) <= {e["executionArn"] for e in failed["executions"]}
    succeeded = stack.sfn.list_executions(stateMachineArn=stack.machine_arn, statusFilter="SUCCEEDED", maxResults=1000)
    assert not set(mine) & {e["executionArn"] for e in succeeded["executions"]}


def test_execution_history_pages_of_five_and_reverse_order(stack: Stack, aws_cli: Cli) -> None:
    """GetExecutionHistory with maxResults=5 pages through every event; reverseOrder gives them newest first."""
    arn = start(stack.sfn, stack.machine_arn, invalid(stack), f"history-{uuid.uuid4().hex[:8]}")
    assert wait(stack.sfn, arn).status == "FAILED"
    whole = stack.sfn.get_execution_history(executionArn=arn, maxResults=1000)
    events = whole["events"]
    assert "nextToken" not in whole and len(events) > 10
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert (events[0]["type"], events[-1]["type"]) == ("ExecutionStarted", "ExecutionFailed")

    pages = list(history_pages(stack.sfn, arn, page=5))
    assert all(len(p["events"]) == 5 and p.get("nextToken") for p in pages[:-1])
    assert 1 <= len(pages[-1]["events"]) <= 5 and "nextToken" not in pages[-1]
    assert [e for p in pages for e in p["events"]] == events
    backwards = list(history_pages(stack.sfn, arn, page=5, reverse=True))
    assert [e for p in backwards for e in p["events"]] == events[::-1]
    assert backwards[0]["events"][0]["type"] == "ExecutionFailed"
    # The default page is 100 events (API reference): this history fits in one.
    assert stack.sfn.get_execution_history(executionArn=arn)["events"] == events
    # includeExecutionData=false drops inputs and outputs, keeps the events.
    lean = stack.sfn.get_execution_history(executionArn=arn, maxResults=1000, includeExecutionData=False)["events"]
    assert [e["id"] for e in lean] == [e["id"] for e in events]
    assert "input" in events[0]["executionStartedEventDetails"]
    assert "input" not in lean[0]["executionStartedEventDetails"]
    # The awscli pages five at a time and returns the whole history, newest first with --reverse-order.
    by_cli = aws_cli("stepfunctions", "get-execution-history", "--execution-arn", arn, "--page-size", "5",
                     "--reverse-order")  # fmt: skip
    assert [e["id"] for e in by_cli["events"]] == [e["id"] for e in events[::-1]]


def test_history_rejects_a_token_it_did_not_issue(stack: Stack) -> None:
    """A nextToken the service never issued is refused with InvalidToken, as Step Functions does."""
    arn = start(stack.sfn, stack.machine_arn, invalid(stack), f"token-{uuid.uuid4().hex[:8]}")
    wait(stack.sfn, arn)
    with pytest.raises(ClientError) as caught:
        stack.sfn.get_execution_history(executionArn=arn, maxResults=5, nextToken="not-a-token")
    assert caught.value.response["Error"]["Code"] == "InvalidToken"


def test_name_of_a_closed_execution_is_refused(stack: Stack) -> None:
    """StartExecution with the name of a closed execution fails ExecutionAlreadyExists (even with the same input)."""
    name = f"once-{uuid.uuid4().hex[:8]}"
    payload = invalid(stack)
    arn = start(stack.sfn, stack.machine_arn, payload, name)
    assert wait(stack.sfn, arn).status == "FAILED"

    with pytest.raises(ClientError) as caught:
        start(stack.sfn, stack.machine_arn, payload, name)
    assert caught.value.response["Error"]["Code"] == "ExecutionAlreadyExists"
    runs = [e for e in stack.sfn.list_executions(stateMachineArn=stack.machine_arn)["executions"] if e["name"] == name]
    assert [e["executionArn"] for e in runs] == [arn]
