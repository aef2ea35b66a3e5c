"""The real state machine, executed by moto's ASL interpreter against the local SageMaker server.

moto runs each ``aws-sdk:sagemaker:*`` task as a boto3 call; ``AWS_ENDPOINT_URL_SAGEMAKER`` sends those to the local
SageMaker server, while Application Auto Scaling calls stay inside moto, which records them. The definition is the
file in ``statemachine/`` with the template's DefinitionSubstitutions applied textually, as CloudFormation does.
Execution records are written to ``<home>/executions/`` so that ``status`` still works after a restart.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from local_runtime import moto_compat
from local_runtime.template import ACCOUNT_ID, REGION, definition_substitutions, load_template

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATE = REPO_ROOT / "template.yaml"
DEFAULT_ASL = REPO_ROOT / "statemachine" / "train_and_deploy.asl.json"
STATE_MACHINE_NAME = "TrainDeployStateMachine"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/local-state-machine-role"
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
_ENV_KEYS = ("AWS_ENDPOINT_URL_SAGEMAKER", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME")
# A RUNNING record not refreshed for this long belongs to a process that is gone (the watcher refreshes every 1 s).
STALE_AFTER_S = 10.0
_ABORTED = {
    "status": "ABORTED",
    "error": "LocalRuntimeStopped",
    "cause": "The local runtime stopped before this execution finished.",
}


class StepFunctionsError(RuntimeError):
    """A clear, user-facing problem with the definition, an input or an execution id."""


def substitute(definition: str, substitutions: dict[str, str]) -> str:
    """Replace ``${Key}`` placeholders the way DefinitionSubstitutions does; every placeholder must have a value."""
    missing = sorted(set(_PLACEHOLDER.findall(definition)) - set(substitutions))
    if missing:
        raise StepFunctionsError(f"definition placeholders without a DefinitionSubstitutions value: {missing}")
    return _PLACEHOLDER.sub(lambda m: substitutions[m.group(1)], definition)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, datetime) else str(value)


class LocalStepFunctions:
    """moto Step Functions with ASL execution on, holding the one train-and-deploy state machine.

    Args:
        home: local runtime state dir; execution records go to ``home/executions``.
        sagemaker_url: base URL of the local SageMaker server (control plane and runtime).
        template_path: template.yaml to derive DefinitionSubstitutions from.
        asl_path: the ASL definition file.
        overrides: template parameter overrides (on top of defaults and the samconfig env).
        samconfig: optional samconfig.toml whose ``env`` parameter_overrides apply.
        env: samconfig environment name.
        substitutions: explicit DefinitionSubstitutions (skips the template; for tests of the ASL alone).
    """

    def __init__(
        self,
        home: Path,
        sagemaker_url: str,
        template_path: Path = DEFAULT_TEMPLATE,
        asl_path: Path = DEFAULT_ASL,
        overrides: dict[str, str] | None = None,
        *,
        samconfig: Path | None = None,
        env: str = "default",
        substitutions: dict[str, str] | None = None,
    ) -> None:
        self.home = Path(home)
        self.records_dir = self.home / "executions"
        self.sagemaker_url = sagemaker_url.rstrip("/")
        self.template_path = Path(template_path)
        self.asl_path = Path(asl_path)
        self.overrides = dict(overrides or {})
        self.samconfig = samconfig
        self.env = env
        self._explicit_substitutions = substitutions
        self._mock: Any = None
        self._saved_env: dict[str, str | None] = {}
        self._client: Any = None
        self.state_machine_arn = ""
        self.substitutions: dict[str, str] = {}
        self._watcher: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> LocalStepFunctions:
        """Start moto, point SageMaker clients at the local server, and create the state machine."""
        if self._explicit_substitutions is not None:
            self.substitutions = dict(self._explicit_substitutions)
        else:
            if not self.template_path.exists():
                raise StepFunctionsError(f"template not found: {self.template_path}")
            template = load_template(self.template_path)
            self.substitutions = definition_substitutions(
                template, self.overrides, samconfig=self.samconfig, env=self.env
            )
        definition = substitute(self.asl_path.read_text(encoding="utf-8"), self.substitutions)
        json.loads(definition)  # a substitution must not break the JSON
        moto_compat.apply()
        for key in _ENV_KEYS:
            self._saved_env[key] = os.environ.get(key)
            os.environ[key] = self.sagemaker_url
        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        self._mock.start()
        self._client = boto3.client("stepfunctions", region_name=REGION)
        self.state_machine_arn = self._client.create_state_machine(
            name=STATE_MACHINE_NAME, definition=definition, roleArn=ROLE_ARN
        )["stateMachineArn"]
        self.records_dir.mkdir(parents=True, exist_ok=True)
        self._stopping.clear()
        self._watcher = threading.Thread(target=self._watch, name="sfn-records", daemon=True)
        self._watcher.start()
        return self

    def stop(self) -> None:
        """Persist what is known, stop moto and restore the environment."""
        if self._mock is None:
            return
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        self._persist_all()
        # moto's interpreter threads die with the session: say so in the records instead of leaving them RUNNING.
        for path in self.records_dir.glob("*.json"):
            record = json.loads(path.read_text(encoding="utf-8"))
            if record.get("status") == "RUNNING" and record.get("stateMachineArn") == self.state_machine_arn:
                record.update(_ABORTED, stopDate=datetime.now(UTC).isoformat())
                path.write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
        self._mock.stop()
        self._mock = None
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def __enter__(self) -> LocalStepFunctions:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ executions
    def start_execution(self, input: dict[str, Any], name: str | None = None) -> str:
        """Start one execution; returns its ARN."""
        if not isinstance(input, dict):
            raise StepFunctionsError(f"execution input must be a JSON object, got {type(input).__name__}")
        # NOTE: moto's aws-sdk tasks build plain boto3 clients, so only the process environment routes them here.
        # If something (a test fixture, say) cleared it, SageMaker calls would silently go to moto's own canned
        # SageMaker and "train" nothing; refuse instead.
        for key in _ENV_KEYS:
            if os.environ.get(key) != self.sagemaker_url:
                raise StepFunctionsError(
                    f"{key} is {os.environ.get(key)!r}, not the local SageMaker {self.sagemaker_url}; "
                    "it must stay set while executions run"
                )
        name = name or f"local-{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
        arn = self._client.start_execution(stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(input))[
            "executionArn"
        ]
        self._persist(arn)
        return str(arn)

    def describe(self, arn: str) -> dict[str, Any]:
        """Execution record: name, status, input, output or error/cause, start and stop times."""
        if self._mock is not None:
            try:
                return self._live_record(arn, with_events=False)
            except self._client.exceptions.ExecutionDoesNotExist:
                pass
        record = self._load(arn)
        record.pop("events", None)
        return record

    def wait(self, arn: str, timeout: float = 600.0, poll: float = 0.2) -> dict[str, Any]:
        """Block until the execution ends; returns its record. Raises TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            record = self.describe(arn)
            if record["status"] in TERMINAL:
                self._persist(arn)
                return record
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution {arn} still {record['status']} after {timeout:.0f}s")
            time.sleep(poll)

    def history(self, arn: str) -> list[dict[str, Any]]:
        """State transitions (entered/exited/failed events) in order, for progress output."""
        if self._mock is not None:
            try:
                return self._events(arn)
            except self._client.exceptions.ExecutionDoesNotExist:
                pass
        return list(self._load(arn).get("events", []))

    def list_executions(self) -> list[dict[str, Any]]:
        """Every known execution, live or persisted, newest first."""
        records: dict[str, dict[str, Any]] = {}
        for path in sorted(self.records_dir.glob("*.json")) if self.records_dir.exists() else []:
            record = json.loads(path.read_text(encoding="utf-8"))
            record.pop("events", None)
            records[record["executionArn"]] = self._orphan_check(record)
        if self._mock is not None:
            for item in self._client.list_executions(stateMachineArn=self.state_machine_arn)["executions"]:
                records[item["executionArn"]] = self.describe(item["executionArn"])
        return sorted(records.values(), key=lambda r: r.get("startDate") or "", reverse=True)

    # ------------------------------------------------------------------ autoscaling, as recorded by moto
    def scalable_targets(self) -> list[dict[str, Any]]:
        """Application Auto Scaling targets registered by executions (moto's record)."""
        client = boto3.client("application-autoscaling", region_name=REGION)
        return list(client.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"])

    def scaling_policies(self) -> list[dict[str, Any]]:
        """Application Auto Scaling policies put by executions (moto's record)."""
        client = boto3.client("application-autoscaling", region_name=REGION)
        return list(client.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"])

    # ------------------------------------------------------------------ records
    def _live_record(self, arn: str, with_events: bool) -> dict[str, Any]:
        desc = self._client.describe_execution(executionArn=arn)
        record: dict[str, Any] = {
            "executionArn": arn,
            "name": desc["name"],
            "stateMachineArn": desc["stateMachineArn"],
            "status": desc["status"],
            "input": json.loads(desc.get("input") or "null"),
            "startDate": _iso(desc.get("startDate")),
            "stopDate": _iso(desc.get("stopDate")),
        }
        if desc.get("output") is not None:
            record["output"] = json.loads(desc["output"])
        for key in ("error", "cause"):
            if desc.get(key) is not None:
                record[key] = desc[key]
        if with_events:
            record["events"] = self._events(arn)
        return record

    def _events(self, arn: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
        while True:
            page = self._client.get_execution_history(**kwargs)
            for event in page["events"]:
                item: dict[str, Any] = {
                    "id": event["id"],
                    "type": event["type"],
                    "timestamp": _iso(event.get("timestamp")),
                }
                for key, value in event.items():
                    if key.endswith("EventDetails") and isinstance(value, dict):
                        for field in ("name", "error", "cause", "resource", "resourceType"):
                            if field in value:
                                item["state" if field == "name" else field] = value[field]
                events.append(item)
            if not page.get("nextToken"):
                return events
            kwargs["nextToken"] = page["nextToken"]

    def _path(self, arn: str) -> Path:
        return self.records_dir / f"{arn.rsplit(':', 1)[-1]}.json"

    def _persist(self, arn: str) -> None:
        record = self._live_record(arn, with_events=True)
        record["recordedAt"] = time.time()
        with self._lock:
            tmp = self._path(arn).with_suffix(".tmp")
            tmp.write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
            tmp.replace(self._path(arn))

    def _persist_all(self) -> None:
        for item in self._client.list_executions(stateMachineArn=self.state_machine_arn)["executions"]:
            self._persist(item["executionArn"])

    def _load(self, arn: str) -> dict[str, Any]:
        path = self._path(arn)
        if not path.exists():
            raise StepFunctionsError(f"no execution {arn!r}; known: {[r['name'] for r in self.list_executions()]}")
        return self._orphan_check(json.loads(path.read_text(encoding="utf-8")))

    def _orphan_check(self, record: dict[str, Any]) -> dict[str, Any]:
        live = self._mock is not None and record.get("stateMachineArn") == self.state_machine_arn
        if record.get("status") == "RUNNING" and not live:
            # moto's interpreter ran in a process that is gone: the execution can never finish.
            record.update(
                status="ABORTED",
                error="LocalRuntimeStopped",
                cause="The local runtime stopped before this execution finished.",
            )
        return record

    def _watch(self) -> None:
        # Keeps the on-disk records current while executions run (for `status` from another process).
        while not self._stopping.wait(1.0):
            try:
                for item in self._client.list_executions(stateMachineArn=self.state_machine_arn)["executions"]:
                    if item["status"] == "RUNNING" or not self._path(item["executionArn"]).exists():
                        self._persist(item["executionArn"])
            except Exception:
                continue
