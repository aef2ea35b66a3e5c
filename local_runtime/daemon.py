"""The control-plane glue of the local runtime: data, source, services, executions, progress, serving.

One ``Runtime`` owns the local SageMaker server, the local Step Functions and the local API in this process. A serving
``up --serve`` also runs a tiny control endpoint on 127.0.0.1 (URL and a random token in ``<home>/runtime.json``, mode
0600) so that ``run``, ``status`` and ``down`` from other shells talk to the process that holds the services.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO

from local_runtime import config as cfg

METRIC_LINE = re.compile(
    r"METRIC split=(?P<split>\w+) epoch=(?P<epoch>\d+) loss=(?P<loss>[-+\d.eE]+|nan|inf) "
    r"top1=(?P<top1>[-+\d.eE]+|nan)(?: top5=(?P<top5>[-+\d.eE]+|nan))?"
)
TERMINAL_EXECUTION = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


class RuntimeCliError(Exception):
    """A user-facing failure: the message says what is wrong and what to do; no traceback is shown."""


# --------------------------------------------------------------------------------------------------------------------
# Execution input
# --------------------------------------------------------------------------------------------------------------------


def local_execution_input(
    training_data: str,
    source_dir: str,
    instance_count: int = 1,
    epochs: int = cfg.DEMO_EPOCHS,
    hpo: bool = False,
    arch: str = cfg.DEMO_ARCH,
    image_size: int = cfg.DEMO_IMAGE_SIZE,
    min_test_accuracy: float = cfg.DEMO_MIN_TEST_ACCURACY,
    extra_hyperparameters: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The state machine input of a local run, shaped like the cloud one (docs/CONTRACTS.md §6).

    Args:
        training_data: ``s3://`` prefix holding ``train/ valid/ test/``.
        source_dir: ``s3://`` URI of the sourcedir tarball.
        instance_count: training hosts (N > 1: one torch.distributed group over N local processes).
        epochs: training epochs.
        hpo: run a small Random tuning job instead of one training job.
        arch: model architecture.
        image_size: training image side in pixels.
        min_test_accuracy: the accuracy gate's threshold.
        extra_hyperparameters: more hyperparameters (strings), e.g. to make a run fail on purpose.

    Returns:
        The execution input.
    """
    hyperparameters = {
        "arch": arch,
        "epochs": str(epochs),
        "batch-size": str(cfg.DEMO_BATCH_SIZE),
        "learning-rate": cfg.DEMO_LEARNING_RATE,
        "image-size": str(image_size),
        "augment": cfg.DEMO_AUGMENT,
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


# --------------------------------------------------------------------------------------------------------------------
# Progress
# --------------------------------------------------------------------------------------------------------------------


def parse_metric_line(line: str) -> dict[str, Any] | None:
    """Parse one ``METRIC split=... epoch=... loss=... top1=...`` line (docs/CONTRACTS.md §2), else None."""
    found = METRIC_LINE.search(line)
    if not found:
        return None
    out: dict[str, Any] = {"split": found["split"], "epoch": int(found["epoch"])}
    for key in ("loss", "top1", "top5"):
        if found[key] is not None:
            out[key] = float(found[key])
    return out


def format_metric(job: str, metric: Mapping[str, Any]) -> str:
    """One progress line for an epoch metric."""
    text = f"  {job}  epoch {metric['epoch']:>2}  {metric['split']:<5}  loss {metric['loss']:.4f}"
    text += f"  acc {metric['top1']:.3f}"
    if "top5" in metric:
        text += f"  top5 {metric['top5']:.3f}"
    return text


@dataclass
class ProgressPrinter:
    """Prints what changed since the last poll: state transitions, job statuses, epoch metrics, endpoint status."""

    out: TextIO = sys.stdout
    seen_states: int = 0
    entered: set[str] = field(default_factory=set)
    job_status: dict[str, str] = field(default_factory=dict)
    endpoint_status: dict[str, str] = field(default_factory=dict)
    seen_metrics: set[tuple[str, str, int]] = field(default_factory=set)
    log_offsets: dict[Path, int] = field(default_factory=dict)

    def emit(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def states(self, history: list[dict[str, Any]]) -> None:
        # Polling loops re-enter the same states every second: show each state the first time only.
        for event in history[self.seen_states :]:
            name = event.get("state") or event.get("name")
            kind = str(event.get("type", ""))
            if name and "Entered" in kind and name not in self.entered:
                self.entered.add(name)
                self.emit(f"→ {name}")
            elif (kind.endswith("Failed") or kind == "ExecutionAborted") and event.get("error"):
                detail = f"{event.get('error', '')} {str(event.get('cause', ''))[:300]}".rstrip()
                if kind.startswith("Execution"):
                    self.emit(f"✗ {kind}: {detail}")
                else:
                    # A task error is often expected (LookupEndpoint's "not found" on a first deploy); the ASL's
                    # Catch/Choice decides what it means, and only an execution failure is fatal.
                    self.emit(f"  {kind} (the state machine handles it): {detail}")
        self.seen_states = len(history)

    def job(self, name: str, status: str, secondary: str | None = None, reason: str | None = None) -> None:
        label = f"{status}" + (f" / {secondary}" if secondary else "")
        if self.job_status.get(name) != label:
            self.job_status[name] = label
            self.emit(f"  training job {name}: {label}" + (f" ({reason})" if reason else ""))

    def endpoint(self, name: str, status: str, reason: str | None = None) -> None:
        if self.endpoint_status.get(name) != status:
            self.endpoint_status[name] = status
            self.emit(f"  endpoint {name}: {status}" + (f" ({reason})" if reason else ""))

    def logs(self, job: str, files: Iterable[Path]) -> None:
        for path in files:
            try:
                with open(path, "rb") as fh:
                    fh.seek(self.log_offsets.get(path, 0))
                    chunk = fh.read()
            except OSError:
                continue
            # Only consume whole lines; a half-written line is read again next time.
            complete = chunk.rfind(b"\n") + 1
            self.log_offsets[path] = self.log_offsets.get(path, 0) + complete
            for raw in chunk[:complete].decode("utf-8", errors="replace").splitlines():
                metric = parse_metric_line(raw)
                if metric is None or "loss" not in metric or "top1" not in metric:
                    continue
                key = (job, metric["split"], metric["epoch"])
                if key not in self.seen_metrics:
                    self.seen_metrics.add(key)
                    self.emit(format_metric(job, metric))


# --------------------------------------------------------------------------------------------------------------------
# Control endpoint (serving mode)
# --------------------------------------------------------------------------------------------------------------------


class ControlServer:
    """JSON over HTTP on 127.0.0.1, authenticated by a bearer token only the owner can read (runtime.json, 0600)."""

    def __init__(self, routes: Mapping[tuple[str, str], Callable[[dict[str, Any]], Any]]) -> None:
        self.token = secrets.token_urlsafe(24)
        self.routes = dict(routes)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                if self.headers.get("Authorization") != f"Bearer {outer.token}":
                    self._reply(403, {"message": "bad or missing control token"})
                    return
                path, _, query = self.path.partition("?")
                route = outer.routes.get((self.command, path))
                if route is None:
                    self._reply(404, {"message": f"no control route {self.command} {path}"})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                    if query:
                        body.update(dict(p.split("=", 1) for p in query.split("&") if "=" in p))
                    self._reply(200, route(body))
                except RuntimeCliError as exc:
                    self._reply(400, {"message": str(exc)})
                except Exception as exc:  # report, never kill the serving process
                    self._reply(500, {"message": f"{type(exc).__name__}: {exc}"})

            do_GET = do_POST = _serve

            def _reply(self, status: int, doc: Any) -> None:
                data = json.dumps(doc, default=str).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-runtime-control", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> ControlServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def control_call(runtime: Mapping[str, Any], method: str, path: str, body: Any = None, timeout: float = 30) -> Any:
    """Call the serving process's control endpoint.

    Raises:
        RuntimeCliError: the process is gone or answered with an error.
    """
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{runtime['control_url']}{path}",
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {runtime['token']}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("message", str(exc))
        except ValueError:
            message = str(exc)
        raise RuntimeCliError(message) from None
    except (urllib.error.URLError, OSError) as exc:
        raise RuntimeCliError(
            f"the serving process (pid {runtime.get('pid')}) does not answer at {runtime['control_url']}: {exc}"
        ) from None


def live_runtime(paths: cfg.Paths) -> dict[str, Any] | None:
    """The record of a serving process that is still alive, else None (a stale record is removed)."""
    doc = cfg.read_runtime(paths)
    if doc is None:
        return None
    if not cfg.pid_alive(int(doc.get("pid", -1))):
        paths.runtime_file.unlink(missing_ok=True)
        return None
    return doc


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def env_flag(name: str) -> bool:
    """True for 1/true/yes (case-insensitive)."""
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


# --------------------------------------------------------------------------------------------------------------------
# The runtime: services + one process
# --------------------------------------------------------------------------------------------------------------------


def load_input(path: Path) -> dict[str, Any]:
    """Read an execution input file.

    Raises:
        RuntimeCliError: missing file, invalid JSON, or not an object.
    """
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise RuntimeCliError(f"--input file not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise RuntimeCliError(f"--input {path} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise RuntimeCliError(
            f"--input {path} must hold a JSON object (docs/CONTRACTS.md §6), got {type(doc).__name__}"
        )
    return doc


class Runtime:
    """Local SageMaker + Step Functions (+ the API once a model serves) in this process."""

    def __init__(
        self,
        paths: cfg.Paths,
        template_path: Path = cfg.TEMPLATE_PATH,
        asl_path: Path = cfg.ASL_PATH,
        overrides: Mapping[str, str] | None = None,
        out: TextIO | None = None,
        verbose_logs: bool = False,
    ) -> None:
        self.paths = paths
        self.template_path = template_path
        self.asl_path = asl_path
        self.overrides = dict(overrides or {})
        self.out = out or sys.stdout
        self.verbose_logs = verbose_logs
        self.sagemaker: Any = None
        self.sfn: Any = None
        self.api: Any = None
        self.control: ControlServer | None = None
        self._stopped = False
        self._function_log: TextIO | None = None

    # ---- services ----------------------------------------------------------------------------------------------

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def start_services(self) -> None:
        """Start the local SageMaker server and the local Step Functions."""
        from local_runtime.sagemaker.server import SageMakerServer
        from local_runtime.stepfunctions import LocalStepFunctions

        self.paths.home.mkdir(parents=True, exist_ok=True)
        self.sagemaker = SageMakerServer(self.paths.home, log_to_console=self.verbose_logs).start()
        self.say(f"local SageMaker on {self.sagemaker.url} (state in {self.paths.home})")
        self.sfn = LocalStepFunctions(
            self.paths.home, self.sagemaker.url, self.template_path, self.asl_path, self.overrides
        ).start()

    def substitutions(self) -> dict[str, str]:
        """The DefinitionSubstitutions the template gives the state machine (buckets, names, defaults)."""
        if self.sfn is not None and self.sfn.substitutions:
            return dict(self.sfn.substitutions)
        from local_runtime import template as tpl

        return tpl.definition_substitutions(tpl.load_template(self.template_path), self.overrides)

    def sagemaker_client(self) -> Any:
        import boto3

        return boto3.client(
            "sagemaker",
            endpoint_url=self.sagemaker.url,
            region_name=cfg_region(),
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def prepare(self, per_class: int = cfg.DEMO_PER_CLASS, image_size: int = cfg.DEMO_IMAGE_SIZE) -> tuple[str, str]:
        """Render the embedded dataset into the local data bucket and upload the source dir.

        Returns:
            (TrainingData URI, SourceDir URI).
        """
        from local_runtime.s3 import LocalS3
        from tools import dataset, ops

        subs = self.substitutions()
        s3 = LocalS3(self.paths.s3)
        training_data = f"s3://{subs['DataBucket']}/datasets/embedded-digits-{image_size}px/"
        started = time.monotonic()
        root = dataset.render_digits(s3.path(training_data), size=max(image_size, 8), per_class=per_class)
        counts = {split: sum(1 for _ in (root / split).rglob("*.jpg")) for split in ("train", "valid", "test")}
        self.say(
            f"embedded dataset → {training_data} ({counts['train']} train / {counts['valid']} valid / "
            f"{counts['test']} test images, 10 classes; {time.monotonic() - started:.1f}s)"
        )
        package = ops.package_source(cfg.TRAINING_DIR)
        source_dir = f"s3://{subs['ArtifactBucket']}/code/{package.name}"
        target = s3.path(source_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(package.data)
        self.say(f"training source → {source_dir}")
        return training_data, source_dir

    def demo_input(self, training_data: str, source_dir: str, **kwargs: Any) -> dict[str, Any]:
        return local_execution_input(training_data, source_dir, **kwargs)

    def start_execution(self, execution_input: Mapping[str, Any] | None, name: str | None = None) -> str:
        """Start one execution of the real ASL.

        Raises:
            RuntimeCliError: the input is not an object.
        """
        if execution_input is None:
            execution_input = self.demo_input(*self.prepare())
        if not isinstance(execution_input, Mapping):
            raise RuntimeCliError(f"execution input must be a JSON object, got {type(execution_input).__name__}")
        name = name or f"local-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
        arn: str = self.sfn.start_execution(dict(execution_input), name=name)
        self.say(f"execution {name} started")
        return arn

    def follow(self, arn: str, timeout: float = 1800) -> dict[str, Any]:
        """Show progress until the execution ends; return its final description."""
        printer = ProgressPrinter(out=self.out)
        client = self.sagemaker_client()
        follow_execution(
            describe=lambda: self.sfn.describe(arn),
            history=lambda: self.sfn.history(arn),
            client=client,
            home=self.paths.home,
            printer=printer,
            timeout=timeout,
        )
        # wait() on an ended execution returns at once and persists its final record (what `status` reads).
        return dict(self.sfn.wait(arn, timeout=10))

    def start_api(
        self, port: int | None = None, explicit_port: bool = False, function_logs_to_file: bool = False
    ) -> str:
        """Serve the template's API routes on 127.0.0.1 through the real Lambda handler.

        Args:
            port: port to listen on (a busy default port falls back to a free one).
            explicit_port: the user chose ``port``; a busy one is then an error.
            function_logs_to_file: send the function's logs to ``<home>/logs/lambda/<function>.log`` (like a
                CloudWatch log group) instead of the console, as the one-shot demo wants.
        """
        from local_runtime.api import LocalApi

        chosen = port or cfg.DEFAULT_API_PORT
        if not port_is_free("127.0.0.1", chosen):
            if explicit_port:
                raise RuntimeCliError(f"--port {chosen} is in use on 127.0.0.1; pick a free port")
            self.say(f"port {chosen} is busy; using a free port instead")
            chosen = 0
        api = LocalApi(
            self.paths.home, self.sagemaker.url, port=chosen, template_path=self.template_path, overrides=self.overrides
        )
        if function_logs_to_file:
            # NOTE: Powertools binds its log handler to sys.stdout when the handler module is imported (the cold
            # start in LocalApi.start), so the redirect must cover that import; it is kept open until shutdown.
            log_path = self.paths.home / "logs" / "lambda" / f"{api.spec.function.function_name}.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            self._function_log = open(log_path, "a")  # noqa: SIM115 - closed in shutdown()
            with contextlib.redirect_stdout(self._function_log):
                self.api = api.start()
        else:
            self.api = api.start()
        routes = ", ".join(f"{r.method} {r.path}" for r in self.api.spec.routes)
        self.say(
            f"local API on {self.api.url} ({routes}; stage {self.api.spec.stage_name}, "
            f"reserved concurrency {self.api.spec.function.reserved_concurrency})"
        )
        return str(self.api.url)

    def demo_predictions(self) -> int:
        """Predict a few real photos through the HTTP API; return how many failed."""
        from local_runtime.cli import format_predictions, http_predict
        from tools import dataset

        images: list[tuple[str, bytes, str]] = []
        photo_dir = self.paths.home / "photos"
        for name in dataset.SAMPLE_PHOTOS:
            path = dataset.sample_photo(photo_dir / name, name=name)
            images.append((f"{name} (scikit-learn sample photo)", Path(path).read_bytes(), "image/jpeg"))
        test_root = next(iter(sorted(self.paths.s3.glob("*/datasets/embedded-digits-*/test"))), None)
        if test_root is not None:
            for class_dir in sorted(p for p in test_root.iterdir() if p.is_dir())[:3]:
                first = next(iter(sorted(class_dir.glob("*.jpg"))), None)
                if first is not None:
                    images.append(
                        (f"{class_dir.name}/{first.name} (held-out test scan)", first.read_bytes(), "image/jpeg")
                    )
        failed = 0
        self.say(
            "predictions through the HTTP API (the embedded model knows 10 digit classes: the photos exercise the "
            "whole path, the held-out scans show the accuracy)"
        )
        lambda_log = self.paths.home / "logs" / "lambda" / f"{self.api.spec.function.function_name}.log"
        lambda_log.parent.mkdir(parents=True, exist_ok=True)
        for label, data, content_type in images:
            # The handler runs in this process and logs (Powertools JSON, EMF metrics) to stdout, as on Lambda;
            # those lines go to a log file, like a CloudWatch log group, so the demo output stays readable.
            with open(lambda_log, "a") as sink, contextlib.redirect_stdout(sink):
                status, doc = http_predict(self.api.url, data, content_type, top_k=5)
            if status != 200:
                failed += 1
                self.say(f"✗ {label}: HTTP {status} {doc}")
                continue
            self.say(f"POST {self.api.url}/predict  {label} → 200, model {doc.get('model_version')}")
            for line in format_predictions(doc, 5):
                self.say(line)
        return failed

    # ---- serving mode ------------------------------------------------------------------------------------------

    def serve_forever(self, stop: threading.Event) -> None:
        """Keep serving; ``run``/``status``/``down`` from other shells reach this process via the control endpoint."""
        routes: dict[tuple[str, str], Callable[[dict[str, Any]], Any]] = {
            ("GET", "/status"): lambda _: {"pid": os.getpid(), "api_url": self.api.url if self.api else None},
            ("POST", "/executions"): lambda body: {
                "executionArn": self.start_execution(body.get("input"), name=body.get("name"))
            },
            ("GET", "/execution"): lambda body: {
                "describe": self.sfn.describe(body["arn"]),
                "history": self.sfn.history(body["arn"]),
            },
            ("POST", "/shutdown"): lambda _: _set_and_reply(stop),
        }
        self.control = ControlServer(routes).start()
        cfg.write_runtime(
            self.paths,
            {
                "pid": os.getpid(),
                "api_url": self.api.url if self.api else None,
                "sagemaker_url": self.sagemaker.url,
                "control_url": self.control.url,
                "token": self.control.token,
                "started": time.time(),
            },
        )
        self.say(
            "serving; from another shell: `python -m local_runtime predict IMAGE`, `run`, `status`, `logs`, `down` "
            "(or Ctrl-C here)"
        )
        try:
            while not stop.wait(0.5):
                pass
        finally:
            self.paths.runtime_file.unlink(missing_ok=True)

    def shutdown(self) -> None:
        """Stop the API, the control endpoint, Step Functions and SageMaker (jobs and endpoint workers)."""
        if self._stopped:
            return
        self._stopped = True
        for name in ("control", "api"):
            service = getattr(self, name)
            if service is not None:
                with contextlib.suppress(Exception):
                    service.stop()
        if self.sfn is not None:
            with contextlib.suppress(Exception):
                self.sfn.stop()
        if self.sagemaker is not None:
            self.sagemaker.stop()
        if self._function_log is not None:
            self._function_log.close()
        record = cfg.read_runtime(self.paths)
        if record and record.get("pid") == os.getpid():
            self.paths.runtime_file.unlink(missing_ok=True)


def _set_and_reply(stop: threading.Event) -> dict[str, bool]:
    stop.set()
    return {"stopping": True}


def cfg_region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def follow_execution(
    describe: Callable[[], dict[str, Any]],
    history: Callable[[], list[dict[str, Any]]],
    client: Any,
    home: Path,
    printer: ProgressPrinter,
    timeout: float,
    interval: float = 0.5,
) -> dict[str, Any]:
    """Poll an execution, its training jobs (status + METRIC lines) and endpoints until it ends."""
    deadline = time.monotonic() + timeout
    started = time.time()
    while True:
        final = describe()
        printer.states(history())
        _show_sagemaker(client, home, printer, started)
        if final.get("status") in TERMINAL_EXECUTION:
            printer.emit(f"execution {final.get('status')}")
            return final
        if time.monotonic() > deadline:
            raise RuntimeCliError(f"execution still {final.get('status')} after {timeout:.0f}s (see `status`, `logs`)")
        time.sleep(interval)


def _show_sagemaker(client: Any, home: Path, printer: ProgressPrinter, since: float) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        jobs = client.list_training_jobs(CreationTimeAfter=since - 5, MaxResults=100)["TrainingJobSummaries"]
        for summary in jobs:
            name = summary["TrainingJobName"]
            detail = client.describe_training_job(TrainingJobName=name)
            printer.logs(name, sorted((home / "logs" / "TrainingJobs" / name).glob("*.log")))
            printer.job(name, detail["TrainingJobStatus"], detail.get("SecondaryStatus"), detail.get("FailureReason"))
        for ep in client.list_endpoints(MaxResults=100)["Endpoints"]:
            detail = client.describe_endpoint(EndpointName=ep["EndpointName"])
            printer.endpoint(ep["EndpointName"], detail["EndpointStatus"], detail.get("FailureReason"))
    except (BotoCoreError, ClientError):
        return  # progress is best effort; the execution's own status decides the outcome


def follow_remote(runtime: Mapping[str, Any], paths: cfg.Paths, arn: str, timeout: float) -> dict[str, Any]:
    """Follow an execution that runs in the serving process."""
    import boto3

    client = boto3.client(
        "sagemaker",
        endpoint_url=runtime["sagemaker_url"],
        region_name=cfg_region(),
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    cache: dict[str, Any] = {}

    def describe() -> dict[str, Any]:
        doc = control_call(runtime, "GET", f"/execution?arn={arn}")
        cache["history"] = doc["history"]
        return dict(doc["describe"])

    return follow_execution(describe, lambda: cache.get("history", []), client, paths.home, ProgressPrinter(), timeout)
