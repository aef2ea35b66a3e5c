"""tools/ops.py: deterministic source packages, SigV4 request construction and teardown, all offline."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import hmac
import io
import json
import os
import tarfile
import urllib.parse
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.credentials import Credentials
from botocore.stub import Stubber

from tools import ops

MD5 = "0123456789abcdef0123456789abcdef"


def make_tree(root: Path) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "train.py").write_text("print('train')\n")
    (root / "model.py").write_text("X = 1\n")
    (root / "pkg" / "util.py").write_text("Y = 2\n")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    return root


def test_package_source_is_byte_for_byte_reproducible(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "a")
    first = ops.package_source(tree)
    # Same content, different mtimes, umask-ish permission noise and bytecode caches: same archive.
    for path in tree.rglob("*"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
    (tree / "model.py").chmod(0o600)
    (tree / "__pycache__").mkdir()
    (tree / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"\0" * 16)
    (tree / "pkg" / "util.pyc").write_bytes(b"\0")
    second = ops.package_source(tree)
    assert second.data == first.data
    assert first.name == f"sourcedir-{hashlib.sha256(first.data).hexdigest()[:12]}.tar.gz"

    (tree / "model.py").write_text("X = 2\n")
    assert ops.package_source(tree).name != first.name


def test_package_source_layout_and_headers(tmp_path: Path) -> None:
    package = ops.package_source(make_tree(tmp_path / "src"))
    assert package.data[4:8] == b"\0\0\0\0"  # gzip MTIME
    with tarfile.open(fileobj=io.BytesIO(package.data)) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["model.py", "pkg/util.py", "run.sh", "train.py"]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
    assert {m.name: m.mode for m in members}["run.sh"] == 0o755
    assert gzip.decompress(package.data)  # a valid gzip stream


def test_package_source_of_the_real_training_dir_has_the_entry_point_at_the_root() -> None:
    package = ops.package_source(ops.DEFAULT_SOURCE)
    with tarfile.open(fileobj=io.BytesIO(package.data)) as tar:
        names = tar.getnames()
    assert "train.py" in names and "inference.py" in names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


def test_package_source_cli_writes_the_named_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = make_tree(tmp_path / "src")
    assert ops.main(["package-source", "--src", str(tree), "--out", str(tmp_path / "out")]) == 0
    written = Path(capsys.readouterr().out.strip())
    assert written.name == ops.package_source(tree).name and written.read_bytes() == ops.package_source(tree).data


def test_upload_source_is_skipped_when_the_content_addressed_key_exists(tmp_path: Path) -> None:
    package = ops.package_source(make_tree(tmp_path / "src"))
    s3 = boto3.client("s3", region_name="us-east-1")
    key = f"code/{package.name}"
    with Stubber(s3) as stub:
        stub.add_response("head_object", {"ContentLength": len(package.data)}, {"Bucket": "art", "Key": key})
        assert ops.upload_source(s3, package, "art", "code") == (f"s3://art/{key}", False)
        stub.add_client_error("head_object", service_error_code="404", http_status_code=404)
        stub.add_response(
            "put_object",
            {},
            {"Bucket": "art", "Key": key, "Body": package.data, "ContentType": "application/gzip"},
        )
        assert ops.upload_source(s3, package, "art", "code/") == (f"s3://art/{key}", True)
        stub.assert_no_pending_responses()


def sigv4_reference(method: str, url: str, headers: dict[str, str], body: bytes, creds: Credentials) -> str:
    """An independent SigV4 implementation (AWS General Reference, "Create a signed AWS API request")."""
    parts = urllib.parse.urlsplit(url)
    amz_date = headers["X-Amz-Date"]
    scope = f"{amz_date[:8]}/us-east-1/execute-api/aws4_request"
    signed = sorted(k.lower() for k in headers if k.lower() != "authorization")
    lower = {k.lower(): v.strip() for k, v in headers.items()}
    query = "&".join(sorted(parts.query.split("&"))) if parts.query else ""
    canonical = "\n".join(
        [
            method,
            parts.path,
            query,
            "".join(f"{h}:{lower[h]}\n" for h in signed),
            ";".join(signed),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = f"AWS4{creds.secret_key}".encode()
    for part in (amz_date[:8], "us-east-1", "execute-api", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    credential = f"Credential={creds.access_key}/{scope}"
    return f"AWS4-HMAC-SHA256 {credential}, SignedHeaders={';'.join(signed)}, Signature={signature}"


def test_predict_request_is_sigv4_signed_for_execute_api() -> None:
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token")
    url = ops.predict_url("https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/v1", 3)
    assert url == "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/v1/predict?top_k=3"
    image = b"\xff\xd8\xff\xe0fake-jpeg-bytes"
    region = ops.region_of(url, None)
    request = ops.build_predict_request(url, image, "image/jpeg", api_key=None, credentials=creds, region=region)
    prepared = request.prepare()
    headers = dict(prepared.headers.items())
    assert prepared.method == "POST" and prepared.body == image
    assert headers["X-Amz-Security-Token"] == "session-token"
    assert "x-api-key" not in {k.lower() for k in headers}
    now = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
    assert headers["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{now}/us-east-1/execute-api/")
    # What was signed: the request's own headers plus Host (Content-Length is added after signing, unsigned).
    signed = dict(request.headers.items()) | {"Host": urllib.parse.urlsplit(url).netloc}
    assert headers["Authorization"] == sigv4_reference("POST", prepared.url, signed, image, creds)


def test_predict_request_with_an_api_key_is_not_signed() -> None:
    request = ops.build_predict_request(
        "http://127.0.0.1:3000/predict", b"x", "image/png", api_key="k-123", credentials=None, region=""
    )
    headers = dict(request.prepare().headers.items())
    assert headers["x-api-key"] == "k-123" and "Authorization" not in headers


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://x.execute-api.eu-west-1.amazonaws.com/v1/predict",
            "https://x.execute-api.eu-west-1.amazonaws.com/v1/predict",
        ),
        ("http://127.0.0.1:3000/", "http://127.0.0.1:3000/predict"),
    ],
)
def test_predict_url_accepts_the_base_or_the_predict_url(url: str, expected: str) -> None:
    assert ops.predict_url(url, None) == expected


def test_bad_predict_arguments_name_the_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gif = tmp_path / "dog.gif"
    gif.write_bytes(b"GIF89a")
    assert ops.main(["predict", "--url", "https://h/v1", "--image", str(gif)]) == 1
    assert "--image" in (err := capsys.readouterr().err) and "'.gif'" in err and ".jpg, .jpeg, .png" in err
    jpg = tmp_path / "dog.jpg"
    jpg.write_bytes(b"\xff\xd8\xff")
    assert ops.main(["predict", "--url", "ftp://h/v1", "--image", str(jpg)]) == 1
    assert "--url 'ftp://h/v1'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ops.main(["predict", "--url", "https://h/v1", "--image", str(jpg), "--top-k", "zero"])
    assert "'zero' is not an integer" in capsys.readouterr().err


def test_upload_data_refuses_a_tree_without_the_splits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "train").mkdir()
    assert ops.main(["upload-data", "--src", str(tmp_path), "--bucket", "b"]) == 1
    assert "missing valid, test/" in capsys.readouterr().err


def test_start_refuses_bad_input_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "input.json"
    bad.write_text('{"Training": ')
    assert ops.main(["start", "--input", str(bad), "--state-machine-arn", "arn:x"]) == 1
    assert f"--input {bad}: not valid JSON" in capsys.readouterr().err


def test_watch_prints_transitions_until_the_execution_ends() -> None:
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    arn = "arn:aws:states:us-east-1:123456789012:execution:train-deploy:run-1"
    at = dt.datetime(2025, 4, 9, 12, 0, 0, tzinfo=dt.UTC)
    events = [
        {"id": 1, "timestamp": at, "type": "ExecutionStarted", "executionStartedEventDetails": {}},
        {"id": 2, "timestamp": at, "type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "Train Model"}},
    ]
    lines: list[str] = []
    with Stubber(sfn) as stub:
        running = {"executionArn": arn, "stateMachineArn": "arn:sm", "status": "RUNNING", "startDate": at}
        stub.add_response("describe_execution", running, {"executionArn": arn})
        stub.add_response("get_execution_history", {"events": events[:1]}, {"executionArn": arn})
        stub.add_response(
            "describe_execution", {**running, "status": "SUCCEEDED", "output": "{}"}, {"executionArn": arn}
        )
        stub.add_response("get_execution_history", {"events": events}, {"executionArn": arn})
        final = ops.watch(sfn, arn, poll_seconds=1, echo=lines.append, sleep=lambda _: None)
        stub.assert_no_pending_responses()
    assert final["status"] == "SUCCEEDED"
    assert lines == ["12:00:00  ExecutionStarted", "12:00:00  TaskStateEntered  Train Model"]


@pytest.mark.parametrize(
    ("name", "ours"),
    [
        (f"dogbreed-dev-{MD5}", True),
        (f"dogbreed-dev-2-{MD5}", False),  # another environment sharing the prefix
        ("dogbreed-dev", False),
        (f"dogbreed-prod-{MD5}", False),
    ],
)
def test_created_by_workflow(name: str, ours: bool) -> None:
    assert ops.created_by_workflow(name, "dogbreed-dev") is ours


def teardown_stubs(endpoint_exists: bool) -> tuple[Any, Any, Stubber, Stubber]:
    sm = boto3.client("sagemaker", region_name="us-east-1")
    aas = boto3.client("application-autoscaling", region_name="us-east-1")
    sm_stub, aas_stub = Stubber(sm), Stubber(aas)
    at = dt.datetime(2025, 4, 9, tzinfo=dt.UTC)
    resource = "endpoint/dogbreed-dev/variant/AllTraffic"
    dim = "sagemaker:variant:DesiredInstanceCount"
    if endpoint_exists:
        sm_stub.add_response(
            "describe_endpoint",
            {
                "EndpointName": "dogbreed-dev",
                "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/dogbreed-dev",
                "EndpointConfigName": f"dogbreed-dev-{MD5}",
                "EndpointStatus": "InService",
                "CreationTime": at,
                "LastModifiedTime": at,
            },
            {"EndpointName": "dogbreed-dev"},
        )
    else:
        sm_stub.add_client_error(
            "describe_endpoint", service_error_code="ValidationException", service_message="Could not find endpoint"
        )
    target = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": resource,
        "ScalableDimension": dim,
        "MinCapacity": 1,
        "MaxCapacity": 2,
        "RoleARN": "arn:aws:iam::123456789012:role/aws-service-role/x",
        "CreationTime": at,
    }
    other = {**target, "ResourceId": "endpoint/dogbreed-prod/variant/AllTraffic"}
    aas_stub.add_response(
        "describe_scalable_targets",
        {"ScalableTargets": [target, other] if endpoint_exists else [other]},
        {"ServiceNamespace": "sagemaker"},
    )
    if endpoint_exists:
        policy = {
            "PolicyARN": "arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:x",
            "PolicyName": "dogbreed-dev-invocations",
            "ServiceNamespace": "sagemaker",
            "ResourceId": resource,
            "ScalableDimension": dim,
            "PolicyType": "TargetTrackingScaling",
            "CreationTime": at,
        }
        aas_stub.add_response(
            "describe_scaling_policies",
            {"ScalingPolicies": [policy]},
            {"ServiceNamespace": "sagemaker", "ResourceId": resource},
        )
    configs = [f"dogbreed-dev-{MD5}", f"dogbreed-dev-{MD5[::-1]}", f"dogbreed-dev-2-{MD5}"]
    sm_stub.add_response(
        "list_endpoint_configs",
        {
            "EndpointConfigs": [
                {"EndpointConfigName": n, "EndpointConfigArn": f"arn:{n}", "CreationTime": at} for n in configs
            ]
        },
        {"NameContains": "dogbreed-dev"},
    )
    sm_stub.add_response(
        "list_models",
        {"Models": [{"ModelName": n, "ModelArn": f"arn:{n}", "CreationTime": at} for n in configs[:1]]},
        {"NameContains": "dogbreed-dev"},
    )
    return sm, aas, sm_stub, aas_stub


def test_teardown_deletes_scaling_then_endpoint_then_configs_and_models() -> None:
    sm, aas, sm_stub, aas_stub = teardown_stubs(endpoint_exists=True)
    resource = "endpoint/dogbreed-dev/variant/AllTraffic"
    dim = "sagemaker:variant:DesiredInstanceCount"
    aas_stub.add_response(
        "delete_scaling_policy",
        {},
        {
            "PolicyName": "dogbreed-dev-invocations",
            "ServiceNamespace": "sagemaker",
            "ResourceId": resource,
            "ScalableDimension": dim,
        },
    )
    aas_stub.add_response(
        "deregister_scalable_target",
        {},
        {"ServiceNamespace": "sagemaker", "ResourceId": resource, "ScalableDimension": dim},
    )
    sm_stub.add_response("delete_endpoint", {}, {"EndpointName": "dogbreed-dev"})
    sm_stub.add_response("delete_endpoint_config", {}, {"EndpointConfigName": f"dogbreed-dev-{MD5}"})
    sm_stub.add_response("delete_endpoint_config", {}, {"EndpointConfigName": f"dogbreed-dev-{MD5[::-1]}"})
    sm_stub.add_response("delete_model", {}, {"ModelName": f"dogbreed-dev-{MD5}"})
    done: list[str] = []
    with sm_stub, aas_stub:
        plan = ops.plan_teardown(sm, aas, "dogbreed-dev", "dogbreed-dev")
        assert plan.endpoint == "dogbreed-dev"
        assert plan.endpoint_configs == sorted([f"dogbreed-dev-{MD5}", f"dogbreed-dev-{MD5[::-1]}"])
        assert f"dogbreed-dev-2-{MD5}" not in plan.endpoint_configs
        ops.execute_teardown(sm, aas, plan, done.append)
        sm_stub.assert_no_pending_responses()
        aas_stub.assert_no_pending_responses()
    assert done[0].startswith("deleted scaling policy") and done[1].startswith("deregistered scalable target")
    assert done[2] == "deleted endpoint dogbreed-dev"


def test_teardown_when_the_endpoint_is_already_gone_still_cleans_configs_and_models() -> None:
    sm, aas, sm_stub, aas_stub = teardown_stubs(endpoint_exists=False)
    with sm_stub, aas_stub:
        plan = ops.plan_teardown(sm, aas, "dogbreed-dev", "dogbreed-dev")
        sm_stub.assert_no_pending_responses()
    assert plan.endpoint is None and plan.scalable_targets == [] and plan.scaling_policies == []
    assert len(plan.endpoint_configs) == 2 and plan.models == [f"dogbreed-dev-{MD5}"]


def test_teardown_refuses_without_yes_when_not_interactive(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sm, aas, sm_stub, aas_stub = teardown_stubs(endpoint_exists=False)
    clients = {"sagemaker": sm, "application-autoscaling": aas}
    monkeypatch.setattr(ops.boto3, "client", lambda name, **_: clients[name])
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with sm_stub, aas_stub:
        assert ops.main(["teardown", "--endpoint-name", "dogbreed-dev"]) == 1
    out = capsys.readouterr()
    assert f"endpoint config dogbreed-dev-{MD5}" in out.out
    assert "refusing to delete without --yes" in out.err
    json.dumps(out.out)  # plain text, no traceback
    assert "Traceback" not in out.err
