"""Serve one ``LocalAws`` (ephemeral ports) from this process until SIGTERM: the restart tests' runtime.

Usage: ``python local_aws_process.py HOME``. The runtime writes ``HOME/runtime.json`` (pid, URLs) and
``HOME/credentials.json`` once it serves; SIGTERM stops it in order, SIGKILL simulates a crash,
SIGUSR1 dumps every thread's stack to stderr.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from local_aws.server import LocalAws


def main(argv: list[str]) -> int:
    """Start the runtime in ``argv[1]`` and wait for SIGTERM/SIGINT."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # a test that times out asks for every thread's stack
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    runtime = LocalAws(Path(argv[1]), aws_port=0, api_port=0).start()
    print(f"READY {runtime.endpoints.aws_url}", flush=True)
    try:
        while not stop.wait(1.0):  # a timed wait: the handler runs even if a signal lands while the lock blocks
            pass
    finally:
        logging.getLogger("local_aws").info("stopping on signal")
        runtime.stop()
        logging.getLogger("local_aws").info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
