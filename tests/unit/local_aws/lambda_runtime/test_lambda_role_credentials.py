"""local_aws.lambda_runtime: the handler signs as its execution role's session, renewed before it expires."""

from __future__ import annotations

import datetime as dt
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from local_aws.lambda_runtime.function import FunctionSpec
from local_aws.lambda_runtime.runtime import LocalFunction, _RoutedStdout

HANDLER = """import boto3, os
def handler(event, context):
    frozen = boto3.client("sts")._request_signer._credentials.get_frozen_credentials()
    return [frozen.access_key, frozen.token, os.environ["AWS_SESSION_TOKEN"]]
"""


@pytest.fixture(autouse=True)
def _clean_process_state() -> Iterator[None]:
    saved = boto3.DEFAULT_SESSION
    yield
    boto3.DEFAULT_SESSION = saved
    while isinstance(sys.stdout, _RoutedStdout):
        sys.stdout = sys.stdout.fallback


def test_each_invocation_signs_with_a_live_role_session(tmp_path: Path) -> None:
    """Sessions that expire within botocore's refresh window are renewed before the handler's next call."""
    issued: list[str] = []

    def role() -> dict[str, str]:
        issued.append(f"ASIA{len(issued):016d}")
        expiry = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)  # inside botocore's 10-minute mandatory window
        return {
            "access_key": issued[-1],
            "secret_key": "s",
            "token": f"t{len(issued)}",
            "expiry_time": expiry.isoformat(),
        }

    name = f"lr_role_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(HANDLER)
    spec = FunctionSpec("Fn", f"{name}.handler", tmp_path, role_arn="arn:aws:iam::123456789012:role/fn")
    function = LocalFunction(
        spec, {"AWS_ACCESS_KEY_ID": "AKIAOPERATOR", "AWS_SECRET_ACCESS_KEY": "x"}, lambda _: None, role=role
    )
    try:
        first = function.invoke({})
        second = function.invoke({})
        assert first[0].startswith("ASIA") and first[0] != "AKIAOPERATOR"
        assert second[0] != first[0] and second[0] == issued[-1]  # renewed, not the operator's key
        assert (
            first[2] == "t1" and os.environ["AWS_SESSION_TOKEN"] == "t1"
        )  # the sandbox's variables: the first session
    finally:
        function.close()
