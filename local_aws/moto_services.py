"""moto's server mode, hosted in-process: IAM, STS, Step Functions (with real ASL execution), CloudWatch, SNS and
Application Auto Scaling, behind the edge.

moto's ``DomainDispatcherApplication`` is a plain WSGI app that routes by the SigV4 credential scope's service
(local-aws-building-blocks.md §1.2); here it is one app among the edge's, served by the same HTTP layer as every
other local service rather than by werkzeug's dev server. ``call_json`` calls it in-process for the overlays that
need moto's own answers (no HTTP, no signing: moto checks no signatures unless its IAM auth is switched on).
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterable
from typing import Any

from moto.core.config import default_user_config
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from local_aws import application_autoscaling
from local_aws.constants import ACCOUNT_ID, REGION
from local_aws.query_protocol import query_error_body

LOGGER = logging.getLogger("local_aws.moto")
NOT_FOUND_CODES = frozenset(
    {"ExecutionDoesNotExist", "StateMachineDoesNotExist", "ResourceNotFoundException", "NoSuchEntity"}
)


def _call_app(app: Any, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """Run a WSGI app to completion: (status line, headers, body)."""
    captured: dict[str, Any] = {"status": "500 Internal Server Error", "headers": []}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured["status"], captured["headers"] = status, headers
        return lambda data: None

    chunks = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return str(captured["status"]), list(captured["headers"]), body


def _client_error(environ: dict[str, Any], start_response: Any, status: int, message: str) -> list[bytes]:
    """A 4xx in the addressed service's protocol: JSON ``{"__type", "message"}`` or query XML ``ErrorResponse``."""
    json_protocol = bool(environ.get("HTTP_X_AMZ_TARGET")) or "json" in str(environ.get("CONTENT_TYPE", ""))
    reason = "Not Found" if status == 404 else "Bad Request"
    if json_protocol:
        code = "UnknownOperationException" if status == 404 else "SerializationException"
        body = json.dumps({"__type": code, "message": message}).encode()
        # Every AWS answer carries a request id; moto's interpreter reads ResponseMetadata.RequestId of task errors.
        headers = [
            ("Content-Type", "application/x-amz-json-1.1"),
            ("x-amzn-ErrorType", code),
            ("x-amzn-RequestId", str(uuid.uuid4())),
        ]
    else:
        code = "InvalidAction" if status == 404 else "MalformedQueryString"
        body = query_error_body(code, message).encode()
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", str(uuid.uuid4()))]
    start_response(f"{status} {reason}", [*headers, ("Content-Length", str(len(body)))])
    return [body]


class MotoError(Exception):
    """moto answered an error; ``code`` is the error code without the shape namespace."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class MotoNotFound(MotoError, LookupError):
    """moto does not know the resource."""


class MotoServices:
    """The moto services of one local runtime (one process: moto's backends are process-global)."""

    def __init__(self) -> None:
        # NOTE: the flag must be set before any state machine is created: moto keeps executing and non-executing
        # Step Functions in separate backends, chosen per request (local-aws-building-blocks.md §2.1).
        default_user_config["stepfunctions"] = {"execute_state_machine": True}
        application_autoscaling.apply()  # AWS's ObjectNotFoundException where moto says ValidationException
        self.app = DomainDispatcherApplication(create_backend_app)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        """moto's answer, except that a crash or an HTML page becomes the protocol's own client error.

        NOTE: moto raises on input it cannot parse (``MaxItems=abc``, a non-UTF-8 body, a missing required member)
        and answers unknown routes with Flask's HTML pages; AWS answers such requests with a 4xx in the service's
        wire shape and never with HTML. moto's own error answers pass through unchanged.
        """
        try:
            status_line, headers, body = _call_app(self.app, environ)
        except Exception:  # moto crashed on the request: a client fault as far as the caller can tell
            LOGGER.info(
                "moto could not handle %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"), exc_info=True
            )
            return _client_error(environ, start_response, 400, "the request could not be processed")
        status = int(status_line.split(" ", 1)[0])
        content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
        # NOTE: moto answers some successful calls with Flask's default text/html content type; only an error page
        # is replaced.
        if status >= 500 or (status >= 400 and "html" in content_type):
            code = 404 if status == 404 else 400
            return _client_error(
                environ,
                start_response,
                code,
                "the request names an operation or resource the local AWS does not serve"
                if code == 404
                else "the request could not be processed",
            )
        start_response(status_line, headers)
        return [body]

    def call_json(self, signing_name: str, target: str, params: dict[str, Any], version: str = "1.0") -> dict[str, Any]:
        """One JSON-protocol call straight into moto's app (e.g. ``("states", "AWSStepFunctions.ListExecutions")``).

        Raises:
            MotoNotFound: the resource does not exist.
            MotoError: any other error answer.
        """
        body = json.dumps(params).encode()
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/",
            "QUERY_STRING": "",
            "SERVER_NAME": "localhost",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": io.StringIO(),
            "wsgi.version": (1, 0),
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "CONTENT_TYPE": f"application/x-amz-json-{version}",
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_HOST": "localhost",
            "HTTP_X_AMZ_TARGET": target,
            # moto routes on the credential scope; it does not verify the (absent) signature.
            "HTTP_AUTHORIZATION": (
                f"AWS4-HMAC-SHA256 Credential=LOCALINPROCESS/20200101/{REGION}/{signing_name}/aws4_request, "
                "SignedHeaders=host, Signature=0"
            ),
            "HTTP_X_MOTO_ACCOUNT_ID": ACCOUNT_ID,
        }
        status_line, _, raw = _call_app(self.app, environ)
        status = int(status_line.split(" ", 1)[0])
        doc: dict[str, Any] = json.loads(raw) if raw.strip() else {}
        if status >= 400:
            code = str(doc.get("__type", "UnknownError")).rsplit("#", 1)[-1]
            message = str(doc.get("message") or doc.get("Message") or "")
            if code in NOT_FOUND_CODES:
                raise MotoNotFound(status, code, message)
            raise MotoError(status, code, message)
        return doc
