"""Fixtures for training/inference unit tests: a real (randomly initialised) artifact, built in milliseconds."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch

import train
from model import create_model

CLASSES = [f"{i:03d}.Breed_{i}" for i in range(1, 8)]


@pytest.fixture(scope="session")
def random_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An artifact in the exact SM_MODEL_DIR layout, written by train.save_artifact, with untrained weights.

    Input-handling tests need a loadable model, not an accurate one; accuracy is covered by the integration tests.
    """
    model_dir = tmp_path_factory.mktemp("artifact")
    torch.manual_seed(0)
    net = create_model("smallcnn", len(CLASSES))
    args = train.parse_args(["--arch", "smallcnn", "--image-size", "32"])
    assert isinstance(args, argparse.Namespace)
    train.save_artifact(model_dir, net.state_dict(), CLASSES, args, {"test:top1": 0.0})
    return model_dir


@pytest.fixture(scope="session")
def loaded_model(random_artifact: Path) -> dict[str, object]:
    import inference

    return inference.model_fn(str(random_artifact))
