"""``python -m local_runtime``: the whole pipeline on one machine, no AWS, no Docker.

Commands: ``up`` (data, services, one execution, predictions, optionally keep serving), ``run`` (start an execution
from a JSON input), ``predict IMAGE``, ``status``, ``logs``, ``down``. Every error is one line naming the bad value and
what is valid; set ``LOCAL_RUNTIME_DEBUG=1`` to see tracebacks.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from local_runtime import config as cfg
from local_runtime.daemon import RuntimeCliError, control_call, env_flag, live_runtime, wait_until

# What the API accepts (template BinaryMediaTypes; the model server decodes JPEG and PNG only).
IMAGE_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}
MAX_TOP_K = 10


class _Parser(argparse.ArgumentParser):
    """argparse that says which value was bad and what is valid, then exits 2 (no traceback)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"error: {message}\n")


def _positive_int(name: str, upper: int | None = None) -> Any:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {raw!r}") from None
        if value < 1 or (upper is not None and value > upper):
            valid = f"1..{upper}" if upper is not None else "an integer >= 1"
            raise argparse.ArgumentTypeError(f"{name} must be {valid}, got {value}")
        return value

    return parse


def _port(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--port must be an integer, got {raw!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"--port must be 1..65535, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests)."""
    parser = _Parser(prog="python -m local_runtime", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--home", help=f"state dir (default ${cfg.ENV_HOME} or <repo>/.local)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    up = sub.add_parser("up", help="prepare the embedded data, start the services, run an execution, predict")
    up.add_argument(
        "--instance-count",
        type=_positive_int("--instance-count", 8),
        default=1,
        help="training hosts (1..8); >1 trains with torch.distributed across local processes",
    )
    up.add_argument("--epochs", type=_positive_int("--epochs", 100), default=cfg.DEMO_EPOCHS)
    up.add_argument("--hpo", action="store_true", help="run a small Random tuning job (2 trials) before deploying")
    up.add_argument("--serve", action="store_true", help="keep serving the API after the execution (Ctrl-C or `down`)")
    up.add_argument("--port", type=_port, default=None, help=f"local API port (default {cfg.DEFAULT_API_PORT})")
    up.add_argument("--image-size", type=_positive_int("--image-size", 512), default=cfg.DEMO_IMAGE_SIZE)
    up.add_argument(
        "--per-class",
        type=_positive_int("--per-class"),
        default=cfg.DEMO_PER_CLASS,
        help="images per class rendered into the embedded dataset",
    )
    up.add_argument(
        "--min-test-accuracy", type=float, default=cfg.DEMO_MIN_TEST_ACCURACY, help="accuracy gate threshold (0..1)"
    )
    up.add_argument("--timeout", type=_positive_int("--timeout"), default=1800, help="execution timeout, seconds")
    up.add_argument("--verbose-logs", action="store_true", help="echo every training log line")

    run = sub.add_parser("run", help="start an execution from a JSON input shaped like the cloud one")
    run.add_argument("--input", type=Path, help="JSON file (docs/CONTRACTS.md §6); default: the demo input")
    run.add_argument("--name", help="execution name")
    run.add_argument("--no-wait", action="store_true", help="return once the execution has started")
    run.add_argument("--timeout", type=_positive_int("--timeout"), default=1800)

    predict = sub.add_parser("predict", help="send one image through the local HTTP API and print the top-k")
    predict.add_argument("image", type=Path, help=f"image file ({', '.join(sorted(IMAGE_TYPES))})")
    predict.add_argument("--top-k", type=_positive_int("--top-k", MAX_TOP_K), default=5)
    predict.add_argument("--url", help="API base URL (default: the serving `up --serve`)")

    sub.add_parser("status", help="show training jobs, endpoints and executions (persisted state)")

    logs = sub.add_parser("logs", help="show stored training logs")
    logs.add_argument("--job", help="training job name (default: the latest job)")
    logs.add_argument("--tail", type=_positive_int("--tail"), default=None, help="only the last N lines per host")

    sub.add_parser("down", help="stop the serving process, its endpoints and jobs")
    return parser


# --------------------------------------------------------------------------------------------------------------------
# Commands that need no services
# --------------------------------------------------------------------------------------------------------------------


def api_url(paths: cfg.Paths, explicit: str | None) -> str:
    """The API base URL: --url, else the serving process's.

    Raises:
        RuntimeCliError: neither is available.
    """
    if explicit:
        if not explicit.startswith(("http://", "https://")):
            raise RuntimeCliError(f"--url must start with http:// or https://, got {explicit!r}")
        return explicit.rstrip("/")
    runtime = live_runtime(paths)
    if runtime is None or not runtime.get("api_url"):
        raise RuntimeCliError(
            f"no local API is serving (no live {paths.runtime_file}); start one with "
            "`python -m local_runtime up --serve` (or `make up`), or pass --url"
        )
    return str(runtime["api_url"])


def http_predict(url: str, image: bytes, content_type: str, top_k: int, timeout: float = 60) -> tuple[int, Any]:
    """POST image bytes to ``<url>/predict?top_k=N``; returns (status, parsed JSON or text)."""
    request = urllib.request.Request(
        f"{url}/predict?top_k={top_k}",
        data=image,
        method="POST",
        headers={"Content-Type": content_type, "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        raise RuntimeCliError(f"cannot reach the API at {url}: {exc}") from None
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode("utf-8", errors="replace")


def format_predictions(doc: Any, top_k: int) -> list[str]:
    """Render ``{"predictions": [{"label", "probability"}...]}`` as numbered lines."""
    predictions = doc.get("predictions", []) if isinstance(doc, dict) else []
    if predictions and isinstance(predictions[0], list):  # endpoint shape: one list per image
        predictions = predictions[0]
    return [f"  {i}. {p['label']:<24} {p['probability']:.4f}" for i, p in enumerate(predictions[:top_k], 1)]


def cmd_predict(args: argparse.Namespace, paths: cfg.Paths) -> int:
    image_path: Path = args.image
    content_type = IMAGE_TYPES.get(image_path.suffix.lower())
    if content_type is None:
        raise RuntimeCliError(
            f"unsupported image type {image_path.suffix or '(none)'!r} for {image_path}; "
            f"valid: {', '.join(sorted(IMAGE_TYPES))}"
        )
    if not image_path.is_file():
        raise RuntimeCliError(f"image file not found: {image_path}")
    url = api_url(paths, args.url)
    status, doc = http_predict(url, image_path.read_bytes(), content_type, args.top_k)
    if status != 200:
        message = doc.get("message", doc) if isinstance(doc, dict) else doc
        raise RuntimeCliError(f"the API answered {status}: {message}")
    print(f"{image_path.name} → model {doc.get('model_version', '?')}")
    for line in format_predictions(doc, args.top_k):
        print(line)
    return 0


def _read_json_dir(directory: Path) -> list[dict[str, Any]]:
    docs = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            docs.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return docs


def _ts(value: Any) -> str:
    if isinstance(value, int | float):
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))
    return str(value or "")[:19]


def cmd_status(args: argparse.Namespace, paths: cfg.Paths) -> int:
    runtime = live_runtime(paths)
    if runtime:
        print(f"serving: pid {runtime['pid']}, API {runtime.get('api_url')}, SageMaker {runtime.get('sagemaker_url')}")
    else:
        print(f"serving: no (state in {paths.home})")
    state = paths.home / "state"
    jobs = _read_json_dir(state / "training-jobs")
    print(f"\ntraining jobs ({len(jobs)}):")
    for job in sorted(jobs, key=lambda j: str(j.get("CreationTime", "")))[-20:]:
        metrics = {m.get("MetricName"): m.get("Value") for m in job.get("FinalMetricDataList", []) or []}
        top1 = metrics.get("test:top1")
        extra = f"  test:top1={top1:.3f}" if isinstance(top1, int | float) else ""
        reason = f"  reason: {job['FailureReason']}" if job.get("FailureReason") else ""
        count = (job.get("ResourceConfig") or {}).get("InstanceCount", 1)
        print(f"  {job.get('TrainingJobName')}  {job.get('TrainingJobStatus')}  x{count}{extra}{reason}")
    endpoints = _read_json_dir(state / "endpoints")
    print(f"\nendpoints ({len(endpoints)}):")
    for ep in endpoints:
        reason = f"  reason: {ep['FailureReason']}" if ep.get("FailureReason") else ""
        print(f"  {ep.get('EndpointName')}  {ep.get('EndpointStatus')}  config {ep.get('EndpointConfigName')}{reason}")
    executions = _read_json_dir(paths.executions)
    print(f"\nexecutions ({len(executions)}):")
    for ex in sorted(executions, key=lambda e: str(e.get("startDate", "")))[-20:]:
        err = f"  {ex.get('error')}: {str(ex.get('cause', ''))[:120]}" if ex.get("error") else ""
        print(f"  {ex.get('name')}  {ex.get('status')}  started {_ts(ex.get('startDate'))}{err}")
    return 0


def cmd_logs(args: argparse.Namespace, paths: cfg.Paths) -> int:
    root = paths.home / "logs" / "TrainingJobs"
    jobs = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime) if root.is_dir() else []
    if not jobs:
        raise RuntimeCliError(f"no stored training logs under {root}; run `python -m local_runtime up` first")
    if args.job:
        chosen = [p for p in jobs if p.name == args.job]
        if not chosen:
            names = ", ".join(p.name for p in jobs[-10:])
            raise RuntimeCliError(f"no logs for job {args.job!r}; jobs with logs: {names}")
        job = chosen[0]
    else:
        job = jobs[-1]
    for log in sorted(job.glob("*.log")):
        lines = log.read_text(errors="replace").splitlines()
        if args.tail:
            lines = lines[-args.tail :]
        print(f"==> {job.name}/{log.stem} <==")
        for line in lines:
            print(line)
    return 0


def cmd_down(args: argparse.Namespace, paths: cfg.Paths) -> int:
    runtime = live_runtime(paths)
    if runtime is None:
        print("nothing is serving")
        return 0
    pid = int(runtime["pid"])
    try:
        control_call(runtime, "POST", "/shutdown", {}, timeout=10)
    except RuntimeCliError:
        os.kill(pid, signal.SIGTERM)  # the control endpoint is gone: SIGTERM runs the same orderly shutdown
    if not wait_until(lambda: not cfg.pid_alive(pid), timeout=60):
        os.kill(pid, signal.SIGKILL)
        raise RuntimeCliError(f"pid {pid} did not stop within 60 s; killed it")
    paths.runtime_file.unlink(missing_ok=True)
    print(f"stopped pid {pid} (API, SageMaker endpoints and jobs)")
    return 0


# --------------------------------------------------------------------------------------------------------------------
# Commands that run services (up, run)
# --------------------------------------------------------------------------------------------------------------------


def cmd_up(args: argparse.Namespace, paths: cfg.Paths) -> int:
    from local_runtime.daemon import Runtime

    if not 0.0 <= args.min_test_accuracy <= 1.0:
        raise RuntimeCliError(f"--min-test-accuracy must be within 0..1, got {args.min_test_accuracy}")
    existing = live_runtime(paths)
    if existing:
        raise RuntimeCliError(
            f"a local runtime is already serving (pid {existing['pid']}, API {existing.get('api_url')}); "
            "use `python -m local_runtime run` to start another execution, or `down` first"
        )
    runtime = Runtime(paths, verbose_logs=args.verbose_logs)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        runtime.start_services()
        training_data, source_dir = runtime.prepare(per_class=args.per_class, image_size=args.image_size)
        execution_input = runtime.demo_input(
            training_data,
            source_dir,
            instance_count=args.instance_count,
            epochs=args.epochs,
            hpo=args.hpo,
            image_size=args.image_size,
            min_test_accuracy=args.min_test_accuracy,
        )
        arn = runtime.start_execution(execution_input)
        final = runtime.follow(arn, timeout=args.timeout)
        if final.get("status") != "SUCCEEDED":
            raise RuntimeCliError(
                f"execution {final.get('status')}: {final.get('error') or ''} {final.get('cause') or ''}".strip()
            )
        # One-shot demo: function logs go to a file so the output stays readable; --serve shows them like sam local.
        runtime.start_api(port=args.port, explicit_port=args.port is not None, function_logs_to_file=not args.serve)
        failed = runtime.demo_predictions()
        if failed:
            raise RuntimeCliError(f"{failed} demo prediction(s) failed")
        if args.serve:
            runtime.serve_forever(stop)
        return 0
    finally:
        runtime.shutdown()


def cmd_run(args: argparse.Namespace, paths: cfg.Paths) -> int:
    from local_runtime.daemon import Runtime, load_input

    execution_input = load_input(args.input) if args.input else None
    remote = live_runtime(paths)
    if remote is not None:
        from local_runtime.daemon import follow_remote

        body = {"input": execution_input, "name": args.name}
        arn = control_call(remote, "POST", "/executions", body)["executionArn"]
        print(f"started {arn} in the serving process (pid {remote['pid']})")
        if args.no_wait:
            return 0
        final = follow_remote(remote, paths, arn, timeout=args.timeout)
    else:
        runtime = Runtime(paths)
        try:
            runtime.start_services()
            if execution_input is None:
                execution_input = runtime.demo_input(*runtime.prepare())
            arn = runtime.start_execution(execution_input, name=args.name)
            final = runtime.follow(arn, timeout=args.timeout)
        finally:
            runtime.shutdown()
    if final.get("status") != "SUCCEEDED":
        raise RuntimeCliError(f"execution {final.get('status')}: {final.get('error') or ''} {final.get('cause') or ''}")
    print(f"execution SUCCEEDED: {json.dumps(final.get('output'), default=str)}")
    return 0


COMMANDS = {
    "up": cmd_up,
    "run": cmd_run,
    "predict": cmd_predict,
    "status": cmd_status,
    "logs": cmd_logs,
    "down": cmd_down,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m local_runtime``; returns the exit status."""
    args = build_parser().parse_args(argv)
    debug = env_flag("LOCAL_RUNTIME_DEBUG")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.verbose:
        logging.getLogger("local_runtime").setLevel(logging.DEBUG)
    # moto's ASL interpreter logs every failed state at ERROR with a dump of its parse tree; the CLI prints the
    # execution's error and cause itself.
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    paths = cfg.Paths(cfg.home_dir(args.home))
    try:
        return COMMANDS[args.command](args, paths)
    except RuntimeCliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; stopped", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            raise
        print(
            f"error: unexpected {type(exc).__name__}: {exc} (set LOCAL_RUNTIME_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 1
