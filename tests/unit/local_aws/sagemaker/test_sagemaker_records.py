"""local_aws.sagemaker.records: one JSON file per resource, replaced whole on every write."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from local_aws.sagemaker.records import RecordStore


def test_a_record_file_is_indented_sorted_json_and_round_trips(tmp_path: Path) -> None:
    """The file holds ``json.dumps(doc, indent=1, sort_keys=True, default=str)``; get() reads it back."""
    store = RecordStore(tmp_path)
    doc = {"b": 1.5, "a": [1, {"z": None}], "When": datetime.datetime(2024, 1, 2), "Name": "é"}
    store.put("models", "m1", doc)
    path = tmp_path / "models" / "m1.json"
    assert path.read_bytes() == json.dumps(doc, indent=1, sort_keys=True, default=str).encode()
    assert store.get("models", "m1") == {"b": 1.5, "a": [1, {"z": None}], "When": "2024-01-02 00:00:00", "Name": "é"}
    assert store.get("models", "missing") is None


def test_rewrites_leave_no_temp_file_and_all_lists_each_record_once(tmp_path: Path) -> None:
    """A rewrite replaces the file (no temp file left for all() to trip on); tags keyed by ARN get safe names."""
    store = RecordStore(tmp_path)
    for value in range(3):
        store.put("endpoints", "ep", {"EndpointName": "ep", "N": value})
    arn = "arn:aws:sagemaker:r:1:endpoint/ep"
    store.put("tags", arn, {"ResourceArn": arn, "Tags": []})
    assert sorted(p.name for p in (tmp_path / "endpoints").iterdir()) == ["ep.json"]
    assert store.all("endpoints") == [{"EndpointName": "ep", "N": 2}]
    assert store.get("tags", arn) == {"ResourceArn": arn, "Tags": []}
    store.delete("endpoints", "ep")
    assert store.all("endpoints") == []
