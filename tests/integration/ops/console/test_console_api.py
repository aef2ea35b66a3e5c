"""The console's JSON backend over HTTP, without a browser: what it answers for things that do not exist."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

import pytest

from local_aws.http.server import HttpServer
from tests.integration.statemachine.sfn_helpers import Stack


def _get(console: HttpServer, path: str) -> tuple[int, dict[str, str]]:
    try:
        with urllib.request.urlopen(f"{console.url}{path}", timeout=30) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), json.loads(exc.read())


@pytest.mark.parametrize(
    "path", ["/api/training-jobs/no-such-job", "/api/training-jobs/no-such-job/confusion-matrix.png"]
)
def test_an_unknown_training_job_is_a_404_naming_it(console: HttpServer, path: str) -> None:
    status, doc = _get(console, path)
    assert status == 404
    assert "'no-such-job'" in doc["message"]


def test_an_unknown_execution_is_a_404(console: HttpServer, console_stack: Stack) -> None:
    arn = console_stack.machine_arn.replace(":stateMachine:", ":execution:") + ":no-such-execution"
    status, doc = _get(console, "/api/execution?" + urllib.parse.urlencode({"arn": arn}))
    assert status == 404
    assert "no-such-execution" in doc["message"]
