"""A tiny nearest-centroid classifier, trained in well under a second with the standard library only.

Runs under both SageMaker training contracts the SDKs use: the training toolkit's (SDK v2 ``PyTorch``/``Estimator``:
``--key value`` hyperparameters, ``SM_*`` environment) and the ModelTrainer's drivers (SDK v3: the same ``SM_*`` names
from ``sm_training.env``). Input: every ``*.csv`` in the ``training`` channel, rows ``label,x1,x2``. Output in the model
dir: ``model.json`` (the centroids) and ``code/centroid_inference.py`` (the handler the endpoint loads), the layout
``model.tar.gz`` needs for the PyTorch inference contract. ``requirements.txt`` names a package the local runtime
already has, so installing it works offline.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import sys
from pathlib import Path


def parse_args() -> argparse.Namespace:
    """Hyperparameters as the toolkit renders them, paths from the ``SM_*`` environment."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--tag", default="none")
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "model"))
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAINING", "data"))
    return parser.parse_args()


def load_rows(directory: Path) -> list[tuple[str, float, float]]:
    """All ``label,x1,x2`` rows of the channel's CSV files."""
    rows: list[tuple[str, float, float]] = []
    for path in sorted(directory.rglob("*.csv")):
        with path.open(newline="") as handle:
            for label, x1, x2 in csv.reader(handle):
                rows.append((label, float(x1), float(x2)))
    if not rows:
        raise SystemExit(f"no training rows under {directory}")
    return rows


def main() -> None:
    """Fit the centroids, print the metrics lines, write the model and its handler."""
    args = parse_args()
    # Which interpreter the platform started (the tests check it is the runtime's requirements layer).
    print(f"CENTROID python={sys.prefix}", flush=True)
    rows = load_rows(Path(args.train))
    labels = sorted({label for label, _, _ in rows})
    centroids: dict[str, list[float]] = {}
    for label in labels:
        points = [(x1, x2) for lab, x1, x2 in rows if lab == label]
        centroids[label] = [sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points)]
    for epoch in range(1, args.epochs + 1):
        correct = 0
        loss = 0.0
        for label, x1, x2 in rows:
            distances = {lab: math.dist((x1, x2), c) for lab, c in centroids.items()}
            correct += min(distances, key=lambda lab: distances[lab]) == label
            loss += distances[label]
        print(f"CENTROID epoch={epoch} loss={loss / len(rows):.6f} accuracy={correct / len(rows):.6f}", flush=True)
    model_dir = Path(args.model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "model.json").write_text(json.dumps({"labels": labels, "centroids": centroids, "tag": args.tag}))
    code = model_dir / "code"
    code.mkdir(exist_ok=True)
    shutil.copyfile(Path(__file__).with_name("centroid_inference.py"), code / "centroid_inference.py")
    print(f"CENTROID wrote {sorted(p.name for p in model_dir.iterdir())} to {model_dir}", flush=True)


if __name__ == "__main__":
    main()
