"""Helpers for the training integration tests: run train.py as SageMaker would, parse METRIC lines, package."""

from __future__ import annotations

import os
import re
import resource
import socket
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
TRAIN_PY = REPO / "training" / "train.py"
# The recipe the tests (and the 1-pp DDP comparison) share; DDP halves the per-process batch to keep the global one.
HPARAMS = [
    "--arch",
    "smallcnn",
    "--epochs",
    "6",
    "--learning-rate",
    "0.1",
    "--image-size",
    "16",
    "--augment",
    "crop",
    "--num-workers",
    "0",
    "--pretrained",
    "none",
    "--seed",
    "0",
]
METRIC_RE = re.compile(r"^METRIC split=(\w+) epoch=(\d+) (.*)$", re.MULTILINE)


@dataclass
class TrainRun:
    root: Path
    model_dir: Path
    output_dir: Path
    stdout: str
    stderr: str
    seconds: float
    cpu_seconds: float = 0.0

    def metric_lines(self, split: str) -> list[dict[str, float]]:
        rows = []
        for m in METRIC_RE.finditer(self.stdout):
            if m.group(1) == split:
                row = {k: float(v) for k, v in (kv.split("=") for kv in m.group(3).split())}
                rows.append({"epoch": float(m.group(2)), **row})
        return rows


def sm_env(root: Path, data_dir: Path, **extra: str) -> dict[str, str]:
    """The SM_* environment SageMaker gives a training container, rooted at ``root``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "RANK", "WORLD_SIZE", "LOCAL_"))}
    env.update(
        OMP_NUM_THREADS="1",
        SM_MODEL_DIR=str(root / "model"),
        SM_OUTPUT_DIR=str(root / "output"),
        SM_OUTPUT_DATA_DIR=str(root / "output" / "data"),
        SM_CHANNEL_TRAINING=str(data_dir),
        SM_HOSTS='["algo-1"]',
        SM_CURRENT_HOST="algo-1",
    )
    env.update(extra)
    return env


def start_train(root: Path, data_dir: Path, argv: list[str], **env: str) -> subprocess.Popen[str]:
    root.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, str(TRAIN_PY), *argv],
        cwd=root,
        env=sm_env(root, data_dir, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_train(root: Path, data_dir: Path, argv: list[str], timeout: float = 240, **env: str) -> TrainRun:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = start_train(root, data_dir, argv, **env)
    out, err = proc.communicate(timeout=timeout)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert proc.returncode == 0, f"train.py failed ({proc.returncode}):\n{err[-3000:]}"
    return TrainRun(root, root / "model", root / "output", out, err, seconds, cpu)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def package(model_dir: Path, tar_path: Path) -> Path:
    """model.tar.gz the way SageMaker packs SM_MODEL_DIR: its entries at the archive root."""
    with tarfile.open(tar_path, "w:gz") as tar:
        for entry in sorted(model_dir.iterdir()):
            tar.add(entry, arcname=entry.name)
    return tar_path
