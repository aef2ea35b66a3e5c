"""Injected AWS errors for execution tests: ``[[chaos.errors]]`` rules, and how many calls a task's Retry makes.

Shared by test_execution_injected_errors.py and test_execution_catch_edges.py. The rules go into the session
runtime's config.toml (local_aws/injected_errors.py) for one execution and are removed after it.
"""

from __future__ import annotations

import json
from typing import Any

from local_aws.constants import ASL_PATH
from tests.integration.local_aws.sagemaker.chaos_helpers import ChaosFile
from tests.integration.statemachine.sfn_helpers import Execution, Stack, run

ASL = json.loads(ASL_PATH.read_text(encoding="utf-8"))["States"]
SAGEMAKER_THROTTLE = ("sagemaker", "ThrottlingException", "SageMaker.SageMakerException")
CLEANUP_TAIL = ["Cleanup", "CleanupTraining", "CleanupDeployment", "CheckEndpointBeforeCleanup"]
# Before CreateModel nothing of the deployment exists: CleanupDeployment goes straight to releasing the deploy lock.
NOTHING_TO_CLEAN = [
    "Cleanup", "CleanupTraining", "CleanupDeployment", "ReleaseLockBeforeFailing", "ReleaseDeployLockAfterFailure",
    "Failed",
]  # fmt: skip


def calls(state: str, error: str) -> int:
    """Every attempt the state's Retry allows ``error`` (1 + MaxAttempts of the first retrier naming it, AWS's
    default 3 when absent; 1 when no retrier does)."""
    for retrier in ASL[state].get("Retry", []):
        if error in retrier["ErrorEquals"] or "States.ALL" in retrier["ErrorEquals"]:
            return 1 + int(retrier.get("MaxAttempts", 3))
    return 1


# The signer of every call the state machine's tasks make: its role's session (never the test's own key).
STATE_MACHINE_CALLS = "arn:aws:sts::*:assumed-role/*"


def rule(service: str, operation: str, code: str, count: int, after: int = 0, principal: str = "*") -> str:
    """One ``[[chaos.errors]]`` entry: the next ``count`` calls signed by ``principal`` fail with ``code``, once
    ``after`` of them passed."""
    return (
        f'[[chaos.errors]]\nservice = "{service}"\noperation = "{operation}"\ncode = "{code}"\ncount = {count}\n'
        f'after = {after}\nprincipal = "{principal}"\n'
    )


def run_with_errors(stack: Stack, payload: dict[str, Any], name: str, *rules: str) -> Execution:
    """Run one execution with ``rules`` in force, then end every injected fault."""
    chaos = ChaosFile(stack.aws.home)
    chaos.write("".join(rules))
    try:
        return run(stack, payload, name)
    finally:
        chaos.remove()


def after(order: list[str], state: str) -> list[str]:
    """The states entered from the first ``state`` on."""
    return order[order.index(state) :]


def lock_table(stack: Stack) -> str:
    return f"{stack.prefix}-deploy-lock"


def drop_deploy_lock(stack: Stack) -> None:
    """Delete the endpoint's deploy-lock item (one a test wrote, or one an execution could not release)."""
    stack.aws.client("dynamodb").delete_item(TableName=lock_table(stack), Key={"LockName": {"S": stack.endpoint}})
