"""Unit tests: fast and offline. Sockets are disabled for every test under tests/unit."""

from __future__ import annotations

import pytest
from pytest_socket import disable_socket, enable_socket


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/unit/" in str(item.fspath):
            item.add_marker(pytest.mark.unit)


@pytest.fixture(autouse=True)
def _no_network() -> object:
    # NOTE: unix sockets stay allowed (multiprocessing/torch use them locally); inet sockets raise.
    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()
