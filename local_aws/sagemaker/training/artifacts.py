"""Moving a training job's data between the local S3 and its hosts' /opt/ml trees, as SageMaker does.

Channels are copied in (all objects, or a disjoint 1/N per host for ``ShardedByS3Key``), the submit directory is
unpacked into ``code/``, CheckpointConfig.LocalPath is seeded from and synced back to its S3 prefix, and ``model/``
(merged across hosts) and ``output/data`` are packed into ``model.tar.gz`` and ``output.tar.gz``.
"""

from __future__ import annotations

import contextlib
import shutil
import tarfile
from pathlib import Path
from typing import Any

from local_aws.s3.store import ObjectStore, S3Error, parse_uri
from local_aws.sagemaker.training import toolkit


class DataError(Exception):
    """A channel, the code or a checkpoint cannot be moved; the message is the job's FailureReason."""


def output_prefix(record: dict[str, Any]) -> str:
    """Where a job's artifacts go: ``<S3OutputPath>/<job>/output`` (model.tar.gz and output.tar.gz)."""
    return f"{record['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{record['TrainingJobName']}/output"


def model_artifact_uri(record: dict[str, Any]) -> str:
    """Where the job's model.tar.gz goes: ``<S3OutputPath>/<job>/output/model.tar.gz`` (the SDKs compute the same)."""
    return f"{output_prefix(record)}/model.tar.gz"


def install_code(objects: ObjectStore, submit: Any, layout: toolkit.HostLayout) -> None:
    if not submit:
        return  # the toolkit falls back to <base>/code, which stays empty here
    source = str(submit)
    # NOTE: on SageMaker the submit directory is an S3 object the container downloads; a local path would let a
    # caller run any code on this machine, so only s3:// (the local S3) is accepted.
    if not source.startswith("s3://"):
        raise DataError(
            f"ClientError: sagemaker_submit_directory {source!r} must be an s3:// URI of a tar.gz in the local S3."
        )
    try:
        bucket, key = parse_uri(source)
        path = objects.object_path(bucket, key)
    except S3Error as exc:
        raise DataError(f"ClientError: sagemaker_submit_directory: {exc.message}") from exc
    if not tarfile.is_tarfile(path):
        raise DataError(f"ClientError: sagemaker_submit_directory {source!r} is not a tar.gz archive.")
    with tarfile.open(path) as tar:
        tar.extractall(layout.code, filter="data")


def download_channels(objects: ObjectStore, channels: list[dict[str, Any]], layouts: list[toolkit.HostLayout]) -> None:
    for channel in channels:
        s3 = channel["DataSource"]["S3DataSource"]
        bucket, prefix = parse_uri(s3["S3Uri"])
        found = list(objects.iter_objects(bucket, prefix))
        if not found:
            raise FileNotFoundError(f"no objects found under {s3['S3Uri']} for channel {channel['ChannelName']!r}")
        sharded = s3.get("S3DataDistributionType") == "ShardedByS3Key"
        for index, layout in enumerate(layouts):
            dest = layout.data / channel["ChannelName"]
            # ShardedByS3Key: each host receives a disjoint 1/N of the objects, by key order.
            mine = found[index :: len(layouts)] if sharded else found
            for info in mine:
                rel = info.key[len(prefix) :].lstrip("/") if info.key != prefix else Path(info.key).name
                target = dest / (rel or Path(info.key).name)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(info.path, target)


def prepare_checkpoints(record: dict[str, Any], layouts: list[toolkit.HostLayout], objects: ObjectStore) -> list[Path]:
    checkpoint = record.get("CheckpointConfig")
    if not checkpoint:
        return []
    local = checkpoint.get("LocalPath") or "/opt/ml/checkpoints"
    dirs = []
    for layout in layouts:
        # Every host gets its own copy of LocalPath inside its base dir (/opt/ml/x → <base>/x).
        relocated = toolkit.relocate(local, layout.base)
        target = Path(relocated) if relocated != local else layout.base / local.lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(S3Error):  # no checkpoint yet, or its bucket does not exist yet
            objects.download_prefix(checkpoint["S3Uri"].rstrip("/") + "/", target)
        dirs.append(target)
    return dirs


def sync_checkpoints(record: dict[str, Any], checkpoint_dirs: list[Path], objects: ObjectStore) -> None:
    """Upload new or changed checkpoint files (SageMaker syncs CheckpointConfig.LocalPath to S3Uri continuously)."""
    checkpoint = record.get("CheckpointConfig")
    if not checkpoint or not checkpoint_dirs:
        return
    bucket, prefix = parse_uri(checkpoint["S3Uri"])
    prefix = prefix.rstrip("/")
    for directory in checkpoint_dirs:
        for file in sorted(p for p in directory.rglob("*") if p.is_file() and not p.name.startswith(".")):
            key = (
                f"{prefix}/{file.relative_to(directory).as_posix()}"
                if prefix
                else file.relative_to(directory).as_posix()
            )
            stat = file.stat()
            try:
                current = objects.head(bucket, key)
                if current.size == stat.st_size and current.last_modified.timestamp() >= stat.st_mtime:
                    continue
            except S3Error:
                pass
            with contextlib.suppress(OSError, S3Error):
                objects.put_file(bucket, key, file)


def upload_model(
    record: dict[str, Any], layouts: list[toolkit.HostLayout], objects: ObjectStore, staging: Path
) -> None:
    staging.mkdir(parents=True, exist_ok=True)
    model_tar = staging / "model.tar.gz"
    # Files from every host's model dir are merged into one archive, as on SageMaker.
    with tarfile.open(model_tar, "w:gz") as tar:
        added: set[str] = set()
        for layout in layouts:
            for path in sorted(layout.model.rglob("*")):
                rel = path.relative_to(layout.model).as_posix()
                if rel not in added:
                    added.add(rel)
                    tar.add(path, arcname=rel, recursive=False)
    bucket, key = parse_uri(model_artifact_uri(record))
    objects.put_file(bucket, key, model_tar)
    output_tar = staging / "output.tar.gz"
    with tarfile.open(output_tar, "w:gz") as tar:
        for layout in layouts:
            data = layout.output_data
            for path in sorted(data.rglob("*")):
                tar.add(path, arcname=path.relative_to(data).as_posix(), recursive=False)
    bucket, key = parse_uri(f"{output_prefix(record)}/output.tar.gz")
    objects.put_file(bucket, key, output_tar)
