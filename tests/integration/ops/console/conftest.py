"""Fixtures: one real execution on the session's local AWS, the console serving it, and a headless Chromium.

The execution is the statemachine tests' cheap one (tests/events/sfn_local_small.json: 16 px digits, smallcnn).
It really trains (2 epochs), gates and deploys: the console has a path, curves, a confusion matrix and an endpoint.
Chromium is Debian's (``apt-get install chromium chromium-driver``; .ci/run installs it), driven by Selenium with both
paths given, so Selenium Manager never tries to download a driver or a browser.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_aws.constants import TRAINING_DIR, StateLayout
from local_aws.http.server import HttpServer
from ops.console.server import start_console
from ops.target import local_target_at
from tests.integration.local_aws_fixtures import Aws
from tests.integration.statemachine.sfn_helpers import (
    DATA_PREFIX,
    SOURCE_KEY,
    Execution,
    Stack,
    run,
    sfn_event,
    upload_tree,
)
from tools.dataset import render_digits
from tools.source_package import package_source

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Where the tests save their screenshots: docs/ when CONSOLE_SCREENSHOTS=docs (how the README's were made), else tmp.
SCREENSHOTS_ENV = "CONSOLE_SCREENSHOTS"


@pytest.fixture(scope="session")
def console_stack(local_aws: Aws, tmp_path_factory: pytest.TempPathFactory) -> Stack:
    """The deployed stack with the 16 px digits and the packaged training/ uploaded where sfn_local_small points."""
    deployed = Stack.of(local_aws)
    dataset = render_digits(tmp_path_factory.mktemp("console-digits16"), size=16)
    upload_tree(deployed.s3, dataset, deployed.outputs["DataBucketName"], DATA_PREFIX)
    deployed.s3.put_object(
        Bucket=deployed.outputs["ArtifactBucketName"], Key=SOURCE_KEY, Body=package_source(TRAINING_DIR).data
    )
    return deployed


@pytest.fixture(scope="session")
def execution(console_stack: Stack) -> Execution:
    """One real execution that trained, passed the gate and deployed the endpoint."""
    record = run(console_stack, sfn_event("local_small", console_stack), f"console-{uuid.uuid4().hex[:8]}")
    assert record.status == "SUCCEEDED", record.why
    return record


# The console and the browser last one module each, not the session: the open page polls the console, which reads
# DescribeEndpoint and friends through the edge, and that background traffic would run on under every later test
# (CPU, and calls an API-throttle test counts on being the only ones).
@pytest.fixture(scope="module")
def console(local_aws: Aws, console_stack: Stack) -> Iterator[HttpServer]:
    """The console on an ephemeral port, reading the local AWS through its APIs with the runtime's credentials."""
    stack = local_aws.runtime.stack
    assert stack is not None
    target = local_target_at(StateLayout(local_aws.home), stack.stack_name, local_aws.url, local_aws.api_url)
    server = start_console(target, local_aws.runtime.api_key, 0)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Headless Chromium (a fresh profile), 1400x1000, driven by chromedriver."""
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        pytest.fail(f"{CHROMIUM} and {CHROMEDRIVER} are needed: apt-get install -y chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tmp_path_factory.mktemp("chromium-profile")
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go (docs/ with CONSOLE_SCREENSHOTS=docs)."""
    if os.environ.get(SCREENSHOTS_ENV) == "docs":
        return Path(__file__).resolve().parents[4] / "docs"
    return tmp_path_factory.mktemp("console-screenshots")
