"""ops.local: ``env`` (shell exports that survive any value) and ``invoke`` (``sam local invoke`` without Docker: the
real inference handler, a JSON event from tests/events, the response alone on stdout, the function's log on stderr).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aws_xray_sdk.core  # noqa: F401  (see the NOTE below)
import pytest

from local_aws.auth.credentials import issue_or_load
from local_aws.constants import StateLayout
from local_aws.lambda_runtime.runtime import _RoutedStdout
from ops import cli, local
from ops.target import OpsError
from tests.conftest import EVENTS_DIR

# NOTE: the handler's Powertools Tracer imports aws_xray_sdk.core, whose recorder creates its UDP emitter socket
# (it sends nothing) at import. Importing it here, at collection, as tests/unit/functions does through `import app`,
# keeps that one socket creation out of the socket-free test bodies.


@pytest.fixture(autouse=True)
def _unwrap_stdout() -> Iterator[None]:
    """The in-process Lambda wraps ``sys.stdout`` in its router; unwrap it after each test (also under -s)."""
    yield
    while isinstance(sys.stdout, _RoutedStdout):
        sys.stdout = sys.stdout.fallback


def _serving(home: Path, aws_url: str = "http://127.0.0.1:4566") -> StateLayout:
    """A home whose runtime record names this (live) process, with issued credentials."""
    layout = StateLayout(home)
    issue_or_load(layout.credentials)
    layout.runtime_file.write_text(
        json.dumps(
            {"pid": os.getpid(), "aws_url": aws_url, "api_url": "http://127.0.0.1:3000", "stack": "dogbreed-dev"}
        )
    )
    return layout


# ----------------------------------------------------------------------------------------------- env
@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash to evaluate the exports")
def test_env_lines_evaluate_to_the_exact_values_in_a_shell(tmp_path: Path) -> None:
    """``eval "$(python -m ops env)"`` sets the issued key, region and endpoint exactly, quotes and all, and drops a
    stale session token."""
    awkward = 'http://127.0.0.1:4566/it\'s a $HOME `x` "y"'
    layout = _serving(tmp_path / "home with space", aws_url=awkward)
    creds = issue_or_load(layout.credentials)
    lines = local.env(layout)
    assert lines[0] == "unset AWS_SESSION_TOKEN AWS_SECURITY_TOKEN"
    assert lines[-1].startswith("# REST API: http://127.0.0.1:3000/predict")
    assert not any("API key" in line for line in lines)  # IAM mode: no key file, no key line
    script = (
        "\n".join(lines) + '\nprintf "%s\\n" "$AWS_ENDPOINT_URL" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" '
        '"$AWS_DEFAULT_REGION" "$AWS_REGION" "${AWS_SESSION_TOKEN-unset}"\n'
    )
    env = {"PATH": os.environ.get("PATH", ""), "AWS_SESSION_TOKEN": "stale-real-aws-token", "HOME": "/nowhere"}
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, check=True, timeout=10)
    assert result.stdout.splitlines() == [
        awkward,
        creds.access_key_id,
        creds.secret_access_key,
        "us-east-1",
        "us-east-1",
        "unset",
    ]


def test_env_shows_the_api_key_in_api_key_mode(tmp_path: Path) -> None:
    """With the runtime's api-key.json (ApiAuthMode=API_KEY) the key is shown as a comment, not exported."""
    layout = _serving(tmp_path)
    (tmp_path / "api-key.json").write_text(json.dumps({"value": "k-123"}))
    lines = local.env(layout)
    assert lines[-1] == "# API key (ApiAuthMode=API_KEY; send as x-api-key): k-123"
    assert not any(line.startswith("export") and "k-123" in line for line in lines)


def test_env_without_a_serving_runtime_is_an_ops_error(tmp_path: Path) -> None:
    """No runtime record (or a dead pid): nothing to point at."""
    with pytest.raises(OpsError, match="no local runtime is serving"):
        local.env(StateLayout(tmp_path))


# ----------------------------------------------------------------------------------------------- invoke
def _invoke(home: Path, event: str | Path, env_vars: Path | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = local.invoke(StateLayout(home), "InferenceFunction", str(event), env_vars, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _request_id(err: str) -> str:
    start = next(line for line in err.splitlines() if line.startswith("START RequestId: "))
    return start.split()[2]


def test_invoke_health_prints_only_the_response_json_on_stdout(tmp_path: Path) -> None:
    """The real handler answers apigw_health.json: stdout is exactly the response JSON line; stderr has the
    function's START/END/REPORT lines (same request id) and its logs, never a traceback."""
    code, out, err = _invoke(tmp_path, EVENTS_DIR / "apigw_health.json")
    assert code == 0
    response = json.loads(out)
    assert out == json.dumps(response) + "\n"
    assert response["statusCode"] == 200
    body = json.loads(response["body"])
    assert body["status"] == "ok"
    assert (
        body["request_id"] == json.loads((EVENTS_DIR / "apigw_health.json").read_text())["requestContext"]["requestId"]
    )
    request_id = _request_id(err)
    assert f"START RequestId: {request_id} Version: $LATEST" in err
    assert f"END RequestId: {request_id}" in err
    report = next(line for line in err.splitlines() if line.startswith("REPORT RequestId: "))
    assert request_id in report and "Duration: " in report and "Memory Size: 512 MB" in report
    assert "note: no local runtime is serving" in err  # so the handler's AWS calls could not leave the machine
    assert "Traceback" not in err and "Traceback" not in out


def test_invoke_bad_input_is_the_handlers_400_without_calling_sagemaker(tmp_path: Path) -> None:
    """A malformed predict request is answered by the handler itself (400 with its message), exit status 0."""
    code, out, err = _invoke(tmp_path, EVENTS_DIR / "apigw_predict_bad_json.json")
    assert code == 0
    response = json.loads(out)
    assert out.count("\n") == 1
    assert response["statusCode"] == 400
    assert "message" in json.loads(response["body"])
    assert "Traceback" not in err and "ConnectionRefused" not in err


def test_env_vars_file_merges_parameters_then_the_functions_own(tmp_path: Path) -> None:
    """sam's --env-vars: ``Parameters`` apply to every function, ``<LogicalId>`` wins over them, both over the
    template. The handler's metrics (EMF on its stdout, routed to stderr) show which values it saw."""
    env_vars = tmp_path / "env.json"
    env_vars.write_text(
        json.dumps(
            {
                "Parameters": {
                    "POWERTOOLS_METRICS_NAMESPACE": "from-parameters",
                    "POWERTOOLS_SERVICE_NAME": "overridden",
                },
                "InferenceFunction": {"POWERTOOLS_SERVICE_NAME": "from-function"},
                "OtherFunction": {"POWERTOOLS_METRICS_NAMESPACE": "not-for-this-function"},
            }
        )
    )
    code, _, err = _invoke(tmp_path, EVENTS_DIR / "apigw_health.json", env_vars)
    assert code == 0
    metrics = [json.loads(line) for line in err.splitlines() if line.startswith('{"_aws"')]
    assert metrics, err
    assert {m["_aws"]["CloudWatchMetrics"][0]["Namespace"] for m in metrics} == {"from-parameters"}
    assert {m["service"] for m in metrics} == {"from-function"}


def test_no_env_vars_file_means_no_variables() -> None:
    """Without --env-vars nothing is added to the template's environment."""
    assert local._env_vars(None, "Fn") == {}


@pytest.mark.parametrize(("content", "message"), [("[1]", "expected an object like"), ("{", "--env-vars")])
def test_bad_env_vars_files_are_ops_errors(tmp_path: Path, content: str, message: str) -> None:
    """An --env-vars file that is not a JSON object is named."""
    path = tmp_path / "env.json"
    path.write_text(content)
    with pytest.raises(OpsError, match=message):
        local._env_vars(path, "InferenceFunction")


def test_env_vars_values_are_strings(tmp_path: Path) -> None:
    """Function-specific values win over Parameters; numbers and booleans become the strings an environment holds."""
    path = tmp_path / "env.json"
    path.write_text(json.dumps({"Parameters": {"A": 1}, "Fn": {"B": True, "A": 2}}))
    assert local._env_vars(path, "Fn") == {"A": "2", "B": "True"}


def test_invoke_errors_name_the_event_and_the_function(tmp_path: Path) -> None:
    """A missing or invalid event file, or an unknown function, is one OpsError."""
    with pytest.raises(OpsError, match=r"-e .*missing\.json: no such file"):
        _invoke(tmp_path, tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(OpsError, match="not valid JSON"):
        _invoke(tmp_path, bad)
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(OpsError, match=r"'Nope' is not a function .*InferenceFunction"):
        local.invoke(StateLayout(tmp_path), "Nope", str(EVENTS_DIR / "apigw_health.json"), None, out=out, err=err)


def test_invoke_reads_the_event_from_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``-e -`` reads the event from stdin."""
    monkeypatch.setattr("sys.stdin", io.StringIO((EVENTS_DIR / "apigw_not_found.json").read_text()))
    code, out, _ = _invoke(tmp_path, "-")
    assert code == 0 and json.loads(out)["statusCode"] == 404


def test_invoke_with_a_serving_runtime_gives_the_function_its_endpoint_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a runtime serving the home, the function's AWS calls go to its edge with the issued key."""
    layout = _serving(tmp_path / "home")
    seen: dict[str, Any] = {}

    class Recording(local.LocalFunction):  # type: ignore[misc]
        def __init__(self, spec: Any, extra: dict[str, str], sink: Any) -> None:
            seen.update(extra)
            super().__init__(spec, extra, sink)

    monkeypatch.setattr(local, "LocalFunction", Recording)
    out, err = io.StringIO(), io.StringIO()
    assert local.invoke(layout, "InferenceFunction", str(EVENTS_DIR / "apigw_health.json"), None, out=out, err=err) == 0
    creds = issue_or_load(layout.credentials)
    assert seen["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4566"
    assert (seen["AWS_ACCESS_KEY_ID"], seen["AWS_SECRET_ACCESS_KEY"]) == (creds.access_key_id, creds.secret_access_key)
    assert seen["AWS_SESSION_TOKEN"] == ""
    assert "note: no local runtime" not in err.getvalue()


def test_the_invoke_command_writes_to_the_current_stdout(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """``python -m ops invoke -e EVENT``: the response on whatever stdout is at call time."""
    assert cli.main(["--home", str(tmp_path), "invoke", "-e", str(EVENTS_DIR / "apigw_health.json")]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["statusCode"] == 200
    assert "REPORT RequestId" in captured.err
