"""CloudWatch Logs over HTTP (JSON 1.1, ``X-Amz-Target: Logs_20140328.<Operation>``), served from ``LogStore``.

The operations a log reader and writer need: CreateLogGroup, CreateLogStream, DeleteLogGroup, DescribeLogGroups,
DescribeLogStreams, PutLogEvents, GetLogEvents, FilterLogEvents and PutRetentionPolicy (kept, not enforced). Errors
use the service's codes (``ResourceNotFoundException`` "The specified log group does not exist.", ...).
FilterLogEvents' ``filterPattern`` supports plain terms (every term must occur) and quoted phrases; the full
pattern syntax is not emulated.
"""

from __future__ import annotations

import base64
import functools
import json
import shlex
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from local_aws.constants import ACCOUNT_ID, PARTITION, REGION
from local_aws.logs.store import Event, LogStore, now_ms

TARGET_PREFIX = "Logs_20140328."
JSON_11 = "application/x-amz-json-1.1"
# FilterLogEvents / GetLogEvents return at most 10,000 events per call (API reference).
MAX_EVENTS = 10_000
DEFAULT_LIMIT = 50  # DescribeLogGroups / DescribeLogStreams default page

T = TypeVar("T")


class LogsError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _group_missing() -> LogsError:
    return LogsError("ResourceNotFoundException", "The specified log group does not exist.")


def _stream_missing() -> LogsError:
    return LogsError("ResourceNotFoundException", "The specified log stream does not exist.")


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode()


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        return max(0, int(base64.urlsafe_b64decode(token.encode()).decode()))
    except ValueError as exc:
        raise LogsError("InvalidParameterException", "The specified nextToken is invalid.") from exc


def _paged(
    items: Sequence[T], params: dict[str, Any], *, default: int, cap: int | None = None
) -> tuple[Sequence[T], str | None]:
    """The page of ``items`` that ``limit`` (``default`` when absent, at most ``cap``) and ``nextToken`` select, and
    the token of the next page (None on the last one): the paging of DescribeLogGroups/Streams and FilterLogEvents.
    """
    limit = int(params.get("limit") or default)
    if cap is not None:
        limit = min(limit, cap)
    start = _offset(params.get("nextToken"))
    return items[start : start + limit], _token(start + limit) if start + limit < len(items) else None


def _matches(pattern: str, message: str) -> bool:
    if not pattern.strip():
        return True
    try:
        terms = shlex.split(pattern)
    except ValueError:
        terms = pattern.split()
    return all(term in message for term in terms)


class LogsApi:
    """WSGI app for service ``logs``."""

    def __init__(self, store: LogStore) -> None:
        self.store = store
        self.retention: dict[str, int] = {}
        self.operations: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "CreateLogGroup": self.create_log_group,
            "CreateLogStream": self.create_log_stream,
            "DeleteLogGroup": self.delete_log_group,
            "DescribeLogGroups": self.describe_log_groups,
            "DescribeLogStreams": self.describe_log_streams,
            "PutLogEvents": self.put_log_events,
            "GetLogEvents": self.get_log_events,
            "FilterLogEvents": self.filter_log_events,
            "PutRetentionPolicy": self.put_retention_policy,
        }

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        operation = self.operations.get(target[len(TARGET_PREFIX) :]) if target.startswith(TARGET_PREFIX) else None
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            if operation is None:
                raise LogsError("UnknownOperationException", f"The operation {target!r} is not supported locally.")
            try:
                params = json.loads(raw or b"{}")
            except ValueError as exc:
                raise LogsError("SerializationException", "The request body is not valid JSON.") from exc
            if not isinstance(params, dict):
                raise LogsError("SerializationException", "The request body must be a JSON object.")
            doc, status = operation(params), 200
        except LogsError as exc:
            doc, status = {"__type": exc.code, "message": exc.message}, 400
        except KeyError as exc:
            doc = {"__type": "InvalidParameterException", "message": f"Missing required parameter {exc.args[0]}."}
            status = 400
        except (TypeError, ValueError, AttributeError):
            # A member of the wrong type (a number for logGroupName, a string for startTime, ...).
            doc = {"__type": "InvalidParameterException", "message": "A parameter has an invalid type or value."}
            status = 400
        body = json.dumps(doc).encode()
        headers = [
            ("Content-Type", JSON_11),
            ("Content-Length", str(len(body))),
            ("x-amzn-RequestId", str(uuid.uuid4())),
        ]
        if status != 200:
            headers.append(("x-amzn-ErrorType", str(doc["__type"])))
        start_response("200 OK" if status == 200 else "400 Bad Request", headers)
        return [body]

    # ----------------------------------------------------------------------------------------------- groups
    def create_log_group(self, params: dict[str, Any]) -> dict[str, Any]:
        if not self.store.create_group(params["logGroupName"]):
            raise LogsError("ResourceAlreadyExistsException", "The specified log group already exists")
        return {}

    def delete_log_group(self, params: dict[str, Any]) -> dict[str, Any]:
        if not self.store.delete_group(params["logGroupName"]):
            raise _group_missing()
        return {}

    def put_retention_policy(self, params: dict[str, Any]) -> dict[str, Any]:
        if not self.store.has_group(params["logGroupName"]):
            raise _group_missing()
        self.retention[params["logGroupName"]] = int(params["retentionInDays"])
        return {}

    def describe_log_groups(self, params: dict[str, Any]) -> dict[str, Any]:
        groups, next_token = _paged(
            self.store.groups(params.get("logGroupNamePrefix") or ""), params, default=DEFAULT_LIMIT
        )
        items = []
        for name, created in groups:
            item: dict[str, Any] = {
                "logGroupName": name,
                "creationTime": created,
                "arn": f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT_ID}:log-group:{name}:*",
                "storedBytes": 0,
            }
            if name in self.retention:
                item["retentionInDays"] = self.retention[name]
            items.append(item)
        answer: dict[str, Any] = {"logGroups": items}
        if next_token is not None:
            answer["nextToken"] = next_token
        return answer

    # ----------------------------------------------------------------------------------------------- streams
    def create_log_stream(self, params: dict[str, Any]) -> dict[str, Any]:
        group = params["logGroupName"]
        if not self.store.has_group(group):
            raise _group_missing()
        if not self.store.create_stream(group, params["logStreamName"]):
            raise LogsError("ResourceAlreadyExistsException", "The specified log stream already exists")
        return {}

    def describe_log_streams(self, params: dict[str, Any]) -> dict[str, Any]:
        group = params["logGroupName"]
        if not self.store.has_group(group):
            raise _group_missing()
        streams = self.store.streams(group, params.get("logStreamNamePrefix") or "")
        if params.get("orderBy") == "LastEventTime":
            streams.sort(key=lambda s: s.last_event_ms or 0)
        if params.get("descending"):
            streams.reverse()
        page, next_token = _paged(streams, params, default=DEFAULT_LIMIT)
        items = []
        for s in page:
            item: dict[str, Any] = {
                "logStreamName": s.name,
                "creationTime": s.creation_ms,
                "arn": f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT_ID}:log-group:{group}:log-stream:{s.name}",
                "storedBytes": s.stored_bytes,
            }
            if s.first_event_ms is not None:
                item.update(
                    firstEventTimestamp=s.first_event_ms,
                    lastEventTimestamp=s.last_event_ms,
                    lastIngestionTime=s.last_event_ms,
                )
            items.append(item)
        answer: dict[str, Any] = {"logStreams": items}
        if next_token is not None:
            answer["nextToken"] = next_token
        return answer

    # ----------------------------------------------------------------------------------------------- events
    def put_log_events(self, params: dict[str, Any]) -> dict[str, Any]:
        group, stream = params["logGroupName"], params["logStreamName"]
        if not self.store.has_group(group):
            raise _group_missing()
        if not self.store.has_stream(group, stream):
            raise _stream_missing()
        events = sorted(((int(e["timestamp"]), str(e["message"])) for e in params["logEvents"]), key=lambda e: e[0])
        self.store.append(group, stream, events)
        return {"nextSequenceToken": str(now_ms())}

    def get_log_events(self, params: dict[str, Any]) -> dict[str, Any]:
        group, stream = params["logGroupName"], params["logStreamName"]
        if not self.store.has_group(group):
            raise _group_missing()
        if not self.store.has_stream(group, stream):
            raise _stream_missing()
        events = _window(self.store.read(group, stream), params, end_inclusive=False)
        limit = min(int(params.get("limit") or MAX_EVENTS), MAX_EVENTS)
        token = params.get("nextToken")
        start = _offset(token.split("/", 1)[1]) if token and "/" in token else 0
        if token is None and not params.get("startFromHead"):
            start = max(0, len(events) - limit)  # newest events first page, as the API does by default
        page = events[start : start + limit]
        return {
            "events": [{"timestamp": e.timestamp, "message": e.message, "ingestionTime": e.ingestion} for e in page],
            "nextForwardToken": f"f/{_token(start + len(page))}",
            "nextBackwardToken": f"b/{_token(max(0, start - limit))}",
        }

    def filter_log_events(self, params: dict[str, Any]) -> dict[str, Any]:
        group = params["logGroupName"]
        if not self.store.has_group(group):
            raise _group_missing()
        names = params.get("logStreamNames")
        prefix = params.get("logStreamNamePrefix") or ""
        streams = [name for name in self.store.stream_names(group, prefix) if not names or name in names]
        pattern = params.get("filterPattern") or ""
        in_window = _time_window(params)
        merged: list[tuple[Event, str, int]] = []
        for stream in streams:
            # The event id is the event's position in its stream, so a later call with a later startTime gives the
            # same event the same id (clients de-duplicate overlapping windows by it).
            for index, event in enumerate(self.store.read(group, stream)):
                if in_window(event.timestamp) and _matches(pattern, event.message):
                    merged.append((event, stream, index))
        merged.sort(key=lambda item: (item[0].timestamp, item[1], item[2]))
        page, next_token = _paged(merged, params, default=MAX_EVENTS, cap=MAX_EVENTS)
        answer: dict[str, Any] = {
            "events": [
                {
                    "logStreamName": stream,
                    "timestamp": e.timestamp,
                    "message": e.message,
                    "ingestionTime": e.ingestion,
                    "eventId": f"{e.timestamp}-{stream}-{index}",
                }
                for e, stream, index in page
            ],
            "searchedLogStreams": [{"logStreamName": s, "searchedCompletely": True} for s in streams],
        }
        if next_token is not None:
            answer["nextToken"] = next_token
        return answer


def _time_window(params: dict[str, Any], end_inclusive: bool = True) -> Callable[[int], bool]:
    """Whether a timestamp lies in [startTime, endTime]; GetLogEvents excludes endTime itself, FilterLogEvents
    includes it (botocore's logs model documents both).
    """
    start: Any = params.get("startTime")
    end: Any = params.get("endTime")
    # Each bound is parsed once, on its first comparison rather than here: a malformed bound is an error only when an
    # event is compared with it (none for an empty stream, no endTime check for an event before startTime).
    low = functools.cache(lambda: int(start))
    high = functools.cache(lambda: int(end))

    def inside(ts: int) -> bool:
        if start is not None and ts < low():
            return False
        return end is None or (ts <= high() if end_inclusive else ts < high())

    return inside


def _window(events: Iterable[Event], params: dict[str, Any], end_inclusive: bool = True) -> list[Event]:
    """The events inside ``_time_window(params, end_inclusive)``."""
    inside = _time_window(params, end_inclusive)
    return [e for e in events if inside(e.timestamp)]
