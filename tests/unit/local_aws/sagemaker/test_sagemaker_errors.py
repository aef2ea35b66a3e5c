"""local_aws.sagemaker.errors: the S3 URI check shared by CreateTrainingJob and CreateModel."""

from __future__ import annotations

import pytest

from local_aws.sagemaker.errors import SageMakerError, check_s3_uri


def test_check_s3_uri_accepts_a_parsable_uri() -> None:
    check_s3_uri("s3://bucket/some/key", "ModelDataUrl")  # no error


def test_check_s3_uri_names_the_member_and_the_reason() -> None:
    """A bad URI is a 400 ValidationException ``<what>: <S3's reason>``."""
    with pytest.raises(SageMakerError) as caught:
        check_s3_uri("s3://b/key", "OutputDataConfig.S3OutputPath")
    assert (caught.value.code, caught.value.status) == ("ValidationException", 400)
    assert caught.value.message.startswith("OutputDataConfig.S3OutputPath: The specified bucket is not valid (")
