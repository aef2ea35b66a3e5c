"""Single-process training on the embedded dataset: accuracy, every epoch, exact loss, artifact layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from training_helpers import TrainRun

import inference

pytestmark = pytest.mark.slow


def test_reaches_95_percent_in_well_under_a_minute(single_run: TrainRun, final_metrics: dict[str, float]) -> None:
    test = single_run.metric_lines("test")
    assert len(test) == 1 and test[0]["top1"] >= 0.95, test
    assert final_metrics["test:top1"] == pytest.approx(test[0]["top1"], abs=1e-6)
    # NOTE: CPU time of the whole train.py process (start-up, 6 epochs, test, artifact, plots) on one thread; on an
    # idle core that is its wall time. Wall time is printed but not asserted: CI neighbours make it noisy.
    print(
        f"single-process: test top1={test[0]['top1']:.4f} wall={single_run.seconds:.1f}s "
        f"cpu={single_run.cpu_seconds:.1f}s"
    )
    assert single_run.cpu_seconds < 60, f"training used {single_run.cpu_seconds:.1f} CPU-seconds"


def test_every_epoch_runs_and_sees_the_whole_train_split(single_run: TrainRun, digits_dir: Path) -> None:
    train_rows, valid_rows = single_run.metric_lines("train"), single_run.metric_lines("valid")
    n_train = sum(1 for _ in (digits_dir / "train").rglob("*.jpg"))
    assert [r["epoch"] for r in train_rows] == [1, 2, 3, 4, 5, 6]
    assert [r["epoch"] for r in valid_rows] == [1, 2, 3, 4, 5, 6]
    assert all(r["samples"] == n_train for r in train_rows)
    assert train_rows[-1]["loss"] < train_rows[0]["loss"]


def test_reported_test_loss_is_mean_per_sample_cross_entropy(single_run: TrainRun, digits_dir: Path) -> None:
    # Recompute from the saved artifact through the serving preprocessing: same number => the METRIC line is the
    # plain mean over samples (and training and serving transforms agree).
    model = inference.model_fn(str(single_run.model_dir))
    files = sorted((digits_dir / "test").rglob("*.jpg"))
    classes = model["classes"]
    images = torch.stack([model["transform"](inference.decode_image(p.read_bytes())) for p in files])
    targets = torch.tensor([classes.index(p.parent.name) for p in files])
    with torch.inference_mode():
        logits = model["net"](images)
    loss = torch.nn.functional.cross_entropy(logits, targets).item()
    top1 = (logits.argmax(1) == targets).float().mean().item()
    reported = single_run.metric_lines("test")[0]
    assert reported["loss"] == pytest.approx(loss, abs=2e-5)
    assert reported["top1"] == pytest.approx(top1, abs=1e-6)
    assert reported["samples"] == len(files)


def test_artifact_layout_and_outputs(single_run: TrainRun) -> None:
    model_dir = single_run.model_dir
    assert sorted(str(p.relative_to(model_dir)) for p in model_dir.rglob("*") if p.is_file()) == [
        "classes.json",
        "code/inference.py",
        "code/model.py",
        "code/requirements.txt",
        "metadata.json",
        "model.pth",
    ]
    meta = json.loads((model_dir / "metadata.json").read_text())
    assert meta["arch"] == "smallcnn" and meta["image_size"] == 16 and meta["num_classes"] == 10
    assert meta["model_version"] == "dogbreed-test-single"
    assert set(meta["versions"]) == {"torch", "torchvision", "python"}
    assert meta["hyperparameters"]["learning-rate"] == 0.1
    assert json.loads((model_dir / "classes.json").read_text())[0] == "001.zero"
    reqs = (model_dir / "code" / "requirements.txt").read_text().splitlines()
    assert all(line.startswith("#") for line in reqs if line.strip())
    data = single_run.output_dir / "data"
    for png in ("training_curves.png", "confusion_matrix.png"):
        assert (data / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (single_run.output_dir / "failure").exists()
