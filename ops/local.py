"""The commands only the local target has: ``up`` (start the local AWS, run the pipeline, serve), ``down``, ``env``
(the exports that point a user's own tools at it) and ``invoke`` (``sam local invoke`` without Docker).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from local_aws.auth.credentials import env_exports, issue_or_load
from local_aws.constants import (
    DEFAULT_API_PORT,
    DEFAULT_AWS_PORT,
    DEFAULT_CONSOLE_PORT,
    TEMPLATE_PATH,
    StateLayout,
    home_dir,
)
from local_aws.http.server import HttpServer
from local_aws.lambda_runtime.function import FunctionConfigError, function_spec_from_template
from local_aws.lambda_runtime.runtime import FunctionError, LocalFunction, PayloadTooLarge, Throttled
from local_aws.proctable import process_running
from local_aws.runtime_record import read_api_key, read_runtime
from local_aws.server import LocalAws, RuntimeBusy
from ops import chaos, demo
from ops.console.server import start_console
from ops.executions import start_execution, watch
from ops.progress import Progress
from ops.reports import fetch_reports
from ops.status import TRAINING_JOB_TAG, endpoint_tags
from ops.target import OpsError, Target, local_target_at


@dataclass
class UpOptions:
    """What ``up`` was asked to do."""

    instance_count: int = 1
    epochs: int = demo.DEMO_EPOCHS
    hpo: bool = False
    image_size: int = demo.DEMO_IMAGE_SIZE
    per_class: int = demo.DEMO_PER_CLASS
    min_test_accuracy: float = demo.DEMO_MIN_TEST_ACCURACY
    retrain: bool = False
    serve: bool = False
    aws_port: int | None = None
    api_port: int | None = None
    console_port: int | None = None
    timeout: float = 1800.0
    verbose_logs: bool = False
    verbose: bool = False
    chaos: bool = False
    parameter_overrides: dict[str, str] | None = None


def _serving_model(target: Target) -> str | None:
    """The training job the stack's endpoint serves once it is (back) in service, or None without an endpoint."""
    sm = target.client("sagemaker")
    name = target.output("EndpointName")
    deadline = time.monotonic() + 300
    while True:
        try:
            endpoint = sm.describe_endpoint(EndpointName=name)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ValidationException":
                return None
            raise
        if endpoint["EndpointStatus"] == "InService":
            return endpoint_tags(sm, endpoint).get(TRAINING_JOB_TAG, endpoint.get("EndpointConfigName", name))
        if endpoint["EndpointStatus"] in ("Failed", "OutOfService") or time.monotonic() > deadline:
            return None
        time.sleep(0.5)


def up(layout: StateLayout, options: UpOptions, say: Callable[[str], None] = print) -> int:
    """Start the local AWS in this process, deploy the stack, make sure a model serves, predict; maybe keep serving."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    echo = (lambda line: say(f"  | {line}")) if options.verbose_logs else None
    runtime = LocalAws(
        layout.home,
        aws_port=DEFAULT_AWS_PORT if options.aws_port is None else options.aws_port,
        api_port=DEFAULT_API_PORT if options.api_port is None else options.api_port,
        explicit_ports=options.aws_port is not None or options.api_port is not None,
        overrides=options.parameter_overrides,
        echo=echo,
    )
    console: HttpServer | None = None
    try:
        try:
            runtime.start()
        except RuntimeBusy as exc:
            raise OpsError(str(exc)) from None
        urls = runtime.endpoints
        target = local_target_at(layout, runtime.stack.stack_name if runtime.stack else "", urls.aws_url, urls.api_url)
        say(f"local AWS on {urls.aws_url} (every service), REST API on {urls.api_url}; state in {layout.home}")
        # The console reads through the same APIs with its own clients (a Target of its own, not this thread's).
        console_target = local_target_at(layout, target.stack_name, urls.aws_url, urls.api_url)
        explicit = options.console_port is not None
        port = DEFAULT_CONSOLE_PORT if options.console_port is None else options.console_port
        console = start_console(console_target, runtime.api_key, port, explicit)
        say(f"console: {console.url}/ (pipeline, training jobs, endpoints, predict)")
        if target.outputs().get("DemoPageUrl"):  # DemoPage=Enabled: the cloud stack's predict page, on the local API
            say(f"demo page: {target.output('DemoPageUrl')} (the stack's predict page, served by the function)")
        home_flag = "" if layout.home == home_dir(None) else f" --home {layout.home}"
        say(f'point your own tools at it: eval "$(python -m ops{home_flag} env)"')
        if options.chaos:
            say(chaos.describe_config(chaos.write_config(layout.home)))
        serving = None if options.retrain or options.chaos else _serving_model(target)
        if serving is not None:
            say(
                f"endpoint {target.output('EndpointName')} serves {serving} again (restored, no retraining); "
                "pass --retrain to train a new model"
            )
        else:
            _run_pipeline(target, layout, options, say)
        images = demo.sample_images(layout.cache, _test_split(layout, options))
        if options.chaos:
            images = images * 2  # the instance kill comes after the 3rd answer: later requests must still succeed
        failed = demo.predictions(target, images, say, api_key=runtime.api_key)
        if options.chaos:
            say(chaos.predictions_line(len(images), failed))
        if failed:
            raise OpsError(f"{failed} demo prediction(s) failed")
        if options.serve:
            say(
                "serving; from another shell: `python -m ops predict IMAGE`, `start`, `status`, `logs`, `down` "
                f"(or Ctrl-C here); console: {console.url}/"
            )
            stop.wait()
        return 0
    finally:
        if console is not None:
            console.stop()
        runtime.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _test_split(layout: StateLayout, options: UpOptions) -> Path:
    return demo.rendered_dir(layout.cache, options.image_size, options.per_class) / "test"


def _run_pipeline(target: Target, layout: StateLayout, options: UpOptions, say: Callable[[str], None]) -> None:
    training_data, source_dir = demo.prepare(
        target, layout.cache, say, per_class=options.per_class, image_size=options.image_size
    )
    payload = demo.execution_input(
        training_data,
        source_dir,
        instance_count=options.instance_count,
        epochs=options.epochs,
        hpo=options.hpo,
        image_size=options.image_size,
        min_test_accuracy=options.min_test_accuracy,
    )
    if options.chaos:
        payload = chaos.chaos_input(payload)
    name = f"local-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
    arn = start_execution(target, payload, name)
    say(f"execution {name} started")
    # Printing straight to the terminal (the default ``say``) lets the progress draw live epoch bars there.
    progress = Progress(target, emit=None if say is print else say, verbose=options.verbose)
    started = time.monotonic()
    try:
        final = watch(target, arn, progress.on_events, progress.on_poll, poll_seconds=0.5, timeout=options.timeout)
    finally:
        progress.close()
    say(f"execution {final['status']} in {time.monotonic() - started:.0f} s")
    for job in list(progress.jobs)[-1:]:  # the job the pipeline trained last is the one it deployed or rejected
        reports = fetch_reports(target, job, layout.cache / "reports")
        if reports:
            folder = next(iter(reports.values())).parent
            say(f"training report: {folder}/ ({', '.join(reports)})")
        say(f"training logs: python -m ops logs --job {job}")
    if options.chaos and final["status"] == "SUCCEEDED":
        chaos.summary(target, arn, next(reversed(progress.jobs), None), say)
    if final["status"] != "SUCCEEDED":
        raise OpsError(f"execution {final['status']}: {final.get('error', '')} {final.get('cause', '')}".strip())


def down(layout: StateLayout, say: Callable[[str], None] = print) -> int:
    """Stop the process that serves ``layout.home`` (SIGTERM: the orderly shutdown; SIGKILL after 60 s)."""
    record = read_runtime(layout)
    if record is None:
        say("nothing is serving")
        return 0
    pid = int(record["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not process_running(pid):  # gone, or a zombie its parent has yet to reap: it runs nothing any more
            say(f"stopped pid {pid} (services, endpoints and jobs)")
            return 0
        time.sleep(0.2)
    # Before killing it, have it print where it is stuck (ops registers faulthandler on SIGUSR1) into its log.
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGUSR1)
        time.sleep(1)
    os.kill(pid, signal.SIGKILL)
    raise OpsError(
        f"pid {pid} did not stop within 60 s; killed it (its thread stacks went to its stderr; the next start reaps "
        "what it left)"
    )


def env(layout: StateLayout) -> list[str]:
    """The shell lines that point awscli, boto3 and the SDKs at the serving local runtime."""
    record = read_runtime(layout)
    if record is None:
        raise OpsError(f"no local runtime is serving {layout.home}; start one with `python -m ops up --serve`")
    creds = issue_or_load(layout.credentials)
    lines = env_exports(creds, {"AWS_ENDPOINT_URL": str(record["aws_url"])})
    lines.append(f"# REST API: {record['api_url']}/predict (SigV4 for service execute-api in IAM auth mode)")
    api_key = read_api_key(layout)
    if api_key is not None:
        lines.append(f"# API key (ApiAuthMode=API_KEY; send as x-api-key): {api_key}")
    return lines


def invoke(
    layout: StateLayout,
    function_id: str,
    event_path: str,
    env_vars: Path | None,
    out: Any = None,
    err: Any = None,
) -> int:
    """``sam local invoke FUNCTION -e EVENT``: the response JSON on stdout, the function's logs on stderr."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    try:
        event = json.loads(sys.stdin.read() if event_path == "-" else Path(event_path).read_text())
    except FileNotFoundError:
        raise OpsError(f"-e {event_path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise OpsError(f"-e {event_path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    try:
        spec = function_spec_from_template(function_id, TEMPLATE_PATH)
    except FunctionConfigError as exc:
        raise OpsError(str(exc)) from None
    spec.environment.update(_env_vars(env_vars, function_id))
    record = read_runtime(layout)
    extra = {"AWS_SESSION_TOKEN": "", "AWS_SECURITY_TOKEN": ""}
    if record is not None:
        creds = issue_or_load(layout.credentials)
        extra.update(
            AWS_ENDPOINT_URL=str(record["aws_url"]),
            AWS_ACCESS_KEY_ID=creds.access_key_id,
            AWS_SECRET_ACCESS_KEY=creds.secret_access_key,
        )
    else:
        # Nothing local serves: AWS calls must still never leave this machine (port 9 is "discard").
        print("note: no local runtime is serving; the function's AWS calls will fail", file=err)
        extra.update(AWS_ENDPOINT_URL="http://127.0.0.1:9", AWS_ACCESS_KEY_ID="local", AWS_SECRET_ACCESS_KEY="local")
    function = LocalFunction(spec, extra, lambda text: err.write(text))
    started = time.monotonic()
    request_id = str(uuid.uuid4())
    try:
        result: Any = function.invoke(event, request_id)
        code = 0
    except FunctionError as exc:
        result, code = {"errorType": exc.error_type, "errorMessage": exc.message}, 1
    except (Throttled, PayloadTooLarge) as exc:
        result, code = {"errorType": type(exc).__name__, "errorMessage": str(exc)}, 1
    finally:
        function.close()
    elapsed_ms = (time.monotonic() - started) * 1000
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(
        f"REPORT RequestId: {request_id}  Duration: {elapsed_ms:.2f} ms  Billed Duration: {int(elapsed_ms) + 1} ms  "
        f"Memory Size: {spec.memory_mb} MB  Max Memory Used: {peak_mb} MB",
        file=err,
    )
    print(json.dumps(result), file=out)
    return code


def _env_vars(path: Path | None, function_id: str) -> dict[str, str]:
    """SAM's ``--env-vars`` file: ``{"<LogicalId>": {...}}`` and/or ``{"Parameters": {...}}`` (for every function)."""
    if path is None:
        return {}
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise OpsError(f"--env-vars {path}: {exc}") from None
    if not isinstance(doc, dict):
        raise OpsError(f'--env-vars {path}: expected an object like {{"{function_id}": {{"VAR": "value"}}}}')
    merged = {**(doc.get("Parameters") or {}), **(doc.get(function_id) or {})}
    return {str(k): str(v) for k, v in merged.items()}
