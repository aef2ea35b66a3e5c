"""Fixes to moto's Application Auto Scaling so that a missing policy or target is AWS's ObjectNotFoundException.

moto 5.x answers DeleteScalingPolicy for a policy that does not exist, and DeregisterScalableTarget for a target that
does not exist, with ``ValidationException``. AWS answers ``ObjectNotFoundException`` with the same text: botocore's
model lists it for both operations, and documents it as thrown "for any operation that deletes or deregisters a
resource ... if the resource cannot be found" (``application-autoscaling/2016-02-06/service-2.json``,
ObjectNotFoundException). The ASL relies on it: DeleteScalingPolicy and DeregisterScalableTarget catch
``ApplicationAutoScaling.ObjectNotFoundException`` to carry on when there is nothing to remove, so with moto's code
an endpoint that has a scalable target but no policy failed its instance-type change.

Patched here, on moto's backend class, rather than by rewriting answers at the edge: the backend is the one place that
knows the resource is missing. ``apply()`` is idempotent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.applicationautoscaling.exceptions import AWSValidationException
from moto.applicationautoscaling.models import ApplicationAutoscalingBackend
from moto.core.exceptions import JsonRESTError

# The operations whose "not found" moto reports as a ValidationException, and the start of moto's message for it.
_NOT_FOUND_MESSAGES = {
    "delete_scaling_policy": "No scaling policy found for ",
    "deregister_scalable_target": "No scalable target found for ",
}


class ObjectNotFoundException(JsonRESTError):
    """Application Auto Scaling's ObjectNotFoundException (HTTP 400, ``__type`` ObjectNotFoundException)."""

    def __init__(self, message: str) -> None:
        super().__init__("ObjectNotFoundException", message)


def _not_found_as_aws(method: Callable[..., Any], prefix: str) -> Callable[..., Any]:
    def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except AWSValidationException as exc:
            if not exc.message.startswith(prefix):
                raise
            raise ObjectNotFoundException(exc.message) from None

    patched._dogbreed_patched = True  # type: ignore[attr-defined]
    return patched


def apply() -> None:
    """Patch moto's Application Auto Scaling backend in place (safe to call any number of times)."""
    for name, prefix in _NOT_FOUND_MESSAGES.items():
        method = getattr(ApplicationAutoscalingBackend, name)
        if not getattr(method, "_dogbreed_patched", False):
            setattr(ApplicationAutoscalingBackend, name, _not_found_as_aws(method, prefix))
