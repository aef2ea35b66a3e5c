"""A training job's home and caches live in its own host tree, never in the user's shared ``~/.cache``."""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

from sagemaker_helpers import Stack, host_log, job_request, put_source, train

from tests.integration.local_aws_fixtures import Aws

SCRIPT = """
import argparse
import json
import os
from pathlib import Path

import torch

args = argparse.ArgumentParser()
args.add_argument("--token", required=True)
token = args.parse_known_args()[0].token
written = {
    "home": Path.home() / ".cache" / token / "home.txt",
    "expanduser": Path(os.path.expanduser("~/.cache")) / token / "expanduser.txt",
    "torch_hub": Path(torch.hub.get_dir()) / token / "hub.txt",
}
for path in written.values():
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(token)
print("WROTE " + json.dumps({k: str(v) for k, v in written.items()}), flush=True)
"""


def real_torch_hub() -> Path:
    """Where ``torch.hub.get_dir()`` points for this (the user's) process, computed as torch does."""
    if os.environ.get("TORCH_HOME"):
        return Path(os.environ["TORCH_HOME"]) / "hub"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "torch" / "hub"


def test_job_writes_to_home_and_torch_hub_stay_in_its_own_tree(
    local_aws: Aws, sm: Any, s3: Any, logs: Any, stack: Stack, tiny_data: str
) -> None:
    """``~/.cache/...``, ``expanduser('~')`` and ``torch.hub.get_dir()`` resolve under
    ``<home>/jobs/<job>/algo-1/home`` inside the job; the real ``~`` never gets the job's files."""
    token = f"sm-cache-probe-{uuid.uuid4().hex}"
    source = put_source(s3, stack.artifact_bucket, "tests/sagemaker/code/caches/sourcedir.tar.gz", {"probe.py": SCRIPT})
    job = train(sm, job_request(stack, "cache-probe", source, tiny_data, program="probe.py", token=token))
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    match = re.search(r"^WROTE (.*)$", host_log(logs, "cache-probe"), re.MULTILINE)
    assert match, "the probe did not report its paths"
    written = {k: Path(v) for k, v in json.loads(match.group(1)).items()}
    job_home = (local_aws.home / "jobs" / "cache-probe" / "algo-1" / "home").resolve()
    for kind, path in written.items():
        assert path.resolve().is_relative_to(job_home), (kind, path)
        assert path.read_text() == token, kind
    assert written["torch_hub"].resolve().is_relative_to(job_home / ".cache")
    real_home = Path.home()
    assert not (real_home / ".cache" / token).exists()
    assert not (real_torch_hub() / token).exists()
