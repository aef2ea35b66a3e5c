"""The local runtime's clock: real time, optionally scaled so a test can live through AWS-length waits.

``LOCAL_AWS_TIME_SCALE`` (default 1) is how many AWS seconds pass per real second. At 3600, an ASL ``Wait`` of one
hour lasts one real second, and a local resource that AWS keeps busy for N seconds (a 72-hour training job, a scaling
cooldown, an alarm's evaluation period) is busy for N/3600 real seconds. The ASL itself is never changed: only the
local services that implement its waits read this clock. Durations reported through the APIs
(TrainingTimeInSeconds, BillableTimeInSeconds, ...) are in AWS seconds; timestamps stay wall-clock.
"""

from __future__ import annotations

import os
import threading
import time

ENV_TIME_SCALE = "LOCAL_AWS_TIME_SCALE"


def time_scale() -> float:
    """AWS seconds per real second (read on every call, so a test can set it with monkeypatch)."""
    raw = os.environ.get(ENV_TIME_SCALE, "1")
    try:
        scale = float(raw)
    except ValueError:
        raise ValueError(f"{ENV_TIME_SCALE}={raw!r}: expected a positive number, e.g. 1 or 3600") from None
    if not scale > 0:
        raise ValueError(f"{ENV_TIME_SCALE}={raw!r}: expected a positive number, e.g. 1 or 3600")
    return scale


def real_seconds(aws_seconds: float) -> float:
    """How long ``aws_seconds`` of AWS time lasts here."""
    return max(0.0, aws_seconds) / time_scale()


def aws_seconds(real: float) -> float:
    """How many AWS seconds ``real`` seconds here stand for."""
    return real * time_scale()


def sleep(aws_seconds_: float) -> None:
    """Sleep for ``aws_seconds_`` of AWS time."""
    time.sleep(real_seconds(aws_seconds_))


_ANCHOR_LOCK = threading.Lock()
_anchor: tuple[float, float, float] | None = None  # (real monotonic, AWS seconds then, scale since then)


def monotonic() -> float:
    """A monotonic clock in AWS seconds (differences only).

    Each stretch of real time counts at the scale in force while it passed (as far as the calls see it: a change is
    picked up at the next call), so a scale a test lowers never sends this clock backwards, and a stamp taken at 60x
    is still one minute old a real second later at 1x (``time.monotonic() * scale`` jumped by hours either way).
    """
    global _anchor
    scale, real = time_scale(), time.monotonic()
    with _ANCHOR_LOCK:
        if _anchor is None:
            _anchor = (real, real * scale, scale)
        since, aws, old_scale = _anchor
        now = aws + (real - since) * old_scale
        if scale != old_scale:
            _anchor = (real, now, scale)
        return now


def pause(stop: threading.Event, aws_seconds_: float, min_real: float = 0.0) -> bool:
    """Wait ``aws_seconds_`` of AWS time (at least ``min_real`` real seconds) or until ``stop`` is set; True if set.

    The scale is re-read at least once a real second, so a loop started before a test sets LOCAL_AWS_TIME_SCALE
    does not sleep out a long unscaled interval first.
    """
    started = time.monotonic()
    while True:
        left = started + max(min_real, real_seconds(aws_seconds_)) - time.monotonic()
        if left <= 0:
            return stop.is_set()
        if stop.wait(min(left, 1.0)):
            return True
