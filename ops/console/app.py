"""The console's WSGI app: the page, its vendored assets, and a small JSON backend over :class:`ConsoleReader`.

NOTE: werkzeug (already a dependency: moto's server mode) does the routing, request parsing and safe static-file
joining; the console hand-writes only its routes. The browser never holds AWS credentials: the backend signs its
boto3 calls with the runtime's credentials and calls the REST API with its API key (or SigV4), as the CLI does.

It binds loopback only, but a page on any site can still make a browser send requests to 127.0.0.1, and a
rebinding DNS name can make them same-origin. So every request must name this console in ``Host`` (a rebound name
does not), and a POST must come from this console's own page (``Origin``, which browsers always send on a POST).
"""

from __future__ import annotations

import json
import logging
import mimetypes
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.security import safe_join
from werkzeug.wrappers import Request, Response

from ops.console.reader import ConsoleReader
from ops.console.reader import NotFound as ReadNotFound
from ops.console.serving import ServingReader
from ops.predict import MAX_TOP_K, predict
from ops.target import OpsError

LOGGER = logging.getLogger("ops.console")
STATIC = Path(__file__).resolve().parent / "static"

_ROUTES = Map(
    [
        Rule("/", endpoint="index", methods=["GET"]),
        Rule("/static/<path:name>", endpoint="static", methods=["GET"]),
        Rule("/api/pipeline", endpoint="pipeline", methods=["GET"]),
        Rule("/api/execution", endpoint="execution", methods=["GET"]),
        Rule("/api/training-jobs", endpoint="training_jobs", methods=["GET"]),
        Rule("/api/training-jobs/<name>", endpoint="training_job", methods=["GET"]),
        Rule("/api/training-jobs/<name>/confusion-matrix.png", endpoint="confusion", methods=["GET"]),
        Rule("/api/endpoints", endpoint="endpoints", methods=["GET"]),
        Rule("/api/predict", endpoint="predict", methods=["POST"]),
    ]
)


class ClientFault(Exception):
    """A bad request from the page: answered with ``status`` and ``{"message": ...}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# Every answer is live state (never cache it) and is exactly the type it says (no sniffing a JSON body as HTML).
_NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _json(doc: Any, status: int = 200) -> Response:
    return Response(json.dumps(doc), status=status, content_type="application/json", headers=_NO_STORE)


class ConsoleApp:
    """The WSGI callable.

    Args:
        reader: the pipeline and training reads.
        serving: the endpoint reads.
        api_key: the REST API's key (API_KEY auth mode); None signs the predict call with SigV4 instead.

    ``allowed_hosts`` holds the ``Host`` values it answers to; the server sets it once its port is known.
    """

    def __init__(self, reader: ConsoleReader, serving: ServingReader, api_key: str | None) -> None:
        self.reader = reader
        self.serving = serving
        self.api_key = api_key
        self.allowed_hosts: set[str] = set()
        self._handlers: dict[str, Callable[..., Response]] = {
            "index": lambda request: self._page(),
            "static": lambda request, name: self._file(name),
            "pipeline": lambda request: _json(self.reader.pipeline()),
            "execution": self._execution,
            "training_jobs": lambda request: _json(self.reader.training_jobs()),
            "training_job": lambda request, name: _json(self.reader.training_job(name)),
            "confusion": self._confusion,
            "endpoints": lambda request: _json(
                {"endpoints": self.serving.endpoints(), "invocations": self.serving.recent_invocations()}
            ),
            "predict": self._predict,
        }

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        response = self._respond(request)
        return response(environ, start_response)

    def _respond(self, request: Request) -> Response:
        if self.allowed_hosts and request.host not in self.allowed_hosts:
            return _json({"message": f"Host {request.host!r} is not this console"}, 403)
        try:
            endpoint, args = _ROUTES.bind_to_environ(request.environ).match()
            return self._handlers[str(endpoint)](request, **args)
        except ClientFault as exc:
            return _json({"message": str(exc)}, exc.status)
        except ReadNotFound as exc:
            return _json({"message": str(exc)}, 404)
        except HTTPException as exc:
            return _json({"message": exc.description or exc.name}, exc.code or 500)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            return _json({"message": f"AWS {error.get('Code', '?')}: {error.get('Message', '')}".strip()}, 502)
        except (BotoCoreError, OpsError) as exc:
            return _json({"message": str(exc)}, 502)
        except Exception:
            LOGGER.exception("console request %s %s failed", request.method, request.path)
            return _json({"message": "the console failed to answer; its log has the details"}, 500)

    def _page(self) -> Response:
        """index.html, allowed to load only this console's own files and never to be framed by another site."""
        response = self._file("index.html")
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
        )
        return response

    def _file(self, name: str) -> Response:
        path = safe_join(str(STATIC), name)
        if path is None or not Path(path).is_file():
            raise NotFound(f"no such file: {name}")
        content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type.endswith("javascript"):
            content_type += "; charset=utf-8"
        return Response(Path(path).read_bytes(), content_type=content_type, headers=_NO_STORE)

    def _execution(self, request: Request) -> Response:
        arn = request.args.get("arn", "")
        if not arn.startswith("arn:"):
            raise ClientFault(400, f"?arn= must be an execution ARN (arn:aws:states:...), got {arn!r}")
        return _json(self.reader.execution(arn))

    def _confusion(self, request: Request, name: str) -> Response:
        return Response(self.reader.confusion_matrix_png(name), content_type="image/png", headers=_NO_STORE)

    def _predict(self, request: Request) -> Response:
        """Forward the dropped file, unchanged and with its content type, to the stack's REST API."""
        origin = request.headers.get("Origin")
        if origin is not None and origin.removeprefix("http://") not in self.allowed_hosts:
            raise ClientFault(403, f"Origin {origin!r} is not this console")
        raw_top_k = request.args.get("top_k", "5")
        if not raw_top_k.isdigit() or not 1 <= int(raw_top_k) <= MAX_TOP_K:
            raise ClientFault(400, f"top_k must be an integer in 1..{MAX_TOP_K}, got {raw_top_k!r}")
        body = request.get_data(cache=False)
        content_type = request.content_type or "application/octet-stream"
        started = time.monotonic()
        status, doc = predict(
            self.reader.target, body, content_type, top_k=int(raw_top_k), api_key=self.api_key, timeout=60.0
        )
        latency_ms = (time.monotonic() - started) * 1000
        answer = doc if isinstance(doc, dict) else {"message": str(doc)}
        # The API's own status and body, so a bad file shows the API's message; the round trip as the page saw it.
        return _json({**answer, "status": status, "latencyMs": round(latency_ms, 1)}, status)
