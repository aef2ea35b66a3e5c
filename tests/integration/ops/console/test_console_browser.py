"""The console in a real headless Chromium: the page loads, draws the ASL with an execution's path, shows the
training job's curves and the endpoint, and predicts a dropped photo through the REST API (a GIF gets the API's error).

What each test expects comes from the same APIs the console reads (GetExecutionHistory, the ASL file, the REST API
answering the same bytes), never from values typed into the test.
"""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from local_aws.constants import REPO_ROOT, StateLayout
from local_aws.http.server import HttpServer
from ops.predict import predict
from ops.target import local_target_at
from tests.integration.local_aws_fixtures import Aws
from tests.integration.statemachine.sfn_helpers import Execution, Stack, history, run, sfn_event, states
from tools.dataset import sample_photo

pytestmark = pytest.mark.slow
ASL = json.loads((REPO_ROOT / "statemachine" / "train_and_deploy.asl.json").read_text())
WAIT_S = 30


def _wait(driver: Any, script: str, timeout: float = WAIT_S) -> Any:
    """Poll a JS expression until it is truthy; returns its value."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: d.execute_script(f"return {script}"))


def _heading_is(selector: str, text: str) -> str:
    return f"(document.querySelector('{selector}') || {{}}).textContent === {json.dumps(text)}"


def _click(driver: Any, selector: str) -> None:
    """Click the element inside one script: the lists re-render on every poll, so an element found by one WebDriver
    call can be stale by the next (CI saw StaleElementReferenceException between find_element and click)."""
    _wait(driver, f"(el => el ? (el.click(), true) : false)(document.querySelector({json.dumps(selector)}))")


def _text(driver: Any, selector: str) -> str:
    """An element's rendered text, read in one script for the same reason as _click."""
    return str(driver.execute_script(f"return document.querySelector({json.dumps(selector)}).innerText"))


def _open(driver: Any, console: HttpServer, tab: str) -> None:
    driver.get(f"{console.url}/#{tab}")
    _wait(driver, f"document.body.dataset.loaded === '{tab}'")


def test_the_page_draws_the_asl_and_the_execution_path(
    browser: Any, console: HttpServer, execution: Execution, console_stack: Stack, screenshots: Path
) -> None:
    _open(browser, console, "pipeline")
    _click(browser, f'#executions li[data-arn="{execution.arn}"]')
    _wait(browser, _heading_is("#execution h2", execution.name))
    drawn = set(
        browser.execute_script("return [...document.querySelectorAll('#graph .node')].map(n => n.dataset.state)")
    )
    # Every top-level state of the ASL is a node (plus Start and End); dagre placed them, none on top of another.
    assert drawn == set(ASL["States"]) | {"__start", "__end"}
    boxes = browser.execute_script(
        "return [...document.querySelectorAll('#graph .node')].map(n => n.getAttribute('transform'))"
    )
    assert len(set(boxes)) == len(boxes)
    entered = set(states(history(console_stack.sfn, execution.arn)))
    visited = set(
        browser.execute_script(
            "return [...document.querySelectorAll('#graph .node.visited')].map(n => n.dataset.state)"
        )
    )
    assert visited == (entered & set(ASL["States"])) | {"__start", "__end"}
    assert "Deployed" in visited and "Cleanup" not in visited
    taken = browser.execute_script("return document.querySelectorAll('#graph .edge.taken').length")
    assert taken >= len(visited) - 1
    # The Parallel's branch is its own graph, with the validation states this execution went through.
    inner = set(
        browser.execute_script(
            "return [...document.querySelectorAll('#branch .node.visited')].map(n => n.dataset.state)"
        )
    )
    assert {"CheckSections", "CheckInput", "InputValid"} <= inner
    browser.save_screenshot(str(screenshots / "console-pipeline.png"))


def test_the_training_job_shows_curves_per_host_and_the_confusion_matrix(
    browser: Any, console: HttpServer, execution: Execution, console_stack: Stack, screenshots: Path
) -> None:
    job = console_stack.job_name(execution.name)
    _open(browser, console, "training")
    _click(browser, f'#jobs li[data-name="{job}"]')
    _wait(browser, _heading_is("#job h2", job))
    epochs = int(console_stack.sm.describe_training_job(TrainingJobName=job)["HyperParameters"]["epochs"])
    # Two charts (loss, top-1) for the host that wrote METRIC lines; each has the job's epochs as points.
    assert browser.execute_script("return document.querySelectorAll('#job .host canvas').length") >= 2
    points = browser.execute_script("return state.charts[0].data[0].length")
    assert points == epochs
    _wait(browser, "document.querySelector('#confusion') && document.querySelector('#confusion').naturalWidth > 0")
    browser.save_screenshot(str(screenshots / "console-training.png"))


def _api_answer(aws: Aws, data: bytes, content_type: str) -> tuple[int, Any]:
    stack = aws.runtime.stack
    assert stack is not None
    target = local_target_at(StateLayout(aws.home), stack.stack_name, aws.url, aws.api_url)
    return predict(target, data, content_type, top_k=5, api_key=aws.runtime.api_key)


def test_a_photo_upload_shows_predictions(
    browser: Any, console: HttpServer, execution: Execution, console_stack: Stack, screenshots: Path, tmp_path: Path
) -> None:
    photo = sample_photo(tmp_path / "china.jpg")
    _open(browser, console, "predict")
    browser.find_element("css selector", "#file").send_keys(str(photo))
    _wait(browser, "document.querySelectorAll('#bars li').length === 5", timeout=60)
    labels = browser.execute_script("return [...document.querySelectorAll('#bars .label')].map(n => n.textContent)")
    status, doc = _api_answer(console_stack.aws, photo.read_bytes(), "image/jpeg")
    assert status == 200
    # The same model answers the same bytes the same way: the bars are the API's own top-5, in order.
    assert labels == [p["label"] for p in doc["predictions"]]
    assert _text(browser, "#model-version") == doc["model_version"]
    assert doc["model_version"] == console_stack.job_name(execution.name)
    browser.save_screenshot(str(screenshots / "console-predict.png"))


def test_a_gif_shows_the_apis_error(
    browser: Any, console: HttpServer, execution: Execution, console_stack: Stack, screenshots: Path, tmp_path: Path
) -> None:
    gif = tmp_path / "dog.gif"
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 120, 40)).save(buffer, format="GIF")
    gif.write_bytes(buffer.getvalue())
    status, doc = _api_answer(console_stack.aws, gif.read_bytes(), "image/gif")
    assert 400 <= status < 500
    _open(browser, console, "predict")
    browser.find_element("css selector", "#file").send_keys(str(gif))
    _wait(browser, "document.querySelector('#predict-error')")
    shown = _text(browser, "#predict-error")
    assert f"HTTP {status}" in shown and doc["message"] in shown
    browser.save_screenshot(str(screenshots / "console-predict-gif.png"))


def test_a_failed_execution_shows_its_error_and_where_it_failed(
    browser: Any, console: HttpServer, console_stack: Stack
) -> None:
    # Training must be an object (docs/CONTRACTS.md §6): the ASL's validation fails this input before any job starts.
    payload = {**sfn_event("local_small", console_stack), "Training": "two instances please"}
    failed = run(console_stack, payload, f"console-bad-{uuid.uuid4().hex[:8]}")
    assert failed.status == "FAILED"
    _open(browser, console, "pipeline")
    _click(browser, f'#executions li[data-arn="{failed.arn}"]')
    _wait(browser, _heading_is("#execution h2", failed.name))
    shown = _text(browser, "#execution .failure")
    assert failed.error is not None and failed.error in shown
    assert failed.cause is not None and failed.cause.splitlines()[0] in shown
    top_level = [name for name in states(history(console_stack.sfn, failed.arn)) if name in ASL["States"]]
    marked = browser.execute_script(
        "return [...document.querySelectorAll('#graph .node.failedstate')].map(n => n.dataset.state)"
    )
    assert marked == [top_level[-1]]


def test_the_endpoint_shows_its_variant_instances_and_recent_invocations(
    browser: Any, console: HttpServer, execution: Execution, console_stack: Stack, screenshots: Path, tmp_path: Path
) -> None:
    status, _ = _api_answer(
        console_stack.aws, sample_photo(tmp_path / "flower.jpg", name="flower.jpg").read_bytes(), "image/jpeg"
    )
    assert status == 200
    described = console_stack.sm.describe_endpoint(EndpointName=console_stack.endpoint)
    _open(browser, console, "endpoints")
    # The list fills from its own request after the tab reports loaded; wait for it rather than read it at once.
    _wait(
        browser,
        "(document.querySelector('#endpoint-list') || {}).textContent"
        f".includes({json.dumps(console_stack.endpoint)})",
    )
    text = _text(browser, "#endpoint-list")
    assert console_stack.endpoint in text and described["EndpointStatus"] in text
    for variant in described["ProductionVariants"]:
        current = variant["CurrentInstanceCount"]
        assert f"{current} / {variant.get('DesiredInstanceCount', current)}" in text
    # That prediction went through the function: its EMF line is in the invocations table.
    _wait(browser, "[...document.querySelectorAll('#invocations td')].some(td => td.textContent === 'Prediction')")
    _wait(browser, "state.charts.length > 0 && state.charts[0].data[0].length >= 2")  # instance samples over time
    browser.save_screenshot(str(screenshots / "console-endpoints.png"))


# ---------------------------------------------------------------------------------------------- the cloud demo page
def _open_demo(driver: Any, aws: Aws, access_key_id: str, secret_access_key: str) -> None:
    """GET /demo on the local API (the stack has DemoPage=Enabled, IAM auth), credentials typed in as a user would."""
    driver.get(f"{aws.api_url}/demo")
    _wait(driver, "document.body.dataset.ready === 'true'")
    assert driver.execute_script("return document.querySelector('#auth-iam').hidden") is False
    # The page refills these from the tab's sessionStorage (an earlier test typed into them): replace, not append.
    for field, value in (("#access-key-id", access_key_id), ("#secret-access-key", secret_access_key)):
        element = driver.find_element("css selector", field)
        element.clear()
        element.send_keys(value)


def test_the_cloud_demo_page_signs_its_predict_and_shows_the_apis_answer(
    browser: Any, execution: Execution, console_stack: Stack, screenshots: Path, tmp_path: Path
) -> None:
    aws = console_stack.aws
    creds = aws.runtime.credentials
    assert creds is not None
    photo = sample_photo(tmp_path / "china.jpg")
    _open_demo(browser, aws, creds.access_key_id, creds.secret_access_key)
    browser.find_element("css selector", "#file").send_keys(str(photo))
    _wait(browser, "document.querySelectorAll('#bars li').length === 5", timeout=60)
    labels = browser.execute_script("return [...document.querySelectorAll('#bars .label')].map(n => n.textContent)")
    status, doc = _api_answer(aws, photo.read_bytes(), "image/jpeg")
    assert status == 200
    # The page's SigV4 request (aws4fetch, in Chromium) got what the same bytes get from the API with boto's signing.
    assert labels == [p["label"] for p in doc["predictions"]]
    assert _text(browser, "#model-version") == doc["model_version"] == console_stack.job_name(execution.name)
    browser.save_screenshot(str(screenshots / "demo-page.png"))


def test_the_cloud_demo_page_shows_a_refused_signature_as_the_apis_403(
    browser: Any, console_stack: Stack, tmp_path: Path
) -> None:
    aws = console_stack.aws
    creds = aws.runtime.credentials
    assert creds is not None
    _open_demo(browser, aws, creds.access_key_id, "not-the-secret")
    browser.find_element("css selector", "#file").send_keys(str(sample_photo(tmp_path / "china.jpg")))
    _wait(browser, "document.querySelector('#predict-error')")
    shown = _text(browser, "#predict-error")
    assert shown.startswith("HTTP 403"), shown
    assert "signature" in shown.lower(), shown
