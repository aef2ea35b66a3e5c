"""``python -m local_runtime``."""

from __future__ import annotations

import sys

from local_runtime.cli import main

if __name__ == "__main__":
    sys.exit(main())
