"""Per-epoch checkpoints with atomic writes and automatic resume (spot interruptions lose at most one epoch)."""

from __future__ import annotations

import logging
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

LOGGER = logging.getLogger(__name__)
CHECKPOINT_NAME = "checkpoint.pth"


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch (and CUDA) RNG states."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` captured."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(checkpoint_dir: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``<dir>/checkpoint.pth`` atomically.

    A job killed mid-write (spot reclaim) must leave the previous checkpoint intact, so the bytes go to a temp file in
    the same directory and replace the old file with one rename.

    Returns:
        The checkpoint path.
    """
    directory = Path(checkpoint_dir)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / CHECKPOINT_NAME
    fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp).replace(target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def load_checkpoint(checkpoint_dir: str | Path | None) -> dict[str, Any] | None:
    """Load the checkpoint from ``checkpoint_dir``; None when there is none or it cannot be read.

    A corrupt file (e.g. a partial upload restored by SageMaker) is logged and ignored: restarting from scratch is
    better than failing a job that could still succeed.
    """
    if not checkpoint_dir:
        return None
    path = Path(checkpoint_dir) / CHECKPOINT_NAME
    if not path.is_file():
        return None
    try:
        # NOTE: weights_only=False because the state holds RNG tuples and numpy arrays; the file is our own output.
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for corrupt pickles/zips
        LOGGER.warning("ignoring unreadable checkpoint %s: %s", path, exc)
        return None
    if not isinstance(state, dict) or "epoch" not in state or "model" not in state:
        LOGGER.warning("ignoring checkpoint %s: unexpected content", path)
        return None
    return state
