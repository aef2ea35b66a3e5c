"""Runtime settings for the inference function, read once per cold start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from errors import ConfigurationError

# NOTE: 6,291,456 bytes is Lambda's synchronous invocation payload limit (Lambda quotas; Invoke answers
# RequestEntityTooLargeException) and also the InvokeEndpoint Body cap (botocore sagemaker-runtime BodyBlob max).
LAMBDA_EVENT_LIMIT_BYTES = 6_291_456
# Everything in the API Gateway proxy event besides the body: API Gateway REST accepts 10,240 bytes of request line
# and header values (API Gateway quotas), which the event carries twice (headers, multiValueHeaders), plus the
# requestContext skeleton (about 1.5 KB; tests/unit/functions/test_inference_limits.py measures the real event).
EVENT_OVERHEAD_BYTES = 24 * 1024


def largest_image_for_event(event_limit: int = LAMBDA_EVENT_LIMIT_BYTES, overhead: int = EVENT_OVERHEAD_BYTES) -> int:
    """The largest image whose API Gateway event fits Lambda's payload limit.

    API Gateway base64-encodes a binary body into the event (4 characters per 3 bytes), and a JSON body carries the
    image base64-encoded too; so of the 6,291,456-byte event, ``overhead`` goes to headers and context and 3/4 of
    the rest to the image: 4,700,160 bytes. A larger image never reaches the function (API Gateway answers 413).
    """
    return (event_limit - overhead) // 4 * 3


MAX_IMAGE_BYTES = largest_image_for_event()

ENV_ENDPOINT_NAME = "ENDPOINT_NAME"
ENV_MAX_IMAGE_BYTES = "MAX_IMAGE_BYTES"
ENV_DEFAULT_TOP_K = "DEFAULT_TOP_K"
ENV_MAX_TOP_K = "MAX_TOP_K"
ENV_CONNECT_TIMEOUT = "SAGEMAKER_CONNECT_TIMEOUT_SECONDS"
ENV_READ_TIMEOUT = "SAGEMAKER_READ_TIMEOUT_SECONDS"
ENV_MAX_ATTEMPTS = "SAGEMAKER_MAX_ATTEMPTS"
ENV_FUNCTION_TIMEOUT = "FUNCTION_TIMEOUT_SECONDS"
ENV_RETRY_AFTER = "RETRY_AFTER_SECONDS"
ENV_DEMO_PAGE = "DEMO_PAGE"  # Enabled | Disabled: template parameter DemoPage
ENV_API_AUTH_MODE = "API_AUTH_MODE"  # IAM | API_KEY: template parameter ApiAuthMode, which the demo page follows
ENV_REGION = "AWS_REGION"  # Lambda sets it in every function's environment
DEMO_PAGE_ENABLED = "Enabled"
AUTH_MODES = ("IAM", "API_KEY")


@dataclass(frozen=True)
class Settings:
    """Immutable configuration; every field has a default except the endpoint name."""

    endpoint_name: str
    max_image_bytes: int = MAX_IMAGE_BYTES
    default_top_k: int = 5
    max_top_k: int = 10
    max_megapixels: float = 40.0
    min_side_px: int = 8
    connect_timeout_s: float = 1.0
    # NOTE: attempts × (connect + read) plus retry backoff must stay under the function Timeout (20 s), which itself
    # stays under API Gateway's 29 s integration timeout. A ResNet forward pass takes well under a second.
    read_timeout_s: float = 5.0
    max_attempts: int = 2
    function_timeout_s: float = 20.0
    retry_after_s: int = 5

    @property
    def worst_case_seconds(self) -> float:
        """Longest time one InvokeEndpoint call can take, retries and backoff included."""
        # botocore standard mode sleeps rand(0,1) × min(2**i, 20) s before retry i (1 s scale when throttled), raised
        # by up to 5 s when the response carries x-amz-retry-after (botocore/retries/standard.py ExponentialBackoff).
        backoff = sum(min(2.0**i, 20.0) + 5.0 for i in range(self.max_attempts - 1))
        return self.max_attempts * (self.connect_timeout_s + self.read_timeout_s) + backoff

    def __post_init__(self) -> None:
        if not self.endpoint_name:
            raise ConfigurationError(f"{ENV_ENDPOINT_NAME} is empty")
        if not 1 <= self.default_top_k <= self.max_top_k:
            raise ConfigurationError(f"{ENV_DEFAULT_TOP_K}={self.default_top_k} is outside 1..{self.max_top_k}")
        if not 0 < self.max_image_bytes <= MAX_IMAGE_BYTES:
            # NOTE: a larger limit would promise images whose event Lambda refuses before the handler runs.
            raise ConfigurationError(f"{ENV_MAX_IMAGE_BYTES}={self.max_image_bytes} is outside 1..{MAX_IMAGE_BYTES}")
        if self.max_attempts < 1 or self.connect_timeout_s <= 0 or self.read_timeout_s <= 0:
            raise ConfigurationError("timeouts must be positive and max attempts at least 1")
        if self.worst_case_seconds >= self.function_timeout_s:
            raise ConfigurationError(
                f"{self.max_attempts} attempts × ({self.connect_timeout_s}+{self.read_timeout_s}) s plus backoff "
                f"= {self.worst_case_seconds} s does not fit the {self.function_timeout_s} s function timeout"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from environment variables (explicit mapping > os.environ > defaults).

        Args:
            env: variables to read; defaults to ``os.environ``.

        Returns:
            The validated settings.

        Raises:
            ConfigurationError: a variable is missing or out of range.
        """
        source = os.environ if env is None else env
        endpoint = source.get(ENV_ENDPOINT_NAME, "").strip()
        if not endpoint:
            raise ConfigurationError(f"{ENV_ENDPOINT_NAME} is not set")
        defaults = cls(endpoint_name=endpoint)
        return cls(
            endpoint_name=endpoint,
            max_image_bytes=_int(source, ENV_MAX_IMAGE_BYTES, defaults.max_image_bytes),
            default_top_k=_int(source, ENV_DEFAULT_TOP_K, defaults.default_top_k),
            max_top_k=_int(source, ENV_MAX_TOP_K, defaults.max_top_k),
            connect_timeout_s=_float(source, ENV_CONNECT_TIMEOUT, defaults.connect_timeout_s),
            read_timeout_s=_float(source, ENV_READ_TIMEOUT, defaults.read_timeout_s),
            max_attempts=_int(source, ENV_MAX_ATTEMPTS, defaults.max_attempts),
            function_timeout_s=_float(source, ENV_FUNCTION_TIMEOUT, defaults.function_timeout_s),
            retry_after_s=_int(source, ENV_RETRY_AFTER, defaults.retry_after_s),
        )


def _int(source: Mapping[str, str], name: str, default: int) -> int:
    raw = source.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not an integer") from None


def _float(source: Mapping[str, str], name: str, default: float) -> float:
    raw = source.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a number") from None
