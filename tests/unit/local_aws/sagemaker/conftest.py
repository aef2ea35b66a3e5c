"""Fixtures of the local SageMaker unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from local_aws import chaos
from tests.unit.local_aws.sagemaker.sagemaker_app import LocalSageMaker


@pytest.fixture
def local_sagemaker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalSageMaker]:
    """A local SageMaker on a temp home, its ``config.toml`` there (``LOCAL_AWS_CONFIG`` unset)."""
    monkeypatch.delenv(chaos.ENV_CONFIG, raising=False)
    app = LocalSageMaker(tmp_path)
    try:
        yield app
    finally:
        app.control.shutdown()
