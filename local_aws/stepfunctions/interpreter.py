"""Fixes to moto's Step Functions interpreter so the ASL keeps AWS's real names, and its SDK calls reach the local AWS.

moto 5.x executes ``arn:aws:states:::aws-sdk:<service>:<action>`` tasks as real boto3 calls, but:

1. It hands the ASL service name straight to boto3. Step Functions spells Application Auto Scaling
   ``applicationautoscaling`` (``arn:aws:states:::aws-sdk:applicationautoscaling:registerScalableTarget``) while
   boto3 only knows ``application-autoscaling``, so every such task fails with UnknownServiceError.
2. Its table of error-name prefixes (``_SERVICE_ERROR_NAMES``) has no SageMaker or Application Auto Scaling entry, so
   errors come out as ``sagemaker.sagemakerException`` where AWS says ``SageMaker.SageMakerException`` (and
   ``SageMaker.ResourceNotFoundException``, ``ApplicationAutoScaling.ObjectNotFoundException``, ...). Retry and
   Catch clauses written with AWS's names would then never match.

3. It leaves botocore's ``datetime`` objects (CreationTime, FinalMetricDataList[].Timestamp, ...) in the state data,
   where AWS has JSON (ISO-8601 strings); an execution whose output carries one then cannot be described at all
   (``TypeError: Object of type datetime is not JSON serializable``).

4. It hands an aws-sdk task's parameters to boto3 as the ASL spells them and returns boto3's answer as is. For a
   service whose API is camelCase (Step Functions' own: ``aws-sdk:sfn:describeExecution``) the ASL spells the
   parameters in PascalCase ("Parameters in Step Functions are expressed in PascalCase, even if the native service
   API is in camelCase", docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html), which boto3
   silently drops, and Step Functions answers in PascalCase (``Status``, ``StartDate``) where boto3 has ``status``.
   moto already has both conversions (``_to_boto_request`` / ``_from_boto_response``, used by its optimized
   integrations); they are applied to the camelCase services' aws-sdk tasks.

A fifth patch is for speed only: moto parses the definition with a pure-Python ANTLR parser on create and again on
every execution (seconds for this 2,600-line file). The syntax tree is cached per definition text; the evaluation
components are still built fresh from it for each execution, so no state is shared between executions.

Last, moto's interpreter logs at ERROR every path that an IsPresent probe or a Catch handles (normal evaluation,
not a failure), which would bury real output; its parser logger is set to CRITICAL. Real failures still surface as
the execution's error and cause.

``apply()`` also puts moto's relative Wait states and Retry intervals on the local clock (scaled_waits.py), so a
test that scales AWS time (``LOCAL_AWS_TIME_SCALE``) sees the ASL's waits pass at the same rate as the services'.

Finally, ``route_sdk_calls`` replaces moto's ``boto_client_for``: outside ``mock_aws`` it sends every aws-sdk call to
``http://localhost:$MOTO_PORT`` signed with the fixed key ``ak``/``sk`` and ignores the task's role
(local-aws-building-blocks.md §2.4). The replacement sends them to the local AWS edge, signed with temporary
credentials of the execution's role (as Step Functions signs them), so they pass the edge's SigV4 check, are
authorised against the role's policies from template.yaml and reach the local SageMaker like any other client's calls.

All are patched here instead of bending the ASL away from what runs on AWS. ``apply()`` is idempotent.
"""

from __future__ import annotations

import functools
import importlib
import logging
import threading
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import boto3
import botocore.session
from antlr4 import CommonTokenStream, InputStream
from botocore.client import BaseClient
from botocore.config import Config
from moto.stepfunctions.parser.asl.antlr.runtime.ASLLexer import ASLLexer
from moto.stepfunctions.parser.asl.antlr.runtime.ASLParser import ASLParser
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service,
    state_task_service_aws_sdk,
)
from moto.stepfunctions.parser.asl.parse import asl_parser
from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor
from moto.stepfunctions.parser.asl.utils import boto_client

from local_aws.auth.role_sessions import RoleSessions
from local_aws.stepfunctions import history_quota, scaled_waits

# Every module of moto's interpreter that imported ``boto_client_for`` by name (moto 5.2.x); each gets the
# replacement, so no aws-sdk, Map item reader/writer or optimised integration escapes to moto's own port.
_CLIENT_MODULES = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_unsupported",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sqs",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sns",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_events",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_dynamodb",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_ecs",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_glue",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_batch",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils",
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval.resource_eval_s3",
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval.resource_eval_s3",
)

# ASL service name (lower case, as in the Resource ARN) -> boto3 client name.
BOTO_SERVICE_NAMES: dict[str, str] = {"applicationautoscaling": "application-autoscaling"}

# ASL service name -> the PascalCase prefix Step Functions puts in front of error names.
ERROR_PREFIXES: dict[str, str] = {"sagemaker": "SageMaker", "applicationautoscaling": "ApplicationAutoScaling"}


# aws-sdk services whose API members are camelCase (the ASL and Step Functions' answers use PascalCase for them).
CAMEL_CASE_SERVICES = frozenset({"sfn"})


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _patch_timestamps() -> None:
    cls = state_task_service_aws_sdk.StateTaskServiceAwsSdk
    original = cls._eval_service_task
    if getattr(original, "_dogbreed_patched", False):
        return

    def _eval_service_task(self: Any, env: Any, *args: Any, **kwargs: Any) -> None:
        original(self, env, *args, **kwargs)
        env.stack.append(_jsonable(env.stack.pop()))

    _eval_service_task._dogbreed_patched = True  # type: ignore[attr-defined]
    cls._eval_service_task = _eval_service_task  # type: ignore[method-assign]


@functools.cache
def _operation_model(boto_service: str, action: str) -> Any:
    model = botocore.session.get_session().get_service_model(boto_service)
    return model.operation_model(action[0].upper() + action[1:])


def _patch_camel_case_services() -> None:
    cls = state_task_service_aws_sdk.StateTaskServiceAwsSdk
    original = cls._eval_service_task
    if getattr(original, "_dogbreed_cased", False):
        return

    def _eval_service_task(
        self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: dict[str, Any], state_credentials: Any
    ) -> None:
        if self.resource.api_name not in CAMEL_CASE_SERVICES:
            original(self, env, resource_runtime_part, normalised_parameters, state_credentials)
            return
        operation = _operation_model(self._get_boto_service_name(), self.resource.api_action)
        self._to_boto_request(normalised_parameters, operation.input_shape)
        original(self, env, resource_runtime_part, normalised_parameters, state_credentials)
        response = env.stack.pop()
        self._from_boto_response(response, operation.output_shape)
        env.stack.append(response)

    _eval_service_task._dogbreed_patched = True  # type: ignore[attr-defined]
    _eval_service_task._dogbreed_cased = True  # type: ignore[attr-defined]
    cls._eval_service_task = _eval_service_task  # type: ignore[method-assign]


_TREES: dict[str, Any] = {}
_TREES_LOCK = threading.Lock()


def _cached_parse(definition: str) -> tuple[Any, Any]:
    with _TREES_LOCK:
        tree = _TREES.get(definition)
    if tree is None:
        listener = asl_parser.SyntaxErrorListener()
        parser = ASLParser(CommonTokenStream(ASLLexer(InputStream(definition))))
        parser.removeErrorListeners()
        parser.addErrorListener(listener)
        tree = parser.state_machine()
        if listener.errors:
            raise asl_parser.ASLParserException(errors=listener.errors)
        with _TREES_LOCK:
            _TREES[definition] = tree
    return Preprocessor().visit(tree), tree


def _patch_parse_cache() -> None:
    cls = asl_parser.AmazonStateLanguageParser
    if getattr(cls.parse, "_dogbreed_patched", False):
        return
    _cached_parse._dogbreed_patched = True  # type: ignore[attr-defined]
    cls.parse = staticmethod(_cached_parse)  # type: ignore[method-assign]


def apply() -> None:
    """Patch moto's aws-sdk task integration in place (safe to call any number of times)."""
    overrides = state_task_service.StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES
    for sfn_name, boto_name in BOTO_SERVICE_NAMES.items():
        overrides.setdefault(sfn_name, boto_name)
    error_names = state_task_service_aws_sdk._SERVICE_ERROR_NAMES
    for sfn_name, prefix in ERROR_PREFIXES.items():
        error_names.setdefault(sfn_name, prefix)
    _patch_timestamps()
    _patch_camel_case_services()
    _patch_parse_cache()
    scaled_waits.apply()
    history_quota.apply()  # the 25,000-event execution-history quota
    logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)


ClientFactory = Callable[[str, str, Any], BaseClient]


def route_sdk_calls(
    endpoint_url: str, access_key_id: str, secret_access_key: str, roles: RoleSessions | None = None
) -> ClientFactory:
    """Send every SDK call the interpreter makes to ``endpoint_url``, signed as the task's role.

    Step Functions makes a task's calls with temporary credentials of the execution role (or of the state's
    ``Credentials.RoleArn``), which moto hands over as ``state_credentials.role_arn``; with ``roles`` given, each
    call is signed with that role's session, so the edge evaluates it against the role's policies. Without ``roles``
    (or without a role), calls are signed with the given long-term key pair.

    Returns:
        The installed factory (``(region, service, state_credentials) -> client``), for tests.
    """
    timeout = boto_client.TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS
    # Same client settings as moto's own: no retries (the ASL's Retry decides) and the ASL's default timeouts.
    config = Config(
        parameter_validation=False,
        retries={"max_attempts": 0, "total_max_attempts": 1},
        connect_timeout=timeout,
        read_timeout=timeout,
    )
    # NOTE: one session for every call: a fresh Session loads the service model from disk again (90-300 ms per
    # SageMaker client, measured, against 5-15 ms from a session that has it), on every Describe* of the state
    # machine's wait loops. A Session is not thread-safe and executions run in threads of their own, so clients are
    # made under the lock; a client, once made, is safe to use from any thread.
    session = boto3.session.Session()
    session_lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> BaseClient:
        key, secret, token = access_key_id, secret_access_key, None
        role_arn = getattr(state_credentials, "role_arn", None)
        if roles is not None and role_arn:
            creds = roles.credentials(str(role_arn))
            key, secret, token = creds.access_key_id, creds.secret_access_key, creds.session_token
        with session_lock:
            return session.client(
                service,
                region_name=region,
                endpoint_url=endpoint_url,
                aws_access_key_id=key,
                aws_secret_access_key=secret,
                aws_session_token=token,
                config=config,
            )

    for name in _CLIENT_MODULES:
        module = importlib.import_module(name)
        if hasattr(module, "boto_client_for"):
            module.boto_client_for = boto_client_for  # type: ignore[attr-defined]
    return boto_client_for


def is_applied() -> bool:
    """True when every fix is in place."""
    overrides = state_task_service.StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES
    error_names = state_task_service_aws_sdk._SERVICE_ERROR_NAMES
    task = state_task_service_aws_sdk.StateTaskServiceAwsSdk._eval_service_task
    timestamps = getattr(task, "_dogbreed_patched", False) and getattr(task, "_dogbreed_cased", False)
    return (
        all(overrides.get(k) == v for k, v in BOTO_SERVICE_NAMES.items())
        and all(error_names.get(k) == v for k, v in ERROR_PREFIXES.items())
        and timestamps
        and getattr(asl_parser.AmazonStateLanguageParser.parse, "_dogbreed_patched", False)
        and scaled_waits.is_applied()
    )
