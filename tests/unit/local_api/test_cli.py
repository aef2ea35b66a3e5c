"""CLI argument errors, offline commands (status, logs, predict errors) and progress parsing."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from local_runtime import config as cfg
from local_runtime.cli import build_parser, format_predictions, main
from local_runtime.daemon import ProgressPrinter, format_metric, load_input, local_execution_input, parse_metric_line


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(cfg.ENV_HOME, str(tmp_path))
    return tmp_path


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["up", "--instance-count", "0"], "--instance-count must be 1..8, got 0"),
        (["up", "--instance-count", "two"], "--instance-count must be an integer, got 'two'"),
        (["up", "--port", "70000"], "--port must be 1..65535, got 70000"),
        (["predict", "x.jpg", "--top-k", "11"], "--top-k must be 1..10, got 11"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_arguments_exit_2_with_the_bad_value(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert expected in err
    assert "Traceback" not in err


def test_predict_rejects_unsupported_suffix_naming_valid_ones(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "photo.gif"
    image.write_bytes(b"GIF89a")
    assert main(["predict", str(image)]) == 1
    err = capsys.readouterr().err
    assert "'.gif'" in err and ".jpg" in err and ".png" in err


def test_predict_without_a_serving_runtime_says_how_to_start_one(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "photo.jpg"
    image.write_bytes(b"\xff\xd8\xff")
    assert main(["predict", str(image)]) == 1
    err = capsys.readouterr().err
    assert "up --serve" in err and "--url" in err


def test_predict_missing_file(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "/nonexistent/dog.jpg", "--url", "http://127.0.0.1:1"]) == 1
    assert "image file not found: /nonexistent/dog.jpg" in capsys.readouterr().err


def test_stale_runtime_record_is_ignored(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a pid that cannot exist: the record is stale, so nothing is "serving"
    cfg.write_runtime(cfg.Paths(home), {"pid": 2**22 + 12345, "api_url": "http://127.0.0.1:1"})
    assert main(["down"]) == 0
    assert "nothing is serving" in capsys.readouterr().out
    assert not (home / "runtime.json").exists()


def test_runtime_record_is_private(home: Path) -> None:
    cfg.write_runtime(cfg.Paths(home), {"pid": os.getpid(), "token": "t"})
    assert (home / "runtime.json").stat().st_mode & 0o077 == 0


def test_status_reads_persisted_state_without_services(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    jobs = home / "state" / "training-jobs"
    jobs.mkdir(parents=True)
    (jobs / "dogbreed-dev-1.json").write_text(
        json.dumps(
            {
                "TrainingJobName": "dogbreed-dev-1",
                "TrainingJobStatus": "Completed",
                "ResourceConfig": {"InstanceCount": 2},
                "FinalMetricDataList": [{"MetricName": "test:top1", "Value": 0.91}],
            }
        )
    )
    endpoints = home / "state" / "endpoints"
    endpoints.mkdir(parents=True)
    (endpoints / "dogbreed-dev.json").write_text(
        json.dumps({"EndpointName": "dogbreed-dev", "EndpointStatus": "InService", "EndpointConfigName": "c1"})
    )
    (home / "executions").mkdir()
    (home / "executions" / "e1.json").write_text(
        json.dumps({"name": "e1", "status": "FAILED", "error": "States.TaskFailed", "cause": "bad lr"})
    )
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "dogbreed-dev-1  Completed  x2  test:top1=0.910" in out
    assert "dogbreed-dev  InService  config c1" in out
    assert "e1  FAILED" in out and "States.TaskFailed: bad lr" in out


def test_logs_shows_latest_job_and_rejects_unknown_job(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log_dir = home / "logs" / "TrainingJobs" / "job-a"
    log_dir.mkdir(parents=True)
    (log_dir / "algo-1.log").write_text("line one\nMETRIC split=train epoch=1 loss=1.0 top1=0.5\n")
    assert main(["logs", "--tail", "1"]) == 0
    out = capsys.readouterr().out
    assert "==> job-a/algo-1 <==" in out and "METRIC split=train" in out and "line one" not in out
    assert main(["logs", "--job", "nope"]) == 1
    assert "no logs for job 'nope'; jobs with logs: job-a" in capsys.readouterr().err


def test_logs_without_any_job(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["logs"]) == 1
    assert "no stored training logs" in capsys.readouterr().err


def test_run_input_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(Exception, match="is not valid JSON"):
        load_input(bad)
    arr = tmp_path / "arr.json"
    arr.write_text("[1]")
    with pytest.raises(Exception, match="must hold a JSON object"):
        load_input(arr)
    with pytest.raises(Exception, match="not found"):
        load_input(tmp_path / "missing.json")


def test_metric_lines_are_parsed_like_the_contract() -> None:
    line = "algo-1 | METRIC split=train epoch=2 loss=0.523100 top1=0.812500 top5=0.990000 samples=1200 seconds=3.2"
    assert parse_metric_line(line) == {"split": "train", "epoch": 2, "loss": 0.5231, "top1": 0.8125, "top5": 0.99}
    assert parse_metric_line("METRIC split=valid epoch=1 loss=0.4 top1=0.88 samples=300")["top1"] == 0.88
    assert parse_metric_line("epoch 1 done") is None
    assert "epoch  2  train  loss 0.5231  acc 0.812" in format_metric("job", parse_metric_line(line) or {})


def test_progress_printer_reads_only_new_complete_lines(tmp_path: Path) -> None:
    log = tmp_path / "algo-1.log"
    log.write_text("METRIC split=train epoch=1 loss=2.0 top1=0.1\nMETRIC split=valid epoch=1 loss=2.1 top1=0.1")
    out = io.StringIO()
    printer = ProgressPrinter(out=out)
    printer.logs("job", [log])
    assert out.getvalue().count("epoch") == 1  # the second line is not complete yet
    with open(log, "a") as fh:
        fh.write(" top5=0.5\n")
    printer.logs("job", [log])
    printer.logs("job", [log])
    assert out.getvalue().count("epoch") == 2
    printer.states([{"type": "TaskStateEntered", "state": "Train"}, {"type": "TaskStateExited", "state": "Train"}])
    printer.states([{"type": "TaskStateEntered", "state": "Train"}])
    printer.job("j", "InProgress", "Training")
    printer.job("j", "InProgress", "Training")
    printer.endpoint("ep", "Creating")
    text = out.getvalue()
    assert text.count("→ Train") == 1 and text.count("training job j") == 1 and "endpoint ep: Creating" in text


def test_local_execution_input_has_the_cloud_shape() -> None:
    doc = local_execution_input("s3://data/datasets/x/", "s3://art/code/sourcedir-abc.tar.gz", instance_count=2)
    assert set(doc) == {
        "TrainingData", "SourceDir", "Hyperparameters", "Training", "Tuning", "Deploy", "Gate", "Polling"
    }  # fmt: skip
    assert doc["Training"]["InstanceCount"] == 2
    assert doc["Polling"]["IntervalSeconds"] == 1
    assert doc["Hyperparameters"]["arch"] == "smallcnn"
    assert all(isinstance(v, str) for v in doc["Hyperparameters"].values())  # SageMaker hyperparameters are strings


def test_format_predictions_accepts_api_and_endpoint_shapes() -> None:
    api = {"predictions": [{"label": "001.zero", "probability": 0.9}, {"label": "002.one", "probability": 0.1}]}
    assert format_predictions(api, 1) == ["  1. 001.zero                 0.9000"]
    endpoint = {"predictions": [[{"label": "a", "probability": 1.0}]]}
    assert len(format_predictions(endpoint, 5)) == 1
