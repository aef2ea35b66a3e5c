"""The List* operations' common filters, sort orders and NextToken paging (one implementation for every resource)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from local_aws.sagemaker.errors import validation


def filter_records(
    records: list[dict[str, Any]], params: dict[str, Any], name_key: str, status_key: str | None
) -> list[dict[str, Any]]:
    """Apply NameContains, StatusEquals and the Creation/LastModified time bounds of a List* request."""
    out = records
    if params.get("NameContains"):
        needle = params["NameContains"].lower()
        out = [r for r in out if needle in r[name_key].lower()]
    if status_key and params.get("StatusEquals"):
        out = [r for r in out if r.get(status_key) == params["StatusEquals"]]
    for key, field, after in (
        ("CreationTimeAfter", "CreationTime", True),
        ("CreationTimeBefore", "CreationTime", False),
        ("LastModifiedTimeAfter", "LastModifiedTime", True),
        ("LastModifiedTimeBefore", "LastModifiedTime", False),
    ):
        if params.get(key) is not None:
            bound = float(params[key])
            out = [r for r in out if (r.get(field, 0) > bound if after else r.get(field, 0) < bound)]
    return out


def page(
    items: list[dict[str, Any]], params: dict[str, Any], result_key: str, name_key: str, status_key: str | None
) -> dict[str, Any]:
    """Sort (SortBy Name/CreationTime/Status, SortOrder; default CreationTime Descending) and page with NextToken."""
    sort_by = params.get("SortBy") or "CreationTime"
    key_of: Callable[[dict[str, Any]], Any]
    if sort_by == "Name":
        key_of = lambda r: r[name_key]  # noqa: E731
    elif sort_by == "Status" and status_key:
        key_of = lambda r: r.get(status_key, "")  # noqa: E731
    else:
        key_of = lambda r: r.get("CreationTime", 0)  # noqa: E731
    items = sorted(items, key=key_of, reverse=(params.get("SortOrder") or "Descending") == "Descending")
    return page_slice(items, params, result_key, default_size=10)


def page_slice(items: list[Any], params: dict[str, Any], result_key: str, default_size: int) -> dict[str, Any]:
    """The page of ``items`` (in their order) that NextToken and MaxResults (default ``default_size``) select.

    Raises:
        SageMakerError: a NextToken the service never issued (ValidationException).
    """
    try:
        start = int(params.get("NextToken") or 0)
    except ValueError as exc:
        raise validation(f"Invalid NextToken {params.get('NextToken')!r}") from exc
    size = int(params.get("MaxResults") or default_size)
    out: dict[str, Any] = {result_key: items[start : start + size]}
    if start + size < len(items):
        out["NextToken"] = str(start + size)
    return out
