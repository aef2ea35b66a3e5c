"""train -> model.tar.gz -> model_fn -> prediction, on a real photo and on held-out digits."""

from __future__ import annotations

import base64
import json
import tarfile
from pathlib import Path

import pytest
from training_helpers import TrainRun, package

import inference
from tools.dataset import sample_photo

pytestmark = pytest.mark.slow


def test_model_tar_gz_serves_a_real_photo(single_run: TrainRun, tmp_path: Path) -> None:
    tar_path = package(single_run.model_dir, tmp_path / "model.tar.gz")
    with tarfile.open(tar_path) as tar:
        assert "code/inference.py" in tar.getnames() and "model.pth" in tar.getnames()
        tar.extractall(tmp_path / "opt_ml_model", filter="data")
    model = inference.model_fn(str(tmp_path / "opt_ml_model"))
    photo = sample_photo(tmp_path / "china.jpg").read_bytes()
    body = inference.output_fn(inference.predict_fn(inference.input_fn(photo, "image/jpeg"), model), "application/json")
    result = json.loads(body)
    assert result["model_version"] == "dogbreed-test-single"
    (preds,) = result["predictions"]
    assert len(preds) == 5 and [p["probability"] for p in preds] == sorted(
        (p["probability"] for p in preds), reverse=True
    )
    assert {p["label"] for p in preds} <= set(model["classes"])


def test_served_predictions_match_the_labels(single_run: TrainRun, digits_dir: Path) -> None:
    model = inference.model_fn(str(single_run.model_dir))
    files = sorted((digits_dir / "test").rglob("*.jpg"))[::9]
    body = json.dumps({"images": [base64.b64encode(p.read_bytes()).decode() for p in files[:16]], "top_k": 1})
    result = inference.predict_fn(inference.input_fn(body, "application/json"), model)
    hits = sum(pred[0]["label"] == p.parent.name for pred, p in zip(result["predictions"], files, strict=False))
    assert hits >= 14, f"{hits}/16 served predictions correct"
