"""Fixtures for the offline template tests: template.yaml loaded and resolved by ``local_aws.cloudformation``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from local_aws.cloudformation import Resolver, load_template
from local_aws.constants import ASL_PATH, REPO_ROOT, TEMPLATE_PATH


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE_PATH)


@pytest.fixture(scope="session")
def resolver(template: dict[str, Any]) -> Resolver:
    """Parameter defaults, stack dogbreed-dev, account 123456789012, us-east-1 (local_aws.constants)."""
    return Resolver(template)


@pytest.fixture(scope="session")
def resolved(template: dict[str, Any], resolver: Resolver) -> dict[str, Any]:
    """The template with every resource CloudFormation creates (parameter defaults, us-east-1) resolved."""
    return {**template, "Resources": resolver.resolve_resources()}


@pytest.fixture(scope="session")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]


@pytest.fixture(scope="session")
def asl_path() -> Path:
    return ASL_PATH


@pytest.fixture(scope="session")
def asl_text(asl_path: Path) -> str:
    if not asl_path.exists():
        pytest.skip(f"{asl_path.relative_to(REPO_ROOT)} is not written yet (statemachine part)")
    return asl_path.read_text()


@pytest.fixture(scope="session")
def asl(asl_text: str) -> dict[str, Any]:
    return json.loads(asl_text)
