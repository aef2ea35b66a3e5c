"""local_aws.stepfunctions.interpreter: moto's ASL interpreter keeps AWS's names, and its SDK calls reach the edge."""

from __future__ import annotations

import importlib
import importlib.util
import io
import pkgutil
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import boto3
import moto.stepfunctions.parser as sfn_parser
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import ClientError
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import StateTaskService
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
    StateTaskServiceAwsSdk,
)
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser, ASLParserException

from local_aws.stepfunctions import interpreter


class _Raw(io.BytesIO):
    """The urllib3-like raw body botocore's AWSResponse reads."""

    def stream(self, amt: int = 65536, decode_content: bool = False) -> Iterator[bytes]:
        while chunk := self.read(amt):
            yield chunk


PASS_MACHINE = '{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}'


def _error_name(service: str, exc: Exception) -> str:
    prefix = StateTaskServiceAwsSdk._normalise_service_error_name(service)
    return StateTaskServiceAwsSdk._normalise_exception_name(prefix, exc)


def test_apply_is_idempotent_and_complete() -> None:
    """apply() twice leaves every fix in place once (the patched methods are not wrapped twice)."""
    interpreter.apply()
    patched = StateTaskServiceAwsSdk._eval_service_task
    interpreter.apply()
    assert StateTaskServiceAwsSdk._eval_service_task is patched
    assert interpreter.is_applied()


def test_error_names_follow_aws() -> None:
    """Unmodeled errors are ``SageMaker.SageMakerException``; modeled ones keep AWS's exception name."""
    interpreter.apply()
    unmodeled = ClientError(
        {"Error": {"Code": "ValidationException", "Message": "Could not find endpoint"}}, "DescribeEndpoint"
    )
    assert _error_name("sagemaker", unmodeled) == "SageMaker.SageMakerException"

    class ResourceNotFound(ClientError):  # botocore names modeled errors after their shape
        pass

    modeled = ResourceNotFound(
        {"Error": {"Code": "ResourceNotFound", "Message": "x"}}, "DescribeHyperParameterTuningJob"
    )
    assert _error_name("sagemaker", modeled) == "SageMaker.ResourceNotFoundException"

    class ObjectNotFoundException(ClientError):
        pass

    aas = ObjectNotFoundException({"Error": {"Code": "ObjectNotFoundException", "Message": "x"}}, "DeleteScalingPolicy")
    assert _error_name("applicationautoscaling", aas) == "ApplicationAutoScaling.ObjectNotFoundException"


def test_application_autoscaling_maps_to_the_boto3_client_name() -> None:
    """The ASL's ``applicationautoscaling`` is boto3's ``application-autoscaling``."""
    interpreter.apply()
    assert StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES["applicationautoscaling"] == "application-autoscaling"


def test_the_asl_uses_only_service_names_the_fixes_cover(repo_root: Path) -> None:
    """Every aws-sdk service in the state machine has an AWS error prefix and a boto3 client name after apply()."""
    interpreter.apply()
    services = set(
        re.findall(
            r"arn:aws:states:::aws-sdk:([a-z0-9]+):",
            (repo_root / "statemachine" / "train_and_deploy.asl.json").read_text(),
        )
    )
    assert services, "the ASL has aws-sdk tasks"
    boto3_services = set(boto3.session.Session().get_available_services())
    for service in services:
        assert StateTaskServiceAwsSdk._normalise_service_error_name(service)[0].isupper(), service
        assert StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES.get(service, service) in boto3_services, service


def test_sdk_timestamps_become_json() -> None:
    """datetime/date values (CreationTime, FinalMetricDataList[].Timestamp) become ISO-8601 strings, at any depth."""
    stamp = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    data = {
        "CreationTime": stamp,
        "FinalMetricDataList": [{"MetricName": "test:top1", "Value": 0.9, "Timestamp": stamp}],
        "Day": date(2024, 5, 1),
        "Count": 3,
    }
    assert interpreter._jsonable(data) == {
        "CreationTime": "2024-05-01T12:00:00+00:00",
        "FinalMetricDataList": [{"MetricName": "test:top1", "Value": 0.9, "Timestamp": "2024-05-01T12:00:00+00:00"}],
        "Day": "2024-05-01",
        "Count": 3,
    }


def test_parse_cache_reuses_the_tree_but_builds_fresh_components() -> None:
    """The same definition text is parsed once; each parse still returns a new program (no shared state)."""
    interpreter.apply()
    first_program, first_tree = AmazonStateLanguageParser.parse(PASS_MACHINE)
    second_program, second_tree = AmazonStateLanguageParser.parse(PASS_MACHINE)
    assert first_tree is second_tree
    assert first_program is not second_program


def test_parse_errors_are_still_reported() -> None:
    """A definition with a syntax error raises moto's parser exception instead of being cached."""
    interpreter.apply()
    with pytest.raises(ASLParserException):
        AmazonStateLanguageParser.parse('{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": tru}}}')


def _modules_binding_boto_client_for() -> set[str]:
    """Every module of moto's interpreter whose source imports ``boto_client_for`` by name."""
    found = set()
    for info in pkgutil.walk_packages(sfn_parser.__path__, sfn_parser.__name__ + "."):
        spec = importlib.util.find_spec(info.name)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            continue
        source = Path(spec.origin).read_text(encoding="utf-8")
        if re.search(r"^from \S+ import .*\bboto_client_for\b", source, re.MULTILINE):
            found.add(info.name)
    return found


def test_every_module_that_binds_boto_client_for_is_listed() -> None:
    """No moto module that imported ``boto_client_for`` by name escapes the patch (a moto upgrade would show here)."""
    binding = _modules_binding_boto_client_for()
    assert "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk" in binding
    assert binding <= set(interpreter._CLIENT_MODULES), sorted(binding - set(interpreter._CLIENT_MODULES))


def test_route_sdk_calls_patches_every_listed_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """After route_sdk_calls, each listed module's boto_client_for is the factory; it signs for the edge."""
    modules = [importlib.import_module(name) for name in interpreter._CLIENT_MODULES]
    for module in modules:  # monkeypatch restores moto's own factory after the test
        if hasattr(module, "boto_client_for"):
            monkeypatch.setattr(module, "boto_client_for", module.boto_client_for)
    factory = interpreter.route_sdk_calls("http://127.0.0.1:4566", "AKIAIOSFODNN7EXAMPLE", "secret/key+")
    patched = [m for m in modules if hasattr(m, "boto_client_for")]
    assert len(patched) == len(modules), "every listed module binds boto_client_for"
    assert all(m.boto_client_for is factory for m in patched)

    client = factory("us-east-1", "sagemaker", {"RoleArn": "arn:aws:iam::123456789012:role/ignored"})
    assert client.meta.endpoint_url == "http://127.0.0.1:4566"
    assert client.meta.region_name == "us-east-1"
    credentials = client._request_signer._credentials
    assert (credentials.access_key, credentials.secret_key) == ("AKIAIOSFODNN7EXAMPLE", "secret/key+")
    assert client.meta.config.retries["total_max_attempts"] == 1  # the ASL's Retry decides, not botocore
    # No client-side validation (moto's own setting): a value botocore would refuse is sent as it is.
    sent: list[bytes] = []

    def capture(request: AWSPreparedRequest, **_: object) -> AWSResponse:
        sent.append(request.body if isinstance(request.body, bytes) else str(request.body).encode())
        return AWSResponse(request.url, 200, {}, _Raw(b"{}"))

    client.meta.events.register("before-send", capture)
    client.describe_endpoint(EndpointName=5)
    assert sent == [b'{"EndpointName": 5}']
