"""One model worker process (a TorchServe backend worker): loads the model with the toolkit's rules, then runs the
batches the frontend sends over its pipe until the pipe closes.

NOTE: imports only the handler (no HTTP stack), so a worker costs the model and torch, nothing more.
"""

from __future__ import annotations

import logging
import sys
from multiprocessing.connection import Connection

from local_aws.pdeathsig import die_with_parent
from local_aws.sagemaker.failure import clip, fold

LOGGER = logging.getLogger("local_aws.sagemaker.container.worker")


def serve(conn: Connection, model_dir: str, program: str | None, batch_size: int, server_pid: int) -> None:
    """Worker main: report ``("ready", None)`` or ``("failed", reason)``, then answer batches in order.

    The worker dies with its model server (PDEATHSIG): a SIGKILLed server (the instance killed, or the runtime gone)
    must not leave workers behind, and one still loading the model would not see its pipe close for seconds.
    """
    die_with_parent(server_pid)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    from local_aws.sagemaker.container.handler import Handler

    try:
        handler = Handler(model_dir, program, batch_size)
    except Exception as exc:  # start-up boundary: the reason must reach the endpoint's FailureReason
        LOGGER.exception("model load failed")
        conn.send(("failed", clip(fold(f"{type(exc).__name__}: {exc}"), 700)))
        return
    conn.send(("ready", None))
    while True:
        try:
            batch = conn.recv()
        except (EOFError, OSError):  # the frontend is gone (stopped or killed): so is this worker
            return
        conn.send(handler.invoke_batch(batch))
