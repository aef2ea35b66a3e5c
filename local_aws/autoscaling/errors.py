"""PutScalingPolicy on a scalable target that was never registered: AWS's ObjectNotFoundException.

botocore's application-autoscaling model, ObjectNotFoundException: "For any operation that depends on the existence
of a scalable target, this exception is thrown if the scalable target with the specified service namespace,
resource ID, and scalable dimension does not exist." moto 5.2.5 accepts the policy anyway, so a policy whose
ResourceId is wrong (a typo in the variant name) would be stored locally and never act, where AWS refuses it at once.
The delete and deregister cases are ``local_aws/application_autoscaling.py``'s; this adds the one it leaves out.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.applicationautoscaling.models import ApplicationAutoscalingBackend

from local_aws.application_autoscaling import ObjectNotFoundException

_LOCK = threading.Lock()
_APPLIED = False


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
    backend.put_scaling_policy = _put_needs_a_target(backend.put_scaling_policy)  # type: ignore[method-assign]
