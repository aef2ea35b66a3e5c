"""Inference handlers for tiny_train.py's model (pure Python, so endpoint workers start fast in tests)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


class BadRequest(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.status_code = 400
        self.message = message


def model_fn(model_dir: str) -> dict[str, Any]:
    if os.environ.get("TINY_FAIL_LOAD"):
        raise RuntimeError("model refuses to load: " + os.environ["TINY_FAIL_LOAD"])
    model = json.loads((Path(model_dir) / "model.json").read_text())
    model["pid"] = os.getpid()
    model["instance_pid"] = os.getppid()  # a model worker's parent is its instance's model server
    return model


def input_fn(body: Any, content_type: str) -> list[float]:
    if content_type != "application/json":
        raise BadRequest(f"unsupported content type {content_type}")
    doc = json.loads(body)
    if not isinstance(doc.get("x"), list):
        raise BadRequest("field 'x' must be a list of numbers")
    return [float(v) for v in doc["x"]]


def predict_fn(data: list[float], model: dict[str, Any], context: Any) -> dict[str, Any]:
    # The trailing context argument exercises the toolkit's arity rule.
    if os.environ.get("TINY_SLOW"):
        time.sleep(float(os.environ["TINY_SLOW"]))
    if any(v < 0 for v in data):
        raise ValueError("negative input")
    return {
        "prediction": sum(data) * model["scale"] + model["total"],
        "pid": model["pid"],
        "instance_pid": model["instance_pid"],
        "version": os.environ.get("MODEL_VERSION", "v1"),
        "model_dir": context.system_properties["model_dir"],
    }


def output_fn(prediction: dict[str, Any], accept: str) -> tuple[str, str]:
    return json.dumps(prediction), "application/json"
