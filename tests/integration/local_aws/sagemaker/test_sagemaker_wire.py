"""The SageMaker JSON 1.1 wire protocol of the local AWS, with hand-made (but SigV4-signed) HTTP requests."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from sagemaker_helpers import ACCOUNT, REGION

from tests.integration.local_aws_fixtures import Aws


def post(local_aws: Aws, target: str, body: bytes, sign: bool = True) -> tuple[int, dict[str, Any]]:
    """POST ``body`` with ``X-Amz-Target: target`` to the edge, signed for service ``sagemaker`` unless told not."""
    headers = {"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"}
    request = AWSRequest(method="POST", url=local_aws.url + "/", data=body, headers=headers)
    if sign:
        creds = local_aws.runtime.credentials
        assert creds is not None
        SigV4Auth(Credentials(creds.access_key_id, creds.secret_access_key), "sagemaker", REGION).add_auth(request)
    prepared = request.prepare()
    http = urllib.request.Request(prepared.url, data=body, method="POST", headers=dict(prepared.headers.items()))
    try:
        with urllib.request.urlopen(http, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_unknown_operation_and_bad_json(local_aws: Aws) -> None:
    """Unknown operations, unparsable bodies and missing required members get the service's own error types."""
    assert post(local_aws, "SageMaker.NoSuchOp", b"{}") == (
        400,
        {"__type": "UnknownOperationException", "message": "Unknown operation NoSuchOp"},
    )
    status, doc = post(local_aws, "SageMaker.DescribeEndpoint", b"{not json")
    assert status == 400 and doc["__type"] == "SerializationException"
    status, doc = post(local_aws, "SageMaker.DescribeEndpoint", b"{}")
    assert status == 400 and doc["__type"] == "ValidationException" and "endpointName" in doc["message"]


def test_unsigned_request_never_reaches_sagemaker(local_aws: Aws) -> None:
    """Without a SigV4 signature the edge refuses the call before SageMaker sees it (no operation error)."""
    status, doc = post(local_aws, "SageMaker.NoSuchOp", b"{}", sign=False)
    assert status in (400, 403)
    assert "UnknownOperation" not in json.dumps(doc)


def test_list_tags_refuses_a_garbled_next_token_as_a_client_error(local_aws: Aws) -> None:
    """ListTags pages like the List* operations: a NextToken it never issued is a 400, not an internal failure."""
    model = {
        "ModelName": "wire-tags",
        "ExecutionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/wire",
        "PrimaryContainer": {"Image": "local"},
        "Tags": [{"Key": "k", "Value": "v"}],
    }
    status, created = post(local_aws, "SageMaker.CreateModel", json.dumps(model).encode())
    assert status == 200, created
    try:
        arn = json.dumps({"ResourceArn": created["ModelArn"]}).encode()
        assert post(local_aws, "SageMaker.ListTags", arn) == (200, {"Tags": [{"Key": "k", "Value": "v"}]})
        garbled = json.dumps({"ResourceArn": created["ModelArn"], "NextToken": "not-a-number"}).encode()
        assert post(local_aws, "SageMaker.ListTags", garbled) == (
            400,
            {"__type": "ValidationException", "message": "Invalid NextToken 'not-a-number'"},
        )
    finally:
        post(local_aws, "SageMaker.DeleteModel", b'{"ModelName": "wire-tags"}')
