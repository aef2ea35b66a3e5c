"""CloudWatch Logs on disk: one file per log stream, one ``<epoch ms>\\t<message>`` line per event.

Training hosts, endpoint instances and the Lambda emulation append here in-process; the Logs API (``api.py``) reads
the same files, so ``aws logs filter-log-events`` and ``ops logs`` show what SageMaker and Lambda would have sent to
CloudWatch, and the files survive restarts (moto's Logs backend is in memory only).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote


@dataclass(frozen=True)
class StreamInfo:
    """What DescribeLogStreams reports about one stream."""

    name: str
    creation_ms: int
    first_event_ms: int | None
    last_event_ms: int | None
    stored_bytes: int


@dataclass(frozen=True)
class Event:
    timestamp: int
    message: str
    ingestion: int


def _name(value: str) -> str:
    # Group and stream names contain '/', and streams of SageMaker jobs look like '<job>/algo-1-<epoch>':
    # quoting keeps each one a single file name inside the store.
    return quote(value, safe="")


class LogStore:
    """Log groups as directories, streams as files, under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root) / "groups"
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def _group_dir(self, group: str) -> Path:
        return self.root / _name(group)

    def _stream_file(self, group: str, stream: str) -> Path:
        return self._group_dir(group) / f"{_name(stream)}.log"

    # ----------------------------------------------------------------------------------------------- writes
    def create_group(self, group: str) -> bool:
        """Create a group; False when it already existed."""
        path = self._group_dir(group)
        with self._lock:
            if path.is_dir():
                return False
            path.mkdir(parents=True)
            return True

    def delete_group(self, group: str) -> bool:
        path = self._group_dir(group)
        with self._lock:
            if not path.is_dir():
                return False
            for file in path.iterdir():
                file.unlink()
            path.rmdir()
            return True

    def create_stream(self, group: str, stream: str) -> bool:
        file = self._stream_file(group, stream)
        with self._lock:
            if file.exists():
                return False
            file.parent.mkdir(parents=True, exist_ok=True)
            file.touch()
            return True

    def append(self, group: str, stream: str, events: list[tuple[int, str]]) -> None:
        """Append events (creating the group and stream as SageMaker and Lambda do on first write)."""
        file = self._stream_file(group, stream)
        text = "".join(f"{ts}\t{msg.replace(chr(10), ' ')}\n" for ts, msg in events)
        with self._lock:
            file.parent.mkdir(parents=True, exist_ok=True)
            with open(file, "a", encoding="utf-8") as handle:
                handle.write(text)

    # ----------------------------------------------------------------------------------------------- reads
    def has_group(self, group: str) -> bool:
        return self._group_dir(group).is_dir()

    def groups(self, prefix: str = "") -> list[tuple[str, int]]:
        """(name, creation ms) of every group whose name starts with ``prefix``, sorted by name."""
        out = []
        for path in self.root.iterdir():
            name = unquote(path.name)
            if path.is_dir() and name.startswith(prefix):
                out.append((name, int(path.stat().st_ctime * 1000)))
        return sorted(out)

    def _stream_files(self, group: str, prefix: str) -> list[tuple[str, Path]]:
        """(name, file) of every stream of ``group`` whose name starts with ``prefix``, sorted by name."""
        out = []
        directory = self._group_dir(group)
        for file in directory.glob("*.log") if directory.is_dir() else []:
            name = unquote(file.name[: -len(".log")])
            if name.startswith(prefix):
                out.append((name, file))
        return sorted(out, key=lambda item: item[0])

    def stream_names(self, group: str, prefix: str = "") -> list[str]:
        """The names of the streams of ``group`` that start with ``prefix``, sorted; reads no stream file."""
        return [name for name, _ in self._stream_files(group, prefix)]

    def streams(self, group: str, prefix: str = "") -> list[StreamInfo]:
        """What DescribeLogStreams reports about each stream of ``stream_names(group, prefix)``, in that order."""
        out = []
        for name, file in self._stream_files(group, prefix):
            events = list(self.read(group, name))
            st = file.stat()
            out.append(
                StreamInfo(
                    name=name,
                    creation_ms=int(st.st_ctime * 1000),
                    first_event_ms=events[0].timestamp if events else None,
                    last_event_ms=events[-1].timestamp if events else None,
                    stored_bytes=st.st_size,
                )
            )
        return out

    def has_stream(self, group: str, stream: str) -> bool:
        return self._stream_file(group, stream).is_file()

    def read(self, group: str, stream: str) -> Iterator[Event]:
        """Every event of one stream, oldest first (lines without a timestamp get the file's mtime)."""
        file = self._stream_file(group, stream)
        try:
            handle = open(file, encoding="utf-8", errors="replace")  # noqa: SIM115 - closed by the with below
        except FileNotFoundError:
            return
        fallback = int(file.stat().st_mtime * 1000)
        with handle:
            for raw in handle:
                stamp, tab, message = raw.rstrip("\n").partition("\t")
                if tab and stamp.isdigit():
                    yield Event(int(stamp), message, int(stamp))
                else:
                    yield Event(fallback, raw.rstrip("\n"), fallback)


def now_ms() -> int:
    return int(time.time() * 1000)
