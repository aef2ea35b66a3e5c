"""One training job's run: N local host processes under the SageMaker training container contract.

Each host gets an /opt/ml-shaped tree at ``<home>/jobs/<job>/algo-N/`` (the toolkit's ``SAGEMAKER_BASE_DIR``
relocation), its channels copied from the local S3, the code from ``sagemaker_submit_directory`` (an ``s3://`` tarball,
as on SageMaker; never a local path), the ``SM_*`` environment, and its own HOME and caches. Host processes are started
through the runtime's process supervisor, so they die with the runtime even when it is killed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_aws import clock
from local_aws.chaos import ChaosConfigError
from local_aws.constants import REGION, TRAINING_DEFAULT_MAX_RUNTIME_S, TRAINING_LOG_GROUP
from local_aws.constants import TRAINING_STOP_GRACE_S as STOP_S
from local_aws.processes import ProcessSupervisor
from local_aws.s3.store import ObjectStore, S3Error
from local_aws.sagemaker.training import artifacts, spot, toolkit
from local_aws.sagemaker.training.entry import Entry, container_python, model_trainer_requirements
from local_aws.sagemaker.training.hosts import Host, JobRun, LogWriter, failure_reason, pump, wait_pumps
from local_aws.sagemaker.training.requirements import RequirementsError, job_python

LOGGER = logging.getLogger("local_aws.sagemaker")
CHECKPOINT_SYNC_S = 5.0
ENV_STOP_GRACE = "LOCAL_SAGEMAKER_STOP_GRACE"
# A parent launched by torchrun (or a test) must not leak its own rank into the hosts.
_RANK_VARIABLES = frozenset(
    {
        "RANK",
        "LOCAL_RANK",
        "WORLD_SIZE",
        "LOCAL_WORLD_SIZE",
        "GROUP_RANK",
        "MASTER_ADDR",
        "MASTER_PORT",
        "TORCHELASTIC_RUN_ID",
        "VIRTUAL_ENV",
    }
)


@dataclass
class JobContext:
    """What a job run needs from the runtime."""

    jobs_dir: Path
    cache_dir: Path
    supervisor: ProcessSupervisor
    logs: LogWriter
    stop_grace_s: float | None = None  # real seconds; None = $LOCAL_SAGEMAKER_STOP_GRACE, else AWS's 120 s, scaled
    echo: Callable[[str], None] | None = None
    gpus: int | None = None
    home: Path | None = None  # where config.toml ([chaos.spot]) is

    def stop_grace(self) -> float:
        """Real seconds between SIGTERM and SIGKILL when a job's hosts are stopped.

        StopTrainingJob: "SageMaker sends the algorithm the SIGTERM signal, which delays job termination for 120
        seconds" (API reference), so by default 120 AWS seconds through ``local_aws/clock.py``;
        ``LOCAL_SAGEMAKER_STOP_GRACE`` (real seconds) overrides it, e.g. to keep tests fast.
        """
        if self.stop_grace_s is not None:
            return self.stop_grace_s
        raw = os.environ.get(ENV_STOP_GRACE)
        if raw:
            try:
                return max(0.0, float(raw))
            except ValueError:
                LOGGER.warning("%s=%r is not a number of seconds; using AWS's %g s", ENV_STOP_GRACE, raw, STOP_S)
        return clock.real_seconds(STOP_S)


class Abort(Exception):
    """Ends a job early with a terminal status and reason."""

    def __init__(self, status: str, secondary: str, reason: str | None) -> None:
        super().__init__(reason or status)
        self.status = status
        self.secondary = secondary
        self.reason = reason


Update = Callable[..., None]


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (never the toolkit's fixed 7777, so jobs can run side by side)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _check_stop(run: JobRun) -> None:
    if run.shutdown:
        raise Abort("Failed", "Failed", "InternalServerError: the local runtime was shut down while this job ran.")
    if run.stop_requested.is_set():
        raise Abort("Stopped", "Stopped", None)


def run_job(run: JobRun, ctx: JobContext, objects: ObjectStore, update: Update) -> None:
    """Run the job to completion (returns) or raise ``Abort`` with its terminal status.

    A managed-spot job whose instances are reclaimed (``spot.py``) waits Interrupted for capacity and runs again on
    fresh hosts, from the checkpoints synced to S3.
    """
    try:
        while True:
            try:
                _attempt(run, ctx, objects, update)
                return
            except spot.Interrupted:
                _await_capacity(run, ctx, update)
    except ChaosConfigError as exc:
        raise Abort("Failed", "Failed", f"ClientError: local runtime chaos config: {exc}") from exc


def _await_capacity(run: JobRun, ctx: JobContext, update: Update) -> None:
    """Stay Interrupted for the capacity wait (a stop, a shutdown or MaxWaitTimeInSeconds ends it), then Starting."""
    deadline = time.monotonic() + clock.real_seconds(spot.capacity_wait_s(ctx.home))
    while time.monotonic() < deadline:
        _check_stop(run)
        if spot.max_wait_exceeded(run.record, time.time()):
            update(run, status="Stopping", secondary="Stopping")
            raise Abort("Stopped", "MaxWaitTimeExceeded", None)
        run.stop_requested.wait(timeout=min(0.2, max(0.0, deadline - time.monotonic())))
    _check_stop(run)
    update(run, secondary="Starting")


def _attempt(run: JobRun, ctx: JobContext, objects: ObjectStore, update: Update) -> None:
    """One run of the job on fresh hosts: Downloading, Training, Uploading (or ``spot.Interrupted``)."""
    record = run.record
    name = record["TrainingJobName"]
    count = int(record["ResourceConfig"].get("InstanceCount", 1))
    instance_type = record["ResourceConfig"].get("InstanceType", "ml.m5.large")
    hosts = [f"algo-{i + 1}" for i in range(count)]
    job_dir = ctx.jobs_dir / name
    if job_dir.exists():
        shutil.rmtree(job_dir)
    layouts = [toolkit.HostLayout(job_dir / host) for host in hosts]
    channels = record["InputDataConfig"]
    raw_hps = record["HyperParameters"]
    _, sm_hps, framework = toolkit.split_hyperparameters(toolkit.decode_hyperparameters(raw_hps))
    environment = dict(record.get("Environment") or {})
    if ctx.gpus is None:
        ctx.gpus = toolkit.num_gpus()
    for host, layout in zip(hosts, layouts, strict=True):
        layout.create()
        toolkit.write_input_config(layout, host, hosts, instance_type, raw_hps, channels)
    _check_stop(run)
    run.attempt_started = time.time()
    first = {} if "TrainingStartTime" in record else {"TrainingStartTime": run.attempt_started}
    update(run, secondary="Downloading", **first)
    try:
        artifacts.download_channels(objects, channels, layouts)
    except (S3Error, OSError) as exc:
        raise Abort("Failed", "Failed", f"ClientError: Data download failed: {exc}") from exc
    entry = _prepare_entry(record, sm_hps, environment, layouts, objects)
    checkpoint_dirs = artifacts.prepare_checkpoints(record, layouts, objects)
    _check_stop(run)
    try:
        if entry.container is not None:
            # The container form runs its own interpreter lookup and pip (see entry.container_python).
            python = job_python(model_trainer_requirements(layouts[0]), ctx.cache_dir, ctx.supervisor)
        elif entry.is_python:
            python = job_python(layouts[0].code / "requirements.txt", ctx.cache_dir, ctx.supervisor)
        else:
            python = None
    except RequirementsError as exc:
        raise Abort("Failed", "Failed", f"AlgorithmError: InstallRequirementsError: {exc}") from exc
    shims = container_python(job_dir, python) if entry.container is not None and python is not None else None
    update(run, secondary="Training")
    port = free_port()
    torchrun = toolkit.distribution_enabled(framework, "sagemaker_torch_distributed_enabled")
    procs_per_host = int(framework.get("sagemaker_mpi_num_of_processes_per_host") or 1)
    stamp = int(record["CreationTime"])
    region = str(sm_hps.get("sagemaker_region") or REGION)
    for index, (host, layout) in enumerate(zip(hosts, layouts, strict=True)):
        env = _host_env(
            record, host, hosts, layout, instance_type, ctx.gpus, port, environment, checkpoint_dirs, index, region
        )
        # matplotlib builds its font cache in MPLCONFIGDIR (~1.5 s); one copy in the runtime's own cache serves every
        # job (still never the user's ~/.cache).
        env["MPLCONFIGDIR"] = str(ctx.cache_dir / "matplotlib")
        if python is not None and python.bin_dir:
            env["PATH"] = os.pathsep.join([python.bin_dir, env.get("PATH", "")])
        if shims is not None:
            env["PATH"] = os.pathsep.join([str(shims), env.get("PATH", "")])
        user_args = json.loads(env["SM_USER_ARGS"])
        interpreter = python.executable if python is not None else sys.executable
        cmd = entry.command(interpreter, user_args, torchrun, count, procs_per_host, index, port, layout.base)
        proc = ctx.supervisor.spawn(
            cmd,
            cwd=layout.code,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            owner=f"training-job/{name}",
            kind="training-host",
        )
        host_run = Host(host, layout, proc, f"{name}/{host}-{stamp}")
        # SageMaker gives every host its stream when it starts, whether or not the host ever writes a line.
        ctx.logs.append(TRAINING_LOG_GROUP, host_run.stream, [])  # no events: creates the stream
        host_run.pump = threading.Thread(
            target=pump, args=(run, host_run, ctx.logs, ctx.echo), daemon=True, name=f"log-{name}-{host}"
        )
        host_run.pump.start()
        run.hosts.append(host_run)
    _monitor(run, ctx, objects, update, checkpoint_dirs)


def _prepare_entry(
    record: dict[str, Any],
    sm_hps: dict[str, Any],
    environment: dict[str, str],
    layouts: list[toolkit.HostLayout],
    objects: ObjectStore,
) -> Entry:
    spec = record["AlgorithmSpecification"]
    if spec.get("ContainerEntrypoint"):
        # The form the sagemaker SDK v3 ModelTrainer sends: an explicit command, code in the 'code' channel.
        command = [*spec["ContainerEntrypoint"], *(spec.get("ContainerArguments") or [])]
        for layout in layouts:
            toolkit.relocate_channel_scripts(layout)
        return Entry(None, command)  # relocated per host in Entry.command
    program = environment.get("SAGEMAKER_PROGRAM") or sm_hps.get("sagemaker_program")
    submit = sm_hps.get("sagemaker_submit_directory")
    try:
        for layout in layouts:
            artifacts.install_code(objects, submit, layout)
    except artifacts.DataError as exc:
        raise Abort("Failed", "Failed", str(exc)) from exc
    if not program:
        raise Abort(
            "Failed",
            "Failed",
            'ClientError: no entry point: set hyperparameter sagemaker_program (e.g. "train.py"), environment '
            "SAGEMAKER_PROGRAM, or AlgorithmSpecification.ContainerEntrypoint.",
        )
    program = str(program)
    if not (layouts[0].code / program).is_file():
        raise Abort(
            "Failed", "Failed", f"ClientError: entry point {program!r} not found in sagemaker_submit_directory."
        )
    return Entry(program)


def _host_env(
    record: dict[str, Any],
    host: str,
    hosts: list[str],
    layout: toolkit.HostLayout,
    instance_type: str,
    gpus: int,
    port: int,
    environment: dict[str, str],
    checkpoint_dirs: list[Path],
    index: int,
    region: str,
) -> dict[str, str]:
    name = record["TrainingJobName"]
    env = {k: v for k, v in os.environ.items() if k not in _RANK_VARIABLES and not k.startswith(("SM_", "AWS_"))}
    env.update(environment)
    sm_env = toolkit.training_env(
        layout,
        job_name=name,
        current_host=host,
        hosts=hosts,
        instance_type=instance_type,
        raw_hyperparameters=record["HyperParameters"],
        channels=record["InputDataConfig"],
        gpus=gpus,
    )
    if checkpoint_dirs:
        # Local-only relocation: CheckpointConfig.LocalPath (/opt/ml/checkpoints) lives under the host's base dir.
        sm_env["SM_CHECKPOINT_DIR"] = str(checkpoint_dirs[index])
    env.update(sm_env)
    env.update(toolkit.container_home(layout))
    env.update(
        {
            "SAGEMAKER_BASE_DIR": str(layout.base),
            "TRAINING_JOB_NAME": name,
            "TRAINING_JOB_ARN": record["TrainingJobArn"],
            "SAGEMAKER_JOB_NAME": name,
            "SAGEMAKER_REGION": region,
            "CURRENT_HOST": host,
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "NCCL_DEBUG": "WARN",
            "NCCL_IB_DISABLE": "1",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(p for p in (str(layout.code), env.get("PYTHONPATH", "")) if p),
        }
    )
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _monitor(run: JobRun, ctx: JobContext, objects: ObjectStore, update: Update, checkpoint_dirs: list[Path]) -> None:
    record = run.record
    max_runtime = float(record["StoppingCondition"].get("MaxRuntimeInSeconds") or TRAINING_DEFAULT_MAX_RUNTIME_S)
    training_since = time.monotonic()  # this attempt's hosts have just started
    last_sync = time.monotonic()
    while True:
        codes = [h.proc.poll() for h in run.hosts]
        failed = [h for h, c in zip(run.hosts, codes, strict=True) if c not in (None, 0)]
        if failed:
            _terminate(run, ctx, objects, checkpoint_dirs)
            raise Abort("Failed", "Failed", failure_reason(run, failed[0]))
        if all(c == 0 for c in codes):
            break
        if run.shutdown:
            _terminate(run, ctx, objects, checkpoint_dirs)
            _check_stop(run)
        if run.stop_requested.is_set():
            _stop_and_upload(run, ctx, objects, update, checkpoint_dirs, "Stopped")
        # Limits in AWS seconds (local_aws/clock.py): the instances' running time, and a spot job's whole wait.
        if clock.aws_seconds(run.billable_real_s(time.time())) > max_runtime:
            update(run, status="Stopping", secondary="Stopping")
            _stop_and_upload(run, ctx, objects, update, checkpoint_dirs, "MaxRuntimeExceeded")
        if spot.max_wait_exceeded(record, time.time()):
            update(run, status="Stopping", secondary="Stopping")
            _stop_and_upload(run, ctx, objects, update, checkpoint_dirs, "MaxWaitTimeExceeded")
        if spot.interruption_due(
            record, run.interruptions, clock.aws_seconds(time.monotonic() - training_since), ctx.home
        ):
            _interrupt(run, ctx, objects, update, checkpoint_dirs)
        if checkpoint_dirs and time.monotonic() - last_sync > CHECKPOINT_SYNC_S:
            artifacts.sync_checkpoints(record, checkpoint_dirs, objects)
            last_sync = time.monotonic()
        time.sleep(0.2)
    wait_pumps(run)
    artifacts.sync_checkpoints(record, checkpoint_dirs, objects)
    update(run, secondary="Uploading")
    _upload(run, objects, ctx)


def _stop_and_upload(
    run: JobRun, ctx: JobContext, objects: ObjectStore, update: Update, checkpoint_dirs: list[Path], secondary: str
) -> None:
    _terminate(run, ctx, objects, checkpoint_dirs)
    # SageMaker keeps what a stopped job saved in /opt/ml/model.
    if any(any(h.layout.model.iterdir()) for h in run.hosts):
        _upload(run, objects, ctx)
    raise Abort("Stopped", secondary, None)


def _interrupt(run: JobRun, ctx: JobContext, objects: ObjectStore, update: Update, checkpoint_dirs: list[Path]) -> None:
    """The spot instances are reclaimed: stop the hosts (their checkpoints synced), stop billing, go Interrupted."""
    LOGGER.info("training job %s: spot interruption", run.record["TrainingJobName"])
    _terminate(run, ctx, objects, checkpoint_dirs)
    run.kill_all(ctx.supervisor)
    now = time.time()
    run.ran_real_s = run.billable_real_s(now)
    run.attempt_started = None
    run.interruptions += 1
    run.hosts = []
    update(run, secondary="Interrupted")
    raise spot.Interrupted


def _terminate(run: JobRun, ctx: JobContext, objects: ObjectStore, checkpoint_dirs: list[Path]) -> None:
    """Stop every host, then sync the checkpoints, so what a host saved before it stopped reaches S3.

    All hosts at once: SIGTERM, SIGKILL after the grace period; the log pumps finish before the sync.
    """
    ctx.supervisor.stop_many([h.proc for h in run.hosts], ctx.stop_grace())
    wait_pumps(run)
    artifacts.sync_checkpoints(run.record, checkpoint_dirs, objects)


def _upload(run: JobRun, objects: ObjectStore, ctx: JobContext) -> None:
    staging = ctx.jobs_dir / run.record["TrainingJobName"] / ".artifacts"
    artifacts.upload_model(run.record, [h.layout for h in run.hosts], objects, staging)
