"""The files a running local AWS leaves in its state dir for other processes: ``runtime.json`` and the API key.

Kept apart from ``server.py`` so that reading them (``ops env``, ``ops status`` from another shell) costs no import of
the services themselves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from local_aws.constants import StateLayout
from local_aws.private_file import replace_private
from local_aws.proctable import process_running


def read_runtime(layout: StateLayout) -> dict[str, Any] | None:
    """The serving process's record when that process is still alive, else None."""
    try:
        doc: dict[str, Any] = json.loads(layout.runtime_file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    pid = doc.get("pid")
    # NOTE: kill(0) and kill(-1) address a group or every process, never "this one": refuse such a record outright.
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or not doc.get("aws_url"):
        return None
    return doc if process_running(pid) else None


def read_api_key(layout: StateLayout) -> str | None:
    """The stack's API key, when one was issued for this state dir."""
    try:
        return str(json.loads(layout.api_key.read_text())["value"])
    except (FileNotFoundError, KeyError, TypeError, json.JSONDecodeError):
        return None


def write_private(path: Path, doc: dict[str, Any]) -> None:
    """Write ``doc`` as JSON, mode 0600, replacing ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_private(path, json.dumps(doc, indent=1))
