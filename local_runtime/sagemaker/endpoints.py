"""Models, endpoint configs and endpoints: worker processes behind a load balancer, blue/green updates.

An endpoint deploys a *snapshot* of its endpoint config and models (SageMaker keeps serving after those are deleted),
so a restarted server can bring it back from the persisted snapshot and local S3 without retraining.
"""

from __future__ import annotations

import contextlib
import copy
import http.client
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from local_runtime.s3 import LocalS3, S3UriError
from local_runtime.sagemaker.errors import ACCOUNT, REGION, RuntimeApiError, arn, validation
from local_runtime.sagemaker.store import Store
from local_runtime.sagemaker.training_jobs import free_port, page

LOGGER = logging.getLogger("local_runtime.sagemaker")
REPO_ROOT = Path(__file__).resolve().parents[2]
MAX_PAYLOAD = 6_291_456
# NOTE: SageMaker fails CreateEndpoint when /ping has not passed within 4 minutes (sagemaker-contract.md §3);
# ContainerStartupHealthCheckTimeoutInSeconds or LOCAL_SAGEMAKER_STARTUP_TIMEOUT override it.
DEFAULT_STARTUP_TIMEOUT_S = 240.0
INVOKE_TIMEOUT_S = 60.0
DRAIN_TIMEOUT_S = 90.0


def _now() -> float:
    return time.time()


class DeployError(Exception):
    """A deployment that did not become healthy; the message becomes FailureReason."""


class Worker:
    """One endpoint instance: a ``local_runtime.sagemaker.worker`` process on its own port."""

    def __init__(self, variant: str, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.variant = variant
        self.proc = proc
        self.port = port
        self.log = log
        self.inflight = 0

    def log_tail(self, lines: int = 20) -> list[str]:
        try:
            return self.log.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return []

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)  # SageMaker: SIGTERM, then SIGKILL after 30 s
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


class Pool:
    """The workers serving one deployment, with per-variant weights and round-robin routing."""

    def __init__(self, workers: list[Worker], weights: dict[str, float]) -> None:
        self.workers = workers
        self.weights = weights
        self._next: dict[str, int] = {}

    def pick(self, variant: str | None) -> Worker:
        names = [v for v in self.weights if any(w.variant == v for w in self.workers)]
        if variant is not None:
            if variant not in names:
                raise RuntimeApiError("ValidationError", f"Variant {variant} not found for this endpoint.", 400)
            chosen = variant
        else:
            weights = [max(self.weights[v], 0.0) for v in names]
            if not names:
                raise RuntimeApiError("ServiceUnavailable", "No instance is available to serve the request.", 503)
            chosen = random.choices(names, weights=weights)[0] if sum(weights) > 0 else names[0]
        candidates = [w for w in self.workers if w.variant == chosen]
        index = self._next.get(chosen, 0) % len(candidates)
        self._next[chosen] = index + 1
        # Round robin, but skip a busy worker when an idle one exists (TorchServe queues per worker).
        ordered = candidates[index:] + candidates[:index]
        return min(ordered, key=lambda w: w.inflight)


class Endpoints:
    """CreateModel … DeleteEndpoint, UpdateEndpoint, UpdateEndpointWeightsAndCapacities and InvokeEndpoint.

    Args:
        home: runtime home (``endpoints/`` and ``logs/Endpoints/`` live under it).
        store: persistent state.
        s3: local S3.
    """

    def __init__(self, home: Path, store: Store, s3: LocalS3) -> None:
        self.home = Path(home)
        self.store = store
        self.s3 = s3
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._pools: dict[str, Pool] = {}
        self._threads: list[threading.Thread] = []
        self._closing = False

    # ----------------------------------------------------------------------------------------------- models
    def create_model(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["ModelName"]
        model_arn = arn("model", name)
        containers = params.get("Containers") or (
            [params["PrimaryContainer"]] if params.get("PrimaryContainer") else []
        )
        if not containers:
            raise validation("Either PrimaryContainer or Containers must be specified.")
        for container in containers:
            url = container.get("ModelDataUrl")
            if url:
                try:
                    self.s3.path(url)
                except S3UriError as exc:
                    raise validation(f"ModelDataUrl: {exc}") from exc
        with self._lock:
            if self.store.get("models", name):
                raise validation(f'Cannot create already existing model "{model_arn}".')
            record = {k: v for k, v in params.items() if k != "Tags"}
            record.update(ModelArn=model_arn, CreationTime=_now())
            record.setdefault("EnableNetworkIsolation", False)
            self.store.put("models", name, record)
        return {"ModelArn": model_arn}

    def describe_model(self, name: str) -> dict[str, Any]:
        record = self.store.get("models", name)
        if record is None:
            raise validation(f'Could not find model "{arn("model", name)}".')
        return record

    def delete_model(self, name: str) -> dict[str, Any]:
        self.describe_model(name)
        self.store.delete("models", name)
        return {}

    def list_models(self, params: dict[str, Any]) -> dict[str, Any]:
        from local_runtime.sagemaker.training_jobs import filter_records

        records = filter_records(self.store.all("models"), params, "ModelName", None)
        items = [{k: r[k] for k in ("ModelName", "ModelArn", "CreationTime")} for r in records]
        return page(items, params, "Models", "ModelName", None)

    # ----------------------------------------------------------------------------------------------- configs
    def create_endpoint_config(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["EndpointConfigName"]
        config_arn = arn("endpoint-config", name)
        with self._lock:
            if self.store.get("endpoint-configs", name):
                raise validation(f'Cannot create already existing endpoint configuration "{config_arn}".')
            variants = copy.deepcopy(params["ProductionVariants"])
            for variant in variants:
                if not variant.get("ModelName"):
                    raise validation(f"ProductionVariant {variant['VariantName']}: ModelName is required locally.")
                self.describe_model(variant["ModelName"])
                variant.setdefault("InitialVariantWeight", 1.0)
                if not variant.get("ServerlessConfig"):
                    variant.setdefault("InitialInstanceCount", 1)
            names = [v["VariantName"] for v in variants]
            if len(set(names)) != len(names):
                raise validation("ProductionVariants must have unique VariantName values.")
            record = {k: v for k, v in params.items() if k != "Tags"}
            record.update(ProductionVariants=variants, EndpointConfigArn=config_arn, CreationTime=_now())
            self.store.put("endpoint-configs", name, record)
        return {"EndpointConfigArn": config_arn}

    def describe_endpoint_config(self, name: str) -> dict[str, Any]:
        record = self.store.get("endpoint-configs", name)
        if record is None:
            raise validation(f'Could not find endpoint configuration "{arn("endpoint-config", name)}".')
        return record

    def delete_endpoint_config(self, name: str) -> dict[str, Any]:
        self.describe_endpoint_config(name)
        self.store.delete("endpoint-configs", name)
        return {}

    def list_endpoint_configs(self, params: dict[str, Any]) -> dict[str, Any]:
        from local_runtime.sagemaker.training_jobs import filter_records

        records = filter_records(self.store.all("endpoint-configs"), params, "EndpointConfigName", None)
        items = [{k: r[k] for k in ("EndpointConfigName", "EndpointConfigArn", "CreationTime")} for r in records]
        return page(items, params, "EndpointConfigs", "EndpointConfigName", None)

    # ----------------------------------------------------------------------------------------------- endpoints
    def _snapshot(self, config_name: str) -> dict[str, Any]:
        config = self.describe_endpoint_config(config_name)
        models = {v["ModelName"]: self.describe_model(v["ModelName"]) for v in config["ProductionVariants"]}
        return {"config": config, "models": models, "id": uuid.uuid4().hex[:8]}

    def create_endpoint(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["EndpointName"]
        endpoint_arn = arn("endpoint", name)
        with self._lock:
            if self.store.get("endpoints", name):
                raise validation(f'Cannot create already existing endpoint "{endpoint_arn}".')
            snapshot = self._snapshot(params["EndpointConfigName"])
            now = _now()
            record: dict[str, Any] = {
                "EndpointName": name,
                "EndpointArn": endpoint_arn,
                "EndpointConfigName": params["EndpointConfigName"],
                "EndpointStatus": "Creating",
                "CreationTime": now,
                "LastModifiedTime": now,
                "_pending": snapshot,
            }
            self.store.put("endpoints", name, record)
        self._spawn(self._deploy_initial, name, snapshot)
        return {"EndpointArn": endpoint_arn}

    def describe_endpoint(self, name: str) -> dict[str, Any]:
        record = self.store.get("endpoints", name)
        if record is None:
            raise validation(f'Could not find endpoint "{arn("endpoint", name)}".')
        out = {k: v for k, v in record.items() if not k.startswith("_")}
        with self._lock:
            pool = self._pools.get(name)
            if pool is not None and "ProductionVariants" in out:
                for variant in out["ProductionVariants"]:
                    variant["CurrentInstanceCount"] = sum(
                        1 for w in pool.workers if w.variant == variant["VariantName"]
                    )
        return out

    def list_endpoints(self, params: dict[str, Any]) -> dict[str, Any]:
        from local_runtime.sagemaker.training_jobs import filter_records

        records = filter_records(self.store.all("endpoints"), params, "EndpointName", "EndpointStatus")
        keys = ("EndpointName", "EndpointArn", "CreationTime", "LastModifiedTime", "EndpointStatus")
        return page([{k: r[k] for k in keys} for r in records], params, "Endpoints", "EndpointName", "EndpointStatus")

    def update_endpoint(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["EndpointName"]
        with self._lock:
            record = self._record(name)
            if record["EndpointStatus"] != "InService":
                raise validation(f'Cannot update in-progress endpoint "{record["EndpointArn"]}".')
            snapshot = self._snapshot(params["EndpointConfigName"])
            self._set(name, EndpointStatus="Updating", _pending=snapshot)
        self._spawn(self._deploy_update, name, snapshot)
        return {"EndpointArn": record["EndpointArn"]}

    def update_weights_and_capacities(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["EndpointName"]
        with self._lock:
            record = self._record(name)
            if record["EndpointStatus"] != "InService":
                raise validation(f'Cannot update in-progress endpoint "{record["EndpointArn"]}".')
            known = {v["VariantName"] for v in record.get("ProductionVariants", [])}
            for desired in params["DesiredWeightsAndCapacities"]:
                if desired["VariantName"] not in known:
                    raise validation(
                        f'The variant(s) "[{desired["VariantName"]}]" is/are not present in the endpoint '
                        f'"{record["EndpointArn"]}".'
                    )
            self._set(name, EndpointStatus="Updating")
        self._spawn(self._rescale, name, params["DesiredWeightsAndCapacities"])
        return {"EndpointArn": record["EndpointArn"]}

    def delete_endpoint(self, name: str) -> dict[str, Any]:
        with self._lock:
            self._record(name)
            self._set(name, EndpointStatus="Deleting")
            pool = self._pools.pop(name, None)
        if pool is not None:
            self._drain_and_stop(pool.workers)
        self.store.delete("endpoints", name)
        return {}

    def _record(self, name: str) -> dict[str, Any]:
        record = self.store.get("endpoints", name)
        if record is None:
            raise validation(f'Could not find endpoint "{arn("endpoint", name)}".')
        return record

    def _set(self, name: str, **fields: Any) -> dict[str, Any] | None:
        with self._lock:
            record = self.store.get("endpoints", name)
            if record is None:
                return None
            for key, value in fields.items():
                if value is None:
                    record.pop(key, None)
                else:
                    record[key] = value
            record["LastModifiedTime"] = _now()
            self.store.put("endpoints", name, record)
            return record

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name=f"endpoint-{args[0]}")
        self._threads.append(thread)
        thread.start()

    # ----------------------------------------------------------------------------------------------- deployments
    @staticmethod
    def _variants_view(snapshot: dict[str, Any], pool: Pool | None) -> list[dict[str, Any]]:
        out = []
        for variant in snapshot["config"]["ProductionVariants"]:
            model = snapshot["models"][variant["ModelName"]]
            container = (model.get("Containers") or [model.get("PrimaryContainer") or {}])[0]
            image = container.get("Image", "local")
            count = sum(1 for w in pool.workers if w.variant == variant["VariantName"]) if pool else 0
            desired = int(variant.get("InitialInstanceCount") or 1)
            weight = float(variant.get("InitialVariantWeight", 1.0))
            out.append(
                {
                    "VariantName": variant["VariantName"],
                    "DeployedImages": [{"SpecifiedImage": image, "ResolvedImage": image, "ResolutionTime": _now()}],
                    "CurrentWeight": weight,
                    "DesiredWeight": weight,
                    "CurrentInstanceCount": count,
                    "DesiredInstanceCount": desired,
                }
            )
        return out

    def _deploy_initial(self, name: str, snapshot: dict[str, Any]) -> None:
        try:
            pool = self._start_pool(name, snapshot)
        except DeployError as exc:
            if self._closing:
                return  # the server is stopping: keep the record as is, the next server redeploys it
            LOGGER.warning("endpoint %s failed: %s", name, exc)
            self._set(name, EndpointStatus="Failed", FailureReason=str(exc)[:1024], _pending=None)
            return
        with self._lock:
            if self._closing or self.store.get("endpoints", name) is None:
                stale = pool
            else:
                stale = None
                self._pools[name] = pool
                self._set(
                    name,
                    EndpointStatus="InService",
                    EndpointConfigName=snapshot["config"]["EndpointConfigName"],
                    ProductionVariants=self._variants_view(snapshot, pool),
                    FailureReason=None,
                    _deployed=snapshot,
                    _pending=None,
                )
        if stale is not None:
            self._drain_and_stop(stale.workers)

    def _deploy_update(self, name: str, snapshot: dict[str, Any]) -> None:
        try:
            pool = self._start_pool(name, snapshot)
        except DeployError as exc:
            if self._closing:
                return
            # SageMaker rolls a failed update back: the old deployment keeps serving, status returns to InService.
            LOGGER.warning("endpoint %s update failed, keeping the current deployment: %s", name, exc)
            self._set(name, EndpointStatus="InService", FailureReason=str(exc)[:1024], _pending=None)
            return
        with self._lock:
            old: Pool | None
            if self._closing or self.store.get("endpoints", name) is None:
                old = pool
            else:
                # Blue/green: new requests go to the new pool from here on; the old pool only finishes its in-flight
                # requests before it is stopped, so no request is dropped.
                old = self._pools.get(name)
                self._pools[name] = pool
                self._set(
                    name,
                    EndpointStatus="InService",
                    EndpointConfigName=snapshot["config"]["EndpointConfigName"],
                    ProductionVariants=self._variants_view(snapshot, pool),
                    FailureReason=None,
                    _deployed=snapshot,
                    _pending=None,
                )
        if old is not None:
            self._drain_and_stop(old.workers)

    def _rescale(self, name: str, desired: list[dict[str, Any]]) -> None:
        record = self.store.get("endpoints", name)
        if record is None:
            return
        snapshot = copy.deepcopy(record["_deployed"])
        by_name = {v["VariantName"]: v for v in snapshot["config"]["ProductionVariants"]}
        for change in desired:
            variant = by_name[change["VariantName"]]
            if change.get("DesiredWeight") is not None:
                variant["InitialVariantWeight"] = float(change["DesiredWeight"])
            if change.get("DesiredInstanceCount") is not None:
                variant["InitialInstanceCount"] = int(change["DesiredInstanceCount"])
        with self._lock:
            pool = self._pools.get(name)
        if pool is None:
            self._set(name, EndpointStatus="InService")
            return
        added: list[Worker] = []
        removed: list[Worker] = []
        try:
            for variant in snapshot["config"]["ProductionVariants"]:
                current = [w for w in pool.workers if w.variant == variant["VariantName"]]
                target = int(variant.get("InitialInstanceCount") or 1)
                if target > len(current):
                    model_dir = self._model_dir(name, snapshot, variant)
                    new = [self._start_worker(name, snapshot, variant, model_dir) for _ in range(target - len(current))]
                    added.extend(new)
                    self._wait_healthy(new, self._startup_timeout(variant), variant["VariantName"])
                elif target < len(current):
                    removed.extend(current[target:])
        except DeployError as exc:
            self._stop_all(added)
            self._set(name, EndpointStatus="InService", FailureReason=str(exc)[:1024])
            return
        with self._lock:
            workers = [w for w in pool.workers if w not in removed] + added
            new_pool = Pool(workers, {v["VariantName"]: float(v["InitialVariantWeight"]) for v in by_name.values()})
            self._pools[name] = new_pool
            self._set(
                name,
                EndpointStatus="InService",
                ProductionVariants=self._variants_view(snapshot, new_pool),
                FailureReason=None,
                _deployed=snapshot,
            )
        self._drain_and_stop(removed)

    def _model_dir(self, name: str, snapshot: dict[str, Any], variant: dict[str, Any]) -> Path:
        model = snapshot["models"][variant["ModelName"]]
        container = (model.get("Containers") or [model.get("PrimaryContainer") or {}])[0]
        target = self.home / "endpoints" / name / snapshot["id"] / variant["VariantName"] / "model"
        if (target.parent / ".extracted").exists():
            return target
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        url = container.get("ModelDataUrl")
        if url:
            source = self.s3.path(url)
            if not source.is_file():
                raise DeployError(
                    f"Failed to download model data from {url} for production variant {variant['VariantName']}: "
                    "the object does not exist."
                )
            try:
                with tarfile.open(source) as tar:
                    tar.extractall(target, filter="data")
            except (tarfile.TarError, OSError) as exc:
                raise DeployError(f"Failed to extract model data from {url}: {exc}") from exc
        (target.parent / ".extracted").touch()
        return target

    def _startup_timeout(self, variant: dict[str, Any]) -> float:
        override = os.environ.get("LOCAL_SAGEMAKER_STARTUP_TIMEOUT")
        if override:
            return float(override)
        return float(variant.get("ContainerStartupHealthCheckTimeoutInSeconds") or DEFAULT_STARTUP_TIMEOUT_S)

    def _start_worker(self, name: str, snapshot: dict[str, Any], variant: dict[str, Any], model_dir: Path) -> Worker:
        model = snapshot["models"][variant["ModelName"]]
        container = (model.get("Containers") or [model.get("PrimaryContainer") or {}])[0]
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SM_")}
        env.update(container.get("Environment") or {})
        env.update(
            {
                "SAGEMAKER_BIND_TO_PORT": str(port),
                "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p),
            }
        )
        env.setdefault("OMP_NUM_THREADS", "1")
        log_dir = self.home / "logs" / "Endpoints" / name
        log_dir.mkdir(parents=True, exist_ok=True)
        log = log_dir / f"{variant['VariantName']}-{snapshot['id']}-{uuid.uuid4().hex[:6]}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "local_runtime.sagemaker.worker",
                    "--model-dir",
                    str(model_dir),
                    "--port",
                    str(port),
                ],
                cwd=model_dir,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return Worker(variant["VariantName"], proc, port, log)

    def _start_pool(self, name: str, snapshot: dict[str, Any]) -> Pool:
        workers: list[Worker] = []
        try:
            for variant in snapshot["config"]["ProductionVariants"]:
                model_dir = self._model_dir(name, snapshot, variant)
                count = int(variant.get("InitialInstanceCount") or 1)
                new = [self._start_worker(name, snapshot, variant, model_dir) for _ in range(count)]
                workers.extend(new)
            for variant in snapshot["config"]["ProductionVariants"]:
                mine = [w for w in workers if w.variant == variant["VariantName"]]
                self._wait_healthy(mine, self._startup_timeout(variant), variant["VariantName"])
        except BaseException:
            self._stop_all(workers)
            raise
        weights = {
            v["VariantName"]: float(v.get("InitialVariantWeight", 1.0))
            for v in snapshot["config"]["ProductionVariants"]
        }
        return Pool(workers, weights)

    def _wait_healthy(self, workers: list[Worker], timeout: float, variant: str) -> None:
        deadline = time.monotonic() + timeout
        pending = list(workers)
        while pending:
            for worker in list(pending):
                code = worker.proc.poll()
                if code is not None:
                    tail = worker.log_tail()
                    reason = next(
                        (line[len("WORKER_FAILED ") :] for line in tail if line.startswith("WORKER_FAILED ")), None
                    )
                    reason = reason or (tail[-1] if tail else f"exit code {code}")
                    raise DeployError(
                        f"The primary container for production variant {variant} did not pass the ping health check: "
                        f"the model server exited with code {code} ({reason}). See {worker.log} for the log."
                    )
                if self._ping(worker):
                    pending.remove(worker)
            if not pending:
                return
            if time.monotonic() > deadline or self._closing:
                raise DeployError(
                    f"The primary container for production variant {variant} did not pass the ping health check "
                    f"within {timeout:g} seconds. See {pending[0].log} for the log."
                )
            time.sleep(0.2)

    @staticmethod
    def _ping(worker: Worker) -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", worker.port, timeout=2)
        try:
            conn.request("GET", "/ping")
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def _drain_and_stop(self, workers: list[Worker]) -> None:
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        with self._cond:
            while any(w.inflight for w in workers) and time.monotonic() < deadline:
                self._cond.wait(timeout=0.5)
        self._stop_all(workers)

    @staticmethod
    def _stop_all(workers: list[Worker]) -> None:
        threads = [threading.Thread(target=w.stop, daemon=True) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=45)

    # ----------------------------------------------------------------------------------------------- runtime
    def invoke(self, name: str, body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
        """InvokeEndpoint: route to a healthy worker; handler errors become ModelError (424).

        Returns:
            The response body and the response headers.

        Raises:
            RuntimeApiError: ValidationError, ModelError, ServiceUnavailable.
        """
        if len(body) > MAX_PAYLOAD:
            raise RuntimeApiError(
                "ValidationError", f"Request payload exceeds the maximum allowed size of {MAX_PAYLOAD} bytes.", 400
            )
        with self._lock:
            pool = self._pools.get(name)
            if pool is None:
                record = self.store.get("endpoints", name)
                if record is None or record["EndpointStatus"] in ("Creating", "Failed"):
                    raise RuntimeApiError("ValidationError", f"Endpoint {name} of account {ACCOUNT} not found.", 400)
                raise RuntimeApiError(
                    "ServiceUnavailable", f"Endpoint {name} is {record['EndpointStatus']} and has no instance yet.", 503
                )
            worker = pool.pick(headers.get("X-Amzn-SageMaker-Target-Variant"))
            worker.inflight += 1
        try:
            return self._forward(name, worker, body, headers)
        finally:
            with self._cond:
                worker.inflight -= 1
                self._cond.notify_all()

    def _forward(self, name: str, worker: Worker, body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
        forwarded = {"Content-Length": str(len(body))}
        for key in ("Content-Type", "Accept", "X-Amzn-SageMaker-Custom-Attributes", "X-Amzn-SageMaker-Inference-Id"):
            if headers.get(key):
                forwarded[key] = headers[key]
        timeout = float(os.environ.get("LOCAL_SAGEMAKER_INVOKE_TIMEOUT", INVOKE_TIMEOUT_S))
        conn = http.client.HTTPConnection("127.0.0.1", worker.port, timeout=timeout)
        log_group = f"/aws/sagemaker/Endpoints/{name}"
        log_arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{log_group}"
        see = (
            f"See https://{REGION}.console.aws.amazon.com/cloudwatch/home?region={REGION}#logEventViewer:"
            f"group={log_group} in account {ACCOUNT} for more information."
        )
        try:
            conn.request("POST", "/invocations", body=body, headers=forwarded)
            response = conn.getresponse()
            payload = response.read()
            status = response.status
            content_type = response.getheader("Content-Type") or "application/json"
            custom = response.getheader("X-Amzn-SageMaker-Custom-Attributes")
        except TimeoutError as exc:
            raise RuntimeApiError(
                "ModelError",
                'Received server error (0) from primary with message "Your invocation timed out while waiting for a '
                f"response from container primary. Review the latency metrics for each container in Amazon CloudWatch, "
                f'resolve the issue, and try again.". {see}',
                424,
                OriginalStatusCode=0,
                OriginalMessage="Invocation timed out",
                LogStreamArn=log_arn,
            ) from exc
        except OSError as exc:
            raise RuntimeApiError(
                "ServiceUnavailable", f"The model server of endpoint {name} is unavailable: {exc}", 503
            ) from exc
        finally:
            conn.close()
        if status >= 400:
            text = payload.decode("utf-8", errors="replace")
            kind = "client" if status < 500 else "server"
            raise RuntimeApiError(
                "ModelError",
                f'Received {kind} error ({status}) from primary with message "{text}". {see}',
                424,
                OriginalStatusCode=status,
                OriginalMessage=text,
                LogStreamArn=log_arn,
            )
        out_headers = {"Content-Type": content_type, "x-Amzn-Invoked-Production-Variant": worker.variant}
        if custom:
            out_headers["X-Amzn-SageMaker-Custom-Attributes"] = custom
        return payload, out_headers

    # ----------------------------------------------------------------------------------------------- restart
    def recover(self) -> None:
        """Bring persisted endpoints back from their deployed snapshots (no retraining)."""
        for record in self.store.all("endpoints"):
            name = record["EndpointName"]
            status = record["EndpointStatus"]
            if status == "Deleting":
                self.store.delete("endpoints", name)
                continue
            if status in ("Failed", "OutOfService"):
                continue
            snapshot = record.get("_deployed") or record.get("_pending")
            if snapshot is None:
                self._set(name, EndpointStatus="Failed", FailureReason="The endpoint has no deployment to restore.")
                continue
            # An endpoint that was in service comes back through SystemUpdating (platform maintenance) → InService.
            initial = "SystemUpdating" if record.get("_deployed") else "Creating"
            self._set(name, EndpointStatus=initial, _pending=snapshot)
            self._spawn(self._deploy_initial, name, snapshot)

    def shutdown(self) -> None:
        """Stop every worker of every endpoint (state stays persisted for the next server)."""
        with self._lock:
            self._closing = True
            pools = list(self._pools.values())
            self._pools.clear()
        for thread in self._threads:
            thread.join(timeout=5)
        for pool in pools:
            self._drain_and_stop(pool.workers)
