"""A Lambda runtime in-process, without Docker: the real handler, its template environment, concurrency and timeout.

The handler is imported the way a cold start does (CodeUri on sys.path, fresh modules, the function's environment
set first) and called with a context object carrying what the Python runtime's carries. What it prints goes where
Lambda sends it: to the function's CloudWatch log group (or to stderr for ``ops invoke``), never to the runtime's
own stdout, whichever thread the invocation runs on.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib
import io
import json
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import boto3.session
import botocore.session
from botocore.credentials import RefreshableCredentials

from local_aws.constants import ACCOUNT_ID, LAMBDA_SYNC_PAYLOAD_MAX_BYTES, PARTITION, REGION
from local_aws.lambda_runtime.function import FunctionConfigError, FunctionSpec

Handler = Callable[[dict[str, Any], Any], Any]
LogSink = Callable[[str], None]


@dataclass
class LambdaContext:
    """The attributes of the Python runtime's context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    deadline: float
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's Timeout."""
        return max(0, int((self.deadline - time.monotonic()) * 1000))


class FunctionError(Exception):
    """The invocation failed the way Lambda reports it (``errorType``, ``errorMessage``)."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


class Throttled(Exception):
    """``TooManyRequestsException``: reserved concurrency reached (Lambda does not queue synchronous calls)."""


class PayloadTooLarge(Exception):
    """``RequestEntityTooLargeException``: the event is over the synchronous payload limit."""


@contextlib.contextmanager
def _thread_value(local: threading.local, name: str, value: Any) -> Iterator[None]:
    """``local.<name>`` is ``value`` in this thread for the block; then what it was (nesting restores in order)."""
    previous = getattr(local, name, None)
    setattr(local, name, value)
    try:
        yield
    finally:
        setattr(local, name, previous)


class _RoutedStdout(io.TextIOBase):
    """``sys.stdout`` that sends what an invocation's thread prints to that function's log sink.

    NOTE: Powertools binds its log handler to the ``sys.stdout`` object present at import time, and EMF metrics
    ``print`` at call time; with this router installed before the cold start, both end up in the function's logs.
    """

    # NOTE: one thread-local for every router instance: when something replaces sys.stdout after a cold start (a
    # terminal UI, pytest's capture), the next invocation wraps the new one in a new router, while the function's
    # log handler still holds the old router; both must send the invocation thread's lines to the same sink.
    local = threading.local()

    def __init__(self, fallback: TextIO) -> None:
        self.fallback = fallback

    def write(self, text: str) -> int:
        sink: LogSink | None = getattr(self.local, "sink", None)
        if sink is None:
            return self.fallback.write(text)
        sink(text)
        return len(text)

    def flush(self) -> None:
        self.fallback.flush()

    def routed(self, sink: LogSink) -> contextlib.AbstractContextManager[None]:
        return _thread_value(self.local, "sink", sink)


_ROUTER_LOCK = threading.Lock()


def _router() -> _RoutedStdout:
    with _ROUTER_LOCK:
        if not isinstance(sys.stdout, _RoutedStdout):
            sys.stdout = _RoutedStdout(sys.stdout)
        return sys.stdout


def _adopt_stdout_log_handlers(router: _RoutedStdout) -> None:
    """Point log handlers that write to a stdout the router wraps at the router itself.

    NOTE: ``logging`` keeps loggers process-wide, and Powertools' Logger keeps the handler of its first
    construction: if the handler module was imported before the router existed (a test, a tool), that handler
    writes to the raw stdout and the function's log lines would reach the terminal instead of its log group. Outside
    an invocation the router writes to the stream it wraps, so for everyone else nothing changes.
    """
    wrapped: list[Any] = [sys.__stdout__]
    stream: Any = router
    while isinstance(stream, _RoutedStdout):
        stream = stream.fallback
        wrapped.append(stream)
    # NOTE: list() copies the registry in one step; another thread may create a logger meanwhile.
    registered = list(logging.Logger.manager.loggerDict.values())
    loggers = [logging.getLogger(), *(v for v in registered if isinstance(v, logging.Logger))]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and any(handler.stream is w for w in wrapped):
                handler.setStream(router)


class _RoutedDefaultSession:
    """``boto3.DEFAULT_SESSION`` that gives an invocation's thread its own function's session.

    NOTE: ``boto3.client()`` builds every client from one process-wide default session, which resolves its
    credentials once and caches them. In Lambda each sandbox is a fresh process, so a handler's clients sign with
    the function's credentials; in-process, without this, they would sign with whatever the host process (or an
    earlier test) resolved first, and the local AWS would answer UnrecognizedClientException. Outside an
    invocation it behaves as the default session it replaced.
    """

    def __init__(self, fallback: boto3.session.Session | None) -> None:
        self._fallback = fallback
        self._local = threading.local()

    def _current(self) -> boto3.session.Session:
        session: boto3.session.Session | None = getattr(self._local, "session", None)
        if session is not None:
            return session
        if self._fallback is None:
            # What boto3.setup_default_session() would have built on first use.
            self._fallback = boto3.session.Session()
        return self._fallback

    def __getattr__(self, name: str) -> Any:
        if name in ("_fallback", "_local"):  # not set yet (a copy made without __init__): no recursion
            raise AttributeError(name)
        return getattr(self._current(), name)

    def routed(self, session: boto3.session.Session) -> contextlib.AbstractContextManager[None]:
        return _thread_value(self._local, "session", session)


def _session_router() -> _RoutedDefaultSession:
    with _ROUTER_LOCK:
        # NOTE: re-checked on every use: boto3.setup_default_session() replaces the router; it becomes the fallback.
        current = boto3.DEFAULT_SESSION
        if not isinstance(current, _RoutedDefaultSession):
            current = _RoutedDefaultSession(current)
            boto3.DEFAULT_SESSION = current
        return current


# () -> the execution role's current session, as botocore's refreshable-credential metadata: access_key, secret_key,
# token, expiry_time (ISO 8601).
RoleRefresh = Callable[[], dict[str, str]]


def function_session(env: dict[str, str], refresh: RoleRefresh | None = None) -> boto3.session.Session:
    """The boto3 session a sandbox starts with: the credentials and region of the function's environment.

    With ``refresh``, the session signs as the execution role and renews the role session before it expires
    (botocore's ``RefreshableCredentials``, the same mechanism its assume-role provider uses): a Lambda sandbox is
    recycled long before its credentials expire, this in-process one lives as long as the runtime.
    """
    if refresh is None:
        return boto3.session.Session(
            aws_access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
            aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
            aws_session_token=env.get("AWS_SESSION_TOKEN") or None,
            region_name=env.get("AWS_REGION") or None,
        )
    core = botocore.session.Session()
    core._credentials = RefreshableCredentials.create_from_metadata(
        metadata=refresh(), refresh_using=refresh, method="assume-role"
    )
    return boto3.session.Session(botocore_session=core, region_name=env.get("AWS_REGION") or None)


@contextlib.contextmanager
def _in_sandbox(sink: LogSink, session: boto3.session.Session) -> Iterator[None]:
    """This thread's output goes to ``sink`` and its ``boto3.client()`` calls use ``session``."""
    with _router().routed(sink), _session_router().routed(session):
        yield


def load_handler(function: FunctionSpec) -> Handler:
    """Import the handler like a cold start: CodeUri on sys.path, ``module.function``, fresh module objects.

    Modules already imported from CodeUri (say, by tests in the same process) are not reused, so module-level state
    (settings, clients) is built from this function's environment; other importers keep theirs.

    Raises:
        FunctionConfigError: the handler string is malformed or the module has no such function.
    """
    module_name, _, attr = function.handler.rpartition(".")
    if not module_name or not attr:
        raise FunctionConfigError(f"Handler must look like 'module.function', got {function.handler!r}")
    code_dir = function.code_dir.resolve()
    if not code_dir.is_dir():
        raise FunctionConfigError(f"CodeUri {code_dir} of {function.logical_id} is not a directory")

    prefix = str(code_dir) + os.sep

    def from_code_dir(module: Any) -> bool:
        # NOTE: a string test first: resolving the path of each of the ~1,600 modules torch loads cost 0.3-0.7 s.
        file = getattr(module, "__file__", None)
        return isinstance(file, str) and file.startswith(prefix) and Path(file).resolve().is_relative_to(code_dir)

    previous = {name: mod for name, mod in sys.modules.items() if from_code_dir(mod)}
    for name in previous:
        del sys.modules[name]
    sys.path.insert(0, str(code_dir))
    try:
        module = importlib.import_module(module_name)
    finally:
        sys.path.remove(str(code_dir))
        for name in [n for n, m in sys.modules.items() if from_code_dir(m)]:
            del sys.modules[name]
        sys.modules.update(previous)
    if not from_code_dir(module):
        raise FunctionConfigError(
            f"handler module {module_name!r} resolved to {module.__file__}, outside CodeUri {code_dir}"
        )
    handler = getattr(module, attr, None)
    if not callable(handler):
        raise FunctionConfigError(f"{function.handler!r}: module {module_name!r} has no callable {attr!r}")
    return handler


def lambda_environment(function: FunctionSpec, extra: dict[str, str]) -> dict[str, str]:
    """The environment the function runs with: what the Lambda runtime sets, its template Environment, ``extra``."""
    env = {
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_LAMBDA_FUNCTION_NAME": function.function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": function.log_group,
        "LAMBDA_TASK_ROOT": str(function.code_dir),
        # There is no X-Ray daemon locally (sam local has none either); Powertools' Tracer becomes a no-op.
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    env.update(function.environment)
    env.update(extra)
    return env


def new_log_stream() -> str:
    """A log stream name as Lambda makes one per sandbox: ``YYYY/MM/DD/[$LATEST]<32 hex>``."""
    return f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"


class LocalFunction:
    """One function: cold-started once, invoked concurrently up to its reserved concurrency.

    Args:
        spec: the function as the template declares it.
        extra_env: more environment (endpoint URLs and credentials of the local AWS).
        log_sink: where the function's output goes (text, possibly partial lines).
        role: the execution role's session source; its credentials replace any in ``extra_env``.
    """

    def __init__(
        self,
        spec: FunctionSpec,
        extra_env: dict[str, str],
        log_sink: LogSink,
        stream: str = "",
        role: RoleRefresh | None = None,
    ) -> None:
        self.spec = spec
        self.log_sink = log_sink
        self.stream = stream or new_log_stream()
        self._saved_env: dict[str, str | None] = {}
        self._slots = threading.BoundedSemaphore(spec.reserved_concurrency) if spec.reserved_concurrency else None
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=64, thread_name_prefix="lambda")
        self.throttled = 0
        # NOTE: the handler runs in this process, so its environment is this process's os.environ (restored by
        # close()); it is set before the import so module-level configuration sees it.
        environment = lambda_environment(spec, extra_env)
        if role is not None:
            # Lambda puts the execution role's session in the sandbox's environment (Lambda developer guide,
            # "Defined runtime environment variables": AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN).
            first = role()
            environment.update(
                AWS_ACCESS_KEY_ID=first["access_key"],
                AWS_SECRET_ACCESS_KEY=first["secret_key"],
                AWS_SESSION_TOKEN=first["token"],
            )
        for key, value in environment.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value
        self._session = function_session(environment, role)
        try:
            with _in_sandbox(self.log_sink, self._session):
                self.handler = load_handler(spec)
            _adopt_stdout_log_handlers(_router())
        except BaseException:
            self.close()
            raise

    @property
    def arn(self) -> str:
        return f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT_ID}:function:{self.spec.function_name}"

    def invoke(self, event: dict[str, Any], request_id: str | None = None) -> Any:
        """Invoke synchronously (RequestResponse); returns the handler's JSON-round-tripped result.

        Raises:
            Throttled: reserved concurrency reached (or 0: the function is switched off).
            PayloadTooLarge: the event or the response is over 6,291,456 bytes.
            FunctionError: the handler raised, returned something not JSON-serialisable, or timed out.
        """
        # NOTE: round-trip through JSON like the Lambda runtime, so the handler gets plain JSON types only. The size
        # is the compact UTF-8 JSON's, as the invoker sends it; json.dumps' default ", " and ": " would add 2 bytes
        # per key and make the limit bite a few kilobytes early.
        payload = json.dumps(event, separators=(",", ":"))
        size = len(payload.encode())
        if size > LAMBDA_SYNC_PAYLOAD_MAX_BYTES:
            raise PayloadTooLarge(
                f"{size} byte payload is too large for the RequestResponse invocation type "
                f"(limit {LAMBDA_SYNC_PAYLOAD_MAX_BYTES} bytes)"
            )
        if self.spec.reserved_concurrency == 0 or (self._slots is not None and not self._slots.acquire(blocking=False)):
            self.throttled += 1
            raise Throttled("Rate Exceeded.")
        try:
            request_id = request_id or str(uuid.uuid4())
            started = time.monotonic()
            context = LambdaContext(
                function_name=self.spec.function_name,
                memory_limit_in_mb=self.spec.memory_mb,
                invoked_function_arn=self.arn,
                aws_request_id=request_id,
                deadline=started + self.spec.timeout_s,
                log_group_name=self.spec.log_group,
                log_stream_name=self.stream,
            )
            future = self._executor.submit(self._run, json.loads(payload), context)
            try:
                output = future.result(timeout=self.spec.timeout_s)
            except concurrent.futures.TimeoutError:
                # Lambda stops the sandbox; a thread cannot be stopped, so its result is dropped when it comes.
                message = f"Task timed out after {self.spec.timeout_s:.2f} seconds"
                raise FunctionError("Sandbox.Timedout", message) from None
            try:
                result = json.dumps(output)
            except (TypeError, ValueError) as exc:
                # What the Python runtime reports for a handler result it cannot serialise.
                message = f"Unable to marshal response: {exc}"
                raise FunctionError("Runtime.MarshalError", message) from None
            if len(result) > LAMBDA_SYNC_PAYLOAD_MAX_BYTES:
                raise FunctionError("Function.ResponseSizeTooLarge", "Response payload size exceeded maximum allowed")
            return json.loads(result)
        finally:
            if self._slots is not None:
                self._slots.release()

    def _run(self, event: dict[str, Any], context: LambdaContext) -> Any:
        with _in_sandbox(self.log_sink, self._session):
            self.log_sink(f"START RequestId: {context.aws_request_id} Version: $LATEST\n")
            try:
                return self.handler(event, context)
            except Exception as exc:  # the function boundary: Lambda reports errorType/errorMessage
                self.log_sink(f"[ERROR] {type(exc).__name__}: {exc}\n")
                raise FunctionError(type(exc).__name__, str(exc)) from exc
            finally:
                self.log_sink(f"END RequestId: {context.aws_request_id}\n")

    def close(self) -> None:
        """Restore the environment."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = {}
