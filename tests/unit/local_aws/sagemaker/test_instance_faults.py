"""[chaos.endpoint]: which answer triggers the kill, how often, and bad values (logged, never a failed request)."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest

from local_aws.sagemaker.fleet import Instance
from local_aws.sagemaker.instance_faults import InstanceFaults


def _instance(tmp_path: Path) -> Instance:
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)  # a process group of its own, like processes.spawn
    return Instance("AllTraffic", proc, 0, tmp_path / "log")  # type: ignore[arg-type]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path


def test_the_nth_answer_kills_the_instance_and_only_times_often(home: Path, tmp_path: Path) -> None:
    (home / "config.toml").write_text("[chaos.endpoint]\nkill_after_invocations = 2\ntimes = 1\n")
    faults = InstanceFaults(home)
    first, second = _instance(tmp_path), _instance(tmp_path)
    try:
        faults.after_invocation("ep", first)
        assert first.proc.poll() is None
        faults.after_invocation("ep", first)
        assert first.proc.poll() == -9  # SIGKILL, and already reaped: the next request meets a dead instance
        for _ in range(4):
            faults.after_invocation("ep", second)  # times = 1: no second kill
        assert second.proc.poll() is None
    finally:
        for inst in (first, second):
            inst.proc.kill()
            inst.proc.wait()


def test_no_section_no_fault_and_bad_values_are_logged_not_raised(
    home: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inst = _instance(tmp_path)
    try:
        InstanceFaults(home).after_invocation("ep", inst)  # no config.toml
        (home / "config.toml").write_text("[chaos.endpoint]\nkill_after_invocations = 0\n")
        with caplog.at_level(logging.ERROR, logger="local_aws.sagemaker"):
            InstanceFaults(home).after_invocation("ep", inst)
        assert "kill_after_invocations = 0: expected an integer >= 1" in caplog.text
        (home / "config.toml").write_text("[chaos.endpoint]\nkill_after = 1\n")
        with caplog.at_level(logging.ERROR, logger="local_aws.sagemaker"):
            InstanceFaults(home).after_invocation("ep", inst)
        assert "unknown key(s) ['kill_after']; valid keys: ['kill_after_invocations', 'times']" in caplog.text
        assert inst.proc.poll() is None
    finally:
        inst.proc.kill()
        inst.proc.wait()
