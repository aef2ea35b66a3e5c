"""Where the local runtime keeps its state and the defaults of a local run (one place for both).

The state dir is ``$LOCAL_RUNTIME_HOME`` (default ``<repo>/.local``); docs/CONTRACTS.md §4.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
ASL_PATH = REPO_ROOT / "statemachine" / "train_and_deploy.asl.json"
TRAINING_DIR = REPO_ROOT / "training"
ENV_HOME = "LOCAL_RUNTIME_HOME"

DEFAULT_API_PORT = 3000
# Tiny but real: the demo must finish in a few minutes on 2 CPU cores, so it trains the small CNN on 16 px digits.
# This is the recipe tests/integration/training proves (>= 95 % test top-1): flips hurt digits, so augment=crop;
# batch 16 per instance keeps the global batch at 32 with the demo's 2 instances.
DEMO_ARCH = "smallcnn"
DEMO_IMAGE_SIZE = 16
DEMO_EPOCHS = 6
DEMO_BATCH_SIZE = 16
DEMO_LEARNING_RATE = "0.1"
DEMO_AUGMENT = "crop"
DEMO_PER_CLASS = 180  # at most this many images per class (digits has ~180: the whole set, 70/15/15 split)
# The embedded dataset is 10 handwritten-digit classes; the demo gate is set for it, not for 133 dog breeds.
DEMO_MIN_TEST_ACCURACY = 0.8


def home_dir(explicit: str | Path | None = None) -> Path:
    """The state dir: an explicit value beats ``$LOCAL_RUNTIME_HOME``, which beats ``<repo>/.local``."""
    raw = explicit or os.environ.get(ENV_HOME) or REPO_ROOT / ".local"
    return Path(raw).expanduser().resolve()


@dataclass(frozen=True)
class Paths:
    """Files the CLI and the serving process share under the state dir."""

    home: Path

    @property
    def s3(self) -> Path:
        return self.home / "s3"

    @property
    def runtime_file(self) -> Path:
        """Written by a serving ``up --serve``: pid, URLs and the control token (mode 0600)."""
        return self.home / "runtime.json"

    @property
    def executions(self) -> Path:
        return self.home / "executions"

    @property
    def cli_log(self) -> Path:
        return self.home / "logs" / "local-runtime.log"


def read_runtime(paths: Paths) -> dict[str, Any] | None:
    """The serving process's record, or None when no ``up --serve`` is (or was) running."""
    try:
        doc: dict[str, Any] = json.loads(paths.runtime_file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return doc


def write_runtime(paths: Paths, doc: dict[str, Any]) -> None:
    """Record the serving process atomically, readable only by this user (it holds the control token)."""
    paths.home.mkdir(parents=True, exist_ok=True)
    tmp = paths.runtime_file.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh, indent=1)
    tmp.replace(paths.runtime_file)


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists (signal 0 probes without signalling)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
