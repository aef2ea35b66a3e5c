"""Serve the console on 127.0.0.1 with the runtime's one HTTP server (waitress, ``local_aws.http.server``)."""

from __future__ import annotations

from local_aws.constants import API_GATEWAY_MAX_BYTES, HOST
from local_aws.http.server import HttpServer, message_error_renderer, port_is_free
from ops.console.app import ConsoleApp
from ops.console.reader import ConsoleReader
from ops.console.serving import ServingReader
from ops.target import OpsError, Target


def _free(port: int, explicit: bool, flag: str) -> int:
    """``port`` when it is free; a busy default falls back to an ephemeral one, a busy explicit one is an error."""
    if port_is_free(port):
        return port
    if explicit:
        raise OpsError(f"{flag} {port} is in use on {HOST}; pick a free port")
    return 0


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
