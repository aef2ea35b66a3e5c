"""Shared fixtures: dummy AWS credentials, event loading, a Lambda context, repo paths."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from local_aws.lambda_runtime.runtime import LambdaContext

# The ASL coverage report of the executions the session ran (tests/asl_coverage_plugin.py).
pytest_plugins = ["tests.asl_coverage_plugin"]

REPO_ROOT = Path(__file__).resolve().parent.parent
EVENTS_DIR = Path(__file__).resolve().parent / "events"
# The order the tiers run in, one after the other, whatever order pytest was given the paths in. e2e comes before
# integration: its tests count the processes that carry the runtime's tag variable, and the integration session's
# in-process local AWS (alive until the session ends) runs endpoint instances that carry it too.
TIER_ORDER = ("unit", "e2e", "integration")


def _tier(item: pytest.Item) -> int:
    parts = Path(str(item.fspath)).resolve().relative_to(REPO_ROOT / "tests").parts
    return TIER_ORDER.index(parts[0]) if parts and parts[0] in TIER_ORDER else len(TIER_ORDER)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Unit tests run before the first integration test starts the session's local AWS, never after it; e2e tests
    (their own ``ops up`` subprocesses) run before it too.

    That runtime is process-wide while it runs (moto's backends are module globals, and it patches moto's ASL
    interpreter to send SDK calls to its edge): a unit test's mock_aws execution after it would send its DynamoDB
    calls to the edge and fail on the blocked socket, its health-check threads would ping through the unit tests'
    blocked sockets, and CPython 3.11's ast module keeps its recursion depth per interpreter, not per thread, so a
    background thread's parse can break a test's ast.parse ("AST constructor recursion depth mismatch"). The sort is
    stable: within a tier, modules keep their order and module fixtures their scope.
    """
    items.sort(key=_tier)


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may ever reach a real AWS account: fake credentials and a fixed region."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SECURITY_TOKEN", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


def load_event(name: str) -> dict[str, Any]:
    """Load a JSON fixture from tests/events (name with or without .json)."""
    path = EVENTS_DIR / (name if name.endswith(".json") else f"{name}.json")
    return json.loads(path.read_text())


@pytest.fixture
def event_loader():  # type: ignore[no-untyped-def]
    return load_event


@pytest.fixture
def lambda_context() -> LambdaContext:
    """The context object the local Lambda runtime passes (one definition, in local_aws.lambda_runtime)."""
    return LambdaContext(
        function_name="dogbreed-dev-inference",
        memory_limit_in_mb=512,
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:dogbreed-dev-inference",
        aws_request_id="52fdfc07-2182-154f-163f-5f0f9a621d72",
        deadline=time.monotonic() + 25.0,
    )
