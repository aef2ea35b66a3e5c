"""The demo pipeline on the local target: the embedded dataset, a recipe that trains in seconds, and predictions.

Everything here goes through the stack's own APIs (S3 uploads, StartExecution, the REST API), exactly as a user's
tools would; nothing reaches into the runtime's internals.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from local_aws.constants import TRAINING_DIR
from ops.data import DEFAULT_CODE_PREFIX, upload_data, upload_source
from ops.predict import format_predictions, predict
from ops.target import Target
from tools import dataset
from tools.source_package import package_source

# Tiny but real: the demo must finish in a few minutes on 2 CPU cores, so it trains the small CNN on 16 px digits.
# This is the recipe tests/integration/training proves (>= 95 % test top-1): flips hurt digits, so augment=crop;
# batch 16 per instance keeps the global batch at 32 with the demo's 2 instances.
DEMO_ARCH = "smallcnn"
DEMO_IMAGE_SIZE = 16
DEMO_EPOCHS = 6
DEMO_BATCH_SIZE = 16
DEMO_LEARNING_RATE = "0.1"
DEMO_AUGMENT = "crop"
DEMO_PER_CLASS = 180  # at most this many images per class (digits has ~180: the whole set, 70/15/15 split)
# The embedded dataset is 10 handwritten-digit classes; the demo gate is set for it, not for 133 dog breeds.
DEMO_MIN_TEST_ACCURACY = 0.8


def execution_input(
    training_data: str,
    source_dir: str,
    instance_count: int = 1,
    epochs: int = DEMO_EPOCHS,
    hpo: bool = False,
    arch: str = DEMO_ARCH,
    image_size: int = DEMO_IMAGE_SIZE,
    min_test_accuracy: float = DEMO_MIN_TEST_ACCURACY,
    extra_hyperparameters: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The execution input of the demo, shaped like the cloud one (docs/CONTRACTS.md §6)."""
    hyperparameters = {
        "arch": arch,
        "epochs": str(epochs),
        "batch-size": str(DEMO_BATCH_SIZE),
        "learning-rate": DEMO_LEARNING_RATE,
        "image-size": str(image_size),
        "augment": DEMO_AUGMENT,
        "pretrained": "none",
        "num-workers": "0",
        "patience": str(max(epochs, 1)),
    }
    hyperparameters.update({k: str(v) for k, v in (extra_hyperparameters or {}).items()})
    return {
        "TrainingData": training_data,
        "SourceDir": source_dir,
        "Hyperparameters": hyperparameters,
        "Training": {
            "InstanceType": "ml.m5.xlarge",
            "InstanceCount": instance_count,
            "UseSpot": False,
            "MaxRuntimeSeconds": 3600,
            "MaxWaitSeconds": 3600,
            "VolumeSizeGB": 5,
        },
        "Tuning": {
            "Enabled": hpo,
            "Strategy": "Random",
            "MaxJobs": 2,
            "MaxParallelJobs": 1,
            "ContinuousRanges": [{"Name": "learning-rate", "MinValue": "0.005", "MaxValue": "0.05"}],
            "CategoricalRanges": [],
            "IntegerRanges": [],
        },
        "Deploy": {
            "InstanceType": "ml.m5.large",
            "InitialInstanceCount": 1,
            "MinCapacity": 1,
            "MaxCapacity": 2,
            "TargetInvocationsPerInstance": 70,
        },
        "Gate": {"MinTestAccuracy": min_test_accuracy},
        "Polling": {"IntervalSeconds": 1, "MaxAttempts": 1800},
    }


def rendered_dir(cache: Path, image_size: int, per_class: int) -> Path:
    """Where ``prepare`` renders the embedded dataset (``train/ valid/ test/``) for these settings."""
    return cache / "datasets" / f"digits-{image_size}px-{per_class}"


def prepare(
    target: Target, cache: Path, say: Callable[[str], None], *, per_class: int = DEMO_PER_CLASS, image_size: int
) -> tuple[str, str]:
    """Render the embedded dataset, upload it and the packaged ``training/`` to the stack's buckets.

    Returns:
        (TrainingData URI, SourceDir URI).
    """
    s3 = target.client("s3")
    rendered = rendered_dir(cache, image_size, per_class)
    if not (rendered / dataset.MANIFEST).is_file():
        dataset.render_digits(rendered, size=max(image_size, 8), per_class=per_class)
    counts = {split: sum(1 for _ in (rendered / split).rglob("*.jpg")) for split in dataset.SPLITS}
    bucket = target.output("DataBucketName")
    prefix = f"datasets/embedded-digits-{image_size}px/"
    uploaded, unchanged = upload_data(s3, rendered, bucket, prefix)
    say(
        f"dataset → s3://{bucket}/{prefix} ({counts['train']} train / {counts['valid']} valid / {counts['test']} test "
        f"images, 10 classes; {uploaded} uploaded, {unchanged} unchanged)"
    )
    source_uri, _ = upload_source(
        s3, package_source(TRAINING_DIR), target.output("ArtifactBucketName"), DEFAULT_CODE_PREFIX
    )
    say(f"training code → {source_uri}")
    return f"s3://{bucket}/{prefix}", source_uri


def sample_images(cache: Path, test_root: Path | None) -> list[tuple[str, bytes, str]]:
    """Two real photos (scikit-learn's) and three held-out digit scans, as (label, bytes, content type)."""
    images: list[tuple[str, bytes, str]] = []
    for name in dataset.SAMPLE_PHOTOS:
        path = dataset.sample_photo(cache / "photos" / name, name=name)
        images.append((f"{name} (scikit-learn sample photo)", Path(path).read_bytes(), "image/jpeg"))
    if test_root is not None and test_root.is_dir():
        for class_dir in sorted(p for p in test_root.iterdir() if p.is_dir())[:3]:
            first = next(iter(sorted(class_dir.glob("*.jpg"))), None)
            if first is not None:
                images.append((f"{class_dir.name}/{first.name} (held-out test scan)", first.read_bytes(), "image/jpeg"))
    return images


def predictions(
    target: Target, images: list[tuple[str, bytes, str]], say: Callable[[str], None], api_key: str | None = None
) -> int:
    """Predict each image through the REST API (SigV4-signed, or with the API key, as on AWS); returns failures."""
    failed = 0
    for label, data, content_type in images:
        status, doc = predict(target, data, content_type, top_k=5, api_key=api_key)
        if status != 200:
            failed += 1
            say(f"✗ {label}: HTTP {status} {json.dumps(doc) if not isinstance(doc, str) else doc}")
            continue
        say(f"POST {target.api_url}/predict  {label} → 200, model {doc.get('model_version')}")
        for line in format_predictions(doc, 5):
            say(line)
    return failed
