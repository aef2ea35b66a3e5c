"""Fixtures for the inference function: a real sagemaker-runtime client under botocore's Stubber, wired into app."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

import app
from config import Settings
from predictor import SageMakerPredictor, client_config

ENDPOINT = "dogbreed-dev"
ENDPOINT_ARN = f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}"
LOG_STREAM_ARN = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/dogbreed-dev:log-stream:x"
SECRET_ORIGINAL_MESSAGE = 'Traceback (most recent call last):\n  File "/opt/ml/model/code/inference.py", line 88'
BREEDS = ["001.Affenpinscher", "002.Afghan_hound", "003.Airedale_terrier", "004.Akita", "005.Alaskan_malamute"]


def endpoint_body(probabilities: list[float], model_version: str = "dogbreed-dev-20250409-1200") -> bytes:
    """An InvokeEndpoint response body in the container's format (docs/CONTRACTS.md §3)."""
    rows = [{"label": label, "probability": p} for label, p in zip(BREEDS, probabilities, strict=False)]
    return json.dumps({"model_version": model_version, "predictions": [rows]}).encode()


def streaming(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


@dataclass
class Runtime:
    """The stubbed runtime client, its Stubber, and every InvokeEndpoint call that reached botocore."""

    client: Any
    stubber: Stubber
    settings: Settings
    calls: list[dict[str, Any]] = field(default_factory=list)

    def use(self, settings: Settings) -> None:
        self.settings = settings
        app._dependencies = app.Dependencies(settings, SageMakerPredictor(self.client, settings))


@pytest.fixture
def settings() -> Settings:
    return Settings(endpoint_name=ENDPOINT)


@pytest.fixture
def runtime(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    client = boto3.client("sagemaker-runtime", region_name="us-east-1", config=client_config(settings))
    stubber = Stubber(client)
    rt = Runtime(client=client, stubber=stubber, settings=settings)
    # NOTE: registered before the Stubber activates, so it sees every call, including unexpected ones.
    client.meta.events.register(
        "provide-client-params.sagemaker-runtime.InvokeEndpoint", lambda params, **_: rt.calls.append(params)
    )
    monkeypatch.setattr(app, "_dependencies", None)
    rt.use(settings)
    with stubber:
        yield rt
    monkeypatch.setattr(app, "_dependencies", None)


def invoke(event: dict[str, Any], context: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Run the real Lambda handler; return status, parsed JSON body and headers."""
    response = app.lambda_handler(event, context)
    assert response["headers"]["Content-Type"] == "application/json"
    return response["statusCode"], json.loads(response["body"]), response["headers"]


@pytest.fixture
def log_records(monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[dict[str, Any]]]:
    """The function's structured log lines (Powertools' handler bound its stream at import, out of capsys' reach)."""
    buffer = io.StringIO()
    monkeypatch.setattr(app.logger.registered_handler, "stream", buffer)
    return lambda: [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
