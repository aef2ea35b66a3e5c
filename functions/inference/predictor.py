"""The sagemaker-runtime adapter: one InvokeEndpoint call behind a small Protocol."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Protocol

import boto3
from botocore.config import Config

from config import Settings
from errors import BadGateway, PayloadTooLarge, from_runtime_exception


@dataclass(frozen=True)
class Prediction:
    label: str
    probability: float


@dataclass(frozen=True)
class EndpointResult:
    predictions: list[Prediction]
    model_version: str


class Predictor(Protocol):
    """Anything that turns one image into ranked predictions."""

    def predict(self, image: bytes, top_k: int) -> EndpointResult: ...


def client_config(settings: Settings) -> Config:
    """The botocore Config for the runtime client: explicit timeouts and standard-mode retries."""
    return Config(
        connect_timeout=settings.connect_timeout_s,
        read_timeout=settings.read_timeout_s,
        # NOTE: botocore's ``max_attempts`` counts retries only; ``total_max_attempts`` counts the first call too.
        retries={"mode": "standard", "total_max_attempts": settings.max_attempts},
        # NOTE: TCP keep-alive lets warm invocations reuse the connection instead of paying a TLS handshake.
        tcp_keepalive=True,
    )


def build_runtime_client(settings: Settings) -> Any:
    """Create the sagemaker-runtime client once per cold start (honours AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME)."""
    return boto3.client("sagemaker-runtime", config=client_config(settings))


def encode_request(image: bytes, top_k: int) -> bytes:
    """The InvokeEndpoint body: ``{"image": "<base64>", "top_k": n}`` (docs/CONTRACTS.md §3)."""
    return json.dumps({"image": base64.b64encode(image).decode("ascii"), "top_k": top_k}).encode("ascii")


class SageMakerPredictor:
    """Calls one SageMaker real-time endpoint with the JSON contract of ``training/inference.py``."""

    def __init__(self, client: Any, settings: Settings) -> None:
        self._client = client
        self._settings = settings

    def predict(self, image: bytes, top_k: int) -> EndpointResult:
        """Invoke the endpoint; every failure comes back as an ``errors.InferenceError``.

        Args:
            image: validated image bytes (JPEG or PNG).
            top_k: how many classes to return.

        Returns:
            The endpoint's ranked predictions for the image and the model version that produced them.

        Raises:
            InferenceError: a mapped client, service or transport error.
        """
        body = encode_request(image, top_k)
        if len(body) > self._settings.max_invoke_body_bytes:
            raise PayloadTooLarge(
                f"image of {len(image)} bytes is too large once base64-encoded for the model endpoint "
                f"({len(body)} > {self._settings.max_invoke_body_bytes} bytes)"
            )
        try:
            response = self._client.invoke_endpoint(
                EndpointName=self._settings.endpoint_name,
                Body=body,
                ContentType="application/json",
                Accept="application/json",
            )
            payload = response["Body"].read()
        except Exception as exc:  # the boundary to AWS: every failure is mapped once, in errors.py
            raise from_runtime_exception(exc) from exc
        return parse_response(payload, top_k)


def parse_response(payload: bytes, top_k: int) -> EndpointResult:
    """Validate the endpoint's JSON (one list of predictions per image) and keep the first image's top_k.

    Raises:
        BadGateway: the endpoint answered 200 with something that is not the contract's shape.
    """
    try:
        doc = json.loads(payload)
        rows = doc["predictions"][0]
        predictions = [Prediction(label=str(row["label"]), probability=float(row["probability"])) for row in rows]
        model_version = str(doc.get("model_version", "unknown"))
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise BadGateway(detail=f"unexpected endpoint response: {type(exc).__name__}: {exc}") from exc
    if not predictions or any(not 0.0 <= p.probability <= 1.0 for p in predictions):
        raise BadGateway(detail="endpoint response has no predictions or a probability outside 0..1")
    predictions.sort(key=lambda p: p.probability, reverse=True)
    return EndpointResult(predictions=predictions[:top_k], model_version=model_version)
