"""Two fixes to moto's Step Functions interpreter so the ASL keeps AWS's real names.

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

A fourth patch is for speed only: moto parses the definition with a pure-Python ANTLR parser on create and again on
every execution (seconds for this 2,600-line file). The syntax tree is cached per definition text; the evaluation
components are still built fresh from it for each execution, so no state is shared between executions.

Last, moto's interpreter logs at ERROR every path that an IsPresent probe or a Catch handles (normal evaluation,
not a failure), which would bury real output; its parser logger is set to CRITICAL. Real failures still surface as
the execution's error and cause.

All are patched here instead of bending the ASL away from what runs on AWS. ``apply()`` is idempotent.
"""

from __future__ import annotations

import logging
import threading
from datetime import date, datetime
from typing import Any

from antlr4 import CommonTokenStream, InputStream
from moto.stepfunctions.parser.asl.antlr.runtime.ASLLexer import ASLLexer
from moto.stepfunctions.parser.asl.antlr.runtime.ASLParser import ASLParser
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service,
    state_task_service_aws_sdk,
)
from moto.stepfunctions.parser.asl.parse import asl_parser
from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

# ASL service name (lower case, as in the Resource ARN) -> boto3 client name.
BOTO_SERVICE_NAMES: dict[str, str] = {"applicationautoscaling": "application-autoscaling"}

# ASL service name -> the PascalCase prefix Step Functions puts in front of error names.
ERROR_PREFIXES: dict[str, str] = {"sagemaker": "SageMaker", "applicationautoscaling": "ApplicationAutoScaling"}


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
    _patch_parse_cache()
    logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)


def is_applied() -> bool:
    """True when both fixes are in place."""
    overrides = state_task_service.StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES
    error_names = state_task_service_aws_sdk._SERVICE_ERROR_NAMES
    timestamps = getattr(
        state_task_service_aws_sdk.StateTaskServiceAwsSdk._eval_service_task, "_dogbreed_patched", False
    )
    return (
        all(overrides.get(k) == v for k, v in BOTO_SERVICE_NAMES.items())
        and all(error_names.get(k) == v for k, v in ERROR_PREFIXES.items())
        and timestamps
        and getattr(asl_parser.AmazonStateLanguageParser.parse, "_dogbreed_patched", False)
    )
