"""The execution-history quota of Step Functions, enforced on moto's interpreter.

AWS: "Maximum execution history size: 25,000 events in a single state machine execution history. ... If the
execution history reaches this quota, the execution fails" (Step Functions service quotas; bp-history-limit.html:
"the execution fails"). Observed shape (aws-failure-behaviours.md §7): at 24,999 events the next event decides; if
event 25,000 is ``ExecutionSucceeded`` the run succeeds, otherwise event 25,000 is ``ExecutionFailed`` with error
``States.Runtime`` and cause "The execution reached the maximum number of history events (25000).", and the
execution is FAILED with that error and cause. No Retry or Catch sees it: it is not a state's failure.

moto writes every event through one ``EventManager`` per execution, and its event types are the ``HistoryEventType``
values of the Step Functions model, one event per state transition exactly where Step Functions writes one (a
request-response Task: TaskStateEntered, TaskScheduled, TaskStarted, TaskSucceeded, TaskStateExited). So the count
is moto's own event ids, and the quota is checked where the next id is drawn: the event that would be number
``SFN_HISTORY_MAX_EVENTS`` becomes the ``ExecutionFailed`` and the execution stops; nothing is recorded after it.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, HistoryEventType
from moto.stepfunctions.parser.asl.eval import environment
from moto.stepfunctions.parser.asl.eval.event import event_manager
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

from local_aws import constants

QUOTA_ERROR = "States.Runtime"
QUOTA_CAUSE = "The execution reached the maximum number of history events ({limit})."
_TERMINAL = frozenset(
    {
        HistoryEventType.ExecutionSucceeded,
        HistoryEventType.ExecutionFailed,
        HistoryEventType.ExecutionAborted,
        HistoryEventType.ExecutionTimedOut,
    }
)
_PATCHED = "_dogbreed_history_quota"


def apply() -> None:
    """Patch moto's EventManager and Environment (idempotent)."""
    manager_cls = event_manager.EventManager
    if getattr(manager_cls.add_event, _PATCHED, False):
        return
    original_add = manager_cls.add_event
    original_init = environment.Environment.__init__
    original_set_error = environment.Environment.set_error

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        # The execution's own environment; a Map/Parallel frame shares its parent's manager, which keeps the root.
        self.event_manager.quota_env = self

    def set_error(self: Any, error: Any) -> None:
        # NOTE: the state that was running when the quota was reached is not interrupted; whatever it fails with
        # afterwards must not replace the quota's error as the execution's error and cause.
        original_set_error(self, getattr(self, "quota_error", None) or error)

    def add_event(self: Any, context: Any, event_type: Any, *args: Any, **kwargs: Any) -> int:
        lock = self.__dict__.setdefault("quota_lock", threading.Lock())
        with lock:
            closed: int | None = getattr(self, "quota_closed_at", None)
            if closed is not None:
                return closed  # the execution has ended at the quota: nothing more is written
            limit = constants.SFN_HISTORY_MAX_EVENTS
            if self._event_id_gen._next_id < limit or event_type in _TERMINAL:
                return int(original_add(self, context, event_type, *args, **kwargs))
            details = ExecutionFailedEventDetails(error=QUOTA_ERROR, cause=QUOTA_CAUSE.format(limit=limit))
            event_id = int(
                original_add(
                    self,
                    context,
                    HistoryEventType.ExecutionFailed,
                    EventDetails(executionFailedEventDetails=details),  # type: ignore[typeddict-item]
                )
            )
            self.quota_closed_at = event_id
        env = getattr(self, "quota_env", None)
        if env is not None:
            env.quota_error = details
            env.set_error(details)  # the program loop stops; its own ExecutionFailed is dropped above
        return event_id

    setattr(add_event, _PATCHED, True)
    manager_cls.add_event = add_event  # type: ignore[method-assign]
    environment.Environment.__init__ = __init__  # type: ignore[method-assign]
    environment.Environment.set_error = set_error  # type: ignore[method-assign]
