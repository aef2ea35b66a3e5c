"""The local clock in AWS seconds stays monotonic and continuous when a test changes LOCAL_AWS_TIME_SCALE."""

from __future__ import annotations

import time

import pytest

from local_aws import clock


def test_monotonic_counts_each_stretch_at_its_own_scale(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_AWS_TIME_SCALE", "60")
    start = clock.monotonic()
    time.sleep(0.1)
    monkeypatch.setenv("LOCAL_AWS_TIME_SCALE", "1")
    middle = clock.monotonic()  # the 0.1 s just passed counted at 60x
    assert 5.5 <= middle - start <= 9.0
    time.sleep(0.1)
    end = clock.monotonic()
    assert 0.09 <= end - middle <= 0.5  # and the next 0.1 s at 1x: never backwards, never hours ahead


def test_monotonic_without_a_change_is_scaled_real_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_AWS_TIME_SCALE", "3600")
    clock.monotonic()  # the scale change is picked up here
    first = clock.monotonic()
    time.sleep(0.05)
    assert 150 <= clock.monotonic() - first <= 400
