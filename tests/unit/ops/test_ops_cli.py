"""ops.cli: argument errors name the bad value and the valid ones; every failure is one line and exit 1, never a
traceback; commands are wired to the target (stubbed or moto-backed here, so nothing leaves the machine)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from ops import cli
from ops.target import Target
from tests.unit.ops.ops_fakes import OUTPUTS, client, session, stubbed_target


@pytest.fixture(autouse=True)
def _cli_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI reads OPS_TARGET/OPS_DEBUG and sets OMP_NUM_THREADS; keep all three per test."""
    monkeypatch.delenv("OPS_TARGET", raising=False)
    monkeypatch.delenv("OPS_DEBUG", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))


def _use(monkeypatch: pytest.MonkeyPatch, target: Target) -> None:
    monkeypatch.setattr(cli, "_target", lambda args, layout: target)


def test_the_cli_loads_no_service_until_a_local_command_needs_it(repo_root: Path) -> None:
    """`predict`, `status` or any `--target aws` command never pays for the local services' import (~1.7 s)."""
    probe = "import sys, ops.cli; print([m for m in ('ops.local', 'local_aws.server', 'moto') if m in sys.modules])"
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=repo_root, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["up", "--instance-count", "0"], "--instance-count must be 1..8, got 0"),
        (["up", "--instance-count", "two"], "--instance-count must be an integer, got 'two'"),
        (["up", "--aws-port", "70000"], "--aws-port must be 0..65535, got 70000"),
        (["up", "--min-test-accuracy", "1.5"], "1.5 is out of range; expected 0..1"),
        (["up", "--timeout", "soon"], "'soon' is not a number of seconds"),
        (["predict", "x.jpg", "--top-k", "11"], "--top-k must be 1..10, got 11"),
        (["predict", "x.jpg", "--top-k", "zero"], "--top-k must be an integer, got 'zero'"),
        (["logs", "--tail", "0"], "--tail must be an integer >= 1, got 0"),
        (["watch", "arn:x", "--poll-seconds", "0"], "0.0 is out of range; expected seconds > 0"),
        (["start"], "the following arguments are required: --input"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["--target", "gcp", "status"], "invalid choice: 'gcp'"),
    ],
)
def test_bad_arguments_exit_2_with_the_bad_value(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """argparse errors: exit 2, the bad value named, usage shown, no traceback."""
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert expected in err
    assert err.startswith("usage: python -m ops")
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "valid"),
    [(["frobnicate"], ["'up'", "'predict'", "'teardown'"]), (["--target", "gcp", "status"], ["'local'", "'aws'"])],
)
def test_invalid_choices_list_the_valid_ones(
    argv: list[str], valid: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown command or target lists what is valid."""
    with pytest.raises(SystemExit):
        cli.main(argv)
    err = capsys.readouterr().err
    assert all(choice in err for choice in valid)


def test_parser_defaults() -> None:
    """Defaults: local target (or $OPS_TARGET), dev environment, top-k 5."""
    args = cli.build_parser().parse_args(["predict", "dog.jpg"])
    assert (args.target, args.env, args.top_k, args.api_key) == ("local", "dev", 5, None)


def test_ops_target_environment_variable_sets_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """``OPS_TARGET=aws`` makes aws the default target."""
    monkeypatch.setenv("OPS_TARGET", "aws")
    assert cli.build_parser().parse_args(["status"]).target == "aws"


# ----------------------------------------------------------------------------------------------- local target
def test_a_command_without_a_serving_runtime_says_how_to_start_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing serves the home: one line naming the home and `up --serve`, exit 1."""
    image = tmp_path / "photo.jpg"
    image.write_bytes(b"\xff\xd8\xff")
    assert cli.main(["--home", str(tmp_path / "home"), "predict", str(image)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no local runtime is serving") and "up --serve" in err
    assert err.count("\n") == 1


def test_down_ignores_a_stale_runtime_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A runtime.json whose pid is dead is not "serving": down says so and succeeds; env refuses."""
    (tmp_path / "runtime.json").write_text(json.dumps({"pid": 2**22 + 12345, "aws_url": "http://127.0.0.1:1"}))
    assert cli.main(["--home", str(tmp_path), "down"]) == 0
    assert "nothing is serving" in capsys.readouterr().out
    assert cli.main(["--home", str(tmp_path), "env"]) == 1
    assert "no local runtime is serving" in capsys.readouterr().err


def test_parameter_overrides_must_be_key_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``up --parameter-overrides`` items without ``=`` are refused, naming the item, before anything starts."""
    assert cli.main(["--home", str(tmp_path), "up", "--parameter-overrides", "ApiAuthMode=API_KEY", "NoEquals"]) == 1
    assert capsys.readouterr().err == (
        "error: --parameter-overrides 'NoEquals': expected KEY=VALUE, e.g. ApiAuthMode=API_KEY\n"
    )
    assert not (tmp_path / "runtime.json").exists()


# ----------------------------------------------------------------------------------------------- predict
def test_predict_rejects_unsupported_suffix_naming_valid_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A .gif is refused before any request, naming the suffix and the valid ones."""
    gif = tmp_path / "dog.gif"
    gif.write_bytes(b"GIF89a")
    assert cli.main(["--target", "aws", "--stack", "dogbreed-dev", "predict", str(gif)]) == 1
    err = capsys.readouterr().err
    assert "'.gif'" in err and ".jpeg, .jpg, .png" in err


def test_predict_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    """A missing image is named."""
    assert cli.main(["--target", "aws", "--stack", "dogbreed-dev", "predict", "/nonexistent/dog.jpg"]) == 1
    assert "image file not found: /nonexistent/dog.jpg" in capsys.readouterr().err


def test_predict_bad_url_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--url`` must be http(s)://host/stage."""
    jpg = tmp_path / "dog.jpg"
    jpg.write_bytes(b"\xff\xd8\xff")
    assert cli.main(["--target", "aws", "--stack", "s", "predict", str(jpg), "--url", "ftp://h/v1"]) == 1
    assert "--url 'ftp://h/v1'" in capsys.readouterr().err


def test_predict_prints_the_ranked_predictions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 200 answer is printed as the model version and numbered predictions; a non-200 is one error line."""
    jpg = tmp_path / "dog.jpg"
    jpg.write_bytes(b"\xff\xd8\xff")
    _use(monkeypatch, stubbed_target())
    answer = {"model_version": "job-1", "predictions": [{"label": "001.Affenpinscher", "probability": 0.75}]}
    monkeypatch.setattr(cli, "predict", lambda *a, **k: (200, answer))
    assert cli.main(["predict", str(jpg), "--top-k", "1"]) == 0
    assert capsys.readouterr().out.splitlines() == ["dog.jpg → model job-1", "  1. 001.Affenpinscher        0.7500"]
    monkeypatch.setattr(cli, "predict", lambda *a, **k: (429, {"message": "Too many requests, retry later"}))
    assert cli.main(["predict", str(jpg)]) == 1
    assert capsys.readouterr().err == "error: the API answered 429: Too many requests, retry later\n"


# ----------------------------------------------------------------------------------------------- start / uploads
def test_start_refuses_bad_input_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Invalid input JSON is named with the parser's reason; nothing is started."""
    _use(monkeypatch, stubbed_target({"stepfunctions": client("stepfunctions")}))
    bad = tmp_path / "input.json"
    bad.write_text('{"Training": ')
    assert cli.main(["start", "--input", str(bad)]) == 1
    assert f"--input {bad}: not valid JSON" in capsys.readouterr().err


def test_start_applies_overrides_and_prints_the_arn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``start`` sends the input with --source-dir/--training-data applied, and prints the execution ARN."""
    sfn = client("stepfunctions")
    _use(monkeypatch, stubbed_target({"stepfunctions": sfn}))
    source = tmp_path / "input.json"
    source.write_text(json.dumps({"SourceDir": "s3://old/x.tar.gz", "Training": {"InstanceCount": 1}}))
    expected_input = {
        "SourceDir": "s3://a/code/sourcedir-1.tar.gz",
        "Training": {"InstanceCount": 1},
        "TrainingData": "s3://d/ds/",
    }
    arn = OUTPUTS["StateMachineArn"].replace(":stateMachine:", ":execution:") + ":run-1"
    with Stubber(sfn) as stub:
        stub.add_response(
            "start_execution",
            {"executionArn": arn, "startDate": "2025-04-09T12:00:00Z"},
            {"stateMachineArn": OUTPUTS["StateMachineArn"], "input": json.dumps(expected_input), "name": "run-1"},
        )
        assert (
            cli.main(
                [
                    "start",
                    "--input",
                    str(source),
                    "--name",
                    "run-1",
                    "--source-dir",
                    "s3://a/code/sourcedir-1.tar.gz",
                    "--training-data",
                    "s3://d/ds/",
                ]
            )
            == 0
        )
        stub.assert_no_pending_responses()
    assert capsys.readouterr().out == arn + "\n"


def test_upload_data_refuses_a_tree_without_the_splits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """upload-data names the missing split folders."""
    _use(monkeypatch, stubbed_target({"s3": client("s3")}))
    (tmp_path / "train").mkdir()
    assert cli.main(["upload-data", "--src", str(tmp_path)]) == 1
    assert "missing valid, test/" in capsys.readouterr().err


@mock_aws
def test_upload_source_uploads_once_then_reports_it_present(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """upload-source prints the content-addressed URI; the second run finds it already there (moto S3)."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=OUTPUTS["ArtifactBucketName"])
    _use(monkeypatch, stubbed_target({"s3": s3}))
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text("print('train')\n")
    assert cli.main(["upload-source", "--src", str(src)]) == 0
    first = capsys.readouterr()
    assert first.out.startswith(f"s3://{OUTPUTS['ArtifactBucketName']}/code/sourcedir-") and "uploaded:" in first.err
    assert cli.main(["upload-source", "--src", str(src)]) == 0
    second = capsys.readouterr()
    assert second.out == first.out and "already present:" in second.err


def test_package_source_writes_the_named_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """package-source writes sourcedir-<sha>.tar.gz to --out and prints its path."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text("print('train')\n")
    assert cli.main(["package-source", "--src", str(src), "--out", str(tmp_path / "out")]) == 0
    written = Path(capsys.readouterr().out.strip())
    assert written.parent == tmp_path / "out" and written.name.startswith("sourcedir-")
    with tarfile.open(written) as tar:
        assert tar.getnames() == ["train.py"]


def test_package_source_of_an_empty_dir_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """SourcePackageError is reported like every other operator error."""
    assert cli.main(["package-source", "--src", str(tmp_path), "--out", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err == f"error: --src {tmp_path}: no files to package\n"


# ----------------------------------------------------------------------------------------------- teardown
def _teardown_stubs() -> tuple[dict[str, Any], list[Stubber]]:
    sm, aas = client("sagemaker"), client("application-autoscaling")
    sm_stub, aas_stub = Stubber(sm), Stubber(aas)
    sm_stub.add_client_error("describe_endpoint", "ValidationException", "Could not find endpoint")
    aas_stub.add_response("describe_scalable_targets", {"ScalableTargets": []}, {"ServiceNamespace": "sagemaker"})
    sm_stub.add_response(
        "list_endpoint_configs",
        {
            "EndpointConfigs": [
                {
                    "EndpointConfigName": "dogbreed-dev-0123abcd",
                    "EndpointConfigArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/c",
                    "CreationTime": "2025-04-09T00:00:00Z",
                }
            ]
        },
        {"NameContains": "dogbreed-dev"},
    )
    sm_stub.add_response("list_models", {"Models": []}, {"NameContains": "dogbreed-dev"})
    return {"sagemaker": sm, "application-autoscaling": aas}, [sm_stub, aas_stub]


def test_teardown_refuses_without_yes_when_not_interactive(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not a terminal and no --yes: the plan is printed, nothing is deleted, one error line."""
    clients, stubs = _teardown_stubs()
    _use(monkeypatch, stubbed_target(clients))
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with stubs[0], stubs[1]:
        assert cli.main(["teardown"]) == 1
        for stub in stubs:
            stub.assert_no_pending_responses()  # and no delete_* call was made (it would be unstubbed)
    out = capsys.readouterr()
    assert "endpoint config dogbreed-dev-0123abcd" in out.out
    assert out.err == "error: refusing to delete without --yes (stdin is not a terminal)\n"


def test_teardown_dry_run_only_prints(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """--dry-run prints what would be deleted and exits 0."""
    clients, stubs = _teardown_stubs()
    _use(monkeypatch, stubbed_target(clients))
    with stubs[0], stubs[1]:
        assert cli.main(["teardown", "--dry-run"]) == 0
    assert capsys.readouterr().out == "will delete:\n  endpoint config dogbreed-dev-0123abcd\n"


# ----------------------------------------------------------------------------------------------- error reporting
def test_aws_errors_are_one_line_with_the_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ClientError becomes ``error: AWS <Code>: <Message>``, exit 1."""
    sfn = client("stepfunctions")
    _use(monkeypatch, stubbed_target({"stepfunctions": sfn}))
    with Stubber(sfn) as stub:
        stub.add_client_error("list_executions", "AccessDeniedException", "not allowed", http_status_code=400)
        assert cli.main(["status"]) == 1
    assert capsys.readouterr().err == "error: AWS AccessDeniedException: not allowed\n"


def test_an_unknown_stack_is_named(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The stack's outputs come from DescribeStacks; an unknown stack is one line naming it."""
    cfn = client("cloudformation")
    target = Target(name="aws", stack_name="nope", session=session())
    monkeypatch.setattr(target, "client", lambda service, **_: cfn)
    _use(monkeypatch, target)
    with Stubber(cfn) as stub:
        stub.add_client_error("describe_stacks", "ValidationError", "Stack with id nope does not exist")
        assert cli.main(["teardown", "--yes"]) == 1
    assert capsys.readouterr().err == "error: stack 'nope': Stack with id nope does not exist\n"


def test_unexpected_errors_hide_the_traceback_unless_ops_debug(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bug is one line suggesting OPS_DEBUG=1; with OPS_DEBUG=1 the exception propagates."""

    def boom(args: Any, layout: Any) -> Target:
        raise ValueError("bad state")

    monkeypatch.setattr(cli, "_target", boom)
    assert cli.main(["status"]) == 1
    err = capsys.readouterr().err
    assert err == "error: unexpected ValueError: bad state (set OPS_DEBUG=1 for the traceback)\n"
    monkeypatch.setenv("OPS_DEBUG", "1")
    with pytest.raises(ValueError, match="bad state"):
        cli.main(["status"])
