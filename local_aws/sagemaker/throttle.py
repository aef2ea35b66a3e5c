"""API throttling of the local SageMaker: ``ThrottlingException`` as the service sends it, from ``[chaos.throttle]``.

Switch (``$LOCAL_RUNTIME_HOME/config.toml``, see ``local_aws/chaos.py``; re-read on every call, no restart)::

    [chaos.throttle]
    operations = ["DescribeTrainingJob", "DescribeEndpoint"]  # SageMaker operation names; ["*"] = all
    burst = 3      # the next N matching calls after the config changes are throttled (per operation)
    rate = 0.0     # and afterwards, each matching call is throttled with this probability (0..1)
    seed = 0       # for rate

``"*"`` matches every control-plane operation (``X-Amz-Target: SageMaker.*``); the runtime's ``InvokeEndpoint`` is
throttled only when named, so a control-plane storm never fails predictions by accident. Every rewrite of the file
re-arms the burst (per operation: three ``DescribeTrainingJob`` and three ``DescribeEndpoint`` with the example above)
and restarts the ``rate`` generator from ``seed``. An absent section, or ``operations = []``, throttles nothing.

The answer is what SageMaker sends a throttled caller: HTTP 400, ``{"__type": "ThrottlingException", "message":
"Rate exceeded"}`` (botocore then says "An error occurred (ThrottlingException) when calling the DescribeTrainingJob
operation (reached max retries: 4): Rate exceeded", as users report from real AWS: aws/sagemaker-python-sdk#645,
#2293). The code is not modeled in botocore's sagemaker model; botocore's retry handlers recognise it as a throttle by
its code (standard mode: ``botocore/retries/standard.py`` ThrottledRetryableChecker; legacy mode: ``_retry.json``
``throttling_exception`` = code ThrottlingException with HTTP 400), so the status must be 400, not 429.
"""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

from local_aws import chaos
from local_aws.sagemaker.errors import SageMakerError
from local_aws.sagemaker.validate import service_model

SECTION = "throttle"
CODE = "ThrottlingException"
MESSAGE = "Rate exceeded"
RUNTIME_OPERATIONS = frozenset({"InvokeEndpoint"})  # sagemaker-runtime: throttled only when named
KEYS = ("operations", "burst", "rate", "seed")


def throttled() -> SageMakerError:
    """The throttle answer (HTTP 400, as botocore's legacy retry rule for ThrottlingException requires)."""
    return SageMakerError(CODE, MESSAGE, 400)


def _error(key: str, value: Any, valid: str) -> chaos.ChaosConfigError:
    return chaos.ChaosConfigError(f"[chaos.{SECTION}] {key} = {value!r} is not valid; valid: {valid}")


def parse(table: dict[str, Any]) -> tuple[frozenset[str], int, float, int]:
    """Validate the section: ``(operations, burst, rate, seed)``.

    Raises:
        chaos.ChaosConfigError: an unknown key or a bad value, naming it and the valid values.
    """
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise chaos.ChaosConfigError(f"[chaos.{SECTION}] unknown key {unknown[0]!r}; valid keys: {', '.join(KEYS)}")
    operations = table.get("operations", [])
    if not isinstance(operations, list) or not all(isinstance(op, str) for op in operations):
        raise _error("operations", operations, 'a list of SageMaker operation names, e.g. ["DescribeTrainingJob"]')
    known = set(service_model().operation_names) | RUNTIME_OPERATIONS
    for op in operations:
        if op != "*" and op not in known:
            raise _error("operations", op, '"*" or a SageMaker operation name such as DescribeTrainingJob')
    burst = table.get("burst", 0)
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 0:
        raise _error("burst", burst, "an integer >= 0")
    rate = table.get("rate", 0.0)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 <= rate <= 1.0:
        raise _error("rate", rate, "a number from 0 to 1")
    seed = table.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise _error("seed", seed, "an integer")
    return frozenset(operations), burst, float(rate), seed


class Throttle:
    """Decides, call by call, whether a SageMaker operation is throttled (thread-safe: the API serves threads)."""

    def __init__(self, home: str | Path | None = None) -> None:
        self.home = home
        self._lock = threading.Lock()
        self._table: dict[str, Any] | None = None  # the section object last seen: a new object = the file changed
        self._operations: frozenset[str] = frozenset()
        self._burst = 0
        self._rate = 0.0
        self._used: dict[str, int] = {}
        self._random = random.Random(0)

    def _arm(self, table: dict[str, Any]) -> None:
        self._operations, self._burst, self._rate, seed = parse(table)
        self._table = table
        self._used = {}
        self._random = random.Random(seed)

    def check(self, operation: str) -> None:
        """Raise the throttle error if ``operation`` is throttled now.

        Raises:
            SageMakerError: ThrottlingException (HTTP 400).
            chaos.ChaosConfigError: the section is not valid.
        """
        table = chaos.section(SECTION, self.home)
        with self._lock:
            if table is not self._table:
                self._arm(table)
            wildcard = "*" in self._operations and operation not in RUNTIME_OPERATIONS
            if not (wildcard or operation in self._operations):
                return
            used = self._used.get(operation, 0)
            if used < self._burst:
                self._used[operation] = used + 1
                raise throttled()
            if self._rate > 0 and self._random.random() < self._rate:
                raise throttled()
