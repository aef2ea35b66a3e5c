"""local_aws.sagemaker.validate: requests checked against botocore's SageMaker model, in the service's words."""

from __future__ import annotations

import pytest

from local_aws.sagemaker.errors import SageMakerError
from local_aws.sagemaker.validate import validate_input


def test_validation_names_the_missing_member() -> None:
    """A missing required member is ``Value null at '<camelName>'`` as SageMaker says it."""
    with pytest.raises(SageMakerError) as exc:
        validate_input("CreateEndpoint", {"EndpointName": "e"})
    assert (exc.value.code, exc.value.status) == ("ValidationException", 400)
    assert exc.value.message == (
        "1 validation error detected: Value null at 'endpointConfigName' failed to satisfy constraint: "
        "Member must not be null"
    )


def test_enum_pattern_length_and_range_violations_are_all_reported() -> None:
    """Every bad member is listed, with the count, in one ValidationException."""
    with pytest.raises(SageMakerError, match="Member must satisfy enum value set"):
        validate_input("ListEndpoints", {"SortBy": "Size"})
    with pytest.raises(SageMakerError) as many:
        validate_input("ListEndpoints", {"SortBy": "Size", "MaxResults": 0, "NameContains": "bad name!"})
    message = many.value.message
    assert message.startswith("3 validation errors detected: ")
    assert "at 'maxResults' failed to satisfy constraint: Member must have value >= 1" in message
    assert "Value 'bad name!' at 'nameContains' failed to satisfy constraint: Member must satisfy regular" in message


def test_nested_members_are_named_by_their_path() -> None:
    """A bad value inside a structure is named by its dotted camelCase path."""
    params = {
        "EndpointConfigName": "c",
        "ProductionVariants": [{"VariantName": "v", "ModelName": "m", "InitialInstanceCount": 0}],
    }
    with pytest.raises(SageMakerError, match=r"'productionVariants\.1\.member\.initialInstanceCount'"):
        validate_input("CreateEndpointConfig", params)


def test_wrong_types_are_refused() -> None:
    """A string where a number belongs, or a non-object body, is refused before anything runs."""
    with pytest.raises(SageMakerError, match="Member must be a number"):
        validate_input("ListEndpoints", {"MaxResults": "10"})
    with pytest.raises(SageMakerError) as body:
        validate_input("ListEndpoints", [1])
    assert body.value.code == "SerializationException"


def test_unknown_operation() -> None:
    """An operation botocore's model does not have is UnknownOperationException."""
    with pytest.raises(SageMakerError) as unknown:
        validate_input("DoMagic", {})
    assert unknown.value.code == "UnknownOperationException"


def test_a_valid_request_returns_its_operation_model() -> None:
    """A valid request passes and yields botocore's operation model."""
    assert validate_input("DescribeEndpoint", {"EndpointName": "dogbreed-dev"}).name == "DescribeEndpoint"
