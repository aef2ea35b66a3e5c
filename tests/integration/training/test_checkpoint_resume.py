"""A killed job resumes from its last completed epoch (what a spot interruption looks like)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
import torch
from training_helpers import HPARAMS, TrainRun, run_train, start_train

pytestmark = pytest.mark.slow


def test_resume_after_kill_continues_from_last_completed_epoch(tmp_path: Path, digits_dir: Path) -> None:
    ckpt_dir = tmp_path / "checkpoints"
    argv = [*HPARAMS, "--epochs", "4", "--batch-size", "32", "--checkpoint-dir", str(ckpt_dir)]
    proc = start_train(tmp_path / "first", digits_dir, argv)
    ckpt_file = ckpt_dir / "checkpoint.pth"
    deadline = time.monotonic() + 180
    done_epoch = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if ckpt_file.exists():
            done_epoch = torch.load(ckpt_file, map_location="cpu", weights_only=False)["epoch"]
            if done_epoch >= 2:
                break
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the first run finished before it could be killed"
    done_epoch = torch.load(ckpt_file, map_location="cpu", weights_only=False)["epoch"]
    assert 2 <= done_epoch < 4
    assert not (tmp_path / "first" / "model" / "model.pth").exists()

    resumed: TrainRun = run_train(tmp_path / "second", digits_dir, argv)
    assert f"epoch {done_epoch} done, continuing at epoch {done_epoch + 1}" in resumed.stderr
    assert [r["epoch"] for r in resumed.metric_lines("train")] == list(range(done_epoch + 1, 5))
    history = json.loads((resumed.output_dir / "data" / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert resumed.metric_lines("test")[0]["top1"] >= 0.9
