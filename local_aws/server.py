"""The local AWS in one process: every service on 127.0.0.1, the template deployed, the REST API serving.

``LocalAws(home).start()`` reaps processes a crashed predecessor left, issues (or loads) the runtime's credentials,
starts the edge (one AWS endpoint for every service) and the REST API, deploys ``template.yaml`` through the
services' own APIs, brings persisted endpoints back into service and writes ``runtime.json`` (pid and URLs) so
other shells can find it. ``stop()`` shuts it down in order; SIGKILL skips that, which is why every child process
carries PDEATHSIG and the next start reaps what is left.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from local_aws.apigateway.gateway import ApiGateway, api_error_renderer
from local_aws.apigateway.spec import ApiSpec, api_spec_from_template
from local_aws.auth.credentials import (
    ChainCredentialStore,
    CredentialStore,
    IssuedCredentials,
    StaticCredentialStore,
    issue_or_load,
)
from local_aws.auth.role_sessions import LAMBDA_SERVICE, STATES_SERVICE, AssumedRoleStore, RoleSessions
from local_aws.autoscaling.scaler import TargetTracker
from local_aws.cloudformation.api import StackApi, localize_outputs
from local_aws.cloudwatch.actions import AlarmActions
from local_aws.cloudwatch.alarms import AlarmEvaluator
from local_aws.constants import (
    API_GATEWAY_MAX_BYTES,
    DEFAULT_API_PORT,
    DEFAULT_AWS_PORT,
    HOST,
    REGION,
    S3_MAX_PUT_BYTES,
    SAMCONFIG_PATH,
    TEMPLATE_PATH,
    StateLayout,
)
from local_aws.deploy import StackRecord, deploy
from local_aws.edge import Edge, edge_body_limit, edge_error_renderer
from local_aws.events.delivery import EventDelivery, execution_status_event
from local_aws.http.server import HttpServer, port_is_free
from local_aws.injected_errors import InjectedErrors
from local_aws.lambda_runtime.runtime import LocalFunction, new_log_stream
from local_aws.logs.api import LogsApi
from local_aws.logs.store import LogStore, now_ms
from local_aws.moto_services import MotoServices
from local_aws.processes import ProcessSupervisor
from local_aws.runtime_record import read_api_key, read_runtime, write_private
from local_aws.s3.app import S3Api
from local_aws.s3.store import ObjectStore
from local_aws.sagemaker.api import SageMakerApi
from local_aws.sagemaker.control import ControlPlane, SageMakerDeps
from local_aws.sns_topics import TopicPublisher
from local_aws.stepfunctions import interpreter
from local_aws.stepfunctions.api import StepFunctionsApi
from local_aws.stepfunctions.executions import ExecutionRecorder, ExecutionStore
from local_aws.sts import StsApi

LOGGER = logging.getLogger("local_aws")
CLIENT_SERVICES = (
    "s3",
    "iam",
    "logs",
    "stepfunctions",
    "sagemaker",
    "sts",
    "cloudwatch",
    "application-autoscaling",
    "dynamodb",
    "sns",
    "events",
)


class RuntimeBusy(RuntimeError):
    """Another live process already serves this home."""


@dataclass(frozen=True)
class Endpoints:
    """Where a running local AWS answers."""

    aws_url: str
    api_url: str


def _bind(port: int, explicit: bool) -> int:
    """``port`` when it is free; a busy default falls back to an ephemeral port, a busy explicit one is an error."""
    if port_is_free(port):
        return port
    if explicit:
        raise RuntimeBusy(f"port {port} is in use on {HOST}; pick a free port")
    return 0


class LocalAws:
    """Every local service, in this process.

    Args:
        home: the state dir.
        aws_port: the edge's port (0: ephemeral; a busy default falls back to ephemeral).
        api_port: the REST API's port (same rules).
        explicit_ports: a busy port is an error instead of a fallback.
        template_path: the SAM template to deploy and serve.
        overrides: template parameter overrides on top of the samconfig environment's.
        samconfig_env: the samconfig.toml environment whose parameter_overrides apply.
        echo: where training hosts' lines are echoed (None: only to the logs).
    """

    def __init__(
        self,
        home: Path,
        *,
        aws_port: int = DEFAULT_AWS_PORT,
        api_port: int = DEFAULT_API_PORT,
        explicit_ports: bool = False,
        template_path: Path = TEMPLATE_PATH,
        overrides: Mapping[str, str] | None = None,
        samconfig_env: str = "default",
        echo: Callable[[str], None] | None = None,
    ) -> None:
        self.layout = StateLayout(Path(home))
        self.aws_port = aws_port
        self.api_port = api_port
        self.explicit_ports = explicit_ports
        self.template_path = template_path
        self.overrides = dict(overrides or {})
        self.samconfig_env = samconfig_env
        self.echo = echo
        self.credentials: IssuedCredentials | None = None
        self.stack: StackRecord | None = None
        self.api_spec: ApiSpec | None = None
        self._edge: HttpServer | None = None
        self._api: HttpServer | None = None
        self._function: LocalFunction | None = None
        self._control: ControlPlane | None = None
        self._recorder: ExecutionRecorder | None = None
        self._supervisor: ProcessSupervisor | None = None
        self._alarms: AlarmEvaluator | None = None
        self._alarm_actions: AlarmActions | None = None
        self._scaler: TargetTracker | None = None
        self._stopped = threading.Event()

    # ----------------------------------------------------------------------------------------------- lifecycle
    def start(self) -> LocalAws:
        """Start everything; returns self.

        Raises:
            RuntimeBusy: another live local runtime serves this home, or an explicit port is taken.
        """
        layout = self.layout
        existing = read_runtime(layout)
        if existing is not None and existing.get("pid") != os.getpid():
            raise RuntimeBusy(
                f"a local runtime already serves {layout.home} (pid {existing['pid']}, AWS {existing.get('aws_url')}); "
                "use it, or stop it with `python -m ops down`"
            )
        layout.home.mkdir(parents=True, exist_ok=True)
        self._supervisor = ProcessSupervisor(layout.processes)
        for leftover in self._supervisor.reap_leftovers():
            LOGGER.warning("reaped a process a previous runtime left behind: %s", leftover)
        self.credentials = issue_or_load(layout.credentials)
        # The operator's key, then every role session STS issued (Step Functions', Lambda's, a user's AssumeRole).
        store = ChainCredentialStore(StaticCredentialStore(self.credentials), AssumedRoleStore())
        objects = ObjectStore(layout.s3)
        logs = LogStore(layout.logs)
        moto = MotoServices()
        interpreter.apply()
        # Before the deployment: the template's alarms start INSUFFICIENT_DATA and are evaluated from then on.
        self._alarms = AlarmEvaluator()
        # What AWS services publish to SNS (alarm actions, EventBridge rules), kept in <home>/notifications.
        topics = TopicPublisher(layout.notifications)
        self._alarm_actions = AlarmActions(topics).start()
        executions = ExecutionStore(layout.executions)
        for arn in executions.close_interrupted():
            LOGGER.warning("execution %s was interrupted by the last stop; it is now ABORTED", arn)

        def call_states(operation: str, params: dict[str, Any]) -> dict[str, Any]:
            return moto.call_json("states", f"AWSStepFunctions.{operation}", params)

        self._control = ControlPlane(
            SageMakerDeps(layout=layout, objects=objects, supervisor=self._supervisor, logs=logs, echo=self.echo)
        )
        stacks = StackApi(moto)
        edge = Edge(
            store,
            services={
                "sagemaker": SageMakerApi(self._control),
                "s3": S3Api(objects),
                "states": StepFunctionsApi(moto, call_states, executions),
                "logs": LogsApi(logs),
                "cloudformation": stacks,
                "sts": StsApi(moto),
            },
            fallback=moto,
            errors=InjectedErrors(layout.home),
        )
        self._edge = HttpServer(
            edge,
            name="aws",
            port=_bind(self.aws_port, self.explicit_ports),
            error_renderer=edge_error_renderer,
            body_limit=edge_body_limit,
            # NOTE: S3's 5 GB single-PUT limit is inclusive; waitress refuses at or above max_body_bytes.
            max_body_bytes=S3_MAX_PUT_BYTES + 1,
            threads=16,
        ).start()
        aws_url = self._edge.url
        interpreter.route_sdk_calls(
            aws_url,
            self.credentials.access_key_id,
            self.credentials.secret_access_key,
            RoleSessions(service=STATES_SERVICE),
        )
        self._control.start()
        self._alarms.start()
        # Application Auto Scaling resizes endpoints through the edge, as AWS's does through SageMaker's API.
        self._scaler = TargetTracker(self.clients(("sagemaker",))["sagemaker"]).start()
        samconfig = SAMCONFIG_PATH if self.template_path == TEMPLATE_PATH else None
        self.stack = deploy(
            self.clients(), self.template_path, self.overrides, samconfig=samconfig, env=self.samconfig_env
        )
        # Step Functions tells EventBridge when an execution ends; the deployed rules take it from there.
        delivery = EventDelivery(topics)
        self._recorder = ExecutionRecorder(
            executions, call_states, on_end=lambda describe: delivery.emit(execution_status_event(describe))
        )
        if self.stack.state_machine_arn:
            self._recorder.watch(self.stack.state_machine_arn)
        self._recorder.start()
        api_url = self._start_api(aws_url, logs, store)
        stacks.publish(self.stack.stack_name, localize_outputs(self.stack.outputs, api_url), self.overrides)
        write_private(
            layout.runtime_file,
            {
                "pid": os.getpid(),
                "aws_url": aws_url,
                "api_url": api_url,
                "stack": self.stack.stack_name,
                "started": time.time(),
            },
        )
        LOGGER.info("local AWS on %s, REST API on %s (state in %s)", aws_url, api_url, layout.home)
        return self

    def _start_api(self, aws_url: str, logs: LogStore, store: CredentialStore) -> str:
        assert self.credentials is not None and self.stack is not None
        # The stack's resolver: the API and its function get the deployment's template and parameter values.
        spec = api_spec_from_template(self.template_path, resolver=self.stack.resolver)
        group = spec.function.log_group
        # Every AWS call the function makes goes to the edge, signed as its execution role (Lambda's sandbox
        # credentials). A function without a Role (SAM would generate one from Policies) keeps the runtime's own
        # key: no session token (botocore sends none for an empty value).
        function_env = {
            "AWS_ENDPOINT_URL": aws_url,
            "AWS_ACCESS_KEY_ID": self.credentials.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.credentials.secret_access_key,
            "AWS_SESSION_TOKEN": "",
            "AWS_SECURITY_TOKEN": "",
        }
        pending: list[str] = []
        stream = new_log_stream()

        def sink(text: str) -> None:
            # Lambda sends each line the function writes to its log stream, as one event.
            pending.append(text)
            joined = "".join(pending)
            if "\n" not in joined:
                return
            *lines, rest = joined.split("\n")
            pending[:] = [rest] if rest else []
            stamp = now_ms()
            logs.append(group, stream, [(stamp, line) for line in lines if line])

        role = None
        if spec.function.role_arn:
            # Lambda names the session after the function: assumed-role/<role>/<function name>.
            sessions = RoleSessions(session_name=spec.function.function_name, service=LAMBDA_SERVICE)
            role = sessions.refresher(spec.function.role_arn)
        else:
            LOGGER.warning("%s has no Role: it runs with the runtime's own key", spec.function.logical_id)
        function = LocalFunction(spec.function, function_env, sink, stream, role)
        self._function = function
        api_key = self._api_key() if any(route.auth == "API_KEY" for route in spec.routes) else None
        gateway = ApiGateway(spec, function, store, api_key=api_key)
        server = HttpServer(
            gateway,
            name="api",
            port=_bind(self.api_port, self.explicit_ports),
            error_renderer=api_error_renderer(spec),
            # NOTE: API Gateway's 10 MB payload limit; waitress refuses a declared body at or over the limit unread.
            max_body_bytes=API_GATEWAY_MAX_BYTES + 1,
        ).start()
        self._api = server
        self.api_spec = spec
        gateway.port = server.port  # X-Forwarded-Port in events, now that the port is known
        return server.url

    def _api_key(self) -> str:
        """The value of the stack's API key (ApiAuthMode=API_KEY): issued once per state dir, stored 0600."""
        value = read_api_key(self.layout)
        if value is None:
            # API Gateway generates 40-character keys when none is given (CreateApiKey "value" is optional).
            value = secrets.token_urlsafe(30)
            write_private(self.layout.api_key, {"value": value})
        return value

    @property
    def api_key(self) -> str | None:
        """The API key the REST API accepts, when the template's methods require one."""
        return read_api_key(self.layout)

    def clients(self, names: tuple[str, ...] = CLIENT_SERVICES) -> dict[str, Any]:
        """boto3 clients on the edge (``names``: botocore service names), signed with the runtime's credentials."""
        assert self.credentials is not None and self._edge is not None
        session = boto3.session.Session(
            aws_access_key_id=self.credentials.access_key_id,
            aws_secret_access_key=self.credentials.secret_access_key,
            region_name=REGION,
        )
        config = Config(retries={"max_attempts": 2, "mode": "standard"})
        return {name: session.client(name, endpoint_url=self._edge.url, config=config) for name in names}

    @property
    def endpoints(self) -> Endpoints:
        assert self._edge is not None and self._api is not None
        return Endpoints(aws_url=self._edge.url, api_url=self._api.url)

    def stop(self) -> None:
        """Stop in order: API, recorder, scaling and alarm loops, SageMaker (jobs, instances), edge; then remove
        runtime.json."""
        if self._stopped.is_set():
            return
        self._stopped.set()

        def stop_api() -> None:
            if self._api is not None:
                self._api.stop()
            if self._function is not None:
                self._function.close()

        def stop_recorder() -> None:
            if self._recorder is not None:
                self._recorder.stop()

        def stop_loops() -> None:
            if self._scaler is not None:
                self._scaler.stop()
            if self._alarms is not None:
                self._alarms.stop()
            if self._alarm_actions is not None:
                self._alarm_actions.stop()

        def stop_sagemaker() -> None:
            if self._control is not None:
                self._control.shutdown()

        def stop_edge() -> None:
            if self._edge is not None:
                self._edge.stop()

        def stop_children() -> None:
            if self._supervisor is not None:
                self._supervisor.close(10)

        steps: list[tuple[str, Callable[[], None]]] = [
            ("REST API", stop_api),
            ("execution recorder", stop_recorder),
            ("autoscaling and alarm loops", stop_loops),
            ("SageMaker jobs and endpoints", stop_sagemaker),
            ("AWS edge", stop_edge),
            ("child processes", stop_children),
        ]
        for name, step in steps:
            started = time.monotonic()
            try:
                step()
            except Exception:  # keep stopping the rest; the log says what failed
                LOGGER.exception("stopping the %s failed", name)
            if time.monotonic() - started > 5:
                LOGGER.warning("stopping the %s took %.1f s", name, time.monotonic() - started)
        record = read_runtime(self.layout)
        if record is not None and record.get("pid") == os.getpid():
            self.layout.runtime_file.unlink(missing_ok=True)

    def __enter__(self) -> LocalAws:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
