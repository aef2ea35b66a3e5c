"""Fixtures for the offline template tests (helpers live in stack_cfn.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from stack_cfn import REPO_ROOT, Evaluator, load_template


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="session")
def evaluator(template: dict[str, Any]) -> Evaluator:
    return Evaluator(template)


@pytest.fixture(scope="session")
def resolved(template: dict[str, Any], evaluator: Evaluator) -> dict[str, Any]:
    """The whole template evaluated with parameter defaults in us-east-1."""
    return {**template, "Resources": evaluator.resolve(template["Resources"])}


@pytest.fixture(scope="session")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]


@pytest.fixture(scope="session")
def asl_path() -> Path:
    return REPO_ROOT / "statemachine" / "train_and_deploy.asl.json"


@pytest.fixture(scope="session")
def asl_text(asl_path: Path) -> str:
    if not asl_path.exists():
        pytest.skip(f"{asl_path.relative_to(REPO_ROOT)} is not written yet (statemachine part)")
    return asl_path.read_text()


@pytest.fixture(scope="session")
def asl(asl_text: str) -> dict[str, Any]:
    return json.loads(asl_text)
