"""``python -m ops``: one operator CLI for the stack, on AWS or on the local runtime (``--target local|aws``).

The same commands (deploy, start, watch, predict, status, logs, teardown, uploads) run against either target; only
the endpoint URLs and credentials differ. ``up``, ``down``, ``env`` and ``invoke`` manage the local runtime. Every
error is one line naming the bad value and what is valid; ``OPS_DEBUG=1`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from botocore.exceptions import BotoCoreError, ClientError

from local_aws.constants import DEFAULT_CONSOLE_PORT, REPO_ROOT, TRAINING_DIR, StateLayout, home_dir
from local_aws.runtime_record import read_api_key, read_runtime
from ops import demo
from ops.data import DEFAULT_CODE_PREFIX, DEFAULT_DATA_PREFIX, upload_data, upload_source
from ops.executions import load_input, start_execution, watch
from ops.predict import MAX_TOP_K, format_predictions, image_content_type, predict
from ops.progress import Progress
from ops.status import print_logs, status_lines
from ops.target import TARGETS, OpsError, Target, aws_target, local_target
from ops.teardown import execute_teardown, plan_teardown
from tools.source_package import SourcePackageError, package_source

# NOTE: ops.local (up/down/env/invoke) is imported only by those commands: it loads the services (moto's ASL
# parser, the Lambda runtime), which would add ~1.7 s to the start of every other command, on either target.


class _Parser(argparse.ArgumentParser):
    """argparse that names the bad value and the valid ones, then exits 2 (no traceback)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"error: {message}\n")


def _int_in(name: str, low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {raw!r}") from None
        if value < low or (high is not None and value > high):
            valid = f"{low}..{high}" if high is not None else f"an integer >= {low}"
            raise argparse.ArgumentTypeError(f"{name} must be {valid}, got {value}")
        return value

    return parse


def _float_in(noun: str, valid: str, ok: Callable[[float], bool]) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{raw!r} is not {noun}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{value} is out of range; expected {valid}")
        return value

    return parse


_seconds = _float_in("a number of seconds", "seconds > 0", lambda v: v > 0)
_fraction = _float_in("a number", "0..1", lambda v: 0.0 <= v <= 1.0)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests)."""
    parser = _Parser(prog="python -m ops", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--target",
        choices=TARGETS,
        default=os.environ.get("OPS_TARGET", "local"),
        help="where the stack runs (default: local, or $OPS_TARGET)",
    )
    parser.add_argument("--home", help="local runtime state dir (default $LOCAL_RUNTIME_HOME or <repo>/.local)")
    parser.add_argument("--stack", help="aws: the stack name (default: stack_name of the samconfig --env)")
    parser.add_argument("--env", default="dev", help="samconfig.toml environment (default dev)")
    parser.add_argument("--region", help="aws: region (default: your AWS config)")
    parser.add_argument("--profile", help="aws: named profile")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging; watch/up also show every internal state"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser, required=True)

    p = sub.add_parser("up", help="local: start the local AWS, run the pipeline unless a model serves, predict")
    p.add_argument(
        "--instance-count",
        type=_int_in("--instance-count", 1, 8),
        default=1,
        help="training hosts (1..8); >1 trains one DDP group across local processes",
    )
    p.add_argument("--epochs", type=_int_in("--epochs", 1, 100), default=demo.DEMO_EPOCHS)
    p.add_argument("--hpo", action="store_true", help="run a small Random tuning job (2 trials) first")
    p.add_argument("--retrain", action="store_true", help="train a new model even when the endpoint serves one")
    p.add_argument("--serve", action="store_true", help="keep serving after the predictions (Ctrl-C or `down`)")
    p.add_argument("--aws-port", type=_int_in("--aws-port", 0, 65535), help="the AWS endpoint's port (default 4566)")
    p.add_argument("--api-port", type=_int_in("--api-port", 0, 65535), help="the REST API's port (default 3000)")
    p.add_argument("--console-port", type=_int_in("--console-port", 0, 65535), help="the console's port (default 3001)")
    p.add_argument("--image-size", type=_int_in("--image-size", 8, 512), default=demo.DEMO_IMAGE_SIZE)
    p.add_argument("--per-class", type=_int_in("--per-class", 10), default=demo.DEMO_PER_CLASS)
    p.add_argument("--min-test-accuracy", type=_fraction, default=demo.DEMO_MIN_TEST_ACCURACY)
    p.add_argument("--timeout", type=_seconds, default=1800.0, help="execution timeout, seconds")
    p.add_argument("--verbose-logs", action="store_true", help="echo every training log line")
    p.add_argument(
        "--chaos",
        action="store_true",
        help="inject throttling, a spot interruption and an instance kill (make chaos); implies --retrain",
    )
    p.add_argument(
        "--parameter-overrides",
        nargs="+",
        metavar="KEY=VALUE",
        default=[],
        help="template parameters, as `sam deploy --parameter-overrides` (e.g. ApiAuthMode=API_KEY)",
    )

    p = sub.add_parser("console", help="serve the web console for the target until Ctrl-C (`up` starts one itself)")
    p.add_argument("--port", type=_int_in("--port", 0, 65535), help="the console's port (default 3001)")
    p.add_argument("--api-key", help="the REST API's key for the predict view (local: read from the state dir)")

    sub.add_parser("down", help="local: stop the serving local runtime (its endpoints and jobs too)")
    sub.add_parser("env", help="local: print the exports that point awscli/boto3/the SDKs at the local runtime")

    p = sub.add_parser("invoke", help="local: `sam local invoke` without Docker (response on stdout, logs on stderr)")
    p.add_argument("function", nargs="?", default="InferenceFunction", help="logical id (default InferenceFunction)")
    p.add_argument("-e", "--event", required=True, help="event JSON file, or - for stdin")
    p.add_argument("--env-vars", type=Path, help='JSON {"<LogicalId>": {"VAR": "value"}} like sam --env-vars')

    sub.add_parser("deploy", help="aws: sam build + sam deploy; local: redeploy the template into the runtime")

    p = sub.add_parser("start", help="start an execution of the stack's state machine")
    p.add_argument("--input", type=Path, required=True, help="execution input JSON (docs/CONTRACTS.md §6)")
    p.add_argument("--name", help="execution name (default: a UUID, as Step Functions does)")
    p.add_argument("--source-dir", help="override the input's SourceDir (s3://.../sourcedir-*.tar.gz)")
    p.add_argument("--training-data", help="override the input's TrainingData (s3://.../)")
    p.add_argument("--pretrained-weights", help="override the input's PretrainedWeights (s3://.../resnet50.pth)")
    p.add_argument("--watch", action="store_true", help="follow the execution until it ends")
    p.add_argument("--poll-seconds", type=_seconds, default=5.0, help="watch interval (default 5)")

    p = sub.add_parser("watch", help="follow an execution until it ends")
    p.add_argument("execution_arn")
    p.add_argument("--poll-seconds", type=_seconds, default=5.0)

    p = sub.add_parser("predict", help="POST an image to the stack's API (SigV4 unless --api-key)")
    p.add_argument("image", type=Path, help="image file (.jpg, .jpeg, .png)")
    p.add_argument("--top-k", type=_int_in("--top-k", 1, MAX_TOP_K), default=5)
    p.add_argument("--api-key", help="API key (API_KEY auth mode); without it the request is SigV4-signed")
    p.add_argument("--url", help="API base URL instead of the stack output ApiUrl")
    p.add_argument("--timeout", type=_seconds, default=30.0)

    sub.add_parser("status", help="executions, the endpoint and the latest training jobs")
    p = sub.add_parser("logs", help="a training job's logs (CloudWatch), or the inference function's")
    p.add_argument("--job", help="training job name (default: the latest)")
    p.add_argument("--function", action="store_true", help="the inference function's log instead")
    p.add_argument("--tail", type=_int_in("--tail", 1), help="only the last N lines per stream")

    p = sub.add_parser("teardown", help="delete the endpoint, endpoint configs, models and autoscaling")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--dry-run", action="store_true", help="only print what would be deleted")

    p = sub.add_parser("package-source", help="write sourcedir-<sha256[:12]>.tar.gz of training/")
    p.add_argument("--src", type=Path, default=TRAINING_DIR)
    p.add_argument("--out", type=Path, default=REPO_ROOT / "build")
    p = sub.add_parser("upload-source", help="package training/ and upload it to the artifact bucket")
    p.add_argument("--src", type=Path, default=TRAINING_DIR)
    p.add_argument("--prefix", default=DEFAULT_CODE_PREFIX)
    p = sub.add_parser("upload-data", help="upload a dogImages tree (train/ valid/ test/) to the data bucket")
    p.add_argument("--src", type=Path, required=True)
    p.add_argument("--prefix", default=DEFAULT_DATA_PREFIX)
    return parser


# --------------------------------------------------------------------------------------------------------- commands
def _target(args: argparse.Namespace, layout: StateLayout) -> Target:
    if args.target == "aws":
        return aws_target(args.stack, args.env, args.region, args.profile)
    return local_target(layout, read_runtime(layout))


def cmd_start(args: argparse.Namespace, target: Target) -> int:
    overrides = {
        "SourceDir": args.source_dir,
        "TrainingData": args.training_data,
        "PretrainedWeights": args.pretrained_weights,
    }
    arn = start_execution(target, load_input(args.input, overrides), args.name)
    print(arn)
    return _follow(target, arn, args.poll_seconds, args.verbose) if args.watch else 0


def _follow(target: Target, arn: str, poll_seconds: float, verbose: bool = False) -> int:
    progress = Progress(target, verbose=verbose)
    try:
        final = watch(target, arn, progress.on_events, progress.on_poll, poll_seconds=poll_seconds)
    finally:
        progress.close()
    print(f"status: {final['status']}")
    if final["status"] == "SUCCEEDED":
        print(json.dumps(json.loads(final.get("output") or "{}"), indent=2))
        return 0
    print(f"error: {final.get('error', '')}  cause: {final.get('cause', '')}", file=sys.stderr)
    return 1


def cmd_predict(args: argparse.Namespace, target: Target) -> int:
    if not args.image.is_file():
        raise OpsError(f"image file not found: {args.image}")
    content_type = image_content_type(args.image)
    status, doc = predict(
        target,
        args.image.read_bytes(),
        content_type,
        top_k=args.top_k,
        api_key=args.api_key,
        url=args.url,
        timeout=args.timeout,
    )
    if status != 200:
        message = doc.get("message", doc) if isinstance(doc, dict) else doc
        raise OpsError(f"the API answered {status}: {message}")
    print(f"{args.image.name} → model {doc.get('model_version', '?')}")
    for line in format_predictions(doc, args.top_k):
        print(line)
    return 0


def cmd_console(args: argparse.Namespace, target: Target, layout: StateLayout) -> int:
    from ops.console.server import start_console

    api_key = args.api_key or (read_api_key(layout) if target.is_local else None)
    port = DEFAULT_CONSOLE_PORT if args.port is None else args.port
    server = start_console(target, api_key, port, explicit=args.port is not None, flag="--port")
    print(f"console: {server.url}/ (Ctrl-C to stop)")
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous)
    return 0


def cmd_teardown(args: argparse.Namespace, target: Target) -> int:
    endpoint, prefix = target.output("EndpointName"), target.output("ResourcePrefix")
    sagemaker, autoscaling = target.client("sagemaker"), target.client("application-autoscaling")
    plan = plan_teardown(sagemaker, autoscaling, endpoint, prefix)
    lines = plan.lines()
    if not lines:
        print(f"nothing to delete for endpoint {endpoint!r} / prefix {prefix!r}")
        return 0
    print("will delete:\n  " + "\n  ".join(lines))
    if args.dry_run:
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            raise OpsError("refusing to delete without --yes (stdin is not a terminal)")
        if input(f"type the endpoint name ({endpoint}) to confirm: ").strip() != endpoint:
            print("aborted")
            return 1
    execute_teardown(sagemaker, autoscaling, plan, print)
    return 0


def cmd_deploy(args: argparse.Namespace, layout: StateLayout) -> int:
    if args.target == "local":
        from local_aws.deploy import deploy

        target = _target(args, layout)
        clients = {name: target.client(name) for name in ("s3", "iam", "logs", "stepfunctions", "cloudwatch")}
        record = deploy(clients, env=args.env)
        print(
            f"deployed {record.stack_name} locally: {len(record.physical_ids)} resources ({record.state_machine_arn})"
        )
        return 0
    sam = shutil.which("sam", path=f"{REPO_ROOT / '.venv-tools' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    if sam is None:
        raise OpsError("sam not found; run `make tools` (aws-sam-cli in .venv-tools)")
    for command in ([sam, "build", "--template", "template.yaml"], [sam, "deploy", "--config-env", args.env]):
        if subprocess.run(command, cwd=REPO_ROOT, check=False).returncode != 0:
            raise OpsError(f"`{' '.join(command)}` failed")
    return 0


def run(args: argparse.Namespace) -> int:
    layout = StateLayout(home_dir(args.home))
    if args.command in ("up", "down", "env", "invoke"):
        return _run_local(args, layout)
    if args.command == "deploy":
        return cmd_deploy(args, layout)
    if args.command == "package-source":
        package = package_source(args.src)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / package.name).write_bytes(package.data)
        print(args.out / package.name)
        return 0
    target = _target(args, layout)
    handlers: dict[str, Callable[[argparse.Namespace, Target], int]] = {
        "start": cmd_start,
        "watch": lambda a, t: _follow(t, a.execution_arn, a.poll_seconds, a.verbose),
        "predict": cmd_predict,
        "status": lambda a, t: (print("\n".join(status_lines(t))), 0)[1],
        "logs": lambda a, t: print_logs(t, job=a.job, function=a.function, tail=a.tail),
        "teardown": cmd_teardown,
        "console": lambda a, t: cmd_console(a, t, layout),
        "upload-source": _upload_source,
        "upload-data": _upload_data,
    }
    return handlers[args.command](args, target)


def _run_local(args: argparse.Namespace, layout: StateLayout) -> int:
    """The commands only the local target has: up, down, env, invoke."""
    from ops import local

    if args.command == "up":
        options = local.UpOptions(
            instance_count=args.instance_count,
            epochs=args.epochs,
            hpo=args.hpo,
            image_size=args.image_size,
            per_class=args.per_class,
            min_test_accuracy=args.min_test_accuracy,
            retrain=args.retrain,
            serve=args.serve,
            aws_port=args.aws_port,
            api_port=args.api_port,
            console_port=args.console_port,
            timeout=args.timeout,
            verbose_logs=args.verbose_logs,
            verbose=args.verbose,
            chaos=args.chaos,
            parameter_overrides=_overrides(args.parameter_overrides),
        )
        return local.up(layout, options)
    if args.command == "down":
        return local.down(layout)
    if args.command == "env":
        print("\n".join(local.env(layout)))
        return 0
    return local.invoke(layout, args.function, args.event, args.env_vars)


def _overrides(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise OpsError(f"--parameter-overrides {item!r}: expected KEY=VALUE, e.g. ApiAuthMode=API_KEY")
        out[key] = value
    return out


def _upload_source(args: argparse.Namespace, target: Target) -> int:
    uri, uploaded = upload_source(
        target.client("s3"), package_source(args.src), target.output("ArtifactBucketName"), args.prefix
    )
    print(f"{'uploaded' if uploaded else 'already present'}: {uri}", file=sys.stderr)
    print(uri)
    return 0


def _upload_data(args: argparse.Namespace, target: Target) -> int:
    bucket = target.output("DataBucketName")
    uploaded, skipped = upload_data(target.client("s3"), args.src, bucket, args.prefix)
    print(f"uploaded {uploaded} file(s), {skipped} unchanged", file=sys.stderr)
    print(f"s3://{bucket}/{args.prefix.lstrip('/')}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m ops``; returns the exit status."""
    args = build_parser().parse_args(argv)
    # `kill -USR1 <pid>` (and `down` when a stop hangs) prints every thread's stack to stderr: a stuck runtime can say
    # where it is stuck.
    with contextlib.suppress(io.UnsupportedOperation, ValueError, AttributeError):  # stderr is not a real file
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # moto's ASL interpreter logs handled errors at ERROR with a dump of its parse tree; the CLI prints causes.
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        return run(args)
    except (OpsError, SourcePackageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ClientError as exc:
        error = exc.response.get("Error", {})
        print(f"error: AWS {error.get('Code', '?')}: {error.get('Message', exc)}", file=sys.stderr)
        return 1
    except BotoCoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("OPS_DEBUG"):
            raise
        print(f"error: unexpected {type(exc).__name__}: {exc} (set OPS_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
