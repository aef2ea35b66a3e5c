"""local_aws.runtime_record: ``runtime.json`` and the API key, which other shells find the runtime by."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from local_aws.constants import StateLayout
from local_aws.runtime_record import read_api_key, read_runtime, write_private


def test_runtime_record_is_private_and_atomic(tmp_path: Path) -> None:
    """The record (URLs; the credentials sit next to it) is mode 0600 and written through a temporary file."""
    layout = StateLayout(tmp_path / "home")
    write_private(layout.runtime_file, {"pid": os.getpid(), "aws_url": "http://127.0.0.1:4566"})
    assert layout.runtime_file.stat().st_mode & 0o077 == 0
    assert not list(layout.home.glob(".*.tmp"))
    assert read_runtime(layout) == {"pid": os.getpid(), "aws_url": "http://127.0.0.1:4566"}


def test_a_record_of_a_dead_process_or_garbage_is_no_runtime(tmp_path: Path) -> None:
    """A pid that cannot exist (stale after a crash), a half-written file or no file: nothing is serving."""
    layout = StateLayout(tmp_path)
    assert read_runtime(layout) is None
    layout.runtime_file.write_text(json.dumps({"pid": 2**22 + 12345}))
    assert read_runtime(layout) is None
    layout.runtime_file.write_text('{"pid": ')
    assert read_runtime(layout) is None


@pytest.mark.parametrize("doc", [{}, {"pid": -1}, {"pid": 0}])
def test_a_record_without_a_real_pid_is_no_runtime(tmp_path: Path, doc: dict[str, int]) -> None:
    """A record whose pid is missing or not a single process's id never counts as a live runtime."""
    layout = StateLayout(tmp_path)
    layout.runtime_file.write_text(json.dumps(doc))
    assert read_runtime(layout) is None


@pytest.mark.parametrize("text", ['{"value": "k-123"}', None, '{"other": 1}', "[1]", "{"])
def test_the_api_key_is_read_only_from_a_well_formed_file(tmp_path: Path, text: str | None) -> None:
    """A key file the runtime wrote gives its value; a missing, foreign or half-written one gives no key."""
    layout = StateLayout(tmp_path)
    if text is not None:
        layout.api_key.write_text(text)
    assert read_api_key(layout) == ("k-123" if text == '{"value": "k-123"}' else None)
