"""``make chaos`` as a user runs it: ``python -m ops up --chaos`` in its own process and home must end SUCCEEDED
with every prediction answered, although the status reads were throttled, the training job was interrupted on spot
and an endpoint instance was killed mid-predictions. Before the ASL's throttle fixes this run ended
``FAILED: EndpointLookupFailed Rate exceeded``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.distributed, pytest.mark.timeout(900)]
REPO = Path(__file__).resolve().parents[2]


def test_make_chaos_succeeds_with_every_prediction_answered(tmp_path: Path) -> None:
    env = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "TMPDIR") if k in os.environ}
    env.update(HOME=str(tmp_path / "user"), LOCAL_RUNTIME_HOME=str(tmp_path), OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-m", "ops", "up", "--instance-count", "2", "--chaos", "--aws-port", "0", "--api-port", "0",
         "--console-port", "0"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=840, check=False,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    assert "execution SUCCEEDED" in out, out[-4000:]
    assert re.search(r"chaos: [1-9]\d* throttled SageMaker call\(s\)", out), out[-4000:]
    assert "interrupted 1 time(s) on spot" in out, out[-4000:]
    assert "[chaos.endpoint] killing instance" in out, out[-4000:]
    assert re.search(r"(\d+) of \1 predictions answered", out), out[-4000:]
    billed = re.search(r"trained (\d+) s, billed (\d+) s", out)
    assert billed and int(billed.group(2)) < int(billed.group(1)), out[-4000:]
