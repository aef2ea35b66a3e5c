"""STS ``GetCallerIdentity`` answered for the caller the edge verified; every other STS action is moto's.

moto maps a key it did not issue to a placeholder user (``arn:aws:sts::123456789012:user/moto``); the local runtime
issued the key itself, so it answers with the key's real principal, as STS does for an IAM user
(GetCallerIdentity API reference: ``UserId`` is the user's unique id, ``Arn`` the user ARN).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from xml.sax.saxutils import escape

from local_aws.auth.sigv4 import Caller
from local_aws.edge import CALLER_KEY
from local_aws.query_protocol import form_fields

NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
WsgiApp = Callable[..., Iterable[bytes]]


class StsApi:
    """WSGI app for service ``sts``."""

    def __init__(self, moto_app: WsgiApp) -> None:
        self.moto_app = moto_app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        fields = form_fields(environ)
        caller: Caller | None = environ.get(CALLER_KEY)
        if fields.get("Action") != "GetCallerIdentity" or caller is None or caller.identity.session_token:
            return self.moto_app(environ, start_response)
        identity = caller.identity
        # An IAM user's unique id: "AIDA" + 17 characters; stable per principal.
        user_id = "AIDA" + hashlib.sha256(identity.principal_arn.encode()).hexdigest()[:17].upper()
        body = (
            f'<GetCallerIdentityResponse xmlns="{NAMESPACE}"><GetCallerIdentityResult>'
            f"<Arn>{escape(identity.principal_arn)}</Arn><UserId>{user_id}</UserId>"
            f"<Account>{identity.account_id}</Account></GetCallerIdentityResult>"
            f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
        ).encode()
        start_response("200 OK", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
        return [body]
