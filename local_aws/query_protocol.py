"""The AWS query protocol (IAM, STS, SNS, CloudFormation): a request's form fields, and the error document.

Shared by the edge (transport errors), moto's host (moto's crashes) and the overlays that answer query actions
themselves (STS, CloudFormation), so every ``<ErrorResponse>`` the local AWS sends has one shape.
"""

from __future__ import annotations

import io
import uuid
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape


def form_fields(environ: dict[str, Any]) -> dict[str, str]:
    """The fields of the form body and the query string (the query string's win), ``wsgi.input`` left re-readable.

    The body is read whole (the edge has already bounded it) and put back as a fresh stream, so the request can still
    be handed on to moto unchanged.
    """
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(raw)
    return dict(parse_qsl(raw.decode("utf-8", "replace"))) | dict(parse_qsl(environ.get("QUERY_STRING", "")))


def query_error_body(code: str, message: str, type: str = "Sender") -> str:
    """The query protocols' ``<ErrorResponse>``, which botocore's query parser turns into a ClientError.

    Args:
        code: The error code (``ValidationError``, ``InvalidAction``, ...).
        message: The message; XML-escaped here.
        type: ``Sender`` (the client's fault) or ``Receiver`` (the service's).
    """
    return (
        f"<ErrorResponse><Error><Type>{type}</Type><Code>{code}</Code><Message>{escape(message)}</Message></Error>"
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    )
