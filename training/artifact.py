"""What a finished training leaves: the SM_MODEL_DIR artifact (deployable as is) and the training plots."""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision

from hyperparameters import HYPERPARAMETERS
from model import IMAGENET_MEAN, IMAGENET_STD

LOGGER = logging.getLogger("train")


def save_plots(
    output_data_dir: Path, history: list[dict[str, Any]], targets: list[int], preds: list[int], classes: list[str]
) -> None:
    try:
        import matplotlib
    except ImportError:
        LOGGER.warning("matplotlib is not installed: skipping training-curve and confusion-matrix plots")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    output_data_dir.mkdir(parents=True, exist_ok=True)
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for split in ("train", "valid"):
        ax_loss.plot(epochs, [h[f"{split}:loss"] for h in history], marker="o", label=split)
        ax_acc.plot(epochs, [h[f"{split}:top1"] for h in history], marker="o", label=split)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="top-1", title="accuracy", ylim=(0, 1))
    ax_loss.legend()
    ax_acc.legend()
    fig.tight_layout()
    fig.savefig(output_data_dir / "training_curves.png", dpi=100)
    plt.close(fig)

    n = len(classes)
    matrix = np.zeros((n, n), dtype=np.int64)
    for t, p in zip(targets, preds, strict=True):
        matrix[t, p] += 1
    fig, ax = plt.subplots(figsize=(max(5, n * 0.12 + 3), max(5, n * 0.12 + 3)))
    ax.imshow(matrix, cmap="Blues")
    ax.set(xlabel="predicted", ylabel="true", title="test confusion matrix")
    if n <= 20:
        ax.set_xticks(range(n), classes, rotation=90)
        ax.set_yticks(range(n), classes)
    fig.tight_layout()
    fig.savefig(output_data_dir / "confusion_matrix.png", dpi=100)
    plt.close(fig)


def save_artifact(
    model_dir: Path,
    state_dict: dict[str, torch.Tensor],
    classes: list[str],
    args: argparse.Namespace,
    metrics: dict[str, float],
) -> None:
    """Write the SM_MODEL_DIR layout of CONTRACTS.md §2 (deployable on the PyTorch inference container)."""
    model_dir.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu() for k, v in state_dict.items()}, model_dir / "model.pth")
    (model_dir / "classes.json").write_text(json.dumps(classes, indent=1))
    version = os.environ.get("TRAINING_JOB_NAME") or f"local-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    metadata = {
        "arch": args.arch,
        "image_size": args.image_size,
        "num_classes": len(classes),
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
        "metrics": metrics,
        "model_version": version,
        "versions": {
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "python": platform.python_version(),
        },
        "hyperparameters": {k.replace("_", "-"): getattr(args, k) for k in HYPERPARAMETERS},
    }
    (model_dir / "metadata.json").write_text(json.dumps(metadata, indent=2))
    code = model_dir / "code"
    code.mkdir(exist_ok=True)
    here = Path(__file__).resolve().parent
    shutil.copy2(here / "inference.py", code / "inference.py")
    shutil.copy2(here / "model.py", code / "model.py")
    (code / "requirements.txt").write_text(
        "# Intentionally empty: the SageMaker PyTorch inference container provides torch, torchvision and Pillow,\n"
        "# and endpoints with network isolation cannot pip install.\n"
    )
