"""Step Functions over HTTP: moto's service and interpreter, with what moto lacks added in front of it.

moto's server mode speaks the Step Functions JSON 1.0 protocol and really executes the ASL. In front of it this app:

- gives a StartExecution without ``name`` a UUID name, as Step Functions does ("If you don't provide a name for the
  execution, Step Functions automatically generates a UUID", StartExecution API reference); moto would build an ARN
  ending in ``:None`` and refuse the second one (local-aws-building-blocks.md §2.3);
- refuses a name already used by a recorded execution of the same machine (``ExecutionAlreadyExists``), since the
  records outlive moto's memory;
- pages GetExecutionHistory (``maxResults`` 1..1000, default 100, ``nextToken``, ``reverseOrder``,
  ``includeExecutionData``) and ListExecutions, which moto answers whole;
- answers DescribeExecution, GetExecutionHistory and ListExecutions for executions that only the records still know
  (finished before a restart, or ABORTED by it).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from local_aws.moto_services import MotoError
from local_aws.stepfunctions.executions import ExecutionStore

LOGGER = logging.getLogger("local_aws.stepfunctions")
TARGET_PREFIX = "AWSStepFunctions."
JSON_10 = "application/x-amz-json-1.0"
WsgiApp = Callable[..., Iterable[bytes]]
# GetExecutionHistory: maxResults 0..1000, "The default is 100" (GetExecutionHistory API reference).
DEFAULT_PAGE = 100
MAX_PAGE = 1000


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        value = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
        if isinstance(value, int) and value >= 0:
            return value
    except (ValueError, KeyError, TypeError):
        pass
    raise _Reply.error("InvalidToken", f"Invalid Token: '{token}'")


class _Reply(Exception):
    """A finished answer (status, JSON document), raised from deep inside a handler."""

    def __init__(self, status: int, doc: dict[str, Any]) -> None:
        super().__init__(doc.get("message", ""))
        self.status = status
        self.doc = doc

    @classmethod
    def error(cls, code: str, message: str, status: int = 400) -> _Reply:
        return cls(status, {"__type": f"com.amazonaws.swf.service.v2.model#{code}", "message": message})


class StepFunctionsApi:
    """WSGI app for service ``states``: the overlay above, then moto's own app.

    Args:
        moto_app: moto's dispatcher WSGI app.
        call_moto: a direct in-process call of moto's Step Functions backend (target, body) -> JSON answer.
        store: the execution records.
    """

    def __init__(
        self, moto_app: WsgiApp, call_moto: Callable[[str, dict[str, Any]], dict[str, Any]], store: ExecutionStore
    ) -> None:
        self.moto_app = moto_app
        self.call_moto = call_moto
        self.store = store
        self._handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any] | None]] = {
            "StartExecution": self._start_execution,
            "DescribeExecution": self._describe_execution,
            "GetExecutionHistory": self._get_execution_history,
            "ListExecutions": self._list_executions,
        }

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        operation = target[len(TARGET_PREFIX) :] if target.startswith(TARGET_PREFIX) else ""
        handler = self._handlers.get(operation)
        if handler is None:
            return self.moto_app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            params = json.loads(raw or b"{}")
            if not isinstance(params, dict):
                raise ValueError("not an object")
        except ValueError:
            return self._send(start_response, 400, {"__type": "SerializationException", "message": "Invalid JSON"})
        try:
            answer = handler(params)
        except _Reply as reply:
            return self._send(start_response, reply.status, reply.doc)
        if answer is None:  # pass the (possibly rewritten) request on to moto
            body = json.dumps(params).encode()
            environ["CONTENT_LENGTH"] = str(len(body))
            environ["wsgi.input"] = io.BytesIO(body)
            return self.moto_app(environ, start_response)
        return self._send(start_response, 200, answer)

    @staticmethod
    def _send(start_response: Any, status: int, doc: dict[str, Any]) -> list[bytes]:
        body = json.dumps(doc, default=str).encode()
        reason = "OK" if status == 200 else "Bad Request"
        headers = [
            ("Content-Type", JSON_10),
            ("Content-Length", str(len(body))),
            ("x-amzn-RequestId", str(uuid.uuid4())),
        ]
        if status != 200:
            headers.append(("x-amzn-ErrorType", str(doc.get("__type", "")).rsplit("#", 1)[-1]))
        start_response(f"{status} {reason}", headers)
        return [body]

    # ----------------------------------------------------------------------------------------------- moto access
    def _moto(self, operation: str, params: dict[str, Any]) -> dict[str, Any] | None:
        """moto's answer, or None when moto does not know the execution (only the records may).

        Raises:
            _Reply: moto refused the request (e.g. InvalidArn); its own code and message go back to the caller.
        """
        try:
            return self.call_moto(operation, params)
        except LookupError:
            return None
        except MotoError as exc:
            raise _Reply.error(exc.code, exc.message, exc.status if 400 <= exc.status < 500 else 400) from exc

    # ----------------------------------------------------------------------------------------------- handlers
    def _start_execution(self, params: dict[str, Any]) -> None:
        if not params.get("name"):
            params["name"] = str(uuid.uuid4())
        machine = str(params.get("stateMachineArn", ""))
        arn = machine.replace(":stateMachine:", ":execution:", 1) + f":{params['name']}"
        known = self.store.get(arn)
        if known is not None and self._moto("DescribeExecution", {"executionArn": arn}) is None:
            raise _Reply.error("ExecutionAlreadyExists", f"Execution Already Exists: '{arn}'")
        return None

    def _describe_execution(self, params: dict[str, Any]) -> dict[str, Any] | None:
        arn = str(params.get("executionArn", ""))
        # NOTE: moto's in-process answer is the one its app would send (same document, byte for byte), so a live
        # execution is answered from it instead of being asked for twice.
        live = self._moto("DescribeExecution", {"executionArn": arn})
        if live is not None:
            return live
        record = self.store.get(arn)
        if record is None:
            return None  # moto answers ExecutionDoesNotExist in its own words
        return dict(record["describe"])

    def _history(self, arn: str) -> list[dict[str, Any]] | None:
        live = self._moto("GetExecutionHistory", {"executionArn": arn})
        if live is not None:
            return list(live.get("events", []))
        record = self.store.get(arn)
        return list(record["events"]) if record is not None else None

    def _get_execution_history(self, params: dict[str, Any]) -> dict[str, Any] | None:
        arn = str(params.get("executionArn", ""))
        events = self._history(arn)
        if events is None:
            return None
        size = int(params.get("maxResults") or DEFAULT_PAGE)
        if not 0 <= size <= MAX_PAGE:
            raise _Reply.error(
                "ValidationException",
                f"1 validation error detected: Value '{size}' at 'maxResults' failed to satisfy constraint: "
                f"Member must have value less than or equal to {MAX_PAGE}",
            )
        size = size or DEFAULT_PAGE
        if params.get("reverseOrder"):
            events.reverse()
        if params.get("includeExecutionData") is False:
            events = [_without_data(e) for e in events]
        return _page("events", events, size, params.get("nextToken"))

    def _list_executions(self, params: dict[str, Any]) -> dict[str, Any] | None:
        machine = params.get("stateMachineArn")
        if not machine:
            return None  # moto's own validation of the request
        listed: dict[str, dict[str, Any]] = {}
        for doc in self.store.all():
            describe = doc["describe"]
            if describe.get("stateMachineArn") == machine:
                listed[describe["executionArn"]] = _summary(describe)
        live = self._moto("ListExecutions", {"stateMachineArn": machine, "maxResults": 1000})
        if live is None:
            return None
        for item in live.get("executions", []):
            listed[item["executionArn"]] = item
        items = sorted(listed.values(), key=lambda e: float(e.get("startDate") or 0), reverse=True)
        if params.get("statusFilter"):
            items = [e for e in items if e.get("status") == params["statusFilter"]]
        size = int(params.get("maxResults") or DEFAULT_PAGE) or DEFAULT_PAGE
        return _page("executions", items, size, params.get("nextToken"))


def _page(key: str, items: list[dict[str, Any]], size: int, token: str | None) -> dict[str, Any]:
    """``size`` items from where ``token`` left off, under ``key``, with a ``nextToken`` when more are left."""
    start = _offset(token)
    answer: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        answer["nextToken"] = _token(start + size)
    return answer


def _summary(describe: dict[str, Any]) -> dict[str, Any]:
    keys = ("executionArn", "stateMachineArn", "name", "status", "startDate", "stopDate")
    return {k: describe[k] for k in keys if describe.get(k) is not None}


def _without_data(event: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in ("input", "output", "inputDetails", "outputDetails")}
        out[key] = value
    return out
