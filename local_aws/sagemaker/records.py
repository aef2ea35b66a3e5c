"""Persistent SageMaker resource records: one JSON file per resource under ``<state>/<kind>/<name>.json``.

Every write replaces the whole file atomically (temp file + rename), so a crash never leaves half a record, and a
restarted server finds exactly what the last one wrote.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from local_aws.s3.records import write_json_atomic

KINDS = ("training-jobs", "tuning-jobs", "models", "endpoint-configs", "endpoints", "tags")


class RecordStore:
    """A tiny document store keyed by (kind, name)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._lock = threading.RLock()
        for kind in KINDS:
            (self.root / kind).mkdir(parents=True, exist_ok=True)

    def _file(self, kind: str, name: str) -> Path:
        # Names are validated against SageMaker's patterns ([a-zA-Z0-9-]) before they get here; tags are keyed by ARN,
        # whose ':' and '/' are made filesystem-safe.
        safe = name.replace("/", "__").replace(":", "_")
        return self.root / kind / f"{safe}.json"

    def put(self, kind: str, name: str, doc: dict[str, Any]) -> None:
        path = self._file(kind, name)
        with self._lock:
            # NOTE: the temp file sits in the record's own directory (same filesystem, so the rename is atomic); its
            # name has no ".json", so all() never reads it.
            write_json_atomic(path, doc, path.parent, indent=1, separators=(",", ": "), sort_keys=True, default=str)

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        path = self._file(kind, name)
        with self._lock:
            if not path.exists():
                return None
            doc: dict[str, Any] = json.loads(path.read_text())
            return doc

    def delete(self, kind: str, name: str) -> None:
        with self._lock:
            self._file(kind, name).unlink(missing_ok=True)

    def all(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(p.read_text()) for p in sorted((self.root / kind).glob("*.json"))]
