"""Start an execution of the stack's state machine and follow it to the end, on either target.

``HistoryReader`` reads an execution's history incrementally: each poll asks for the newest events first
(``reverseOrder``) and pages back only until it meets an event it has already seen, so a long execution costs one
small page per poll instead of its whole history (GetExecutionHistory has no "since event" parameter).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from local_aws.constants import EXECUTION_TERMINAL
from ops.target import OpsError, Target

PAGE = 100


def load_input(path: Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read an execution input file (docs/CONTRACTS.md §6) and apply top-level overrides.

    Raises:
        OpsError: missing file, invalid JSON, or not an object.
    """
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise OpsError(f"--input {path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise OpsError(f"--input {path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(doc, dict):
        raise OpsError(f"--input {path}: must hold a JSON object (docs/CONTRACTS.md §6), got {type(doc).__name__}")
    doc.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return doc


def start_execution(target: Target, execution_input: dict[str, Any], name: str | None = None) -> str:
    """StartExecution on the stack's state machine; returns the execution ARN."""
    args: dict[str, Any] = {"stateMachineArn": target.output("StateMachineArn"), "input": json.dumps(execution_input)}
    if name:
        args["name"] = name
    return str(target.client("stepfunctions").start_execution(**args)["executionArn"])


class HistoryReader:
    """The events of one execution not yet returned, oldest first."""

    def __init__(self, sfn: Any, execution_arn: str) -> None:
        self.sfn = sfn
        self.execution_arn = execution_arn
        self.last_id = 0
        self.pages_read = 0

    def new_events(self) -> list[dict[str, Any]]:
        fresh: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": self.execution_arn, "reverseOrder": True, "maxResults": PAGE}
        while True:
            page = self.sfn.get_execution_history(**kwargs)
            self.pages_read += 1
            done = False
            for event in page["events"]:
                if event["id"] <= self.last_id:
                    done = True
                    break
                fresh.append(event)
            if done or not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        fresh.reverse()
        if fresh:
            self.last_id = fresh[-1]["id"]
        return fresh


def event_details(event: dict[str, Any]) -> dict[str, Any]:
    return next((v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)), {})


def scheduled_resources(events: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(action, parameters) of each task the events scheduled, e.g. ``("createTrainingJob", {...})``."""
    for event in events:
        if event["type"] != "TaskScheduled":
            continue
        details = event_details(event)
        action = str(details.get("resource", "")).rsplit(":", 1)[-1]
        try:
            parameters = json.loads(details.get("parameters") or "{}")
        except ValueError:
            continue
        if isinstance(parameters, dict):
            yield action, parameters


def watch(
    target: Target,
    execution_arn: str,
    on_events: Callable[[list[dict[str, Any]]], None],
    on_poll: Callable[[], None] | None = None,
    *,
    poll_seconds: float,
    timeout: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll until the execution ends; ``on_events`` gets each batch of new events. Returns DescribeExecution.

    Raises:
        OpsError: the execution is still running after ``timeout`` seconds.
    """
    sfn = target.client("stepfunctions")
    reader = HistoryReader(sfn, execution_arn)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        description = sfn.describe_execution(executionArn=execution_arn)
        events = reader.new_events()
        if events:
            on_events(events)
        if on_poll is not None:
            on_poll()
        if description["status"] in EXECUTION_TERMINAL:
            return dict(description)
        if deadline is not None and time.monotonic() > deadline:
            raise OpsError(f"execution still {description['status']} after {timeout:.0f}s; see `status` and `logs`")
        sleep(poll_seconds)
