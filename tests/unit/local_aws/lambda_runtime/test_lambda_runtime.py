"""local_aws.lambda_runtime.runtime: cold start, context, concurrency, timeout, payload limits, where output goes.

Each test writes a tiny handler module to ``tmp_path`` (module names are unique per test, so nothing leaks between
tests through ``sys.modules``) and runs it in a real ``LocalFunction``.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from local_aws.constants import LAMBDA_SYNC_PAYLOAD_MAX_BYTES
from local_aws.lambda_runtime.function import FunctionConfigError, FunctionSpec
from local_aws.lambda_runtime.runtime import (
    FunctionError,
    LambdaContext,
    LocalFunction,
    PayloadTooLarge,
    Throttled,
    _RoutedDefaultSession,
    _RoutedStdout,
    lambda_environment,
    load_handler,
)


@pytest.fixture
def fallback_stdout() -> Iterator[None]:
    """LocalFunction wraps ``sys.stdout`` in its router; unwrap it after the test (also under ``pytest -s``)."""
    yield
    while isinstance(sys.stdout, _RoutedStdout):
        sys.stdout = sys.stdout.fallback


@pytest.fixture
def host_default_session() -> Iterator[boto3.session.Session]:
    """A default session the host process already resolved credentials in; restored after the test."""
    saved = boto3.DEFAULT_SESSION
    boto3.setup_default_session()
    host = boto3.DEFAULT_SESSION
    assert host is not None and host.get_credentials().access_key == "testing"
    yield host
    boto3.DEFAULT_SESSION = saved


@pytest.fixture
def module_name() -> str:
    return f"lr_handler_{uuid.uuid4().hex[:8]}"


def _code(tmp_path: Path, name: str, source: str) -> Path:
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / f"{name}.py").write_text(source)
    return code


def _function(tmp_path: Path, name: str, source: str, sink: list[str] | None = None, **spec: Any) -> LocalFunction:
    code = _code(tmp_path, name, source)
    settings: dict[str, Any] = {"function_name": "dogbreed-dev-inference", "memory_mb": 256, "timeout_s": 5.0} | spec
    function_spec = FunctionSpec("Fn", f"{name}.handler", code, **settings)
    logs = sink if sink is not None else []
    return LocalFunction(function_spec, {}, logs.append)


# ----------------------------------------------------------------------------------------------- load_handler
def test_load_handler_imports_fresh_module_objects_each_cold_start(tmp_path: Path, module_name: str) -> None:
    """Module-level state is rebuilt per cold start, and an importer's own copy of the module is left in place."""
    code = _code(
        tmp_path,
        module_name,
        "import itertools\nCOUNTER = itertools.count()\ndef handler(e, c):\n    return next(COUNTER)\n",
    )
    spec = FunctionSpec("Fn", f"{module_name}.handler", code)
    sys.path.insert(0, str(code))
    try:
        mine = __import__(module_name)
        assert mine.handler({}, None) == 0
        first, second = load_handler(spec), load_handler(spec)
    finally:
        sys.path.remove(str(code))
    assert first({}, None) == 0 and first({}, None) == 1  # a fresh module: its counter starts again
    assert second({}, None) == 0  # and another one per cold start
    assert sys.modules[module_name] is mine  # the test's own import is untouched
    del sys.modules[module_name]


def test_load_handler_does_not_leave_the_code_dir_or_its_modules_behind(tmp_path: Path, module_name: str) -> None:
    """After a cold start neither CodeUri on sys.path nor its modules in sys.modules remain."""
    code = _code(tmp_path, module_name, "def handler(e, c):\n    return 1\n")
    load_handler(FunctionSpec("Fn", f"{module_name}.handler", code))
    assert str(code) not in sys.path and str(code.resolve()) not in sys.path
    assert module_name not in sys.modules


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        ("nodot", "Handler must look like 'module.function'"),
        ("mod.", "Handler must look like 'module.function'"),
        ("{module}.missing", "has no callable 'missing'"),
        ("{module}.VALUE", "has no callable 'VALUE'"),
        ("json.dumps", "outside CodeUri"),  # a stdlib module is not the function's code
    ],
)
def test_bad_handlers_are_function_config_errors(tmp_path: Path, module_name: str, handler: str, message: str) -> None:
    """A malformed handler string, a missing or non-callable attribute, a module from outside CodeUri: refused."""
    code = _code(tmp_path, module_name, "VALUE = 1\ndef handler(e, c):\n    return 1\n")
    with pytest.raises(FunctionConfigError, match=message):
        load_handler(FunctionSpec("Fn", handler.format(module=module_name), code))


def test_missing_code_dir_is_a_function_config_error(tmp_path: Path) -> None:
    """CodeUri that is not a directory is named in the error."""
    with pytest.raises(FunctionConfigError, match="is not a directory"):
        load_handler(FunctionSpec("Fn", "app.handler", tmp_path / "nope"))


# ----------------------------------------------------------------------------------------------- environment
def test_lambda_environment_layers_runtime_template_and_extra_values(tmp_path: Path) -> None:
    """Runtime variables first, the template's Environment over them, ``extra`` (local endpoints) over both."""
    spec = FunctionSpec(
        "Fn",
        "a.b",
        tmp_path,
        environment={"A": "template", "AWS_REGION": "eu-west-1"},
        memory_mb=512,
        function_name="fn-name",
    )
    env = lambda_environment(spec, {"A": "extra"})
    assert env["A"] == "extra"
    assert env["AWS_REGION"] == "eu-west-1" and env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "fn-name"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/fn-name"
    assert env["LAMBDA_TASK_ROOT"] == str(tmp_path)
    assert env["POWERTOOLS_TRACE_DISABLED"] == "true"


def test_environment_is_set_before_the_cold_start_and_restored_by_close(
    tmp_path: Path, module_name: str, fallback_stdout: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Module-level code sees the function's environment; close() puts the process's own values back."""
    monkeypatch.setenv("LR_PRESET", "before")
    monkeypatch.delenv("LR_ONLY_IN_FUNCTION", raising=False)
    source = (
        "import os\nSEEN = (os.environ['LR_PRESET'], os.environ['LR_ONLY_IN_FUNCTION'])\n"
        "def handler(e, c):\n    return list(SEEN)\n"
    )
    code = _code(tmp_path, module_name, source)
    spec = FunctionSpec("Fn", f"{module_name}.handler", code, environment={"LR_PRESET": "template"})
    function = LocalFunction(spec, {"LR_ONLY_IN_FUNCTION": "extra"}, lambda _t: None)
    try:
        assert function.invoke({}) == ["template", "extra"]
    finally:
        function.close()
    assert os.environ["LR_PRESET"] == "before"
    assert "LR_ONLY_IN_FUNCTION" not in os.environ


def test_a_failed_cold_start_restores_the_environment(tmp_path: Path, module_name: str, fallback_stdout: None) -> None:
    """An import error at cold start propagates, and the environment it set is undone."""
    code = _code(tmp_path, module_name, "raise ImportError('broken dependency')\n")
    spec = FunctionSpec("Fn", f"{module_name}.handler", code, environment={"LR_BROKEN_VAR": "1"})
    with pytest.raises(ImportError, match="broken dependency"):
        LocalFunction(spec, {}, lambda _t: None)
    assert "LR_BROKEN_VAR" not in os.environ


# ----------------------------------------------------------------------------------------------- invoke
def test_context_carries_what_the_python_runtime_gives(tmp_path: Path, module_name: str, fallback_stdout: None) -> None:
    """function_name, memory, ARN, request id, log group/stream and the remaining time within Timeout."""
    source = (
        "def handler(e, c):\n    return {k: getattr(c, k) for k in ('function_name', 'memory_limit_in_mb', "
        "'invoked_function_arn', 'aws_request_id', 'function_version', 'log_group_name', 'log_stream_name')} "
        "| {'remaining': c.get_remaining_time_in_millis()}\n"
    )
    function = _function(tmp_path, module_name, source, timeout_s=5.0)
    try:
        ctx = function.invoke({}, "req-123")
    finally:
        function.close()
    assert ctx["function_name"] == "dogbreed-dev-inference"
    assert ctx["memory_limit_in_mb"] == 256
    assert ctx["invoked_function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:dogbreed-dev-inference"
    assert ctx["aws_request_id"] == "req-123"
    assert ctx["function_version"] == "$LATEST"
    assert ctx["log_group_name"] == "/aws/lambda/dogbreed-dev-inference"
    assert ctx["log_stream_name"] == function.stream and "[$LATEST]" in function.stream
    assert 0 < ctx["remaining"] <= 5000


def test_remaining_time_never_goes_negative() -> None:
    """After the deadline the context reports 0 ms, never a negative number."""
    context = LambdaContext("f", 128, "arn", "r", deadline=time.monotonic() - 10)
    assert context.get_remaining_time_in_millis() == 0


def test_event_and_result_are_round_tripped_through_json(
    tmp_path: Path, module_name: str, fallback_stdout: None
) -> None:
    """The handler gets plain JSON types and the caller gets the JSON form of the result (tuples become lists)."""
    source = "def handler(e, c):\n    return {'type': type(e['t']).__name__, 'tuple': (1, 2)}\n"
    function = _function(tmp_path, module_name, source)
    try:
        assert function.invoke({"t": (1, 2)}) == {"type": "list", "tuple": [1, 2]}
    finally:
        function.close()


def test_handler_exception_is_a_function_error_with_its_type_logged(
    tmp_path: Path, module_name: str, fallback_stdout: None
) -> None:
    """errorType is the exception's class name; START, [ERROR] and END go to the function's log sink."""
    sink: list[str] = []
    function = _function(tmp_path, module_name, "def handler(e, c):\n    raise KeyError('image')\n", sink)
    try:
        with pytest.raises(FunctionError) as info:
            function.invoke({}, "req-9")
    finally:
        function.close()
    assert info.value.error_type == "KeyError"
    log = "".join(sink)
    assert "START RequestId: req-9 Version: $LATEST" in log
    assert "[ERROR] KeyError: 'image'" in log
    assert "END RequestId: req-9" in log


def test_non_json_result_is_a_function_error(tmp_path: Path, module_name: str, fallback_stdout: None) -> None:
    """A handler returning something JSON cannot encode fails like Lambda's Runtime.MarshalError."""
    function = _function(tmp_path, module_name, "def handler(e, c):\n    return {1, 2}\n")
    try:
        with pytest.raises(FunctionError) as info:
            function.invoke({})
    finally:
        function.close()
    assert info.value.error_type == "Runtime.MarshalError"


def test_timeout_is_sandbox_timedout(tmp_path: Path, module_name: str, fallback_stdout: None) -> None:
    """A handler running past Timeout fails with Sandbox.Timedout and Lambda's message; the caller is not held."""
    source = "import time\ndef handler(e, c):\n    time.sleep(e['sleep'])\n    return 'late'\n"
    function = _function(tmp_path, module_name, source, timeout_s=0.2)
    started = time.monotonic()
    try:
        with pytest.raises(FunctionError) as info:
            function.invoke({"sleep": 1.5})
        elapsed = time.monotonic() - started
    finally:
        function.close()
    assert info.value.error_type == "Sandbox.Timedout"
    assert info.value.message == "Task timed out after 0.20 seconds"
    assert elapsed < 1.2


def test_event_over_the_sync_payload_limit_is_refused_before_the_handler(
    tmp_path: Path, module_name: str, fallback_stdout: None
) -> None:
    """An event over 6,291,456 bytes is PayloadTooLarge; the handler never runs."""
    sink: list[str] = []
    function = _function(tmp_path, module_name, "def handler(e, c):\n    return 1\n", sink)
    try:
        with pytest.raises(PayloadTooLarge):
            function.invoke({"body": "x" * LAMBDA_SYNC_PAYLOAD_MAX_BYTES})
        assert function.invoke({"body": "x" * 1000}) == 1  # and the function still serves
    finally:
        function.close()
    assert "".join(sink).count("START RequestId") == 1


def test_the_payload_limit_counts_the_compact_json_event_exactly(
    tmp_path: Path, module_name: str, fallback_stdout: None
) -> None:
    """The limit is on the event as the invoker sends it (compact JSON): exactly 6,291,456 bytes still runs."""
    function = _function(tmp_path, module_name, "def handler(e, c):\n    return len(e['body'])\n", [])
    envelope = len('{"body":""}')
    try:
        fits = "x" * (LAMBDA_SYNC_PAYLOAD_MAX_BYTES - envelope)
        assert function.invoke({"body": fits}) == len(fits)
        with pytest.raises(PayloadTooLarge, match=r"is too large for the RequestResponse invocation type"):
            function.invoke({"body": fits + "x"})
    finally:
        function.close()


def test_response_over_the_payload_limit_is_a_function_error(
    tmp_path: Path, module_name: str, fallback_stdout: None
) -> None:
    """A response over 6 MB fails as Function.ResponseSizeTooLarge."""
    function = _function(
        tmp_path, module_name, f"def handler(e, c):\n    return 'x' * {LAMBDA_SYNC_PAYLOAD_MAX_BYTES}\n"
    )
    try:
        with pytest.raises(FunctionError) as info:
            function.invoke({})
    finally:
        function.close()
    assert info.value.error_type == "Function.ResponseSizeTooLarge"


def test_reserved_concurrency_throttles_instead_of_queueing(
    tmp_path: Path, module_name: str, fallback_stdout: None
) -> None:
    """With reserved concurrency 2 and two calls in flight, a third is Throttled at once; slots are released."""
    source = (
        "import threading\nGATE = threading.Event()\nSTARTED = threading.Semaphore(0)\n"
        "def handler(e, c):\n    STARTED.release()\n    GATE.wait(5)\n    return 'ok'\n"
    )
    function = _function(tmp_path, module_name, source, reserved_concurrency=2)
    module = function.handler.__globals__
    results: list[Any] = []
    workers = [threading.Thread(target=lambda: results.append(function.invoke({}))) for _ in range(2)]
    try:
        for worker in workers:
            worker.start()
        assert module["STARTED"].acquire(timeout=5) and module["STARTED"].acquire(timeout=5)
        started = time.monotonic()
        with pytest.raises(Throttled):
            function.invoke({})
        assert time.monotonic() - started < 1  # rejected, not queued
    finally:
        module["GATE"].set()
        for worker in workers:
            worker.join(timeout=10)
    try:
        assert results == ["ok", "ok"]
        assert function.throttled == 1
        assert function.invoke({}) == "ok"  # both slots came back
    finally:
        function.close()


def test_reserved_concurrency_zero_switches_the_function_off(
    tmp_path: Path, module_name: str, fallback_stdout: None
) -> None:
    """ReservedConcurrentExecutions 0: every call is throttled (how AWS disables a function)."""
    function = _function(tmp_path, module_name, "def handler(e, c):\n    return 1\n", reserved_concurrency=0)
    try:
        for _ in range(3):
            with pytest.raises(Throttled):
                function.invoke({})
    finally:
        function.close()
    assert function.throttled == 3


# ----------------------------------------------------------------------------------------------- output routing
def test_prints_of_the_invocation_go_to_the_sink_and_others_to_stdout(
    tmp_path: Path, module_name: str, fallback_stdout: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the handler prints (at import and per call) goes to the log sink; another thread's print does not."""
    source = (
        "import threading\nprint('cold start')\nGATE = threading.Event()\nIN = threading.Event()\n"
        "def handler(e, c):\n    print('inside handler')\n    IN.set()\n    GATE.wait(5)\n    return 1\n"
    )
    # NOTE: set here, not in a fixture: pytest's capture puts its own stdout back between setup and call.
    process_stdout = io.StringIO()
    monkeypatch.setattr(sys, "stdout", process_stdout)
    sink: list[str] = []
    function = _function(tmp_path, module_name, source, sink)
    module = function.handler.__globals__
    worker = threading.Thread(target=function.invoke, args=({},))
    try:
        worker.start()
        assert module["IN"].wait(timeout=5)
        print("from the test thread during the invocation")
    finally:
        module["GATE"].set()
        worker.join(timeout=10)
        function.close()
    log = "".join(sink)
    assert "cold start" in log and "inside handler" in log
    assert "from the test thread" not in log
    assert "from the test thread during the invocation" in process_stdout.getvalue()
    assert "inside handler" not in process_stdout.getvalue() and "cold start" not in process_stdout.getvalue()


def test_a_log_handler_bound_to_stdout_before_the_cold_start_still_logs_to_the_sink(
    tmp_path: Path, module_name: str, fallback_stdout: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A logger configured before the runtime wrapped stdout (the handler module imported earlier in this process,
    as tests and tools do; logging keeps loggers process-wide, so Powertools' Logger keeps that first handler): the
    function's log lines still go to its log, never to the terminal."""
    process_stdout = io.StringIO()
    monkeypatch.setattr(sys, "stdout", process_stdout)
    logger = logging.getLogger(f"{module_name}-service")
    early = logging.StreamHandler(sys.stdout)  # what the earlier import left behind
    logger.addHandler(early)
    logger.propagate = False
    source = f"import logging\nLOG = logging.getLogger({module_name + '-service'!r})\n"
    source += "def handler(e, c):\n    LOG.warning('request refused')\n    return 1\n"
    sink: list[str] = []
    function = _function(tmp_path, module_name, source, sink)
    try:
        assert function.invoke({}) == 1
        logger.warning("outside any invocation")
    finally:
        function.close()
        logger.removeHandler(early)
    assert "request refused" in "".join(sink)
    assert "request refused" not in process_stdout.getvalue()
    assert "outside any invocation" in process_stdout.getvalue()  # the host's own lines still reach its stdout


def test_stdout_replaced_after_the_cold_start_is_routed_again(
    tmp_path: Path, module_name: str, fallback_stdout: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A terminal UI or a capture swapping sys.stdout later: the next invocation's prints (EMF, looked up at call
    time) and its log lines (a handler bound to stdout at the cold start, as Powertools' Logger) still reach the log."""
    source = (
        "import logging, sys\nLOG = logging.getLogger(__name__)\nLOG.addHandler(logging.StreamHandler(sys.stdout))\n"
        "LOG.propagate = False\ndef handler(e, c):\n    print('{\"_aws\": {}}')\n    LOG.warning('refused')\n"
    )
    sink: list[str] = []
    function = _function(tmp_path, module_name, source, sink)
    swapped = io.StringIO()
    monkeypatch.setattr(sys, "stdout", swapped)
    try:
        function.invoke({})
    finally:
        function.close()
        logging.getLogger(module_name).handlers.clear()
    assert '{"_aws": {}}' in "".join(sink) and "refused" in "".join(sink)
    assert swapped.getvalue() == ""


# ----------------------------------------------------------------------------------------------- boto3 in a sandbox
def test_the_handlers_default_clients_sign_with_the_functions_credentials(
    tmp_path: Path, module_name: str, fallback_stdout: None, host_default_session: boto3.session.Session
) -> None:
    """A sandbox is a fresh process: boto3.client() in the handler uses the function's keys, not the host's cache.

    The host resolved (and botocore cached) ``testing`` before the cold start; that is what broke the in-process
    Lambda when another test had used boto3 first.
    """
    source = (
        "import boto3\nAT_IMPORT = boto3.client('s3').\\\n    _request_signer._credentials.access_key\n"
        "def handler(e, c):\n"
        "    return [AT_IMPORT, boto3.client('sts')._request_signer._credentials.access_key,\n"
        "            boto3.client('sts').meta.region_name]\n"
    )
    code = _code(tmp_path, module_name, source)
    spec = FunctionSpec("Fn", f"{module_name}.handler", code)
    extra = {"AWS_ACCESS_KEY_ID": "LKIAFUNCTION", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": ""}
    function = LocalFunction(spec, extra | {"AWS_REGION": "eu-west-1"}, lambda _t: None)
    try:
        assert function.invoke({}) == ["LKIAFUNCTION", "LKIAFUNCTION", "eu-west-1"]
        # Outside the invocation, the host's own default session answers, credentials and all.
        assert isinstance(boto3.DEFAULT_SESSION, _RoutedDefaultSession)
        assert boto3.client("sts")._request_signer._credentials.access_key == "testing"
    finally:
        function.close()


def test_a_replaced_default_session_is_routed_again_on_the_next_invocation(
    tmp_path: Path, module_name: str, fallback_stdout: None, host_default_session: boto3.session.Session
) -> None:
    """boto3.setup_default_session() after the cold start does not leak the host's session into the handler."""
    source = (
        "import boto3\ndef handler(e, c):\n    return boto3.client('sts')._request_signer._credentials.access_key\n"
    )
    code = _code(tmp_path, module_name, source)
    spec = FunctionSpec("Fn", f"{module_name}.handler", code)
    function = LocalFunction(spec, {"AWS_ACCESS_KEY_ID": "LKIAFUNCTION", "AWS_SECRET_ACCESS_KEY": "s"}, lambda _t: None)
    try:
        boto3.setup_default_session(aws_access_key_id="HOSTKEY", aws_secret_access_key="h")
        assert function.invoke({}) == "LKIAFUNCTION"
        assert boto3.client("sts")._request_signer._credentials.access_key == "HOSTKEY"
    finally:
        function.close()
