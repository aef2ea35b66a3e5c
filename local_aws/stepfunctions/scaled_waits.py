"""The waits moto's interpreter implements (``Wait`` seconds and Retry backoff) run on the local clock.

A test that lives through a 72-hour training job sets ``LOCAL_AWS_TIME_SCALE`` (local_aws/clock.py): the local
SageMaker then keeps the job busy for 72 h of AWS time, and the state machine's ``Wait`` states and Retry intervals
must pass at the same rate, or the execution would poll a 72 h job every real minute. moto 5.2.x waits with
``env.program_state_event.wait(seconds)`` in ``WaitFunction._wait_interval`` and with ``time.sleep(interval)`` in
``RetrierDecl._eval_body``; both are replaced here so that N seconds in the ASL last ``clock.real_seconds(N)``. The
ASL itself is never changed, and at the default scale (1) the waits are exactly moto's.

Only relative waits are scaled (``Seconds``, ``SecondsPath``, ``Seconds`` in JSONata): a ``Timestamp`` /
``TimestampPath`` wait names a wall-clock instant, and timestamps stay wall-clock (clock.py). Task
``TimeoutSeconds`` are not scaled either: they bound a real HTTP call to the local services.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.wait.wait_function import seconds, seconds_path

from local_aws import clock

# The relative-wait classes of moto 5.2.x (Timestamp/TimestampPath deliberately absent, see above).
_RELATIVE_WAITS = (seconds.Seconds, seconds.SecondsJSONata, seconds_path.SecondsPath)
# An interrupt that leaves the execution running (moto sets the event on any program-state change) is re-waited;
# this floor keeps such a loop from spinning while the event stays set.
_REWAIT_FLOOR_S = 0.05


def _wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
    """moto's ``_wait_interval`` on the local clock: returns early only when the execution stops running."""
    deadline = time.monotonic() + clock.real_seconds(wait_seconds)
    while env.is_running():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        if env.program_state_event.wait(remaining) and env.is_running():
            time.sleep(min(remaining, _REWAIT_FLOOR_S))


_wait_interval._dogbreed_patched = True  # type: ignore[attr-defined]

# ``retrier_decl`` calls ``time.sleep(interval_seconds)`` through its module global ``time``; it uses nothing else
# from ``time``, so a namespace whose ``sleep`` is the clock's is a complete stand-in.
_SCALED_TIME = SimpleNamespace(sleep=clock.sleep)


def apply() -> None:
    """Scale moto's relative Wait states and Retry intervals by ``LOCAL_AWS_TIME_SCALE`` (idempotent)."""
    for cls in _RELATIVE_WAITS:
        cls._wait_interval = _wait_interval  # type: ignore[method-assign]
    retrier_decl.time = _SCALED_TIME  # type: ignore[assignment]


def is_applied() -> bool:
    """True when every relative wait and the retrier sleep on the local clock."""
    return all(cls._wait_interval is _wait_interval for cls in _RELATIVE_WAITS) and retrier_decl.time is _SCALED_TIME
