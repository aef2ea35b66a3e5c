"""Files only the user may read, replaced atomically: the runtime record, the API key, the process records."""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def replace_private(path: Path, text: str) -> None:
    """Atomically replace ``path`` with ``text``, mode 0600: readers see the old file or the new one, never half.

    NOTE: the temporary file has a name of its own per call and is created (``O_EXCL``) with mode 0600, so it is
    never readable by anyone else, not even for an instant, and a temporary file left behind by a crash is neither
    reused nor able to lend the new file its mode; ``fchmod`` makes it 0600 whatever the umask.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(fd, 0o600)
            handle.write(text.encode())
            handle.flush()
            os.fsync(fd)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
