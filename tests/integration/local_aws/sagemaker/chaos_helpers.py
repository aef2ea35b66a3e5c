"""The session runtime's ``config.toml`` ([chaos] switches), written by a test and removed after it."""

from __future__ import annotations

import os
from pathlib import Path

from local_aws import chaos


class ChaosFile:
    """``write(text)`` replaces the runtime's config.toml (always seen as a change); ``remove()`` ends every fault."""

    def __init__(self, home: Path) -> None:
        self.path = chaos.config_path(home)

    def write(self, text: str) -> None:
        before = self.path.stat() if self.path.exists() else None
        self.path.write_text(text, encoding="utf-8")
        after = self.path.stat()
        if before is not None and (before.st_mtime_ns, before.st_size) == (after.st_mtime_ns, after.st_size):
            os.utime(self.path, ns=(after.st_atime_ns, after.st_mtime_ns + 1_000_000))  # the file clock is coarse

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
