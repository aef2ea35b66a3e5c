"""IAM from template.yaml: remove one grant from a role, deploy to a fresh local AWS, and the call it covered fails
with AWS's AccessDeniedException, exactly there.

The stack runs in its own process (``denied_stack.py``: moto is process-global, and the session's local AWS keeps the
template's real policies). One execution trains for real and then reaches CreateEndpointConfig, which the copy no
longer grants; one HTTP prediction reaches InvokeEndpoint, which the copy no longer grants to the function.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from local_aws.constants import ACCOUNT_ID, REGION, REPO_ROOT, TRAINING_DIR

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def denied(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("iam-denied")
    out = home / "result.json"
    # training/ on the path, as pyproject gives it to pytest: the untrained artifact imports its model.py.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(TRAINING_DIR)])}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.integration.local_aws.auth.denied_stack", str(home), str(out)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    result: dict[str, Any] = json.loads(Path(out).read_text(encoding="utf-8"))
    print(json.dumps(result, indent=1)[:20000])  # shown with the failure, if any
    return result


def _message(session_role: str, action: str, resource: str) -> str:
    """IAM's text for an identity-policy implicit deny, for a session of ``session_role`` (any session name)."""
    return (
        rf"User: arn:aws:sts::{ACCOUNT_ID}:assumed-role/{re.escape(session_role)}/[\w+=,.@-]+ is not authorized to "
        rf"perform: {re.escape(action)} on resource: {re.escape(resource)} because no identity-based policy allows "
        rf"the {re.escape(action)} action"
    )


def test_the_execution_fails_on_create_endpoint_config_with_access_denied(denied: dict[str, Any]) -> None:
    execution = denied["execution"]
    role = execution["role_arn"].rsplit("/", 1)[1]
    resource = f"arn:aws:sagemaker:{REGION}:{ACCOUNT_ID}:endpoint-config/{execution['config_name'].lower()}"
    expected = _message(role, "sagemaker:CreateEndpointConfig", resource)
    assert execution["status"] == "FAILED", execution
    # Other task failures are the pipeline's own (DescribeEndpoint on a fresh stack: "Could not find endpoint");
    # only the call the copy no longer grants is refused (each attempt of the state's Retry), and every call
    # before it was allowed.
    refused = [f for f in execution["task_failures"] if "is not authorized to perform" in f["cause"]]
    assert refused, execution["task_failures"]
    for denial in refused:
        assert (denial["resource"], denial["resourceType"]) == ("createEndpointConfig", "aws-sdk:sagemaker"), denial
        assert denial["state"].startswith("CreateEndpointConfig")
        assert denial["error"] == "SageMaker.SageMakerException"
        cause = expected + r" \(Service: SageMaker, Status Code: 400, Request ID: [\w-]+\)$"
        assert re.match(cause, denial["cause"]), denial["cause"]
    assert {"createTrainingJob", "describeTrainingJob", "createModel"} <= set(execution["succeeded_tasks"])
    # The pipeline reports the denial as its failure reason.
    assert "sagemaker:CreateEndpointConfig" in (execution["cause"] or "") + (execution["error"] or "")


def test_a_prediction_fails_as_on_aws_when_the_function_may_not_invoke(denied: dict[str, Any]) -> None:
    http = denied["http"]
    resource = f"arn:aws:sagemaker:{REGION}:{ACCOUNT_ID}:endpoint/{http['endpoint']}"
    expected = _message(http["function_role"].rsplit("/", 1)[1], "sagemaker:InvokeEndpoint", resource)
    assert http["operator_status"] == 200  # the endpoint serves; only the function's role is refused
    # The handler maps an unexpected InvokeEndpoint error to 502 (functions/inference/errors.py), as it would on AWS.
    assert http["status"] == 502, http["body"]
    assert http["body"]["message"] == "The model endpoint returned an error"
    assert any(re.search("AccessDeniedException: " + expected, line) for line in http["log"]), http["log"][-5:]
