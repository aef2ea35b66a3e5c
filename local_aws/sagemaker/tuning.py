"""Hyperparameter tuning jobs: Random and Grid search over real local training jobs.

Bayesian and Hyperband are accepted and searched randomly (the local runtime has no surrogate model); the
objective is read from each job's FinalMetricDataList, as SageMaker does.
"""

from __future__ import annotations

import copy
import itertools
import logging
import math
import random
import threading
import time
import uuid
from typing import Any

from local_aws import clock
from local_aws.constants import FAILURE_REASON_MAX_CHARS
from local_aws.constants import TRAINING_TERMINAL as TERMINAL
from local_aws.sagemaker.errors import arn, resource_in_use, resource_not_found, validation
from local_aws.sagemaker.listing import filter_records, page
from local_aws.sagemaker.records import RecordStore
from local_aws.sagemaker.training.jobs import TrainingJobs

LOGGER = logging.getLogger("local_aws.sagemaker")


def _zero_counters() -> tuple[dict[str, int], dict[str, int]]:
    """New TrainingJobStatusCounters and ObjectiveStatusCounters, every count 0."""
    return (
        {"Completed": 0, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 0, "Stopped": 0},
        {"Succeeded": 0, "Pending": 0, "Failed": 0},
    )


def _format_number(value: float, integer: bool) -> str:
    return str(int(value)) if integer else repr(float(value))


def sample_random(ranges: dict[str, Any], rng: random.Random) -> dict[str, str]:
    """One random point of the search space (values as the strings SageMaker passes)."""
    point: dict[str, str] = {}
    for kind, integer in (("ContinuousParameterRanges", False), ("IntegerParameterRanges", True)):
        for r in ranges.get(kind) or []:
            lo, hi = float(r["MinValue"]), float(r["MaxValue"])
            if r.get("ScalingType") in ("Logarithmic", "ReverseLogarithmic") and lo > 0:
                value = math.exp(rng.uniform(math.log(lo), math.log(hi)))
            else:
                value = rng.uniform(lo, hi)
            point[r["Name"]] = _format_number(round(value) if integer else value, integer)
    for r in ranges.get("CategoricalParameterRanges") or []:
        point[r["Name"]] = rng.choice(r["Values"])
    return point


def grid_points(ranges: dict[str, Any]) -> list[dict[str, str]]:
    """Every combination of the categorical values (SageMaker's Grid accepts categorical ranges only)."""
    cats = ranges.get("CategoricalParameterRanges") or []
    names = [r["Name"] for r in cats]
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(r["Values"] for r in cats))]


def validate_ranges(strategy: str, ranges: dict[str, Any]) -> None:
    """Reject impossible search spaces up front with the range named."""
    for kind in ("ContinuousParameterRanges", "IntegerParameterRanges"):
        for r in ranges.get(kind) or []:
            try:
                lo, hi = float(r["MinValue"]), float(r["MaxValue"])
            except ValueError as exc:
                raise validation(f"{kind} {r['Name']}: MinValue/MaxValue must be numbers") from exc
            if lo > hi:
                raise validation(
                    f"{kind} {r['Name']}: MinValue {r['MinValue']} is greater than MaxValue {r['MaxValue']}"
                )
            if r.get("ScalingType") in ("Logarithmic", "ReverseLogarithmic") and lo <= 0:
                raise validation(f"{kind} {r['Name']}: Logarithmic scaling requires MinValue > 0")
    for r in ranges.get("CategoricalParameterRanges") or []:
        if not r["Values"]:
            raise validation(f"CategoricalParameterRanges {r['Name']}: Values must not be empty")
    if strategy == "Grid":
        if ranges.get("ContinuousParameterRanges") or ranges.get("IntegerParameterRanges"):
            raise validation("Grid search supports only CategoricalParameterRanges.")
        if not ranges.get("CategoricalParameterRanges"):
            raise validation("Grid search requires at least one CategoricalParameterRange.")


class _Tuning:
    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record
        self.stop_requested = threading.Event()
        self.thread: threading.Thread | None = None


class TuningJobs:
    """Create / describe / stop tuning jobs and list their training jobs."""

    def __init__(self, records: RecordStore, training: TrainingJobs) -> None:
        self.records = records
        self.training = training
        self._lock = threading.RLock()
        self._jobs: dict[str, _Tuning] = {}
        for record in records.all("tuning-jobs"):
            if record["HyperParameterTuningJobStatus"] in ("InProgress", "Stopping"):
                record.update(
                    HyperParameterTuningJobStatus="Failed",
                    FailureReason="The local runtime stopped while this tuning job was running.",
                    HyperParameterTuningEndTime=time.time(),
                    LastModifiedTime=time.time(),
                )
                records.put("tuning-jobs", record["HyperParameterTuningJobName"], record)

    def create(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["HyperParameterTuningJobName"]
        tuning_arn = arn("hyper-parameter-tuning-job", name)
        config = params["HyperParameterTuningJobConfig"]
        definition = params.get("TrainingJobDefinition")
        if definition is None:
            definitions = params.get("TrainingJobDefinitions") or []
            if len(definitions) != 1:
                raise validation("The local runtime needs exactly one TrainingJobDefinition.")
            definition = definitions[0]
        objective = config.get("HyperParameterTuningJobObjective")
        if not objective:
            raise validation("HyperParameterTuningJobObjective is required.")
        strategy = config["Strategy"]
        ranges = config.get("ParameterRanges") or definition.get("HyperParameterRanges") or {}
        validate_ranges(strategy, ranges)
        limits = config["ResourceLimits"]
        if strategy != "Grid" and not limits.get("MaxNumberOfTrainingJobs"):
            raise validation(f"ResourceLimits.MaxNumberOfTrainingJobs is required for the {strategy} strategy.")
        metric_names = {m["Name"] for m in definition["AlgorithmSpecification"].get("MetricDefinitions") or []}
        if objective["MetricName"] not in metric_names:
            raise validation(
                f"The objective metric {objective['MetricName']!r} is not defined in "
                f"AlgorithmSpecification.MetricDefinitions; valid: {sorted(metric_names)}."
            )
        with self._lock:
            if self.records.get("tuning-jobs", name):
                raise resource_in_use(f"Hyperparameter tuning job {name} already exists ({tuning_arn}).")
            now = time.time()
            counters, objectives = _zero_counters()
            record: dict[str, Any] = {
                "HyperParameterTuningJobName": name,
                "HyperParameterTuningJobArn": tuning_arn,
                "HyperParameterTuningJobConfig": config,
                "TrainingJobDefinition": definition,
                "HyperParameterTuningJobStatus": "InProgress",
                "CreationTime": now,
                "LastModifiedTime": now,
                "TrainingJobStatusCounters": counters,
                "ObjectiveStatusCounters": objectives,
                "_training_jobs": [],
            }
            if params.get("WarmStartConfig"):
                record["WarmStartConfig"] = params["WarmStartConfig"]
            self.records.put("tuning-jobs", name, record)
            job = _Tuning(record)
            self._jobs[name] = job
            job.thread = threading.Thread(target=self._run, args=(job,), daemon=True, name=f"tuning-{name}")
            job.thread.start()
        return {"HyperParameterTuningJobArn": tuning_arn}

    def _get(self, name: str) -> dict[str, Any]:
        with self._lock:
            job = self._jobs.get(name)
            record = copy.deepcopy(job.record) if job else self.records.get("tuning-jobs", name)
        if record is None:
            raise resource_not_found(f"Amazon SageMaker can't find a tuning job with name {name}")
        return record

    def describe(self, name: str) -> dict[str, Any]:
        return self._get(name)  # ControlPlane.call drops the "_" keys

    def stop(self, name: str) -> dict[str, Any]:
        record = self._get(name)
        if record["HyperParameterTuningJobStatus"] != "InProgress":
            raise validation(
                f"The request was rejected because the tuning job is in status "
                f"{record['HyperParameterTuningJobStatus']}."
            )
        with self._lock:
            job = self._jobs[name]
            job.record["HyperParameterTuningJobStatus"] = "Stopping"
            self._persist(job)
            job.stop_requested.set()
        return {}

    def list_jobs(self, params: dict[str, Any]) -> dict[str, Any]:
        stored = self.records.all("tuning-jobs")
        with self._lock:
            # A job of this process answers from memory, as in describe(); the others as just read (no second read).
            records = [
                copy.deepcopy(job.record) if (job := self._jobs.get(r["HyperParameterTuningJobName"])) else r
                for r in stored
            ]
        records = filter_records(records, params, "HyperParameterTuningJobName", "HyperParameterTuningJobStatus")
        keys = (
            "HyperParameterTuningJobName",
            "HyperParameterTuningJobArn",
            "HyperParameterTuningJobStatus",
            "CreationTime",
            "HyperParameterTuningEndTime",
            "LastModifiedTime",
            "TrainingJobStatusCounters",
            "ObjectiveStatusCounters",
        )
        items = [{k: r[k] for k in keys if k in r} for r in records]
        for item, record in zip(items, records, strict=True):
            item["Strategy"] = record["HyperParameterTuningJobConfig"]["Strategy"]
            item["ResourceLimits"] = record["HyperParameterTuningJobConfig"]["ResourceLimits"]
        return page(
            items,
            params,
            "HyperParameterTuningJobSummaries",
            "HyperParameterTuningJobName",
            "HyperParameterTuningJobStatus",
        )

    def list_training_jobs(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self._get(params["HyperParameterTuningJobName"])
        summaries = [self._summary(record, name) for name in record["_training_jobs"]]
        if params.get("StatusEquals"):
            summaries = [s for s in summaries if s["TrainingJobStatus"] == params["StatusEquals"]]
        sort_by = params.get("SortBy") or "CreationTime"
        if sort_by == "FinalObjectiveMetricValue":
            with_metric = [s for s in summaries if "FinalHyperParameterTuningJobObjectiveMetric" in s]
            summaries = sorted(
                with_metric,
                key=lambda s: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"],
                reverse=(params.get("SortOrder") or "Descending") == "Descending",
            )
            return {"TrainingJobSummaries": summaries}
        return page(summaries, params, "TrainingJobSummaries", "TrainingJobName", "TrainingJobStatus")

    # ----------------------------------------------------------------------------------------------- runner
    def _summary(self, tuning: dict[str, Any], name: str) -> dict[str, Any]:
        job = self.training.describe(name)
        objective = tuning["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
        tuned = tuning.get("_tuned", {}).get(name, {})
        summary: dict[str, Any] = {
            "TrainingJobName": name,
            "TrainingJobArn": job["TrainingJobArn"],
            "TuningJobName": tuning["HyperParameterTuningJobName"],
            "CreationTime": job["CreationTime"],
            "TrainingJobStatus": job["TrainingJobStatus"],
            "TunedHyperParameters": tuned,
        }
        for key in ("TrainingStartTime", "TrainingEndTime", "FailureReason"):
            if key in job:
                summary[key] = job[key]
        value = next(
            (m["Value"] for m in job.get("FinalMetricDataList", []) if m["MetricName"] == objective["MetricName"]), None
        )
        if value is not None and job["TrainingJobStatus"] == "Completed":
            summary["FinalHyperParameterTuningJobObjectiveMetric"] = {
                "Type": objective["Type"],
                "MetricName": objective["MetricName"],
                "Value": value,
            }
            summary["ObjectiveStatus"] = "Succeeded"
        elif job["TrainingJobStatus"] in TERMINAL:
            summary["ObjectiveStatus"] = "Failed"
        else:
            summary["ObjectiveStatus"] = "Pending"
        return summary

    def _persist(self, job: _Tuning) -> None:
        job.record["LastModifiedTime"] = time.time()
        self.records.put("tuning-jobs", job.record["HyperParameterTuningJobName"], job.record)

    def _refresh(self, job: _Tuning) -> list[dict[str, Any]]:
        """Recompute counters and the best job from the training jobs' current state."""
        record = job.record
        summaries = [self._summary(record, n) for n in record["_training_jobs"]]
        counters, objectives = _zero_counters()
        for s in summaries:
            status = s["TrainingJobStatus"]
            if status == "Failed":
                counters["NonRetryableError"] += 1
            elif status == "Stopping":
                counters["InProgress"] += 1
            else:
                counters[status] = counters.get(status, 0) + 1
            objectives[s["ObjectiveStatus"]] += 1
        objective = record["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
        scored = [s for s in summaries if "FinalHyperParameterTuningJobObjectiveMetric" in s]
        with self._lock:
            record["TrainingJobStatusCounters"] = counters
            record["ObjectiveStatusCounters"] = objectives
            if scored:
                sign = 1.0 if objective["Type"] == "Maximize" else -1.0
                best = max(scored, key=lambda s: sign * s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"])
                record["BestTrainingJob"] = best
                record["OverallBestTrainingJob"] = best
            self._persist(job)
        return summaries

    def _run(self, job: _Tuning) -> None:
        record = job.record
        name = record["HyperParameterTuningJobName"]
        try:
            self._search(job)
        except Exception as exc:  # runner boundary: the tuning job must end, with the reason
            LOGGER.exception("tuning job %s crashed in the local runtime", name)
            with self._lock:
                record.update(HyperParameterTuningJobStatus="Failed", FailureReason=f"InternalServerError: {exc}")
                record["HyperParameterTuningEndTime"] = time.time()
                self._persist(job)

    def _search(self, job: _Tuning) -> None:
        record = job.record
        name = record["HyperParameterTuningJobName"]
        config = record["HyperParameterTuningJobConfig"]
        definition = record["TrainingJobDefinition"]
        limits = config["ResourceLimits"]
        ranges = config.get("ParameterRanges") or definition.get("HyperParameterRanges") or {}
        objective = config["HyperParameterTuningJobObjective"]
        if config["Strategy"] == "Grid":
            points = grid_points(ranges)
            if limits.get("MaxNumberOfTrainingJobs"):
                points = points[: int(limits["MaxNumberOfTrainingJobs"])]
        else:
            rng = random.Random(config.get("RandomSeed"))
            points = [sample_random(ranges, rng) for _ in range(int(limits["MaxNumberOfTrainingJobs"]))]
        parallel = max(1, int(limits.get("MaxParallelTrainingJobs") or 1))
        max_runtime = float(limits.get("MaxRuntimeInSeconds") or 0)
        started = time.monotonic()
        running: list[str] = []
        record.setdefault("_tuned", {})
        queue = list(enumerate(points, start=1))
        timed_out = False
        while queue or running:
            # ResourceLimits.MaxRuntimeInSeconds is AWS time (local_aws/clock.py scales it for long-wait tests).
            over = max_runtime and clock.aws_seconds(time.monotonic() - started) > max_runtime
            if job.stop_requested.is_set() or over:
                timed_out = not job.stop_requested.is_set()
                for training_name in running:
                    try:
                        self.training.stop(training_name)
                    except Exception:
                        LOGGER.debug("could not stop %s", training_name)
                queue.clear()
            running = [n for n in running if self.training.describe(n)["TrainingJobStatus"] not in TERMINAL]
            while queue and len(running) < parallel:
                index, point = queue.pop(0)
                training_name = f"{name}-{index:03d}-{uuid.uuid4().hex[:8]}"
                hps = dict(definition.get("StaticHyperParameters") or {})
                hps.update(point)
                hps["_tuning_objective_metric"] = objective["MetricName"]
                params: dict[str, Any] = {
                    "TrainingJobName": training_name,
                    "HyperParameters": hps,
                    "AlgorithmSpecification": definition["AlgorithmSpecification"],
                    "RoleArn": definition["RoleArn"],
                    "InputDataConfig": definition.get("InputDataConfig") or [],
                    "OutputDataConfig": definition["OutputDataConfig"],
                    "ResourceConfig": definition.get("ResourceConfig") or {},
                    "StoppingCondition": definition["StoppingCondition"],
                }
                forwarded = ("CheckpointConfig", "Environment", "VpcConfig", "EnableNetworkIsolation")
                for key in (*forwarded, "EnableManagedSpotTraining"):  # a tuning job's trials can be spot jobs
                    if definition.get(key) is not None:
                        params[key] = definition[key]
                with self._lock:
                    record["_training_jobs"].append(training_name)
                    record["_tuned"][training_name] = point
                self.training.create(params, tuning_job_arn=record["HyperParameterTuningJobArn"])
                running.append(training_name)
            self._refresh(job)
            if queue or running:
                time.sleep(0.5)
        summaries = self._refresh(job)
        with self._lock:
            record["HyperParameterTuningEndTime"] = time.time()
            if job.stop_requested.is_set():
                record["HyperParameterTuningJobStatus"] = "Stopped"
            elif summaries and not any(s["TrainingJobStatus"] == "Completed" for s in summaries):
                record["HyperParameterTuningJobStatus"] = "Failed"
                first = next((s.get("FailureReason") for s in summaries if s.get("FailureReason")), "")
                record["FailureReason"] = f"All training jobs failed. First failure: {first}"[:FAILURE_REASON_MAX_CHARS]
            else:
                record["HyperParameterTuningJobStatus"] = "Completed"
                if timed_out:
                    record["TuningJobCompletionDetails"] = {"NumberOfTrainingJobsObjectiveNotImproving": 0}
            self._persist(job)
        LOGGER.info("tuning job %s: %s", name, record["HyperParameterTuningJobStatus"])

    def shutdown(self) -> None:
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.stop_requested.set()
        for job in jobs:
            if job.thread is not None:
                job.thread.join(timeout=30)
