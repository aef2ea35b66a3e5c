"""The console's backend without a network: METRIC parsing, an execution's path, and the app's answers to bad input."""

from __future__ import annotations

import json
from typing import Any

import pytest
from werkzeug.test import Client

from metrics import format_metric_line  # training/metrics.py: the one METRIC line format train.py writes
from ops.console.app import ConsoleApp
from ops.console.reader import ConsoleReader, execution_path, metric_points
from ops.console.serving import ServingReader, emf_metrics


def test_metric_points_read_what_train_py_writes() -> None:
    lines = [
        "2026-12-02 INFO epoch 1 starting",
        format_metric_line("train", 1, {"loss": 1.25, "top1": 0.5, "samples": 1250, "throughput": 201.3}),
        format_metric_line("valid", 1, {"loss": 0.75, "top1": 0.7, "top5": 0.99}),
        format_metric_line("train", 2, {"loss": 0.5, "top1": 0.8}),
    ]
    curves = metric_points(iter(lines))
    assert curves["train"] == [
        {"epoch": 1.0, "loss": 1.25, "top1": 0.5, "samples": 1250.0, "throughput": 201.3},
        {"epoch": 2.0, "loss": 0.5, "top1": 0.8},
    ]
    assert curves["valid"] == [{"epoch": 1.0, "loss": 0.75, "top1": 0.7, "top5": 0.99}]


def _event(kind: str, name: str | None = None) -> dict[str, Any]:
    if name is None:
        return {"type": kind}
    key = "stateEnteredEventDetails" if kind.endswith("Entered") else "stateExitedEventDetails"
    return {"type": kind, key: {"name": name}}


def test_execution_path_of_a_running_execution() -> None:
    events = [
        _event("ExecutionStarted"),
        _event("ParallelStateEntered", "ValidateInput"),
        _event("ChoiceStateEntered", "CheckSections"),
        _event("ChoiceStateExited", "CheckSections"),
        _event("ParallelStateExited", "ValidateInput"),
        _event("TaskStateEntered", "CreateTrainingJob"),
        _event("TaskStateExited", "CreateTrainingJob"),
        _event("WaitStateEntered", "WaitForTraining"),
    ]
    path = execution_path(events)
    assert path == {
        "entered": ["ValidateInput", "CheckSections", "CreateTrainingJob", "WaitForTraining"],
        "current": "WaitForTraining",
        "failed_state": None,
    }


def test_execution_path_names_the_state_it_failed_in() -> None:
    events = [
        _event("PassStateEntered", "Cleanup"),
        _event("PassStateExited", "Cleanup"),
        _event("FailStateEntered", "Failed"),
        _event("ExecutionFailed"),
    ]
    assert execution_path(events)["failed_state"] == "Failed"


class _Target:
    is_local = True


class _Reader(ConsoleReader):
    """A reader that must not be reached: the app refuses these requests before any AWS call."""

    def __init__(self) -> None:
        self.target = _Target()  # type: ignore[assignment]

    def __getattribute__(self, name: str) -> Any:
        if name in ("pipeline", "execution", "training_job", "endpoints", "recent_invocations"):
            raise AssertionError(f"{name} was called")
        return super().__getattribute__(name)


@pytest.fixture
def client() -> Client:
    app = ConsoleApp(_Reader(), ServingReader(_Target()), api_key=None)  # type: ignore[arg-type]
    app.allowed_hosts = {"127.0.0.1:3001"}
    return Client(app)


def _message(response: Any) -> str:
    return str(json.loads(response.get_data())["message"])


def test_a_foreign_host_is_refused(client: Client) -> None:
    # DNS rebinding: a page on evil.example rebinds its name to 127.0.0.1; its requests still say Host: evil.example.
    response = client.get("/api/pipeline", headers={"Host": "evil.example:3001"})
    assert response.status_code == 403
    assert "evil.example:3001" in _message(response)


def test_a_post_from_another_origin_is_refused(client: Client) -> None:
    response = client.post(
        "/api/predict",
        data=b"\xff\xd8",
        headers={"Host": "127.0.0.1:3001", "Origin": "http://evil.example", "Content-Type": "image/jpeg"},
    )
    assert response.status_code == 403


@pytest.mark.parametrize("top_k", ["0", "11", "abc", "-1"])
def test_a_bad_top_k_names_the_valid_range(client: Client, top_k: str) -> None:
    response = client.post(f"/api/predict?top_k={top_k}", data=b"x", headers={"Host": "127.0.0.1:3001"})
    assert response.status_code == 400
    assert _message(response) == f"top_k must be an integer in 1..10, got {top_k!r}"


def test_an_execution_needs_an_arn(client: Client) -> None:
    response = client.get("/api/execution?arn=nope", headers={"Host": "127.0.0.1:3001"})
    assert response.status_code == 400
    assert "arn:aws:states" in _message(response)


def test_unknown_paths_and_files_are_json_404s(client: Client) -> None:
    for path in ("/api/nothing", "/static/../app.py", "/static/missing.js"):
        response = client.get(path, headers={"Host": "127.0.0.1:3001"})
        assert response.status_code == 404, path
        assert response.content_type == "application/json"


def test_the_page_and_its_vendored_libraries_are_served(client: Client) -> None:
    page = client.get("/", headers={"Host": "127.0.0.1:3001"})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for asset in ("/static/vendor/dagre-3.1.3.min.js", "/static/vendor/uplot-1.6.32.iife.min.js", "/static/console.js"):
        assert asset in html
        served = client.get(asset, headers={"Host": "127.0.0.1:3001"})
        assert served.status_code == 200 and served.content_type.startswith(
            ("text/javascript", "application/javascript")
        )
    # Nothing is fetched from elsewhere at run time, and the browser is told so.
    assert "http://" not in html and "https://" not in html
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]


# One line the inference function wrote (Powertools' EMF: every value an array), and lines that are not EMF.
EMF_LINE = (
    '{"_aws":{"Timestamp":1796177073331,"CloudWatchMetrics":[{"Namespace":"dogbreed","Dimensions":[["service"]],'
    '"Metrics":[{"Name":"EndpointLatency","Unit":"Milliseconds"},{"Name":"Prediction","Unit":"Count"}]}]},'
    '"service":"dogbreed-inference","EndpointLatency":[179.5630499982508],"Prediction":[1.0]}'
)


def test_emf_metrics_reads_arrays_and_numbers() -> None:
    assert emf_metrics(EMF_LINE) == {"EndpointLatency": [179.5630499982508], "Prediction": [1.0]}
    scalar = EMF_LINE.replace("[179.5630499982508]", "12.5")
    assert emf_metrics(scalar)["EndpointLatency"] == [12.5]


@pytest.mark.parametrize("line", ["START RequestId: 1", '{"_aws": 1}', '{"_aws": {"CloudWatchMetrics": [{}]}}', "{"])
def test_emf_metrics_ignores_other_lines(line: str) -> None:
    assert emf_metrics(line) == {}
