"""Scaling activities: what the local Application Auto Scaling did, served by DescribeScalingActivities.

moto 5.2.5 has no DescribeScalingActivities (its answer is a crash). ``apply()`` adds it to moto's own
Application Auto Scaling response class, so the answer keeps moto's JSON protocol handling, from the activities the
scaler records here. Shapes follow botocore's ScalingActivity (ActivityId, ServiceNamespace, ResourceId,
ScalableDimension, Description, Cause, StartTime, EndTime, StatusCode Pending | InProgress | Successful |
Overridden | Unfulfilled | Failed, StatusMessage), newest first, as Application Auto Scaling lists them.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

from moto.applicationautoscaling.exceptions import AWSValidationException
from moto.applicationautoscaling.responses import ApplicationAutoScalingResponse

_LOCK = threading.Lock()
_ACTIVITIES: list[dict[str, Any]] = []  # oldest first; process-global like moto's backends
_APPLIED = False
# DescribeScalingActivities MaxResults: 1-50, default 50 (botocore's model documents the range).
MAX_RESULTS = 50


def start(namespace: str, resource_id: str, dimension: str, description: str, cause: str) -> str:
    """Record a new InProgress activity; returns its ActivityId."""
    activity_id = str(uuid.uuid4())
    with _LOCK:
        _ACTIVITIES.append(
            {
                "ActivityId": activity_id,
                "ServiceNamespace": namespace,
                "ResourceId": resource_id,
                "ScalableDimension": dimension,
                "Description": description,
                "Cause": cause,
                "StartTime": time.time(),
                "StatusCode": "InProgress",
            }
        )
    return activity_id


def finish(activity_id: str, status: str, message: str) -> None:
    """Close an activity: ``status`` Successful | Failed | Unfulfilled, with its StatusMessage."""
    with _LOCK:
        for activity in _ACTIVITIES:
            if activity["ActivityId"] == activity_id:
                activity.update(StatusCode=status, StatusMessage=message, EndTime=time.time())


def listed(namespace: str, resource_id: str | None = None, dimension: str | None = None) -> list[dict[str, Any]]:
    """The activities of a namespace (and resource, dimension), newest first."""
    with _LOCK:
        found = [
            dict(a)
            for a in _ACTIVITIES
            if a["ServiceNamespace"] == namespace
            and (not resource_id or a["ResourceId"] == resource_id)
            and (not dimension or a["ScalableDimension"] == dimension)
        ]
    return found[::-1]


def describe_scaling_activities(self: ApplicationAutoScalingResponse) -> str:
    """DescribeScalingActivities, paged by MaxResults / NextToken; a bad namespace, dimension or MaxResults is
    a ValidationException in Application Auto Scaling's wording."""
    self._validate_params()
    raw = self._get_int_param("MaxResults")
    max_results = MAX_RESULTS if raw is None else raw
    if not 1 <= max_results <= MAX_RESULTS:
        bound = "greater than or equal to 1" if max_results < 1 else f"less than or equal to {MAX_RESULTS}"
        raise AWSValidationException(
            f"1 validation error detected: Value '{max_results}' at 'maxResults' failed to satisfy constraint: "
            f"Member must have value {bound}"
        )
    found = listed(
        self._get_param("ServiceNamespace"), self._get_param("ResourceId"), self._get_param("ScalableDimension")
    )
    token = self._get_param("NextToken")
    offset = int(token) if token and str(token).isdigit() else 0
    body: dict[str, Any] = {"ScalingActivities": found[offset : offset + max_results]}
    if offset + max_results < len(found):
        body["NextToken"] = str(offset + max_results)
    return json.dumps(body)


def apply() -> None:
    """Add DescribeScalingActivities to moto's Application Auto Scaling in this process (idempotent)."""
    global _APPLIED
    with _LOCK:
        if _APPLIED:
            return
        _APPLIED = True
    ApplicationAutoScalingResponse.describe_scaling_activities = describe_scaling_activities  # type: ignore[attr-defined]
