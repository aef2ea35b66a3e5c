"""A fresh local AWS deployed from a copy of template.yaml with two grants removed, driven as a user would.

Run as ``python -m tests.integration.local_aws.auth.denied_stack <home> <out.json>`` (moto is process-global, so a
stack with other policies needs its own process). The copy lacks ``sagemaker:CreateEndpointConfig`` on the state
machine's role and ``sagemaker:InvokeEndpoint`` on the function's role; everything else is the template's. The
script runs one pipeline execution (real training, then the denied call) and one HTTP prediction through the REST
API, and writes what AWS's clients would see to ``out.json`` for the test to judge.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from botocore.credentials import Credentials

from local_aws.constants import REPO_ROOT, TEMPLATE_PATH, TRAINING_DIR
from local_aws.server import LocalAws
from tests.integration.local_aws.apigateway.test_api_over_http import call
from tests.integration.local_aws_fixtures import Aws, serving_endpoint
from tests.integration.statemachine.sfn_helpers import DATA_PREFIX, SOURCE_KEY, Stack, history, quick, run, upload_tree
from tools.dataset import render_digits, sample_photo
from tools.source_package import package_source

# (text in template.yaml, what the copy has instead); each must occur exactly once.
EDITS = (
    ("                  - sagemaker:CreateEndpointConfig\n", ""),
    ("                Action: sagemaker:InvokeEndpoint\n", "                Action: sagemaker:InvokeEndpointAsync\n"),
)


def denied_template(directory: Path) -> Path:
    """template.yaml with EDITS applied, next to links to the code it names (DefinitionUri, CodeUri)."""
    text = TEMPLATE_PATH.read_text(encoding="utf-8")
    for old, new in EDITS:
        assert text.count(old) == 1, f"template.yaml no longer has exactly one {old.strip()!r}"
        text = text.replace(old, new)
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("statemachine", "functions"):
        (directory / name).symlink_to(REPO_ROOT / name)
    path = directory / "template.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def main(home: Path, out: Path) -> None:
    runtime = LocalAws(home, aws_port=0, api_port=0, template_path=denied_template(home / "stack")).start()
    result: dict[str, Any] = {}
    try:
        aws = Aws(runtime, home)
        stack = Stack.of(aws)
        upload_tree(stack.s3, render_digits(home / "digits", size=16), stack.outputs["DataBucketName"], DATA_PREFIX)
        stack.s3.put_object(
            Bucket=stack.outputs["ArtifactBucketName"], Key=SOURCE_KEY, Body=package_source(TRAINING_DIR).data
        )
        payload = quick(stack, gate=0.0)
        execution = run(stack, payload, "iam-denied")
        events = history(stack.sfn, execution.arn)
        role_arn = stack.sfn.describe_state_machine(stateMachineArn=stack.machine_arn)["roleArn"]
        result["execution"] = {
            "status": execution.status,
            "error": execution.error,
            "cause": execution.cause,
            "role_arn": role_arn,
            "config_name": stack.job_name("iam-denied"),
            "task_failures": [
                {**e["taskFailedEventDetails"], "state": _state_of(events, e)}
                for e in events
                if e["type"] == "TaskFailed"
            ],
            "succeeded_tasks": sorted(
                {e["taskSucceededEventDetails"]["resource"] for e in events if e["type"] == "TaskSucceeded"}
            ),
        }
        endpoint = stack.outputs["EndpointName"]
        with serving_endpoint(aws, endpoint, "iam-denied"):
            issued = runtime.credentials
            assert issued is not None
            photo = sample_photo(home / "photo.jpg").read_bytes()
            creds = Credentials(issued.access_key_id, issued.secret_access_key)
            status, _, doc = call(aws.api_url, "POST", "/predict", creds, photo, {"Content-Type": "image/jpeg"})
            # The operator's own key may still invoke it: the refusal is the function role's, not the endpoint's.
            operator = aws.client("sagemaker-runtime").invoke_endpoint(
                EndpointName=endpoint, Body=photo, ContentType="image/jpeg"
            )
            logs = aws.client("logs")
            group = f"/aws/lambda/{runtime.api_spec.function.function_name}" if runtime.api_spec else ""
            messages = [e["message"] for e in logs.filter_log_events(logGroupName=group)["events"]]
            result["http"] = {
                "status": status,
                "body": doc,
                "operator_status": operator["ResponseMetadata"]["HTTPStatusCode"],
                "function_role": runtime.api_spec.function.role_arn if runtime.api_spec else "",
                "function_name": runtime.api_spec.function.function_name if runtime.api_spec else "",
                "endpoint": endpoint,
                "log": messages,
            }
    finally:
        runtime.stop()
    out.write_text(json.dumps(result, default=str), encoding="utf-8")


def _state_of(events: list[dict[str, Any]], event: dict[str, Any]) -> str:
    """The state a task event belongs to: the last TaskStateEntered before it."""
    name = ""
    for candidate in events:
        if candidate["id"] >= event["id"]:
            break
        if candidate["type"] == "TaskStateEntered":
            name = candidate["stateEnteredEventDetails"]["name"]
    return name


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
