"""Serve the console on 127.0.0.1 with the runtime's one HTTP server (waitress, ``local_aws.http.server``)."""

from __future__ import annotations

import socket

from local_aws.constants import API_GATEWAY_MAX_BYTES, HOST
from local_aws.http.server import HttpServer, message_error_renderer
from ops.console.app import ConsoleApp
from ops.console.reader import ConsoleReader
from ops.console.serving import ServingReader
from ops.target import OpsError, Target


def _free(port: int, explicit: bool, flag: str) -> int:
    """``port`` when it is free; a busy default falls back to an ephemeral one, a busy explicit one is an error.

    NOTE: probed first, as local_aws.server does: a waitress server that fails to bind leaves its threads behind.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            if explicit:
                raise OpsError(f"{flag} {port} is in use on {HOST}; pick a free port") from None
            return 0
    return port


def start_console(
    target: Target, api_key: str | None, port: int, explicit: bool = False, flag: str = "--console-port"
) -> HttpServer:
    """Start the console for ``target`` in a background thread; ``.url`` says where, ``.stop()`` ends it."""
    app = ConsoleApp(ConsoleReader(target), ServingReader(target), api_key)
    server = HttpServer(
        app,
        name="console",
        port=_free(port, explicit, flag),
        error_renderer=message_error_renderer,
        # The predict view forwards a file to the REST API, which takes 10 MB; a larger one is refused unread.
        max_body_bytes=API_GATEWAY_MAX_BYTES + 1,
        threads=4,
    ).start()
    app.allowed_hosts = {f"{HOST}:{server.port}", f"localhost:{server.port}"}
    return server
