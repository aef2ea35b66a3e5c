"""``make chaos`` (``python -m ops up --chaos``): the demo pipeline with AWS's failures injected, which must still end
SUCCEEDED with every prediction answered.

What is injected, through the local runtime's one fault file (``$LOCAL_RUNTIME_HOME/config.toml``, see
local_aws/chaos.py), and what the pipeline must do about it:

- **SageMaker API throttling** on the status reads the ASL's wait loops make: the ASL goes back to its wait;
- **a spot interruption** of the training job (managed spot, checkpointed): SageMaker restarts it and train.py
  resumes from its checkpoint, billed for less than it trained;
- **an endpoint instance killed** (SIGKILL of its process group) after its 3rd answer, on an endpoint of 2
  instances: requests go to the other instance while the health monitor replaces the dead one.

The summary reads back what happened through the same APIs a user has (execution history, DescribeTrainingJob).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from local_aws.chaos import CONFIG_NAME
from local_aws.constants import TRAINING_LOG_GROUP
from ops.executions import HistoryReader, event_details
from ops.target import Target

CONFIG = """\
# Written by `python -m ops up --chaos` (make chaos); delete this file to turn every fault off.
[chaos.throttle]
operations = ["DescribeTrainingJob", "DescribeEndpoint", "DescribeEndpointConfig", "ListTags"]
burst = 2
rate = 0.2
seed = 7

[chaos.spot]
after_seconds = 5
times = 1
capacity_wait_seconds = 5

[chaos.endpoint]
kill_after_invocations = 3
times = 1
"""
# after_seconds is 5, not more: the demo's job trains for about 11 s on a fast machine (CI's run of 2026-12-02
# measured "trained 11 s" and, with 12, was never interrupted); an earlier interruption may restart the job from
# scratch instead of from a checkpoint, which the summary says, and the run must succeed either way.
# The endpoint needs a second instance to serve while one is replaced, as in any production setup (MinCapacity 2).
INSTANCES = 2


def write_config(home: Path) -> Path:
    """Write the chaos section into the runtime's config file (replacing any earlier one)."""
    path = home / CONFIG_NAME
    home.mkdir(parents=True, exist_ok=True)
    path.write_text(CONFIG, encoding="utf-8")
    return path


def chaos_input(payload: dict[str, Any]) -> dict[str, Any]:
    """The demo's execution input, on managed spot and with 2 endpoint instances."""
    payload["Training"]["UseSpot"] = True
    payload["Deploy"].update(InitialInstanceCount=INSTANCES, MinCapacity=INSTANCES, MaxCapacity=INSTANCES)
    return payload


def summary(target: Target, execution_arn: str, job: str | None, say: Callable[[str], None]) -> None:
    """What the faults did, read back through Step Functions and SageMaker."""
    events = HistoryReader(target.client("stepfunctions"), execution_arn).new_events()
    throttled = 0
    for event in events:
        if event["type"] == "TaskFailed":
            cause = str(event_details(event).get("cause", ""))
            throttled += "Rate exceeded" in cause or "ThrottlingException" in cause
    say(f"chaos: {throttled} throttled SageMaker call(s) in the execution's history")
    if job:
        detail = target.client("sagemaker").describe_training_job(TrainingJobName=job)
        interrupted = sum(t["Status"] == "Interrupted" for t in detail.get("SecondaryStatusTransitions", []))
        say(
            f"chaos: training job interrupted {interrupted} time(s) on spot, then {_resumed(target, job)}; "
            f"trained {detail.get('TrainingTimeInSeconds')} s, billed {detail.get('BillableTimeInSeconds')} s"
        )


def _resumed(target: Target, job: str) -> str:
    """What the restarted training said about its checkpoint (train.py logs it), from the job's log streams."""
    try:
        events = target.client("logs").filter_log_events(
            logGroupName=TRAINING_LOG_GROUP, logStreamNamePrefix=f"{job}/", filterPattern='"resuming from checkpoint"'
        )["events"]
    except ClientError:
        events = []
    if not events:
        return "restarted from scratch (the interruption came before its first checkpoint)"
    message = str(events[0]["message"])
    return "resumed: " + message[message.index("resuming from checkpoint") + len("resuming from checkpoint: ") :]


def predictions_line(total: int, failed: int) -> str:
    """The instance kill's outcome, as the client saw it."""
    return (
        f"chaos: [chaos.endpoint] killed one of {INSTANCES} endpoint instances after its 3rd answer; "
        f"{total - failed} of {total} predictions answered"
    )


def describe_config(path: Path) -> str:
    """One line naming the faults, for the start of the run."""
    return f"chaos: faults on from {path} (throttling, a spot interruption, an instance kill)"
