"""The one AWS endpoint of the local runtime: authenticate every request, then hand it to the service it signed for.

Like LocalStack's gateway (house-style.md §10), one URL serves every service, so ``AWS_ENDPOINT_URL`` alone points
any SDK or the awscli at the local AWS. Every request must carry a valid SigV4 signature made with credentials the
runtime issued (``auth/``); anything else gets AWS's own auth error in the addressed service's protocol. A request
signed by a role session (Step Functions' or Lambda's temporary credentials) is then authorised against that role's
policies (``auth/authorize.py``) and refused with AWS's AccessDenied when they do not allow it. The signing
name of the credential scope picks the service: ``sagemaker`` (control plane and runtime), ``s3``, ``states``,
``logs`` and ``cloudformation`` are the local runtime's own apps; everything else (IAM, STS, CloudWatch, SNS,
Application Auto Scaling, ...) is moto's.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from typing import Any

from local_aws import injected_errors
from local_aws.auth.actions import operation_of
from local_aws.auth.authorize import authorize, render_access_denied
from local_aws.auth.credentials import CredentialStore
from local_aws.auth.errors import AuthError, render_auth_error
from local_aws.auth.services import FORM_GUESS_MAX_BYTES, FORM_TYPE, guess_service, protocol_for
from local_aws.auth.sigv4 import incoming_from_environ, verify
from local_aws.chaos import ChaosConfigError
from local_aws.constants import AWS_API_MAX_BODY_BYTES, REGION, S3_MAX_PUT_BYTES
from local_aws.http.server import json_error_renderer
from local_aws.query_protocol import query_error_body
from local_aws.s3.responses import s3_error_renderer

LOGGER = logging.getLogger("local_aws.edge")
WsgiApp = Callable[..., Iterable[bytes]]
CALLER_KEY = "local_aws.caller"  # the verified Caller, for services that answer per identity
# Signing names whose bodies are streamed to the service unread (the service checks the payload hash itself).
STREAMED = frozenset({"s3"})


class Edge:
    """WSGI app: SigV4 check, then dispatch by signing name.

    Args:
        credentials: who may call.
        services: signing name → app for the services the local runtime implements itself.
        fallback: moto's app, for every other signing name.
        errors: ``[[chaos.errors]]``, the injected API errors (``injected_errors.py``); default: the config of
            ``$LOCAL_RUNTIME_HOME``.
    """

    def __init__(
        self,
        credentials: CredentialStore,
        services: Mapping[str, WsgiApp],
        fallback: WsgiApp,
        errors: injected_errors.InjectedErrors | None = None,
    ) -> None:
        self.credentials = credentials
        self.services = dict(services)
        self.fallback = fallback
        self.errors = errors or injected_errors.InjectedErrors()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        if path.startswith("/moto-api"):
            # moto's admin API (reset, seed, config) would let any caller wipe or reshape the local AWS.
            return _reply(start_response, 403, {"__type": "AccessDeniedException", "message": "Access Denied"})
        service = guess_service(environ, _peek_form(environ))
        body: bytes | None
        if service in STREAMED:
            body = None
        else:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            if length > AWS_API_MAX_BODY_BYTES:
                # Only S3 takes bodies this large; anything else is refused before a byte is read or verified.
                headers, payload = json_error_renderer(413, "Request Entity Too Large", {})
                start_response("413 Request Entity Too Large", [*headers, ("Content-Length", str(len(payload)))])
                return [payload]
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
        try:
            caller = verify(incoming_from_environ(environ, body), self.credentials, region=REGION)
        except AuthError as exc:
            status, headers, payload = render_auth_error(exc, service)
            start_response(f"{status} {HTTPStatus(status).phrase}", [*headers, ("Content-Length", str(len(payload)))])
            return [payload] if environ.get("REQUEST_METHOD") != "HEAD" else [b""]
        denial = authorize(caller.identity.principal_arn, caller.service, environ, body)
        if denial is not None:
            LOGGER.info("AccessDenied: %s", denial.message)
            status, headers, payload = render_access_denied(denial)
            start_response(f"{status} {HTTPStatus(status).phrase}", [*headers, ("Content-Length", str(len(payload)))])
            return [payload] if environ.get("REQUEST_METHOD") != "HEAD" else [b""]
        injected = self._injected(caller.service, environ, body, caller.identity.principal_arn)
        if injected is not None:
            status, headers, payload = injected
            start_response(f"{status} {HTTPStatus(status).phrase}", [*headers, ("Content-Length", str(len(payload)))])
            return [payload] if environ.get("REQUEST_METHOD") != "HEAD" else [b""]
        environ[CALLER_KEY] = caller
        app = self.services.get(caller.service, self.fallback)
        return app(environ, start_response)

    def _injected(
        self, service: str, environ: dict[str, Any], body: bytes | None, principal_arn: str
    ) -> injected_errors.Rendered | None:
        """The ``[[chaos.errors]]`` answer for this call, if a rule fails it (a bad rule: a clear 400, never a 500)."""
        op = operation_of(service, environ, body)
        if op is None:
            return None
        try:
            error = self.errors.take(op, principal_arn)
        except ChaosConfigError as exc:  # the operator's own fault switch is wrong: say so in the service's shape
            error = injected_errors.InjectedError(
                "ValidationException", "ValidationException", 400, f"Local runtime chaos config: {exc}", False
            )
        if error is None:
            return None
        LOGGER.info("[chaos.errors] %s %s: %s", op.service, op.name, error.code)
        return injected_errors.render(error, op.service)


def _peek_form(environ: dict[str, Any]) -> bytes:
    """A small form-encoded body, read (and put back) so an unsigned query-protocol call (STS, IAM, SNS) is answered
    in its own protocol; without it the guess falls through to S3, whose bodies are never read ahead."""
    content_type = str(environ.get("CONTENT_TYPE", "")).split(";", 1)[0].strip().lower()
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if content_type != FORM_TYPE or not 0 < length <= FORM_GUESS_MAX_BYTES:
        return b""
    body: bytes = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def edge_body_limit(headers: dict[str, str]) -> int:
    """S3 takes bodies up to 5 GB (a single PUT); every other AWS API far less: refuse those at 16 MiB, unread."""
    environ = {f"HTTP_{key}": value for key, value in headers.items()}
    return S3_MAX_PUT_BYTES + 1 if guess_service(environ, b"") in STREAMED else AWS_API_MAX_BODY_BYTES + 1


def edge_error_renderer(status: int, reason: str, headers: dict[str, str]) -> tuple[list[tuple[str, str]], bytes]:
    """Transport errors on the shared port, in the shape of the service the request names (S3's XML or JSON)."""
    environ = {f"HTTP_{key}": value for key, value in headers.items()}
    service = guess_service(environ, b"")
    if service == "s3":
        return s3_error_renderer(status, reason, headers)
    if protocol_for(service).family == "query":
        return _query_error(status, reason)
    return json_error_renderer(status, reason, headers)


def _query_error(status: int, reason: str) -> tuple[list[tuple[str, str]], bytes]:
    """The query protocols' (IAM, STS, SNS, CloudFormation) error document, so botocore raises a ClientError."""
    code, kind = (
        ("InternalFailure", "Receiver") if status >= 500 and status != 501 else (reason.replace(" ", ""), "Sender")
    )
    return [("Content-Type", "text/xml")], query_error_body(code, reason, kind).encode()


def _reply(start_response: Any, status: int, doc: dict[str, Any]) -> list[bytes]:
    body = json.dumps(doc).encode()
    start_response(
        f"{status} {HTTPStatus(status).phrase}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]
