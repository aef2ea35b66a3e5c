"""ec2/train_ec2.sh end to end on local paths: torchrun with 2 processes, SageMaker-layout model.tar.gz, serving."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from training_helpers import REPO

import inference
from tools.dataset import render_digits, sample_photo

pytestmark = [pytest.mark.slow, pytest.mark.distributed]


def test_ec2_script_trains_packages_and_serves(tmp_path: Path) -> None:
    data = render_digits(tmp_path / "data", size=16, seed=0, per_class=30)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "WORLD_SIZE", "RANK"))}
    env.update(OMP_NUM_THREADS="1", TRAINING_JOB_NAME="ec2-test")
    proc = subprocess.run(
        [
            "bash",
            str(REPO / "ec2" / "train_ec2.sh"),
            "--data",
            str(data),
            "--work",
            str(tmp_path / "work"),
            "--python",
            sys.executable,
            "--gpus",
            "2",
            "--",
            "--arch",
            "smallcnn",
            "--epochs",
            "2",
            "--image-size",
            "16",
            "--batch-size",
            "16",
            "--num-workers",
            "0",
            "--pretrained",
            "none",
            "--augment",
            "crop",
            "--learning-rate",
            "0.1",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "joined process group: rank 0/2" in proc.stderr  # torchrun really ran two ranks
    tar_path = tmp_path / "work" / "model.tar.gz"
    with tarfile.open(tar_path) as tar:
        names = sorted(tar.getnames())
        assert names == sorted(
            [
                "classes.json",
                "code",
                "code/inference.py",
                "code/model.py",
                "code/requirements.txt",
                "metadata.json",
                "model.pth",
            ]
        )
        tar.extractall(tmp_path / "served", filter="data")
    model = inference.model_fn(str(tmp_path / "served"))
    assert model["model_version"] == "ec2-test"
    photo = sample_photo(tmp_path / "flower.jpg", "flower.jpg").read_bytes()
    result = json.loads(inference.output_fn(inference.predict_fn(inference.input_fn(photo, "image/jpeg"), model), None))
    assert len(result["predictions"][0]) == 5
    assert (tmp_path / "work" / "checkpoints" / "checkpoint.pth").is_file()


def test_ec2_script_rejects_bad_arguments(tmp_path: Path) -> None:
    for argv, fragment in (
        (["--gpus", "two", "--data", str(tmp_path)], "invalid --gpus 'two'"),
        (["--data", str(tmp_path / "missing"), "--python", sys.executable], "does not exist"),
        (["--data", str(tmp_path), "--python", sys.executable], "has no train/ folder"),
        (["--frobnicate"], "unknown option '--frobnicate'"),
    ):
        proc = subprocess.run(
            ["bash", str(REPO / "ec2" / "train_ec2.sh"), *argv], capture_output=True, text=True, timeout=60, check=False
        )
        assert proc.returncode == 2 and fragment in proc.stderr, (argv, proc.stderr)
