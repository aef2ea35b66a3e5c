"""Endpoints on the local SageMaker through boto3 and the awscli over HTTP: serving, errors, updates, failures, shapes.

The tiny endpoints serve ``tiny-2hosts``' model.tar.gz (``conftest.trained``) with ``tiny_inference.py``; none is
named ``dogbreed-dev``, which other tests of the session deploy.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, WaiterError
from sagemaker_helpers import (
    ACCOUNT,
    REGION,
    WAIT,
    RawResponses,
    Stack,
    assert_output_shape,
    deploy,
    tarball,
    wait_for,
)

from tests.integration.local_aws_fixtures import Aws

AWS_CLI = Path(sys.executable).with_name("aws")
JSON = "application/json"


def endpoint_arn(name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{name}"


@pytest.fixture(scope="module")
def raw(local_aws: Aws) -> RawResponses:
    """A SageMaker client whose raw JSON answers are kept (for the output-shape checks)."""
    return RawResponses(local_aws.client("sagemaker"))


@pytest.fixture(scope="module")
def model_data(trained: dict[str, Any]) -> str:
    """The model.tar.gz of ``tiny-2hosts`` (model.json + code/inference.py)."""
    assert trained["TrainingJobStatus"] == "Completed", trained.get("FailureReason")
    return str(trained["ModelArtifacts"]["S3ModelArtifacts"])


@pytest.fixture(scope="module")
def tiny_endpoint(sm: Any, raw: RawResponses, stack: Stack, model_data: str) -> Iterator[dict[str, Any]]:
    """``tiny-ep``: two instances of the trained tiny model, InService; the raw Creating and InService answers."""
    deploy(sm, stack.role, "tiny-ep", model_data, count=2)
    sm.create_endpoint(EndpointName="tiny-ep", EndpointConfigName="tiny-ep", Tags=[{"Key": "k", "Value": "v"}])
    creating = raw.call("DescribeEndpoint", EndpointName="tiny-ep")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="tiny-ep", WaiterConfig=WAIT)
    yield {"creating": creating, "in_service": raw.call("DescribeEndpoint", EndpointName="tiny-ep")}
    sm.delete_endpoint(EndpointName="tiny-ep")  # its two instance processes are not needed after this module


@pytest.fixture(scope="module")
def failed_endpoint(sm: Any, raw: RawResponses, stack: Stack, model_data: str) -> dict[str, Any]:
    """``tiny-failed``: a model whose model_fn raises, so CreateEndpoint ends Failed; its raw answers."""
    deploy(sm, stack.role, "tiny-failed", model_data, env={"TINY_FAIL_LOAD": "corrupt weights"})
    sm.create_endpoint(EndpointName="tiny-failed", EndpointConfigName="tiny-failed")
    creating = raw.call("DescribeEndpoint", EndpointName="tiny-failed")
    failed = wait_for(
        lambda: raw.call("DescribeEndpoint", EndpointName="tiny-failed"),
        lambda d: d["EndpointStatus"] not in ("Creating",),
        timeout=120,
    )
    return {"creating": creating, "failed": failed}


def test_endpoint_serves_real_predictions_and_maps_errors(
    sm: Any, smr: Any, tiny_endpoint: dict[str, Any], stack: Stack
) -> None:
    """Two instances share the traffic; handler errors come back as SageMaker Runtime's ModelError; tags work."""
    assert tiny_endpoint["creating"]["EndpointStatus"] == "Creating"
    pids = set()
    for _ in range(4):
        response = smr.invoke_endpoint(EndpointName="tiny-ep", Body=b'{"x": [1, 2]}', ContentType=JSON)
        body = json.loads(response["Body"].read())
        assert body["prediction"] == pytest.approx(3 * 0.5 + 12.0)
        assert response["InvokedProductionVariant"] == "AllTraffic"
        pids.add(body["instance_pid"])
    assert len(pids) == 2  # load-balanced across both instances (each with its own model workers)

    with pytest.raises(ClientError) as client_fault:
        smr.invoke_endpoint(EndpointName="tiny-ep", Body=b'{"x": 1}', ContentType=JSON)
    err = client_fault.value.response
    assert err["Error"]["Code"] == "ModelError" and err["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert err["OriginalStatusCode"] == 400
    assert err["OriginalMessage"].startswith("field 'x' must be a list of numbers")
    assert err["Error"]["Message"].startswith('Received client error (400) from primary with message "field')
    assert err["LogStreamArn"].endswith(":log-group:/aws/sagemaker/Endpoints/tiny-ep")
    with pytest.raises(ClientError) as server_fault:
        smr.invoke_endpoint(EndpointName="tiny-ep", Body=b'{"x": [-1]}', ContentType=JSON)
    assert server_fault.value.response["OriginalStatusCode"] == 500
    with pytest.raises(ClientError) as unknown:
        smr.invoke_endpoint(EndpointName="nope", Body=b"{}", ContentType=JSON)
    assert unknown.value.response["Error"] == {
        "Code": "ValidationError",
        "Message": f"Endpoint nope of account {ACCOUNT} not found.",
    }
    with pytest.raises(ClientError) as missing:
        sm.describe_endpoint(EndpointName="nope")
    assert missing.value.response["Error"]["Message"] == f'Could not find endpoint "{endpoint_arn("nope")}".'
    arn = sm.describe_endpoint(EndpointName="tiny-ep")["EndpointArn"]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "dogbreed:test-top1", "Value": "0.9"}])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [
        {"Key": "k", "Value": "v"},
        {"Key": "dogbreed:test-top1", "Value": "0.9"},
    ]


def test_awscli_describe_and_invoke(local_aws: Aws, tiny_endpoint: dict[str, Any], tmp_path: Path) -> None:
    """The real awscli, with only the runtime's credentials in a clean environment, describes and invokes."""
    creds = local_aws.runtime.credentials
    assert creds is not None
    (tmp_path / "config").write_text("")
    (tmp_path / "credentials").write_text("")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": creds.access_key_id,
        "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
    }
    base = [str(AWS_CLI), "--endpoint-url", local_aws.url]

    def aws(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args], env=env, capture_output=True, text=True, timeout=60, check=check)

    described = aws("sagemaker", "describe-endpoint", "--endpoint-name", "tiny-ep")
    assert json.loads(described.stdout)["EndpointStatus"] == "InService"
    (tmp_path / "in.json").write_text('{"x": [4]}')
    aws("sagemaker-runtime", "invoke-endpoint", "--endpoint-name", "tiny-ep", "--content-type", JSON,
        "--body", f"fileb://{tmp_path / 'in.json'}", str(tmp_path / "out.json"))  # fmt: skip
    assert json.loads((tmp_path / "out.json").read_text())["prediction"] == pytest.approx(4 * 0.5 + 12.0)
    missing = aws("sagemaker", "describe-endpoint", "--endpoint-name", "nope", check=False)
    assert missing.returncode != 0 and "ValidationException" in missing.stderr


def test_blue_green_update_drops_no_request(local_aws: Aws, sm: Any, smr: Any, stack: Stack, model_data: str) -> None:
    """UpdateEndpoint switches fleets atomically under load; a broken update rolls back; a broken create fails."""
    deploy(sm, stack.role, "bg-v1", model_data, env={"MODEL_VERSION": "v1"})
    deploy(sm, stack.role, "bg-v2", model_data, env={"MODEL_VERSION": "v2"})
    deploy(sm, stack.role, "bg-broken", model_data, env={"TINY_FAIL_LOAD": "corrupt weights"})
    sm.create_endpoint(EndpointName="bg", EndpointConfigName="bg-v1")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="bg", WaiterConfig=WAIT)
    results: list[str] = []
    timed: list[tuple[float, float, str]] = []  # (sent, answered, version)
    errors: list[str] = []
    stop = threading.Event()

    def client(rt: Any) -> None:
        while not stop.is_set():
            try:
                sent = time.monotonic()
                r = rt.invoke_endpoint(EndpointName="bg", Body=b'{"x": [1]}', ContentType=JSON)
                version = json.loads(r["Body"].read())["version"]
                timed.append((sent, time.monotonic(), version))
                results.append(version)
            except Exception as exc:
                errors.append(repr(exc))

    threads = [threading.Thread(target=client, args=(local_aws.client("sagemaker-runtime"),)) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(results), lambda n: n >= 5, timeout=30, every=0.1)
        sm.update_endpoint(EndpointName="bg", EndpointConfigName="bg-v2")
        assert sm.describe_endpoint(EndpointName="bg")["EndpointStatus"] == "Updating"
        sm.get_waiter("endpoint_in_service").wait(EndpointName="bg", WaiterConfig=WAIT)
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert "v1" in results and results[-1] == "v2"
    assert results.index("v2") > results.index("v1")
    # The switch is atomic: once one request got v2, no request sent after that answer gets v1. (By completion order
    # a v1 can still come after a v2: one sent before the switch, queued behind another on the single v1 worker.)
    first_v2 = min(answered for _, answered, version in timed if version == "v2")
    assert [v for sent, _, v in timed if sent > first_v2 and v == "v1"] == []

    # A failed update rolls back: the old config keeps serving, InService with a FailureReason.
    sm.update_endpoint(EndpointName="bg", EndpointConfigName="bg-broken")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="bg", WaiterConfig=WAIT)
    described = sm.describe_endpoint(EndpointName="bg")
    assert described["EndpointConfigName"] == "bg-v2"
    assert "corrupt weights" in described["FailureReason"]
    r = smr.invoke_endpoint(EndpointName="bg", Body=b'{"x": [1]}', ContentType=JSON)
    assert json.loads(r["Body"].read())["version"] == "v2"
    sm.delete_endpoint(EndpointName="bg")

    # A create that never gets healthy ends Failed, and the waiter reports it.
    sm.create_endpoint(EndpointName="bg-fails", EndpointConfigName="bg-broken")
    with pytest.raises(WaiterError, match="Failed"):
        sm.get_waiter("endpoint_in_service").wait(EndpointName="bg-fails", WaiterConfig=WAIT)
    assert "corrupt weights" in sm.describe_endpoint(EndpointName="bg-fails")["FailureReason"]
    sm.delete_endpoint(EndpointName="bg-fails")
    sm.get_waiter("endpoint_deleted").wait(EndpointName="bg-fails", WaiterConfig=WAIT)


def test_failed_endpoint_accepts_only_delete(sm: Any, failed_endpoint: dict[str, Any]) -> None:
    """UpdateEndpoint (and UpdateEndpointWeightsAndCapacities) on a Failed endpoint get SageMaker's own
    ValidationException; DeleteEndpoint works, after which the endpoint is gone."""
    assert failed_endpoint["failed"]["EndpointStatus"] == "Failed"
    arn = endpoint_arn("tiny-failed")
    with pytest.raises(ClientError) as update:
        sm.update_endpoint(EndpointName="tiny-failed", EndpointConfigName="tiny-failed")
    error = update.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert re.match(rf'Cannot update endpoint "{re.escape(arn)}" because its status is Failed\.', error["Message"])
    with pytest.raises(ClientError) as weights:
        sm.update_endpoint_weights_and_capacities(
            EndpointName="tiny-failed", DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredWeight": 1}]
        )
    assert weights.value.response["Error"]["Code"] == "ValidationException"
    assert "because its status is Failed" in weights.value.response["Error"]["Message"]
    assert sm.describe_endpoint(EndpointName="tiny-failed")["EndpointStatus"] == "Failed"  # nothing changed
    sm.delete_endpoint(EndpointName="tiny-failed")
    sm.get_waiter("endpoint_deleted").wait(EndpointName="tiny-failed", WaiterConfig=WAIT)
    with pytest.raises(ClientError) as gone:
        sm.describe_endpoint(EndpointName="tiny-failed")
    assert gone.value.response["Error"]["Message"] == f'Could not find endpoint "{arn}".'


MISMATCH_INFERENCE = """
from collections.abc import Iterator
from pathlib import Path

import torch


def model_fn(model_dir):
    # The checkpoint was saved from 8->8 layers; this code builds 8->4 ones: every tensor mismatches.
    model = torch.nn.Sequential(*[torch.nn.Linear(8, 4) for _ in range(40)])
    model.load_state_dict(torch.load(Path(model_dir) / "model.pth", weights_only=True))
    return model
"""


def test_state_dict_mismatch_keeps_the_useful_part_in_failure_reason(
    sm: Any, s3: Any, stack: Stack, tmp_path: Path
) -> None:
    """model_fn failing in ``load_state_dict`` fails the endpoint with torch's ``size mismatch for`` lines in its
    FailureReason (not only the ``Error(s) in loading state_dict for ...:`` header), within 1024 characters."""
    import torch

    torch.save(torch.nn.Sequential(*[torch.nn.Linear(8, 8) for _ in range(40)]).state_dict(), tmp_path / "model.pth")
    key = "tests/sagemaker/models/mismatch/model.tar.gz"
    files = {"model.pth": tmp_path / "model.pth", "code/inference.py": MISMATCH_INFERENCE}
    s3.put_object(Bucket=stack.artifact_bucket, Key=key, Body=tarball(files))
    deploy(sm, stack.role, "tiny-mismatch", f"s3://{stack.artifact_bucket}/{key}")
    sm.create_endpoint(EndpointName="tiny-mismatch", EndpointConfigName="tiny-mismatch")
    with pytest.raises(WaiterError, match="Failed"):
        sm.get_waiter("endpoint_in_service").wait(EndpointName="tiny-mismatch", WaiterConfig=WAIT)
    reason = sm.describe_endpoint(EndpointName="tiny-mismatch")["FailureReason"]
    assert "Error(s) in loading state_dict for Sequential" in reason
    assert "size mismatch for 0.weight" in reason
    assert len(reason) <= 1024
    sm.delete_endpoint(EndpointName="tiny-mismatch")


def test_describe_endpoint_model_and_config_match_botocore_shapes(
    raw: RawResponses, tiny_endpoint: dict[str, Any], failed_endpoint: dict[str, Any]
) -> None:
    """DescribeEndpoint (Creating, InService, Failed), DescribeModel and DescribeEndpointConfig answers fit
    botocore's output shapes: required members, types, enums, lengths, no unmodelled members."""
    answers = {
        "Creating": tiny_endpoint["creating"],
        "InService": tiny_endpoint["in_service"],
        "Failed": failed_endpoint["failed"],
    }
    for status, answer in answers.items():
        assert answer["EndpointStatus"] == status
        assert_output_shape("DescribeEndpoint", answer)
    assert answers["InService"]["ProductionVariants"][0]["CurrentInstanceCount"] == 2
    assert "corrupt weights" in answers["Failed"]["FailureReason"]
    model = raw.call("DescribeModel", ModelName="tiny-ep")
    assert model["PrimaryContainer"]["ModelDataUrl"].endswith("/tiny-2hosts/output/model.tar.gz")
    assert_output_shape("DescribeModel", model)
    config = raw.call("DescribeEndpointConfig", EndpointConfigName="tiny-ep")
    assert config["ProductionVariants"][0]["ModelName"] == "tiny-ep"
    assert_output_shape("DescribeEndpointConfig", config)
