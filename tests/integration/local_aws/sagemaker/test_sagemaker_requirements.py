"""A source dir's requirements.txt on the local SageMaker: installed before the script runs, cached, failures reported.

Offline by construction: the one dependency is a tiny wheel built here, shipped inside the source dir and named by
relative path in requirements.txt (with ``--no-index``, so pip never tries the network).
"""

from __future__ import annotations

import base64
import hashlib
import io
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sagemaker_helpers import Stack, epoch, host_log, job_request, job_streams, put_source, train

from tests.integration.local_aws_fixtures import Aws

DIST = "qqtinydep"
VERSION = "0.1"
WHEEL_NAME = f"{DIST}-{VERSION}-py3-none-any.whl"
DEP_VALUE = "0.4242"
REQUIREMENTS = f"--no-index\n./wheels/{WHEEL_NAME}\n"
MISSING_REQUIREMENTS = "--no-index\nthis-package-does-not-exist-qq==1.0\n"
SCRIPT = f"""
import os
from pathlib import Path

Path(os.environ["SM_OUTPUT_DATA_DIR"], "ran").write_text("ran")
print("SCRIPT RAN", flush=True)
import {DIST}

print("DEP FROM", {DIST}.__file__, flush=True)
print(f"METRIC split=train epoch=1 loss={{{DIST}.VALUE}}", flush=True)
"""


def build_wheel(value: str = DEP_VALUE) -> bytes:
    """A valid pure-Python wheel of ``qqtinydep`` (module, METADATA, WHEEL and a RECORD with real hashes)."""
    info = f"{DIST}-{VERSION}.dist-info"
    files = {
        f"{DIST}/__init__.py": f'"""A dependency the runtime venv does not have."""\n\nVALUE = {value}\n',
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {DIST}\nVersion: {VERSION}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = "\n".join(record) + "\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, text in files.items():
            # A fixed timestamp: the same wheel gives the same bytes (the runtime keys its cache on them).
            wheel.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), text)
    return buffer.getvalue()


def layer_dir(home: Path, requirements: str, local_files: dict[str, bytes] | None = None) -> Path:
    """Where the runtime caches the environment layer: sha256 of requirements.txt and of the local files it names
    (recomputed here independently: file text, then each named file's relative path and bytes)."""
    digest = hashlib.sha256(requirements.encode())
    for name, data in sorted((local_files or {}).items()):
        digest.update(name.encode())
        digest.update(data)
    return home / "cache" / "pyenvs" / digest.hexdigest()[:12]


def preparation_seconds(job: dict[str, Any]) -> float:
    """From Downloading to Training: data and code download plus the requirements install."""
    starts = {t["Status"]: epoch(t["StartTime"]) for t in job["SecondaryStatusTransitions"]}
    return starts["Training"] - starts["Downloading"]


@pytest.fixture(scope="module")
def dep_source(s3: Any, stack: Stack) -> str:
    """A source dir: the script, requirements.txt naming the wheel by relative path, and the wheel."""
    files = {"uses_dep.py": SCRIPT, "requirements.txt": REQUIREMENTS, f"wheels/{WHEEL_NAME}": build_wheel()}
    return put_source(s3, stack.artifact_bucket, "tests/sagemaker/code/requirements/sourcedir.tar.gz", files)


@pytest.fixture(scope="module")
def first_job(sm: Any, stack: Stack, dep_source: str, tiny_data: str) -> dict[str, Any]:
    """The first job with these requirements: it builds the layer."""
    return train(sm, job_request(stack, "req-first", dep_source, tiny_data, program="uses_dep.py"))


def test_requirements_are_installed_before_the_script_runs(
    local_aws: Aws, logs: Any, first_job: dict[str, Any]
) -> None:
    """The script imports a package only requirements.txt provides; it lands in a cached layer, not the runtime venv."""
    assert first_job["TrainingJobStatus"] == "Completed", first_job.get("FailureReason")
    metrics = {m["MetricName"]: m["Value"] for m in first_job["FinalMetricDataList"]}
    assert metrics["train:loss"] == pytest.approx(float(DEP_VALUE))
    layer = layer_dir(local_aws.home, REQUIREMENTS, {f"wheels/{WHEEL_NAME}": build_wheel()})
    log = host_log(logs, "req-first")
    assert f"DEP FROM {layer}/" in log
    assert (layer / ".complete").is_file()
    runtime_python = subprocess.run([sys.executable, "-c", f"import {DIST}"], capture_output=True, check=False)
    assert runtime_python.returncode != 0  # the runtime's own environment was not changed


def test_same_requirements_reuse_the_cached_layer(
    local_aws: Aws, sm: Any, stack: Stack, dep_source: str, tiny_data: str, first_job: dict[str, Any]
) -> None:
    """A second job with the same requirements.txt reuses the layer (not rebuilt) and gets to Training sooner."""
    layer = layer_dir(local_aws.home, REQUIREMENTS, {f"wheels/{WHEEL_NAME}": build_wheel()})
    before = (layer / ".complete").stat()
    bin_before = (layer / "bin").stat()
    second = train(sm, job_request(stack, "req-second", dep_source, tiny_data, program="uses_dep.py"))
    assert second["TrainingJobStatus"] == "Completed", second.get("FailureReason")
    assert {m["MetricName"]: m["Value"] for m in second["FinalMetricDataList"]}["train:loss"] == pytest.approx(
        float(DEP_VALUE)
    )
    after = (layer / ".complete").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert (layer / "bin").stat().st_ino == bin_before.st_ino
    first_s, second_s = preparation_seconds(first_job), preparation_seconds(second)
    print(f"requirements layer: first job {first_s:.2f} s to Training, cached reuse {second_s:.2f} s")
    assert second_s < first_s / 2, (first_s, second_s)


def test_uninstallable_requirement_fails_the_job_with_pips_reason(
    local_aws: Aws, sm: Any, s3: Any, logs: Any, stack: Stack, tiny_data: str
) -> None:
    """A requirement pip cannot install fails the job before the script runs, with pip's own reason."""
    files = {"uses_dep.py": SCRIPT, "requirements.txt": MISSING_REQUIREMENTS}
    source = put_source(s3, stack.artifact_bucket, "tests/sagemaker/code/requirements-missing/sourcedir.tar.gz", files)
    failed = train(sm, job_request(stack, "req-missing", source, tiny_data, program="uses_dep.py"))
    assert failed["TrainingJobStatus"] == "Failed"
    reason = failed["FailureReason"]
    print(f"FailureReason of an uninstallable requirement: {reason!r}")
    assert reason.startswith("AlgorithmError: InstallRequirementsError:"), reason
    assert "No matching distribution" in reason and "this-package-does-not-exist-qq" in reason
    assert "Training" not in [t["Status"] for t in failed["SecondaryStatusTransitions"]]
    assert job_streams(logs, "req-missing") == []  # the script never ran
    assert not (local_aws.home / "jobs" / "req-missing" / "algo-1" / "output" / "data" / "ran").exists()
    assert not layer_dir(local_aws.home, MISSING_REQUIREMENTS).exists()  # no half-built layer is left to reuse


def test_a_changed_local_package_behind_the_same_requirements_is_reinstalled(
    sm: Any, s3: Any, stack: Stack, tiny_data: str
) -> None:
    """Same requirements.txt text, new wheel content: the second job must import the new package, not a stale one."""
    requirements = f"--no-index\n./wheels-changed/{WHEEL_NAME}\n"
    values = {}
    for run, value in (("before", "1.5"), ("after", "2.5")):
        files = {
            "uses_dep.py": SCRIPT,
            "requirements.txt": requirements,
            f"wheels-changed/{WHEEL_NAME}": build_wheel(value),
        }
        source = put_source(
            s3, stack.artifact_bucket, f"tests/sagemaker/code/requirements-{run}/sourcedir.tar.gz", files
        )
        job = train(sm, job_request(stack, f"req-changed-{run}", source, tiny_data, program="uses_dep.py"))
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
        values[run] = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}["train:loss"]
    assert values == {"before": pytest.approx(1.5), "after": pytest.approx(2.5)}
