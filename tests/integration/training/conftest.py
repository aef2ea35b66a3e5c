"""Shared, session-scoped training runs on the embedded digits dataset (CPU is scarce: train once, test many)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from training_helpers import HPARAMS, TrainRun, run_train

from tools.dataset import render_digits


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_digits(tmp_path_factory.mktemp("digits") / "data", size=32, seed=0)


@pytest.fixture(scope="session")
def single_run(tmp_path_factory: pytest.TempPathFactory, digits_dir: Path) -> TrainRun:
    """One single-process training run, shared by the accuracy, artifact and DDP-comparison tests."""
    root = tmp_path_factory.mktemp("single")
    return run_train(root, digits_dir, [*HPARAMS, "--batch-size", "32"], TRAINING_JOB_NAME="dogbreed-test-single")


@pytest.fixture(scope="session")
def final_metrics(single_run: TrainRun) -> dict[str, float]:
    return json.loads((single_run.model_dir / "metadata.json").read_text())["metrics"]
