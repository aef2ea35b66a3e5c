"""Training jobs: N local host processes under the SageMaker training container contract.

Each host gets an /opt/ml-shaped tree at ``<home>/jobs/<job>/algo-N/`` (the toolkit's ``SAGEMAKER_BASE_DIR``
relocation), channels copied from local S3, the code from ``sagemaker_submit_directory`` and the ``SM_*`` env. The
job walks the real status machine (InProgress: Starting → Downloading → Training → Uploading; then Completed, Failed
or Stopped) in real time and persists every transition.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from local_runtime.s3 import LocalS3, S3UriError, parse_uri
from local_runtime.sagemaker import toolkit
from local_runtime.sagemaker.errors import arn, resource_in_use, validation
from local_runtime.sagemaker.store import Store

LOGGER = logging.getLogger("local_runtime.sagemaker")

STATUS_MESSAGES = {
    "Starting": "Preparing the instances for training",
    "Downloading": "Downloading input data",
    "Training": "Training image download completed. Training in progress.",
    "Uploading": "Uploading generated training model",
    "Completed": "Training job completed",
    "Failed": "Training job failed",
    "Stopping": "Stopping the training job",
    "Stopped": "Training job stopped",
    "MaxRuntimeExceeded": "Training job stopped because it exceeded MaxRuntimeInSeconds",
}
TERMINAL = ("Completed", "Failed", "Stopped")
# SageMaker gives a stopped container 120 s between SIGTERM and SIGKILL; locally a short grace keeps tests fast.
STOP_GRACE_S = float(os.environ.get("LOCAL_SAGEMAKER_STOP_GRACE", "10"))
CHECKPOINT_SYNC_S = 5.0
SHUTDOWN_REASON = (
    "InternalServerError: the local runtime was shut down while this job was running; its host processes were "
    "stopped. Start a new training job (checkpoints, if configured, were synced)."
)


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (never the toolkit's fixed 7777, so jobs can run side by side)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _now() -> float:
    return time.time()


class _Abort(Exception):
    """Ends a job early with a terminal status and reason."""

    def __init__(self, status: str, secondary: str, reason: str | None) -> None:
        super().__init__(reason or status)
        self.status = status
        self.secondary = secondary
        self.reason = reason


class _Host:
    def __init__(self, name: str, layout: toolkit.HostLayout, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.name = name
        self.layout = layout
        self.proc = proc
        self.log = log
        self.tail: deque[str] = deque(maxlen=60)
        self.pump: threading.Thread | None = None


class _Job:
    """In-memory companion of a persisted job record: processes, stop flags, metric parser."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record
        self.stop_requested = threading.Event()
        self.shutdown = False
        self.hosts: list[_Host] = []
        self.thread: threading.Thread | None = None
        definitions = record.get("AlgorithmSpecification", {}).get("MetricDefinitions", [])
        self.metrics = toolkit.MetricParser(definitions)


class TrainingJobs:
    """Create / describe / stop / list training jobs, each run by a background thread.

    Args:
        home: the runtime home (``jobs/``, ``logs/`` and ``s3/`` live under it).
        store: the persistent state store.
        s3: the local S3.
        log_to_console: echo host logs to stdout with an ``<job> algo-N |`` prefix.
    """

    def __init__(self, home: Path, store: Store, s3: LocalS3, log_to_console: bool = False) -> None:
        self.home = Path(home)
        self.store = store
        self.s3 = s3
        self.log_to_console = log_to_console
        self._lock = threading.RLock()
        self._jobs: dict[str, _Job] = {}
        self._console_lock = threading.Lock()
        self._gpus: int | None = None
        self._recover()

    # ----------------------------------------------------------------------------------------------- lifecycle
    def _recover(self) -> None:
        """Jobs that were running when the previous process died cannot resume their processes: mark them Failed."""
        for record in self.store.all("training-jobs"):
            if record["TrainingJobStatus"] in ("InProgress", "Stopping"):
                now = _now()
                self._close_transition(record, now)
                record["SecondaryStatusTransitions"].append(
                    {"Status": "Failed", "StartTime": now, "EndTime": now, "StatusMessage": STATUS_MESSAGES["Failed"]}
                )
                record.update(
                    TrainingJobStatus="Failed",
                    SecondaryStatus="Failed",
                    FailureReason="InternalServerError: the local runtime stopped while this job was running; "
                    "its host processes were lost. Start a new training job.",
                    TrainingEndTime=now,
                    LastModifiedTime=now,
                )
                self.store.put("training-jobs", record["TrainingJobName"], record)

    def shutdown(self) -> None:
        """Stop every running job (the server is going away)."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.shutdown = True
            job.stop_requested.set()
        for job in jobs:
            if job.thread is not None:
                job.thread.join(timeout=STOP_GRACE_S + 15)

    # ----------------------------------------------------------------------------------------------- API
    def create(self, params: dict[str, Any], tuning_job_arn: str | None = None) -> dict[str, Any]:
        """CreateTrainingJob."""
        name = params["TrainingJobName"]
        job_arn = arn("training-job", name)
        self._check_supported(params)
        with self._lock:
            if self.store.get("training-jobs", name) is not None:
                raise resource_in_use(
                    "Training job names must be unique within an AWS account and region, and a training job with "
                    f"this name already exists ({job_arn})"
                )
            now = _now()
            resource = {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30}
            resource.update(params.get("ResourceConfig") or {})
            stopping = {"MaxRuntimeInSeconds": 86400}
            stopping.update(params.get("StoppingCondition") or {})
            record: dict[str, Any] = {
                "TrainingJobName": name,
                "TrainingJobArn": job_arn,
                "TrainingJobStatus": "InProgress",
                "SecondaryStatus": "Starting",
                "HyperParameters": dict(params.get("HyperParameters") or {}),
                "AlgorithmSpecification": params.get("AlgorithmSpecification") or {"TrainingInputMode": "File"},
                "RoleArn": params["RoleArn"],
                "InputDataConfig": params.get("InputDataConfig") or [],
                "OutputDataConfig": params["OutputDataConfig"],
                "ResourceConfig": resource,
                "StoppingCondition": stopping,
                "CreationTime": now,
                "LastModifiedTime": now,
                "SecondaryStatusTransitions": [
                    {"Status": "Starting", "StartTime": now, "StatusMessage": STATUS_MESSAGES["Starting"]}
                ],
                "EnableNetworkIsolation": bool(params.get("EnableNetworkIsolation", False)),
                "EnableInterContainerTrafficEncryption": bool(params.get("EnableInterContainerTrafficEncryption")),
                "EnableManagedSpotTraining": bool(params.get("EnableManagedSpotTraining", False)),
            }
            for optional in ("CheckpointConfig", "Environment", "VpcConfig", "RetryStrategy", "ExperimentConfig"):
                if params.get(optional) is not None:
                    record[optional] = params[optional]
            if tuning_job_arn:
                record["TuningJobArn"] = tuning_job_arn
            self.store.put("training-jobs", name, record)
            job = _Job(record)
            self._jobs[name] = job
            job.thread = threading.Thread(target=self._run, args=(job,), name=f"training-{name}", daemon=True)
            job.thread.start()
        return {"TrainingJobArn": job_arn}

    def describe(self, name: str) -> dict[str, Any]:
        """DescribeTrainingJob."""
        with self._lock:
            job = self._jobs.get(name)
            record = copy.deepcopy(job.record) if job else self.store.get("training-jobs", name)
        if record is None:
            raise validation("Requested resource not found.")
        return record

    def stop(self, name: str) -> dict[str, Any]:
        """StopTrainingJob: SIGTERM the host processes; the job goes Stopping → Stopped."""
        record = self.describe(name)
        status = record["TrainingJobStatus"]
        if status != "InProgress":
            raise validation(f"The request was rejected because the training job is in status {status}.")
        with self._lock:
            job = self._jobs.get(name)
            if job is None:
                raise validation(f"The request was rejected because the training job is in status {status}.")
            self._set(job, status="Stopping", secondary="Stopping")
            job.stop_requested.set()
        return {}

    def list_jobs(self, params: dict[str, Any]) -> dict[str, Any]:
        """ListTrainingJobs (NameContains, StatusEquals, creation-time filters, SortBy/SortOrder, paging)."""
        records = [self.describe(r["TrainingJobName"]) for r in self.store.all("training-jobs")]
        records = filter_records(records, params, "TrainingJobName", "TrainingJobStatus")
        summaries: list[dict[str, Any]] = [
            {
                k: r[k]
                for k in (
                    "TrainingJobName",
                    "TrainingJobArn",
                    "CreationTime",
                    "TrainingEndTime",
                    "LastModifiedTime",
                    "TrainingJobStatus",
                    "SecondaryStatus",
                )
                if k in r
            }
            for r in records
        ]
        return page(summaries, params, "TrainingJobSummaries", "TrainingJobName", "TrainingJobStatus")

    # ----------------------------------------------------------------------------------------------- validation
    def _check_supported(self, params: dict[str, Any]) -> None:
        """Reject, up front and clearly, what the local runtime cannot emulate."""
        for channel in params.get("InputDataConfig") or []:
            source = channel["DataSource"]
            s3 = source.get("S3DataSource")
            if s3 is None:
                raise validation(
                    f"Channel {channel['ChannelName']!r}: the local runtime supports only S3DataSource channels."
                )
            if s3["S3DataType"] != "S3Prefix":
                raise validation(
                    f"Channel {channel['ChannelName']!r}: S3DataType {s3['S3DataType']!r} is not supported locally; "
                    "valid: S3Prefix."
                )
            self._check_uri(s3["S3Uri"], f"InputDataConfig channel {channel['ChannelName']!r} S3Uri")
            mode = channel.get("InputMode") or (params.get("AlgorithmSpecification") or {}).get("TrainingInputMode")
            if mode == "Pipe":
                raise validation("TrainingInputMode 'Pipe' is not supported locally; valid: File, FastFile.")
        self._check_uri(params["OutputDataConfig"]["S3OutputPath"], "OutputDataConfig.S3OutputPath")
        checkpoint = params.get("CheckpointConfig")
        if checkpoint:
            self._check_uri(checkpoint["S3Uri"], "CheckpointConfig.S3Uri")

    @staticmethod
    def _check_uri(uri: str, what: str) -> None:
        try:
            parse_uri(uri)
        except S3UriError as exc:
            raise validation(f"{what}: {exc}") from exc

    # ----------------------------------------------------------------------------------------------- state
    @staticmethod
    def _close_transition(record: dict[str, Any], now: float) -> None:
        transitions = record.setdefault("SecondaryStatusTransitions", [])
        if transitions and "EndTime" not in transitions[-1]:
            transitions[-1]["EndTime"] = now

    def _set(self, job: _Job, status: str | None = None, secondary: str | None = None, **fields: Any) -> None:
        with self._lock:
            record = job.record
            now = _now()
            if secondary and secondary != record["SecondaryStatus"]:
                self._close_transition(record, now)
                transition = {"Status": secondary, "StartTime": now, "StatusMessage": STATUS_MESSAGES[secondary]}
                if status in TERMINAL:
                    transition["EndTime"] = now
                record["SecondaryStatusTransitions"].append(transition)
                record["SecondaryStatus"] = secondary
            if status:
                record["TrainingJobStatus"] = status
            record.update(fields)
            record["LastModifiedTime"] = now
            self.store.put("training-jobs", record["TrainingJobName"], record)

    # ----------------------------------------------------------------------------------------------- runner
    def _run(self, job: _Job) -> None:
        record = job.record
        name = record["TrainingJobName"]
        try:
            self._execute(job)
        except _Abort as abort:
            self._finish(job, abort.status, abort.secondary, abort.reason)
        except Exception as exc:  # the runner's outermost boundary: a bug here must still end the job
            LOGGER.exception("training job %s crashed in the local runtime", name)
            self._finish(job, "Failed", "Failed", f"InternalServerError: {type(exc).__name__}: {exc}")
        finally:
            self._kill_all(job)

    def _finish(self, job: _Job, status: str, secondary: str, reason: str | None) -> None:
        record = job.record
        now = _now()
        start = record.get("TrainingStartTime", record["CreationTime"])
        fields: dict[str, Any] = {
            "TrainingEndTime": now,
            "TrainingTimeInSeconds": max(1, int(now - start)),
            "BillableTimeInSeconds": max(1, int(now - start)),
            "FinalMetricDataList": job.metrics.final_metric_data_list(),
        }
        if reason:
            fields["FailureReason"] = reason[:1024]
        self._set(job, status=status, secondary=secondary, **fields)
        LOGGER.info("training job %s: %s%s", record["TrainingJobName"], status, f" ({reason})" if reason else "")

    def _check_stop(self, job: _Job) -> None:
        if job.shutdown:
            raise _Abort("Failed", "Failed", SHUTDOWN_REASON)
        if job.stop_requested.is_set():
            raise _Abort("Stopped", "Stopped", None)

    def _execute(self, job: _Job) -> None:
        record = job.record
        name = record["TrainingJobName"]
        count = int(record["ResourceConfig"].get("InstanceCount", 1))
        instance_type = record["ResourceConfig"].get("InstanceType", "ml.m5.large")
        hosts = [f"algo-{i + 1}" for i in range(count)]
        job_dir = self.home / "jobs" / name
        if job_dir.exists():
            shutil.rmtree(job_dir)
        layouts = [toolkit.HostLayout(job_dir / host) for host in hosts]
        channels = record["InputDataConfig"]
        raw_hps = record["HyperParameters"]
        decoded = toolkit.decode_hyperparameters(raw_hps)
        _, sm_hps, framework = toolkit.split_hyperparameters(decoded)
        environment = dict(record.get("Environment") or {})
        if self._gpus is None:
            self._gpus = toolkit.num_gpus()
        gpus = self._gpus

        for host, layout in zip(hosts, layouts, strict=True):
            layout.create()
            (layout.input_config / "hyperparameters.json").write_text(json.dumps(raw_hps))
            (layout.input_config / "resourceconfig.json").write_text(
                json.dumps(toolkit.resource_config(host, hosts, instance_type))
            )
            (layout.input_config / "inputdataconfig.json").write_text(json.dumps(toolkit.input_data_config(channels)))
        self._check_stop(job)
        self._set(job, secondary="Downloading", TrainingStartTime=_now())
        try:
            self._download_channels(channels, layouts)
        except (FileNotFoundError, S3UriError, OSError) as exc:
            raise _Abort("Failed", "Failed", f"ClientError: Data download failed: {exc}") from exc
        program = environment.get("SAGEMAKER_PROGRAM") or sm_hps.get("sagemaker_program")
        submit = sm_hps.get("sagemaker_submit_directory")
        for layout in layouts:
            self._install_code(submit, layout)
        if not program:
            raise _Abort(
                "Failed",
                "Failed",
                'ClientError: no entry point: set hyperparameter sagemaker_program (e.g. "train.py") '
                "or environment SAGEMAKER_PROGRAM.",
            )
        program = str(program)
        if not (layouts[0].code / program).is_file():
            raise _Abort(
                "Failed", "Failed", f"ClientError: entry point {program!r} not found in sagemaker_submit_directory."
            )
        checkpoint = record.get("CheckpointConfig")
        checkpoint_dirs: list[Path] = []
        if checkpoint:
            local = checkpoint.get("LocalPath") or "/opt/ml/checkpoints"
            for layout in layouts:
                # Every host gets its own copy of LocalPath inside its base dir (/opt/ml/x → <base>/x).
                relocated = toolkit.relocate(local, layout.base)
                target = Path(relocated) if relocated != local else layout.base / local.lstrip("/")
                target.mkdir(parents=True, exist_ok=True)
                checkpoint_dirs.append(target)
                if self.s3.path(checkpoint["S3Uri"]).exists():
                    self.s3.download(checkpoint["S3Uri"], target)
        self._check_stop(job)

        self._set(job, secondary="Training")
        port = free_port()
        torchrun = toolkit.distribution_enabled(framework, "sagemaker_torch_distributed_enabled")
        procs_per_host = int(framework.get("sagemaker_mpi_num_of_processes_per_host") or 1)
        log_dir = self.home / "logs" / "TrainingJobs" / name
        log_dir.mkdir(parents=True, exist_ok=True)
        for index, (host, layout) in enumerate(zip(hosts, layouts, strict=True)):
            env = self._host_env(
                record, host, hosts, layout, instance_type, gpus, port, environment, checkpoint_dirs, index
            )
            user_args = json.loads(env["SM_USER_ARGS"])
            if program.endswith(".sh"):
                cmd = ["/bin/sh", "-c", " ".join([f"./{program}", *user_args])]
            elif torchrun:
                cmd = [
                    sys.executable, "-m", "torch.distributed.run",
                    "--nnodes", str(count), "--nproc_per_node", str(procs_per_host),
                    "--node_rank", str(index), "--master_addr", "127.0.0.1", "--master_port", str(port),
                    program, *user_args,
                ]  # fmt: skip
            else:
                cmd = [sys.executable, program, *user_args]
            log_path = log_dir / f"{host}.log"
            log_path.write_text("")
            proc = subprocess.Popen(
                cmd,
                cwd=layout.code,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            h = _Host(host, layout, proc, log_path)
            h.pump = threading.Thread(target=self._pump, args=(job, h), daemon=True, name=f"log-{name}-{host}")
            h.pump.start()
            job.hosts.append(h)
        self._monitor(job, checkpoint_dirs)

    def _host_env(
        self,
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
    ) -> dict[str, str]:
        name = record["TrainingJobName"]
        env = {
            k: v
            for k, v in os.environ.items()
            # A parent launched by torchrun (or a test) must not leak its own rank into the hosts.
            if k
            not in {
                "RANK",
                "LOCAL_RANK",
                "WORLD_SIZE",
                "LOCAL_WORLD_SIZE",
                "GROUP_RANK",
                "MASTER_ADDR",
                "MASTER_PORT",
                "TORCHELASTIC_RUN_ID",
            }
            and not k.startswith("SM_")
        }
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
        region = str(toolkit.decode_hyperparameters(record["HyperParameters"]).get("sagemaker_region") or "us-east-1")
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

    def _download_channels(self, channels: list[dict[str, Any]], layouts: list[toolkit.HostLayout]) -> None:
        for channel in channels:
            s3 = channel["DataSource"]["S3DataSource"]
            uri = s3["S3Uri"]
            bucket, prefix = parse_uri(uri)
            keys = self.s3.list_keys(uri)
            if not keys:
                raise FileNotFoundError(f"no objects found under {uri} for channel {channel['ChannelName']!r}")
            sharded = s3.get("S3DataDistributionType") == "ShardedByS3Key"
            for index, layout in enumerate(layouts):
                dest = layout.data / channel["ChannelName"]
                dest.mkdir(parents=True, exist_ok=True)
                # ShardedByS3Key: each host receives a disjoint 1/N of the objects.
                mine = keys[index :: len(layouts)] if sharded else keys
                for key in mine:
                    rel = key[len(prefix) :].lstrip("/") if key != prefix else Path(key).name
                    target = dest / (rel or Path(key).name)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(self.s3.root / bucket / key, target)

    def _install_code(self, submit: Any, layout: toolkit.HostLayout) -> None:
        if not submit:
            return  # the toolkit falls back to <base>/code, which stays empty here
        source = str(submit)
        try:
            path = self.s3.path(source) if source.startswith("s3://") else Path(source.removeprefix("file://"))
        except S3UriError as exc:
            raise _Abort("Failed", "Failed", f"ClientError: sagemaker_submit_directory: {exc}") from exc
        if path.is_dir():
            shutil.copytree(path, layout.code, dirs_exist_ok=True)
        elif path.is_file() and tarfile.is_tarfile(path):
            with tarfile.open(path) as tar:
                tar.extractall(layout.code, filter="data")
        else:
            raise _Abort(
                "Failed",
                "Failed",
                f"ClientError: sagemaker_submit_directory {source!r} is neither a tar.gz nor a directory.",
            )

    def _pump(self, job: _Job, host: _Host) -> None:
        name = job.record["TrainingJobName"]
        stream: IO[bytes] | None = host.proc.stdout
        if stream is None:
            return
        with open(host.log, "a", encoding="utf-8") as log:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                log.write(line + "\n")
                log.flush()
                host.tail.append(line)
                job.metrics.feed(line, _now())
                if self.log_to_console:
                    with self._console_lock:
                        print(f"{name} {host.name} | {line}", flush=True)

    def _monitor(self, job: _Job, checkpoint_dirs: list[Path]) -> None:
        record = job.record
        max_runtime = float(record["StoppingCondition"].get("MaxRuntimeInSeconds") or 86400)
        started = record.get("TrainingStartTime", record["CreationTime"])
        last_sync = time.monotonic()
        while True:
            codes = [h.proc.poll() for h in job.hosts]
            failed = [h for h, c in zip(job.hosts, codes, strict=True) if c not in (None, 0)]
            if failed:
                self._terminate(job)
                self._wait_pumps(job)
                self._sync_checkpoints(record, checkpoint_dirs)
                raise _Abort("Failed", "Failed", self._failure_reason(job, failed[0]))
            if all(c == 0 for c in codes):
                break
            if job.shutdown:
                self._terminate(job)
                self._sync_checkpoints(record, checkpoint_dirs)
                raise _Abort("Failed", "Failed", SHUTDOWN_REASON)
            if job.stop_requested.is_set():
                self._stop_and_upload(job, checkpoint_dirs, "Stopped")
            if _now() - started > max_runtime:
                self._stop_and_upload(job, checkpoint_dirs, "MaxRuntimeExceeded")
            if checkpoint_dirs and time.monotonic() - last_sync > CHECKPOINT_SYNC_S:
                self._sync_checkpoints(record, checkpoint_dirs)
                last_sync = time.monotonic()
            time.sleep(0.2)
        self._wait_pumps(job)
        self._sync_checkpoints(record, checkpoint_dirs)
        self._set(job, secondary="Uploading")
        self._upload_model(job)
        self._finish(job, "Completed", "Completed", None)

    def _stop_and_upload(self, job: _Job, checkpoint_dirs: list[Path], secondary: str) -> None:
        if secondary == "MaxRuntimeExceeded":
            self._set(job, status="Stopping", secondary="Stopping")
        self._terminate(job)
        self._wait_pumps(job)
        self._sync_checkpoints(job.record, checkpoint_dirs)
        # SageMaker keeps what a stopped job saved in /opt/ml/model.
        if any(any(h.layout.model.iterdir()) for h in job.hosts):
            self._upload_model(job)
        raise _Abort("Stopped", secondary, None)

    def _failure_reason(self, job: _Job, first: _Host) -> str:
        ordered = [first] + [h for h in job.hosts if h is not first]
        for host in ordered:
            if host.layout.failure.is_file():
                text = host.layout.failure.read_text(errors="replace").strip()
                if text:
                    return f"AlgorithmError: {text}"[:1024]
        # What the toolkit would have written for a script that died without a failure file.
        lines = [line for line in first.tail if line.strip()]
        message = lines[-1] if lines else ""
        rc = first.proc.returncode
        cmd = " ".join(str(a) for a in first.proc.args) if isinstance(first.proc.args, list) else str(first.proc.args)
        if rc is not None and rc < 0:
            message = message or f"killed by signal {signal.Signals(-rc).name}"
        text = f'ExecuteUserScriptError:\nExitCode {rc}\nErrorMessage "{message}"\nCommand "{cmd}"'
        return f"AlgorithmError: {text}"[:1024]

    def _terminate(self, job: _Job) -> None:
        for host in job.hosts:
            if host.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(host.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for host in job.hosts:
            with contextlib.suppress(subprocess.TimeoutExpired):
                host.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        self._kill_all(job)

    @staticmethod
    def _kill_all(job: _Job) -> None:
        for host in job.hosts:
            if host.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(host.proc.pid, signal.SIGKILL)
                host.proc.wait(timeout=10)
            else:
                # The host's own children (DataLoader workers, torchrun's agents) must not outlive the job.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(host.proc.pid, signal.SIGKILL)

    @staticmethod
    def _wait_pumps(job: _Job) -> None:
        for host in job.hosts:
            if host.pump is not None:
                host.pump.join(timeout=10)

    def _sync_checkpoints(self, record: dict[str, Any], checkpoint_dirs: list[Path]) -> None:
        checkpoint = record.get("CheckpointConfig")
        if not checkpoint or not checkpoint_dirs:
            return
        prefix = checkpoint["S3Uri"].rstrip("/")
        for directory in checkpoint_dirs:
            for file in sorted(p for p in directory.rglob("*") if p.is_file() and not p.name.startswith(".")):
                uri = f"{prefix}/{file.relative_to(directory).as_posix()}"
                target = self.s3.path(uri)
                stat = file.stat()
                if (
                    target.exists()
                    and target.stat().st_mtime >= stat.st_mtime
                    and target.stat().st_size == stat.st_size
                ):
                    continue
                self.s3.upload_file(file, uri)

    def _upload_model(self, job: _Job) -> None:
        record = job.record
        name = record["TrainingJobName"]
        prefix = f"{record['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{name}/output"
        staging = self.home / "jobs" / name / ".artifacts"
        staging.mkdir(parents=True, exist_ok=True)
        model_tar = staging / "model.tar.gz"
        # Files from every host's model dir are merged into one archive, as on SageMaker.
        with tarfile.open(model_tar, "w:gz") as tar:
            added: set[str] = set()
            for host in job.hosts:
                for path in sorted(host.layout.model.rglob("*")):
                    rel = path.relative_to(host.layout.model).as_posix()
                    if rel in added:
                        continue
                    added.add(rel)
                    tar.add(path, arcname=rel, recursive=False)
        self.s3.upload_file(model_tar, f"{prefix}/model.tar.gz")
        output_tar = staging / "output.tar.gz"
        with tarfile.open(output_tar, "w:gz") as tar:
            for host in job.hosts:
                data = host.layout.output_data
                for path in sorted(data.rglob("*")):
                    tar.add(path, arcname=path.relative_to(data).as_posix(), recursive=False)
        self.s3.upload_file(output_tar, f"{prefix}/output.tar.gz")
        self._set(job, ModelArtifacts={"S3ModelArtifacts": f"{prefix}/model.tar.gz"})


def filter_records(
    records: list[dict[str, Any]], params: dict[str, Any], name_key: str, status_key: str | None
) -> list[dict[str, Any]]:
    """Apply the common List* filters (NameContains, StatusEquals, Creation/LastModified time bounds)."""
    out = records
    if params.get("NameContains"):
        needle = params["NameContains"].lower()
        out = [r for r in out if needle in r[name_key].lower()]
    if status_key and params.get("StatusEquals"):
        out = [r for r in out if r.get(status_key) == params["StatusEquals"]]
    for key, field, after in (
        ("CreationTimeAfter", "CreationTime", True),
        ("CreationTimeBefore", "CreationTime", False),
        ("LastModifiedTimeAfter", "LastModifiedTime", True),
        ("LastModifiedTimeBefore", "LastModifiedTime", False),
    ):
        if params.get(key) is not None:
            bound = float(params[key])
            out = [r for r in out if (r.get(field, 0) > bound if after else r.get(field, 0) < bound)]
    return out


def page(
    items: list[dict[str, Any]], params: dict[str, Any], result_key: str, name_key: str, status_key: str | None
) -> dict[str, Any]:
    """Sort (SortBy Name/CreationTime/Status, SortOrder; default CreationTime Descending) and page with NextToken."""
    sort_by = params.get("SortBy") or "CreationTime"
    key_of: Callable[[dict[str, Any]], Any]
    if sort_by == "Name":
        key_of = lambda r: r[name_key]  # noqa: E731
    elif sort_by == "Status" and status_key:
        key_of = lambda r: r.get(status_key, "")  # noqa: E731
    else:
        key_of = lambda r: r.get("CreationTime", 0)  # noqa: E731
    items = sorted(items, key=key_of, reverse=(params.get("SortOrder") or "Descending") == "Descending")
    try:
        start = int(params.get("NextToken") or 0)
    except ValueError as exc:
        raise validation(f"Invalid NextToken {params.get('NextToken')!r}") from exc
    size = int(params.get("MaxResults") or 10)
    out: dict[str, Any] = {result_key: items[start : start + size]}
    if start + size < len(items):
        out["NextToken"] = str(start + size)
    return out
