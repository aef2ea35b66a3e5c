"""The sagemaker-runtime adapter: one InvokeEndpoint call behind a small Protocol."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

import boto3
from botocore.config import Config

from config import Settings
from errors import BadGateway, from_runtime_exception

# Sniffed image format → the InvokeEndpoint ContentType the container reads as raw bytes (docs/CONTRACTS.md §3).
IMAGE_CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png"}


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

    def predict(self, image: bytes, image_format: str, top_k: int) -> EndpointResult: ...


def client_config(settings: Settings) -> Config:
    """The botocore Config for the runtime client: explicit timeouts and standard-mode retries."""
    return Config(
        connect_timeout=settings.connect_timeout_s,
        read_timeout=settings.read_timeout_s,
        # NOTE: botocore's ``max_attempts`` counts retries only; ``total_max_attempts`` counts the first call too.
        retries={"mode": "standard", "total_max_attempts": settings.max_attempts},
        # NOTE: botocore keeps HTTP/1.1 connections alive in the client's pool, so warm invocations reuse one
        # connection (no TCP/TLS handshake); TCP keep-alive stops an idle frozen sandbox's socket from going stale.
        # One request at a time per sandbox needs one pooled connection.
        tcp_keepalive=True,
        max_pool_connections=1,
    )


def build_runtime_client(settings: Settings) -> Any:
    """Create the sagemaker-runtime client once per cold start (honours AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME)."""
    return boto3.client("sagemaker-runtime", config=client_config(settings))


def content_type_for(image_format: str, top_k: int) -> str:
    """The ContentType of a raw image body: its media type, with ``top_k`` as a parameter (docs/CONTRACTS.md §3).

    NOTE: the bytes go to the endpoint as they came, never base64-encoded again (a third larger); the container
    reads ``top_k`` from the media-type parameter because a raw body has nowhere else to carry it.
    """
    return f"{IMAGE_CONTENT_TYPES[image_format]}; top_k={top_k}"


class SageMakerPredictor:
    """Calls one SageMaker real-time endpoint with the JSON contract of ``training/inference.py``."""

    def __init__(self, client: Any, settings: Settings) -> None:
        self._client = client
        self._settings = settings

    def predict(self, image: bytes, image_format: str, top_k: int) -> EndpointResult:
        """Invoke the endpoint with the image bytes unchanged; every failure comes back as an ``errors.InferenceError``.

        Args:
            image: validated image bytes, no larger than the function's image limit (below the InvokeEndpoint cap).
            image_format: ``JPEG`` or ``PNG``, as sniffed from the bytes.
            top_k: how many classes to return.

        Returns:
            The endpoint's ranked predictions for the image and the model version that produced them.

        Raises:
            InferenceError: a mapped client, service or transport error.
        """
        try:
            response = self._client.invoke_endpoint(
                EndpointName=self._settings.endpoint_name,
                Body=image,
                ContentType=content_type_for(image_format, top_k),
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
