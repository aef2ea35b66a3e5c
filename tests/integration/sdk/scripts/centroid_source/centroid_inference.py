"""The endpoint handler of the centroid model (inference-toolkit handler contract, standard library only).

Request: ``application/json`` ``{"instances": [[x1, x2], ...]}`` (or a bare list of points). Response:
``{"predictions": [[p_label0, p_label1, ...], ...], "labels": [...]}``: one softmax row over the negative
distances to the centroids per point.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def model_fn(model_dir: str) -> dict[str, Any]:
    """Load ``model.json`` from the extracted model.tar.gz."""
    return json.loads((Path(model_dir) / "model.json").read_text())


def input_fn(body: str | bytes, content_type: str) -> list[list[float]]:
    """JSON points only; anything else is the caller's error."""
    if content_type != "application/json":
        raise ValueError(f"unsupported content type {content_type!r}")
    doc = json.loads(body)
    points = doc["instances"] if isinstance(doc, dict) else doc
    return [[float(v) for v in point] for point in points]


def predict_fn(points: list[list[float]], model: dict[str, Any]) -> dict[str, Any]:
    """One probability row per point, columns in ``labels`` order."""
    labels = model["labels"]
    rows = []
    for point in points:
        scores = [-math.dist(point, model["centroids"][label]) for label in labels]
        top = max(scores)
        weights = [math.exp(s - top) for s in scores]
        total = sum(weights)
        rows.append([w / total for w in weights])
    return {"predictions": rows, "labels": labels}


def output_fn(prediction: dict[str, Any], accept: str) -> tuple[str, str]:
    """Always JSON."""
    return json.dumps(prediction), "application/json"
