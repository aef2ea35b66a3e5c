"""A training job's report files (curves, confusion matrix, metrics), fetched from its ``output.tar.gz`` in S3.

train.py writes ``training_curves.png``, ``confusion_matrix.png`` and ``metrics.json`` to SM_OUTPUT_DATA_DIR, which
SageMaker packs into ``<S3OutputPath>/<job>/output/output.tar.gz`` next to model.tar.gz
(docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-output.html). Reading them back through
DescribeTrainingJob and S3 works the same on both targets, so ``up`` can say where they are on this machine.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ops.target import Target

REPORT_FILES = ("training_curves.png", "confusion_matrix.png", "metrics.json")


def _split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def fetch_reports(target: Target, job_name: str, dest: Path) -> dict[str, Path]:
    """Extract the job's report files into ``dest/<job>/``; returns {file name: path} (empty if none exist).

    Only the known report names are extracted (no paths from the archive are trusted).
    """
    sm: Any = target.client("sagemaker")
    s3: Any = target.client("s3")
    try:
        model_uri = sm.describe_training_job(TrainingJobName=job_name)["ModelArtifacts"]["S3ModelArtifacts"]
        bucket, key = _split_s3(str(model_uri).rsplit("/", 1)[0] + "/output.tar.gz")
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except (ClientError, BotoCoreError, KeyError):
        return {}
    found: dict[str, Path] = {}
    out_dir = dest / job_name
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
        for member in archive.getmembers():
            name = Path(member.name).name
            if name in REPORT_FILES and member.isfile() and name not in found:
                extracted = archive.extractfile(member)
                if extracted is None:
                    continue
                out_dir.mkdir(parents=True, exist_ok=True)
                path = out_dir / name
                path.write_bytes(extracted.read())
                found[name] = path
    return found
