"""local_aws.sagemaker.listing: the List* filters, sort orders and NextToken paging shared by every resource."""

from __future__ import annotations

from typing import Any

import pytest

from local_aws.sagemaker.errors import SageMakerError
from local_aws.sagemaker.listing import filter_records, page, page_slice

RECORDS: list[dict[str, Any]] = [
    {"Name": "dogbreed-dev-a", "Status": "Completed", "CreationTime": 10.0, "LastModifiedTime": 15.0},
    {"Name": "dogbreed-dev-b", "Status": "Failed", "CreationTime": 20.0, "LastModifiedTime": 25.0},
    {"Name": "other-C", "Status": "Completed", "CreationTime": 30.0, "LastModifiedTime": 35.0},
]


def _names(items: list[dict[str, Any]]) -> list[str]:
    return [r["Name"] for r in items]


def test_filters_combine_name_status_and_time_bounds() -> None:
    """NameContains is case-insensitive; StatusEquals and the exclusive time bounds narrow further."""
    assert _names(filter_records(RECORDS, {"NameContains": "DEV"}, "Name", "Status")) == [
        "dogbreed-dev-a",
        "dogbreed-dev-b",
    ]
    assert _names(filter_records(RECORDS, {"StatusEquals": "Completed"}, "Name", "Status")) == [
        "dogbreed-dev-a",
        "other-C",
    ]
    assert _names(filter_records(RECORDS, {"CreationTimeAfter": 10, "CreationTimeBefore": 30}, "Name", None)) == [
        "dogbreed-dev-b"
    ]
    assert _names(filter_records(RECORDS, {"LastModifiedTimeAfter": 30}, "Name", None)) == ["other-C"]
    # a resource without a status field ignores StatusEquals
    assert len(filter_records(RECORDS, {"StatusEquals": "Failed"}, "Name", None)) == 3


def test_default_order_is_newest_first_and_pages_follow_next_token() -> None:
    """CreationTime Descending by default; NextToken walks the rest; the last page has no token."""
    first = page(RECORDS, {"MaxResults": 2}, "Items", "Name", "Status")
    assert _names(first["Items"]) == ["other-C", "dogbreed-dev-b"]
    second = page(RECORDS, {"MaxResults": 2, "NextToken": first["NextToken"]}, "Items", "Name", "Status")
    assert _names(second["Items"]) == ["dogbreed-dev-a"] and "NextToken" not in second


def test_sort_by_name_and_status() -> None:
    """SortBy Name / Status with SortOrder Ascending."""
    by_name = page(RECORDS, {"SortBy": "Name", "SortOrder": "Ascending"}, "Items", "Name", "Status")
    assert _names(by_name["Items"]) == ["dogbreed-dev-a", "dogbreed-dev-b", "other-C"]
    by_status = page(RECORDS, {"SortBy": "Status", "SortOrder": "Ascending"}, "Items", "Name", "Status")
    assert [r["Status"] for r in by_status["Items"]] == ["Completed", "Completed", "Failed"]


def test_default_page_size_is_ten() -> None:
    """Without MaxResults a page holds 10 items."""
    many = [{"Name": f"n{i}", "CreationTime": float(i)} for i in range(12)]
    assert len(page(many, {}, "Items", "Name", None)["Items"]) == 10


def test_a_garbled_next_token_is_a_validation_error() -> None:
    """A NextToken the service never issued is a ValidationException naming it."""
    with pytest.raises(SageMakerError, match="Invalid NextToken 'abc'"):
        page(RECORDS, {"NextToken": "abc"}, "Items", "Name", "Status")


def test_page_slice_keeps_the_order_and_takes_its_default_size() -> None:
    """page_slice (ListTags' paging) pages items as given, with the caller's default page size."""
    tags = [{"Key": f"k{i}", "Value": ""} for i in range(60)]
    first = page_slice(tags, {}, "Tags", default_size=50)
    assert first["Tags"] == tags[:50] and first["NextToken"] == "50"
    assert page_slice(tags, {"NextToken": "50"}, "Tags", default_size=50) == {"Tags": tags[50:]}
    with pytest.raises(SageMakerError, match="Invalid NextToken 'abc'") as garbled:
        page_slice(tags, {"NextToken": "abc"}, "Tags", default_size=50)
    assert (garbled.value.code, garbled.value.status) == ("ValidationException", 400)
