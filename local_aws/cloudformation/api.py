"""CloudFormation's DescribeStacks for the locally deployed stack, so operator tools find its outputs as on AWS.

The ``ops`` CLI (and any user script) reads ``StateMachineArn``, ``ApiUrl``, bucket names, ... from
``cloudformation:DescribeStacks``; answering it from the resolved template makes those tools target-agnostic. The
only rewrite is the API's address: an ``https://<id>.execute-api.<region>.amazonaws.com/<stage>`` value becomes
the local API's URL, whose routes are served without the stage prefix (as ``sam local start-api`` serves them).
Other CloudFormation operations, and other stack names, go to moto.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from local_aws.cloudformation.resolver import stack_id
from local_aws.query_protocol import form_fields, query_error_body

NAMESPACE = "http://cloudformation.amazonaws.com/doc/2010-05-15/"
_EXECUTE_API = re.compile(r"https://[a-z0-9]+\.execute-api\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[^/]+")
WsgiApp = Callable[..., Iterable[bytes]]


def localize_outputs(outputs: dict[str, str], api_url: str) -> dict[str, str]:
    """The outputs with the REST API's AWS address replaced by the local API's."""
    return {key: _EXECUTE_API.sub(api_url.rstrip("/"), value) for key, value in outputs.items()}


class StackApi:
    """WSGI app for service ``cloudformation``: DescribeStacks of the local stack, the rest to moto."""

    def __init__(self, moto_app: WsgiApp) -> None:
        self.moto_app = moto_app
        self.stacks: dict[str, dict[str, Any]] = {}

    def publish(self, stack_name: str, outputs: dict[str, str], parameters: dict[str, str]) -> str:
        """Record (or replace) a deployed stack; returns its StackId."""
        # NOTE: on AWS, DescribeStacks' StackId is the value the template's AWS::StackId resolves to: one function.
        arn = stack_id(stack_name)
        previous = self.stacks.get(stack_name)
        self.stacks[stack_name] = {
            "StackId": arn,
            "CreationTime": previous["CreationTime"] if previous else time.time(),
            "LastUpdatedTime": time.time() if previous else None,
            "StackStatus": "UPDATE_COMPLETE" if previous else "CREATE_COMPLETE",
            "Outputs": outputs,
            "Parameters": parameters,
        }
        return arn

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        fields = form_fields(environ)
        if fields.get("Action") != "DescribeStacks":
            return self.moto_app(environ, start_response)
        # StackName takes a name or a StackId; without it every stack is described.
        name = fields.get("StackName", "")
        names = [n for n, stack in sorted(self.stacks.items()) if not name or name in (n, stack["StackId"])]
        if name and not names:
            return _send(start_response, 400, _error(f"Stack with id {name} does not exist"))
        members = "".join(self._member(n) for n in names)
        body = (
            f'<DescribeStacksResponse xmlns="{NAMESPACE}"><DescribeStacksResult><Stacks>{members}</Stacks>'
            f"</DescribeStacksResult><ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
            "</DescribeStacksResponse>"
        )
        return _send(start_response, 200, body)

    def _member(self, name: str) -> str:
        stack = self.stacks[name]
        outputs = "".join(
            f"<member><OutputKey>{escape(k)}</OutputKey><OutputValue>{escape(v)}</OutputValue></member>"
            for k, v in stack["Outputs"].items()
        )
        parameters = "".join(
            f"<member><ParameterKey>{escape(k)}</ParameterKey><ParameterValue>{escape(v)}</ParameterValue></member>"
            for k, v in stack["Parameters"].items()
        )
        updated = (
            f"<LastUpdatedTime>{_iso(stack['LastUpdatedTime'])}</LastUpdatedTime>" if stack["LastUpdatedTime"] else ""
        )
        return (
            f"<member><StackName>{escape(name)}</StackName><StackId>{escape(stack['StackId'])}</StackId>"
            f"<CreationTime>{_iso(stack['CreationTime'])}</CreationTime>{updated}"
            f"<StackStatus>{stack['StackStatus']}</StackStatus><Parameters>{parameters}</Parameters>"
            f"<Outputs>{outputs}</Outputs></member>"
        )


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _error(message: str) -> str:
    return query_error_body("ValidationError", message)


def _send(start_response: Any, status: int, body: str) -> list[bytes]:
    data = body.encode()
    start_response(
        "200 OK" if status == 200 else "400 Bad Request",
        [("Content-Type", "text/xml"), ("Content-Length", str(len(data))), ("x-amzn-RequestId", str(uuid.uuid4()))],
    )
    return [data]
