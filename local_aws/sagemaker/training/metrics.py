"""The training service's metric scraping: MetricDefinitions regexes over a job's log lines.

SageMaker applies each definition's regex to the algorithm's log output and reports the last value of each
metric in DescribeTrainingJob's ``FinalMetricDataList``; that runs in the service, not in the container's
toolkit, so it lives beside the job records rather than in ``toolkit.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass
class MetricParser:
    """Applies MetricDefinitions regexes to log lines, keeping the last value of each metric (FinalMetricDataList)."""

    definitions: list[dict[str, str]]

    def __post_init__(self) -> None:
        self._compiled: list[tuple[str, re.Pattern[str]]] = []
        for d in self.definitions:
            try:
                self._compiled.append((d["Name"], re.compile(d["Regex"])))
            except re.error:
                continue
        self.last: dict[str, tuple[float, float]] = {}

    def feed(self, line: str, timestamp: float) -> None:
        for name, rx in self._compiled:
            match = rx.search(line)
            if not match:
                continue
            raw = match.group(1) if match.groups() else match.group(0)
            try:
                value = float(raw)
            except (TypeError, ValueError):
                continue
            if value != value or value in (float("inf"), float("-inf")):  # NaN/inf are dropped by the service
                continue
            self.last[name] = (value, timestamp)

    def final_metric_data_list(self) -> list[dict[str, Any]]:
        return [
            {"MetricName": name, "Value": value, "Timestamp": ts}
            for name, (value, ts) in sorted(self.last.items(), key=lambda item: item[0])
        ]
