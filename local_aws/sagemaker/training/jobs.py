"""CreateTrainingJob / DescribeTrainingJob / StopTrainingJob / ListTrainingJobs: the records and their status machine.

A job walks SageMaker's status machine in real time (InProgress: Starting → Downloading → Training → Uploading; then
Completed, Failed or Stopped) and persists every transition; ``runner.py`` does the work of each phase. A managed-spot
job may pass Interrupted → Starting → ... again, or end Stopped/MaxWaitTimeExceeded (``spot.py``, switch
``[chaos.spot]``). Durations it reports and limits it enforces are AWS seconds (``local_aws/clock.py``,
``LOCAL_AWS_TIME_SCALE``): TrainingTimeInSeconds, BillableTimeInSeconds, MaxRuntimeInSeconds, MaxWaitTimeInSeconds
and StopTrainingJob's 120-s grace (``LOCAL_SAGEMAKER_STOP_GRACE`` overrides the grace, in real seconds). The answers
keep botocore's output shapes in every status (``tests`` check them against the service model).
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from typing import Any

from local_aws import clock
from local_aws.chaos import ChaosConfigError
from local_aws.constants import FAILURE_REASON_MAX_CHARS, TRAINING_DEFAULT_MAX_RUNTIME_S, TRAINING_TERMINAL
from local_aws.s3.store import ObjectStore
from local_aws.sagemaker.errors import arn, check_s3_uri, resource_in_use, validation
from local_aws.sagemaker.listing import filter_records, page
from local_aws.sagemaker.records import RecordStore
from local_aws.sagemaker.training import spot
from local_aws.sagemaker.training.artifacts import model_artifact_uri
from local_aws.sagemaker.training.hosts import JobRun
from local_aws.sagemaker.training.metrics import MetricParser
from local_aws.sagemaker.training.runner import Abort, JobContext, run_job

LOGGER = logging.getLogger("local_aws.sagemaker")

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
    # UNCONFIRMED wording for the two spot states (model-managed-spot-training.html names the states, not messages).
    "Interrupted": "The spot instances were interrupted; waiting for spot capacity",
    "MaxWaitTimeExceeded": "Training job stopped because it exceeded MaxWaitTimeInSeconds",
}
LOST_REASON = (
    "InternalServerError: the local runtime stopped while this job was running; its host processes were lost. "
    "Start a new training job (checkpoints, if configured, were synced)."
)
SUMMARY_KEYS = (
    "TrainingJobName",
    "TrainingJobArn",
    "CreationTime",
    "TrainingEndTime",
    "LastModifiedTime",
    "TrainingJobStatus",
    "SecondaryStatus",
)


class TrainingJobs:
    """The training-job operations; each job runs on a thread of its own (``runner.run_job``).

    Args:
        records: the persistent resource records.
        objects: the local S3 store (channels, code, checkpoints, artifacts).
        context: what a job run needs from the runtime (paths, the process supervisor, log sink).
    """

    def __init__(self, records: RecordStore, objects: ObjectStore, context: JobContext) -> None:
        self.records = records
        self.objects = objects
        self.context = context
        self._lock = threading.RLock()
        self._runs: dict[str, JobRun] = {}
        self._recover()

    # ----------------------------------------------------------------------------------------------- lifecycle
    def _recover(self) -> None:
        """Jobs running when the previous process died cannot get their processes back: they end Failed."""
        for record in self.records.all("training-jobs"):
            if record["TrainingJobStatus"] in ("InProgress", "Stopping"):
                self._transition(record, "Failed", "Failed")
                now = time.time()
                record.update(FailureReason=LOST_REASON, TrainingEndTime=now, LastModifiedTime=now)
                self.records.put("training-jobs", record["TrainingJobName"], record)

    def shutdown(self) -> None:
        """Stop every running job (the server is going away); their records end Failed with the reason."""
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            run.shutdown = True
            run.stop_requested.set()
        for run in runs:
            if run.thread is not None:
                run.thread.join(timeout=self.context.stop_grace() + 15)

    # ----------------------------------------------------------------------------------------------- API
    def create(self, params: dict[str, Any], tuning_job_arn: str | None = None) -> dict[str, Any]:
        """CreateTrainingJob: validate what SageMaker validates at create time, persist, start the run."""
        name = params["TrainingJobName"]
        job_arn = arn("training-job", name)
        self._check_create(params)
        with self._lock:
            if self.records.get("training-jobs", name) is not None:
                raise resource_in_use(
                    "Training job names must be unique within an AWS account and region, and a training job with "
                    f"this name already exists ({job_arn})"
                )
            now = time.time()
            resource = {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30}
            resource.update(params.get("ResourceConfig") or {})
            stopping: dict[str, Any] = {"MaxRuntimeInSeconds": TRAINING_DEFAULT_MAX_RUNTIME_S}
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
            # NOTE: botocore's model marks ModelArtifacts required in every DescribeTrainingJob answer; the local
            # runtime reports the location the artifact goes to from creation on (what AWS shows before Uploading
            # is UNCONFIRMED).
            record["ModelArtifacts"] = {"S3ModelArtifacts": model_artifact_uri(record)}
            for optional in ("CheckpointConfig", "Environment", "VpcConfig", "RetryStrategy", "ExperimentConfig"):
                if params.get(optional) is not None:
                    record[optional] = params[optional]
            if tuning_job_arn:
                record["TuningJobArn"] = tuning_job_arn
            self.records.put("training-jobs", name, record)
            definitions = record["AlgorithmSpecification"].get("MetricDefinitions", [])
            run = JobRun(record, MetricParser(definitions))
            self._runs[name] = run
            run.thread = threading.Thread(target=self._run, args=(run,), name=f"training-{name}", daemon=True)
            run.thread.start()
        return {"TrainingJobArn": job_arn}

    def describe(self, name: str) -> dict[str, Any]:
        """DescribeTrainingJob."""
        with self._lock:
            run = self._runs.get(name)
            record = copy.deepcopy(run.record) if run else self.records.get("training-jobs", name)
        if record is None:
            raise validation("Requested resource not found.")
        return record

    def stop(self, name: str) -> dict[str, Any]:
        """StopTrainingJob: SIGTERM the host processes; the job goes Stopping → Stopped."""
        record = self.describe(name)
        status = record["TrainingJobStatus"]
        with self._lock:
            run = self._runs.get(name)
            if status != "InProgress" or run is None:
                raise validation(f"The request was rejected because the training job is in status {status}.")
            self.update(run, status="Stopping", secondary="Stopping")
            run.stop_requested.set()
        return {}

    def list_jobs(self, params: dict[str, Any]) -> dict[str, Any]:
        """ListTrainingJobs (NameContains, StatusEquals, creation-time filters, SortBy/SortOrder, paging)."""
        stored = self.records.all("training-jobs")
        with self._lock:
            # A job of this process answers from memory, as in describe(); the others as just read (no second read).
            records = [
                copy.deepcopy(run.record) if (run := self._runs.get(r["TrainingJobName"])) else r for r in stored
            ]
        records = filter_records(records, params, "TrainingJobName", "TrainingJobStatus")
        summaries = [{k: r[k] for k in SUMMARY_KEYS if k in r} for r in records]
        return page(summaries, params, "TrainingJobSummaries", "TrainingJobName", "TrainingJobStatus")

    # ----------------------------------------------------------------------------------------------- validation
    def _check_create(self, params: dict[str, Any]) -> None:
        """What SageMaker refuses at create time (rather than failing the job later), plus local limits."""
        resource = params.get("ResourceConfig") or {}
        if resource.get("InstanceGroups"):
            if "InstanceType" in resource or "InstanceCount" in resource:
                raise validation("InstanceType or InstanceCount cannot be specified with InstanceGroups")
            raise validation("ResourceConfig.InstanceGroups (heterogeneous clusters) is not supported locally.")
        # botocore allows InstanceCount >= 0 (0 is for InstanceGroups); without groups the service needs >= 1.
        # The message follows the service's constraint format (UNCONFIRMED wording).
        if resource.get("InstanceCount") is not None and int(resource["InstanceCount"]) < 1:
            raise validation(
                f"1 validation error detected: Value '{resource['InstanceCount']}' at 'resourceConfig.instanceCount' "
                "failed to satisfy constraint: Member must have value greater than or equal to 1"
            )
        for channel in params.get("InputDataConfig") or []:
            s3 = channel["DataSource"].get("S3DataSource")
            if s3 is None:
                raise validation(
                    f"Channel {channel['ChannelName']!r}: the local runtime supports only S3DataSource channels."
                )
            if s3["S3DataType"] != "S3Prefix":
                raise validation(
                    f"Channel {channel['ChannelName']!r}: S3DataType {s3['S3DataType']!r} is not supported locally; "
                    "valid: S3Prefix."
                )
            check_s3_uri(s3["S3Uri"], f"InputDataConfig channel {channel['ChannelName']!r} S3Uri")
            mode = channel.get("InputMode") or (params.get("AlgorithmSpecification") or {}).get("TrainingInputMode")
            if mode == "Pipe":
                raise validation("TrainingInputMode 'Pipe' is not supported locally; valid: File, FastFile.")
        names = [c["ChannelName"] for c in params.get("InputDataConfig") or []]
        if len(set(names)) != len(names):
            raise validation("Channel names must be unique within InputDataConfig.")
        check_s3_uri(params["OutputDataConfig"]["S3OutputPath"], "OutputDataConfig.S3OutputPath")
        checkpoint = params.get("CheckpointConfig")
        if checkpoint:
            check_s3_uri(checkpoint["S3Uri"], "CheckpointConfig.S3Uri")
        self._check_spot(params)

    def _check_spot(self, params: dict[str, Any]) -> None:
        """MaxWaitTimeInSeconds "must be equal to or greater than MaxRuntimeInSeconds" and is for managed spot only
        (StoppingCondition API reference); the message wording is UNCONFIRMED. A bad [chaos.spot] is refused here,
        before the job runs, rather than failing it at its interruption point."""
        stopping = params.get("StoppingCondition") or {}
        max_wait = stopping.get("MaxWaitTimeInSeconds")
        max_runtime = stopping.get("MaxRuntimeInSeconds", TRAINING_DEFAULT_MAX_RUNTIME_S)
        if not params.get("EnableManagedSpotTraining"):
            if max_wait is not None:
                raise validation(
                    "Invalid MaxWaitTimeInSeconds. It is only supported when EnableManagedSpotTraining is set to true"
                )
            return
        if max_wait is None or max_wait < max_runtime:
            raise validation(
                "Invalid MaxWaitTimeInSeconds. It must be present and be greater than or equal to MaxRuntimeInSeconds"
            )
        try:
            spot.settings(self.context.home)
        except ChaosConfigError as exc:
            raise validation(f"Local runtime chaos config: {exc}") from None

    # ----------------------------------------------------------------------------------------------- state
    @staticmethod
    def _transition(record: dict[str, Any], secondary: str, status: str | None) -> None:
        now = time.time()
        transitions = record.setdefault("SecondaryStatusTransitions", [])
        if transitions and "EndTime" not in transitions[-1]:
            transitions[-1]["EndTime"] = now
        entry = {"Status": secondary, "StartTime": now, "StatusMessage": STATUS_MESSAGES[secondary]}
        if status in TRAINING_TERMINAL:
            entry["EndTime"] = now
        transitions.append(entry)
        record["SecondaryStatus"] = secondary
        if status:
            record["TrainingJobStatus"] = status

    def update(self, run: JobRun, status: str | None = None, secondary: str | None = None, **fields: Any) -> None:
        """Persist a status change and/or fields of a running job (the runner calls this for each phase)."""
        with self._lock:
            record = run.record
            if secondary and secondary != record["SecondaryStatus"]:
                self._transition(record, secondary, status)
            elif status:
                record["TrainingJobStatus"] = status
            record.update(fields)
            record["LastModifiedTime"] = time.time()
            self.records.put("training-jobs", record["TrainingJobName"], record)

    def _finish(self, run: JobRun, status: str, secondary: str, reason: str | None) -> None:
        record = run.record
        now = time.time()
        start = record.get("TrainingStartTime", record["CreationTime"])
        # AWS seconds (local_aws/clock.py). Billable: the time instances ran, which leaves out a spot job's
        # Interrupted waits (training/spot.py); on-demand jobs never wait, so there the two are equal.
        training_s = max(1, int(clock.aws_seconds(now - start)))
        billable_s = max(1, int(clock.aws_seconds(run.billable_real_s(now)))) if spot.is_spot(record) else training_s
        fields: dict[str, Any] = {
            "TrainingEndTime": now,
            "TrainingTimeInSeconds": training_s,
            "BillableTimeInSeconds": min(billable_s, training_s),
            "FinalMetricDataList": run.metrics.final_metric_data_list(),
        }
        if reason:
            fields["FailureReason"] = reason[:FAILURE_REASON_MAX_CHARS]
        self.update(run, status=status, secondary=secondary, **fields)
        LOGGER.info("training job %s: %s%s", record["TrainingJobName"], status, f" ({reason})" if reason else "")

    def _run(self, run: JobRun) -> None:
        name = run.record["TrainingJobName"]
        try:
            run_job(run, self.context, self.objects, self.update)
            self._finish(run, "Completed", "Completed", None)
        except Abort as abort:
            self._finish(run, abort.status, abort.secondary, abort.reason)
        except Exception as exc:  # the runner's outermost boundary: a bug here must still end the job
            LOGGER.exception("training job %s crashed in the local runtime", name)
            self._finish(run, "Failed", "Failed", f"InternalServerError: {type(exc).__name__}: {exc}")
        finally:
            run.kill_all(self.context.supervisor)
