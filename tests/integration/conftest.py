from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.local_aws_fixtures import Aws, start_local_aws


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def local_aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Aws]:
    """The local AWS of this test session (one per process: moto's backends are process-global).

    Its stack is the template's defaults (IAM auth) with DemoPage=Enabled, so the console tests can drive the cloud
    demo page through the local API; the Disabled branch is unit-tested (tests/unit/functions).
    """
    yield from start_local_aws(tmp_path_factory.mktemp("local-aws"), overrides={"DemoPage": "Enabled"})
