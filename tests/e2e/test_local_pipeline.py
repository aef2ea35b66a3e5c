"""The whole local pipeline: real ASL in moto, real training (2 hosts, DDP), real endpoint, real Lambda over HTTP.

One runtime and one trained model are shared by the module (CPU is scarce); the tests run in file order and the
restart test comes last because it replaces the SageMaker server.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from local_runtime import config as cfg
from local_runtime.daemon import Runtime, local_execution_input

pytestmark = [pytest.mark.slow, pytest.mark.distributed, pytest.mark.timeout(1200)]

CLASSES = {
    f"{i + 1:03d}.{n}"
    for i, n in enumerate(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
}


@dataclass
class Pipeline:
    runtime: Runtime
    inputs: tuple[str, str]
    first: dict[str, Any]
    photo: bytes
    log: io.StringIO


def _output(final: dict[str, Any]) -> dict[str, Any]:
    output = final.get("output")
    return json.loads(output) if isinstance(output, str) else dict(output or {})


def _predict(url: str, image: bytes) -> tuple[int, Any]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
    try:
        conn.request("POST", "/predict", body=image, headers={"Content-Type": "image/jpeg"})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    from tools import dataset

    home = tmp_path_factory.mktemp("e2e-home")
    log = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        runtime = Runtime(cfg.Paths(home), out=log)
        try:
            runtime.start_services()
            inputs = runtime.prepare(per_class=20, image_size=32)
            # Deliberately weak first model (1 epoch, 2 steps) so the second execution clears the champion gate.
            first_input = local_execution_input(
                *inputs, instance_count=2, epochs=1, min_test_accuracy=0.0, extra_hyperparameters={"max-steps": "2"}
            )
            first = runtime.follow(runtime.start_execution(first_input, name="e2e-first"), timeout=600)
            assert first["status"] == "SUCCEEDED", (first, log.getvalue()[-3000:])
            runtime.start_api(port=0)
            photo = Path(dataset.sample_photo(home / "china.jpg", name="china.jpg")).read_bytes()
            yield Pipeline(runtime, inputs, first, photo, log)
        finally:
            runtime.shutdown()


@pytest.fixture(autouse=True)
def _local_endpoints(pipeline: Pipeline, aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # The root conftest clears AWS_ENDPOINT_URL_* for every test; moto's ASL interpreter reads them to reach the
    # local SageMaker, so put them back for the tests that share the module's runtime.
    for key in ("AWS_ENDPOINT_URL_SAGEMAKER", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"):
        monkeypatch.setenv(key, pipeline.runtime.sagemaker.url)


def test_two_instance_pipeline_serves_a_real_prediction_over_http(pipeline: Pipeline) -> None:
    output = _output(pipeline.first)
    job = pipeline.runtime.sagemaker_client().describe_training_job(TrainingJobName=output["TrainingJobName"])
    assert job["ResourceConfig"]["InstanceCount"] == 2
    assert job["TrainingJobStatus"] == "Completed"
    status, body = _predict(pipeline.runtime.api.url, pipeline.photo)
    assert status == 200, body
    assert len(body["predictions"]) == 5
    assert {p["label"] for p in body["predictions"]} <= CLASSES
    assert body["model_version"] == output["TrainingJobName"]
    # progress showed state transitions, parsed epochs and the endpoint status
    text = pipeline.log.getvalue()
    assert "→ CreateTrainingJob" in text and "epoch  1  train" in text and "InService" in text


def test_second_execution_updates_the_endpoint_in_place_without_failed_requests(pipeline: Pipeline) -> None:
    runtime = pipeline.runtime
    client = runtime.sagemaker_client()
    before = client.describe_endpoint(EndpointName=_output(pipeline.first)["EndpointName"])
    statuses: list[int] = []
    versions: list[str] = []
    stop = threading.Event()

    def keep_sending() -> None:
        while not stop.is_set():
            status, body = _predict(runtime.api.url, pipeline.photo)
            statuses.append(status)
            if status == 200:
                versions.append(body["model_version"])
            time.sleep(0.05)

    sender = threading.Thread(target=keep_sending)
    sender.start()
    try:
        second_input = local_execution_input(*pipeline.inputs, instance_count=1, epochs=4, min_test_accuracy=0.0)
        second = runtime.follow(runtime.start_execution(second_input, name="e2e-second"), timeout=600)
    finally:
        stop.set()
        sender.join()
    assert second["status"] == "SUCCEEDED", (second, pipeline.log.getvalue()[-3000:])
    after = client.describe_endpoint(EndpointName=before["EndpointName"])
    assert after["EndpointConfigName"] != before["EndpointConfigName"]
    assert statuses and all(s == 200 for s in statuses), sorted(set(statuses))
    new_version = _output(second)["TrainingJobName"]
    assert _predict(runtime.api.url, pipeline.photo)[1]["model_version"] == new_version
    assert versions[0] != new_version  # the client saw the old model first, then the new one


def test_failing_training_script_ends_in_the_fail_state_with_its_reason(pipeline: Pipeline) -> None:
    bad = local_execution_input(*pipeline.inputs, instance_count=1, epochs=1, extra_hyperparameters={"arch": "vgg99"})
    final = pipeline.runtime.follow(pipeline.runtime.start_execution(bad, name="e2e-bad-arch"), timeout=300)
    assert final["status"] == "FAILED"
    assert final.get("error") == "TrainingFailed"
    assert "vgg99" in str(final.get("cause")), final
    entered = [e.get("state") for e in pipeline.runtime.sfn.history(final["executionArn"])]
    assert "Failed" in entered


def test_endpoint_serves_again_after_a_restart_from_persisted_state(pipeline: Pipeline) -> None:
    from local_runtime.api import LocalApi
    from local_runtime.sagemaker.server import SageMakerServer

    runtime = pipeline.runtime
    name = _output(pipeline.first)["EndpointName"]
    runtime.api.stop()
    runtime.sagemaker.stop()
    runtime.sagemaker = SageMakerServer(runtime.paths.home).start()
    for key in ("AWS_ENDPOINT_URL_SAGEMAKER", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"):
        os.environ[key] = runtime.sagemaker.url
    client = runtime.sagemaker_client()
    client.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    runtime.api = LocalApi(runtime.paths.home, runtime.sagemaker.url, port=0).start()
    status, body = _predict(runtime.api.url, pipeline.photo)
    assert status == 200, body
    assert {p["label"] for p in body["predictions"]} <= CLASSES
    jobs = client.list_training_jobs()["TrainingJobSummaries"]
    assert len(jobs) == 3  # nothing was retrained
