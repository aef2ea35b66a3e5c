"""Application Auto Scaling's ObjectNotFoundException where moto answers ValidationException, or nothing.

botocore's application-autoscaling model, ObjectNotFoundException: "For any operation that depends on the existence
of a scalable target, this exception is thrown if the scalable target with the specified service namespace,
resource ID, and scalable dimension does not exist. For any operation that deletes or deregisters a resource, this
exception is thrown if the resource cannot be found." moto 5.2.5 raises ValidationException for a missing policy
(DeleteScalingPolicy) or target (DeregisterScalableTarget), and accepts PutScalingPolicy on a target that was never
registered. The ASL catches ``ApplicationAutoScaling.ObjectNotFoundException`` on exactly these calls, so locally
it must see the same error AWS sends. moto's messages are kept; only the code changes, and the missing check is added.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.applicationautoscaling.exceptions import AWSValidationException
from moto.applicationautoscaling.models import ApplicationAutoscalingBackend
from moto.core.exceptions import JsonRESTError

_LOCK = threading.Lock()
_APPLIED = False


class ObjectNotFoundException(JsonRESTError):
    """The scalable target or scaling policy does not exist (HTTP 400, as every Application Auto Scaling error)."""

    def __init__(self, message: str) -> None:
        super().__init__("ObjectNotFoundException", message)


def _not_found_instead_of_validation(original: Any) -> Any:
    def call(self: ApplicationAutoscalingBackend, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        except AWSValidationException as exc:
            message = str(exc.message)
            if message.startswith(("No scaling policy found", "No scalable target found")):
                raise ObjectNotFoundException(message) from None
            raise

    return call


def _put_needs_a_target(original: Any) -> Any:
    def put_scaling_policy(
        self: ApplicationAutoscalingBackend,
        policy_name: str,
        service_namespace: str,
        resource_id: str,
        scalable_dimension: str,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        if not self._scalable_target_exists(resource_id, scalable_dimension):
            raise ObjectNotFoundException(
                f"No scalable target registered for service namespace: {service_namespace}, resource ID: "
                f"{resource_id}, scalable dimension: {scalable_dimension}"
            )
        return original(self, policy_name, service_namespace, resource_id, scalable_dimension, *args, **kwargs)

    return put_scaling_policy


def apply() -> None:
    """Patch moto's Application Auto Scaling in this process (idempotent)."""
    global _APPLIED
    with _LOCK:
        if _APPLIED:
            return
        _APPLIED = True
    backend = ApplicationAutoscalingBackend
    backend.delete_scaling_policy = _not_found_instead_of_validation(backend.delete_scaling_policy)  # type: ignore[method-assign]
    backend.deregister_scalable_target = _not_found_instead_of_validation(backend.deregister_scalable_target)  # type: ignore[method-assign]
    backend.put_scaling_policy = _put_needs_a_target(backend.put_scaling_policy)  # type: ignore[method-assign]
