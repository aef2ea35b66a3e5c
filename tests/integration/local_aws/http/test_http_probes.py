"""Raw-socket probes of every port the local runtime serves: the AWS edge, the REST API and a model container.

Each test guards against one defect a review found in the OLD runtime's hand-written ``http.server`` servers (the
docstrings name it); the new runtime serves every port on ``local_aws/http/server.py`` (waitress), and these probes
hold it to that. Requests are built byte by byte (``http_probe_helpers``) and sent to 127.0.0.1 only, every read
with a deadline and every loop bounded. Where a probe finds a defect in code this module does not own, the test is
``xfail(strict=True)`` with the defect in its reason, so it turns into a failure the day the defect is fixed.
"""

from __future__ import annotations

import collections
import contextlib
import json
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
from http_probe_fixtures import JSON_11, PORT_NAMES, Port, ProbeEndpoint, Requests
from http_probe_helpers import (
    HOST,
    REPO_ROOT,
    Exchange,
    FuzzBodies,
    FuzzRequest,
    Headers,
    Response,
    Signer,
    api_request,
    build_request,
    chunked,
    container_request,
    corpus_image,
    edge_request,
    exchange,
    hwm_kb,
    leaks,
    predict_corpus,
    reset_peak_rss,
    rss_kb,
)

from local_aws.constants import (
    API_GATEWAY_MAX_BYTES,
    AWS_API_MAX_BODY_BYTES,
    INVOKE_ENDPOINT_MAX_BYTES,
    S3_MAX_PUT_BYTES,
)
from local_aws.http.server import HttpServer, message_error_renderer
from tests.integration.local_aws_fixtures import Aws

# What each port refuses unread: waitress refuses a declared body at or above max_body_bytes.
LIMITS = {
    "edge": S3_MAX_PUT_BYTES,  # max(S3_MAX_PUT_BYTES, AWS_API_MAX_BODY_BYTES), passed without the +1 (see below)
    "api": API_GATEWAY_MAX_BYTES + 1,
    "container": INVOKE_ENDPOINT_MAX_BYTES + 1,
}
RSS_SLACK_KB = 8 * 1024  # "a few MB": a body read into memory would cost at least the 6-10 MB declared
HALF_OPEN = 210
MODEL_ERROR_RX = re.compile(
    r'Received client error \((\d{3})\) from primary with message "(.*)"\. See https://us-east-1\.console\.aws\.'
    r"amazon\.com/cloudwatch/home\?region=us-east-1#logEventViewer:group=/aws/sagemaker/Endpoints/[\w-]+ in account "
    r"\d{12} for more information\.",
    re.DOTALL,
)


# ------------------------------------------------------------------------------------------------ shared checks


def assert_error_shape(port: str, response: Response, statuses: tuple[int, ...]) -> None:
    """``response`` is one of ``statuses`` in the port's own JSON error shape (never HTML, never text, no leak)."""
    assert response.status in statuses, (response.status, response.body[:300])
    content_type = (response.header("Content-Type") or "").lower()
    assert "html" not in content_type and "text/plain" not in content_type, content_type
    doc = response.json()
    if port == "edge":
        assert content_type.startswith("application/x-amz-json"), content_type
        assert set(doc) == {"__type", "message"}, doc
        assert response.header("x-amzn-ErrorType") == doc["__type"]
    else:
        assert content_type.startswith("application/json"), content_type
        assert isinstance(doc.get("message"), str) and doc["message"], doc
    assert not leaks(response), leaks(response)


def assert_nothing_smuggled(ex: Exchange, responses: int = 1) -> None:
    """Exactly ``responses`` status lines came back and none of them carries predictions."""
    assert ex.status_lines == responses, ex.raw[:1500]
    assert len(ex.responses) == responses and not ex.leftover, ex.raw[:1500]
    assert b"predictions" not in ex.raw, ex.raw[:1500]


def close_quietly(socks: list[socket.socket]) -> None:
    """Close every socket, ignoring the ones the server already tore down."""
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.close()


# ------------------------------------------------------------------------------------------------ 1. smuggling


@pytest.mark.parametrize("name", PORT_NAMES)
def test_chunked_body_holding_a_complete_request_is_only_a_body(
    name: str, ports: dict[str, Port], requests_for: Requests, warm: None
) -> None:
    """A correctly chunk-encoded request whose chunk data is a complete prediction request gets ONE answer.

    Guards the OLD runtime's smuggling defect: Transfer-Encoding was ignored, so the chunk data was parsed as a
    second request and a ``POST /predict`` hidden in a ``POST /health`` body came back as a second 200 with
    predictions on the same connection.
    """
    inner = requests_for.predict(name)
    ex = exchange(ports[name].port, requests_for.outer(name, inner, None), quiet_s=0.6)
    assert_nothing_smuggled(ex)
    assert ex.first.status < 500, ex.raw[:500]


@pytest.mark.parametrize("name", PORT_NAMES)
def test_chunked_body_then_pipelined_request_gets_exactly_two_answers(
    name: str, ports: dict[str, Port], requests_for: Requests, warm: None
) -> None:
    """The chunked body is consumed exactly (not ignored, not over-read): the next pipelined request is answered.

    Guards the smuggling defect from the other side: a server that skipped Transfer-Encoding would answer the chunk
    data (predictions) and then choke on the marker; one that over-read would swallow the marker.
    """
    data = requests_for.outer(name, requests_for.predict(name)) + requests_for.marker(name)
    ex = exchange(ports[name].port, data, quiet_s=0.6, expect=2)
    assert_nothing_smuggled(ex, responses=2)
    assert requests_for.is_marker(name, ex.responses[1]), ex.raw[:1500]


def _cl_shorter(body: bytes) -> tuple[Headers, bytes]:
    # CL.TE: a server that trusted Content-Length would read 4 bytes and parse the rest as a request.
    return [("Content-Length", "4"), ("Transfer-Encoding", "chunked")], chunked(body)


def _cl_covers_trailer(body: bytes) -> tuple[Headers, bytes]:
    # TE.CL: the chunked body ends at once; Content-Length covers the request after it.
    wire = b"0\r\n\r\n" + body
    return [("Content-Length", str(len(wire))), ("Transfer-Encoding", "chunked")], wire


CL_TE_DEFECT = (
    "local_aws/http/server.py (waitress 3.0.2's HTTPRequestParser): a request with both Content-Length and "
    "Transfer-Encoding: chunked is de-chunked and the connection kept open, so bytes the Content-Length covers past "
    "the last chunk are served as a second request (here a 200 with predictions): the TE.CL desync behind any front "
    "end that frames by Content-Length. RFC 9112 §6.1: a server MAY reject such a request and MUST close the "
    "connection after responding to it. Fix: a parser subclass (set as _Channel.parser_class) that sets a 400 "
    "error, or connection_close, when both headers are present."
)


@pytest.mark.parametrize("name", PORT_NAMES)
@pytest.mark.parametrize(
    "framing",
    [
        pytest.param(_cl_shorter, id="cl-shorter-than-chunks"),
        pytest.param(
            _cl_covers_trailer,
            id="cl-covers-trailing-request",
        ),
    ],
)
def test_content_length_with_chunked_never_serves_a_second_request(
    name: str,
    framing: Callable[[bytes], tuple[Headers, bytes]],
    ports: dict[str, Port],
    requests_for: Requests,
    warm: None,
) -> None:
    """Both Content-Length and Transfer-Encoding: chunked: whatever the server trusts, no hidden request is served.

    Guards the OLD runtime's smuggling defect in its CL.TE and TE.CL forms (the classic desync with any front end
    that reads the other header).
    """
    ex = exchange(ports[name].port, requests_for.outer(name, requests_for.predict(name), framing), quiet_s=0.8)
    assert ex.status_lines <= 1, ex.raw[:1500]
    assert b"predictions" not in ex.raw, ex.raw[:1500]


@pytest.mark.parametrize("name", PORT_NAMES)
@pytest.mark.parametrize("coding", ["gzip", "identity", "gzip, chunked", "chunked, gzip", "deflate"])
def test_unsupported_transfer_encoding_is_refused(
    name: str, coding: str, ports: dict[str, Port], requests_for: Requests, warm: None
) -> None:
    """A Transfer-Encoding other than chunked is 501 (or 400) in the port's error shape, and the connection closes.

    Guards the OLD runtime's smuggling defect: any Transfer-Encoding was ignored and the body parsed as requests.
    """
    body = requests_for.predict(name)
    data = requests_for.outer(name, body, lambda raw: ([("Transfer-Encoding", coding)], chunked(raw)))
    ex = exchange(ports[name].port, data, quiet_s=0.6)
    assert_nothing_smuggled(ex)
    assert_error_shape(name, ex.first, (400, 501))
    assert ex.closed


MALFORMED_CHUNKS = {
    "not-hex": b"zz\r\nab\r\n0\r\n\r\n",
    "negative": b"-1\r\nab\r\n0\r\n\r\n",
    "0x-prefix": b"0x2\r\nab\r\n0\r\n\r\n",
    "plus-sign": b"+2\r\nab\r\n0\r\n\r\n",
    "underscore": b"1_0\r\n0123456789abcdef\r\n0\r\n\r\n",
    "space-before-size": b" 2\r\nab\r\n0\r\n\r\n",
    "data-longer-than-size": b"2\r\nabcd\r\n0\r\n\r\n",
    "no-crlf-after-data": b"2\r\nab0\r\n\r\n",
}
HUGE_CHUNK_DEFECT = (
    "local_aws/http/server.py (waitress's ChunkedReceiver): a chunk-size over the port's max_body_bytes (about "
    "2**80) is accepted and the server waits for its data until the idle timeout, where a declared Content-Length "
    "that large is refused with 413 at once; the body limit is only enforced as bytes arrive. Fix: refuse a "
    "chunk-size whose value (or running total) reaches max_request_body_size with 413 as soon as the size line is "
    "parsed."
)


@pytest.mark.parametrize("name", PORT_NAMES)
@pytest.mark.parametrize(
    "chunk",
    [
        *(pytest.param(raw, id=label) for label, raw in MALFORMED_CHUNKS.items()),
        pytest.param(
            b"ffffffffffffffffffff\r\nab",
            id="size-overflows",
        ),
    ],
)
def test_malformed_chunk_size_is_refused(
    name: str, chunk: bytes, ports: dict[str, Port], requests_for: Requests, warm: None
) -> None:
    """Malformed chunk framing is refused at once (400/413, the port's error shape, connection closed).

    Guards the OLD runtime's smuggling defect: without de-chunking, chunk lines were read as request lines.
    """
    data = requests_for.outer(name, b"ab", lambda raw: ([("Transfer-Encoding", "chunked")], chunk))
    ex = exchange(ports[name].port, data + requests_for.predict(name), timeout_s=2.0, quiet_s=0.5)
    assert_nothing_smuggled(ex)
    assert_error_shape(name, ex.first, (400, 413))
    assert ex.closed


# ------------------------------------------------------------------------------------------------ 2. Content-Length

BAD_LENGTHS: dict[str, Headers] = {
    "minus-one": [("Content-Length", "-1")],
    "letters": [("Content-Length", "abc")],
    "plus-sign": [("Content-Length", "+10")],
    "exponent": [("Content-Length", "1e3")],
    "hex": [("Content-Length", "0x10")],
    "list": [("Content-Length", "2, 3")],
    "two-differing": [("Content-Length", "2"), ("Content-Length", "3")],
}


@pytest.mark.parametrize("name", PORT_NAMES)
@pytest.mark.parametrize("lengths", BAD_LENGTHS.values(), ids=BAD_LENGTHS.keys())
def test_malformed_content_length_is_400_and_closes(
    name: str, lengths: Headers, ports: dict[str, Port], requests_for: Requests, warm: None
) -> None:
    """A Content-Length that is not one run of digits is 400 in the port's shape, at once, and the connection closes.

    Guards the OLD runtime's Content-Length defects: ``-1`` read until EOF past the 10 MB check, ``abc`` got no
    response at all. The bytes after the headers are a complete prediction request, which must not be served.
    """
    data = requests_for.framing_probe(name, lengths, b"0123456789") + requests_for.predict(name)
    ex = exchange(ports[name].port, data, timeout_s=2.0, quiet_s=0.5)
    assert_nothing_smuggled(ex)
    assert_error_shape(name, ex.first, (400,))
    assert ex.closed and ex.elapsed_s < 2.0


S3_SHAPE_DEFECT = (
    "local_aws/server.py:208: the edge's HttpServer renders every transport error with json_error_renderer, so an "
    'S3 request (the edge serves S3) with bad framing gets {"__type": "SerializationException"} JSON; S3 answers '
    "XML <Error><Code>BadRequest</Code><Message>An error occurred when parsing the HTTP request.</Message>, which "
    "local_aws/s3/responses.py:s3_error_renderer already renders. Fix: let ErrorRenderer see the parsed request "
    "headers (waitress's request.headers in _ErrorTask) and have the edge pick s3_error_renderer when "
    "guess_service() says s3."
)


def test_edge_answers_an_s3_request_with_bad_content_length_in_s3_xml(
    ports: dict[str, Port], signer: Signer, local_aws: Aws
) -> None:
    """An S3 PUT with ``Content-Length: abc`` on the edge is 400 in S3's XML error shape (what an S3 client parses).

    Guards the OLD runtime's ``Content-Length: abc`` defect (no response at all) for the S3 side of the edge.
    """
    port = ports["edge"].port
    target = f"/{local_aws.output('ArtifactBucketName')}/http-probes/bad-length"
    headers = signer.headers("s3", "PUT", port, target, [], b"abc")
    ex = exchange(port, build_request("PUT", target, [*headers, ("Content-Length", "abc")], b"abc"), timeout_s=2.0)
    assert ex.first.status == 400 and ex.closed
    assert "xml" in (ex.first.header("Content-Type") or ""), ex.first.header("Content-Type")
    assert b"<Code>BadRequest</Code>" in ex.first.body, ex.first.body


def _measure_refusal(port: Port, data: bytes) -> tuple[Exchange, int, int, int]:
    """Send ``data`` (headers only); returns the exchange, RSS before, RSS after and peak RSS after, in kB."""
    reset_peak_rss(port.pid)
    before = rss_kb(port.pid)
    ex = exchange(port.port, data, timeout_s=2.0, quiet_s=0.3)
    return ex, before, rss_kb(port.pid), hwm_kb(port.pid)


@pytest.mark.parametrize("name", PORT_NAMES)
def test_declared_body_over_the_limit_is_refused_before_it_is_read(
    name: str, ports: dict[str, Port], requests_for: Requests, warm: None, record_property: Callable[..., None]
) -> None:
    """Headers declaring one byte over the port's limit get 413 at once, with no body sent, and memory stays flat.

    Guards the OLD runtime's Content-Length defect where one request took the process from 410 to 818 MB: the
    limit must be enforced on the declaration, before a byte of the body is read.
    """
    port = ports[name]
    declared = LIMITS[name]
    ex, before, after, peak = _measure_refusal(
        port, requests_for.framing_probe(name, [("Content-Length", str(declared))])
    )
    record_property("rss_kb", {"before": before, "after": after, "peak": peak, "declared": declared})
    print(f"[oversize {name}] declared={declared} rss_before={before}kB rss_after={after}kB peak={peak}kB")
    assert_error_shape(name, ex.first, (413,))
    assert ex.closed and ex.elapsed_s < 2.0
    assert after - before < RSS_SLACK_KB and peak - before < RSS_SLACK_KB, (before, after, peak)


@pytest.mark.parametrize("name", ["api", "container"])
def test_declared_body_at_the_limit_is_waited_for(name: str, ports: dict[str, Port], requests_for: Requests) -> None:
    """A body of exactly the service's limit (API 10 MB, InvokeEndpoint 6,291,456 B) is not refused up front.

    The other side of the 413 boundary: the limit is AWS's, not one byte less.
    """
    declared = LIMITS[name] - 1
    ex = exchange(
        ports[name].port, requests_for.framing_probe(name, [("Content-Length", str(declared))]), timeout_s=1.0
    )
    assert not ex.responses and not ex.closed, ex.raw[:300]


EDGE_S3_LIMIT_DEFECT = (
    "local_aws/server.py:209: the edge passes max_body_bytes=max(S3_MAX_PUT_BYTES, AWS_API_MAX_BODY_BYTES) without "
    "the +1 every other caller adds, and waitress refuses a declared body AT OR ABOVE max_body_bytes, so a 5 GiB "
    "single PUT (S3's limit is 5 GiB inclusive) gets 413 before it is read. Fix: S3_MAX_PUT_BYTES + 1."
)


def test_edge_waits_for_an_s3_put_of_exactly_5_gib(ports: dict[str, Port], signer: Signer, local_aws: Aws) -> None:
    """A signed S3 PUT declaring exactly 5 GiB (S3's single-PUT maximum) is not refused before its body arrives."""
    port = ports["edge"].port
    target = f"/{local_aws.output('ArtifactBucketName')}/http-probes/five-gib"
    headers = signer.headers("s3", "PUT", port, target, [("x-amz-content-sha256", "UNSIGNED-PAYLOAD")], b"")
    data = build_request("PUT", target, [*headers, ("Content-Length", str(S3_MAX_PUT_BYTES))])
    ex = exchange(port, data, timeout_s=1.0)
    assert not ex.responses, ex.raw[:300]


EDGE_JSON_LIMIT_DEFECT = (
    "local_aws/server.py:209 + local_aws/edge.py:57-58: the edge's only body limit is S3's 5 GiB, and for every "
    "non-S3 service the edge reads the whole body into memory BEFORE the SigV4 check; constants.py says of "
    "AWS_API_MAX_BODY_BYTES (16 MiB) 'the edge refuses larger bodies unread', but nothing enforces it. Measured in "
    "an exploratory run: one UNSIGNED 200 MiB POST with X-Amz-Target SageMaker.ListModels took the runtime from "
    "896 MB to 1,125 MB peak RSS before its 400 MissingAuthenticationToken. Fix: in Edge.__call__, answer 413 in the "
    "service's shape when a non-streamed service's CONTENT_LENGTH exceeds AWS_API_MAX_BODY_BYTES, before reading "
    "wsgi.input."
)


def test_edge_refuses_a_json_api_body_over_its_limit_unread(ports: dict[str, Port], requests_for: Requests) -> None:
    """A JSON-protocol call declaring AWS_API_MAX_BODY_BYTES + 1 is refused with 413 at once, body unsent.

    Guards the OLD runtime's Content-Length defect (a body read into memory past the size check) on the edge.
    """
    data = requests_for.framing_probe("edge", [("Content-Length", str(AWS_API_MAX_BODY_BYTES + 1))])
    ex = exchange(ports["edge"].port, data, timeout_s=2.0)
    assert_error_shape("edge", ex.first, (413,))


API_413_DEFECT = (
    "local_aws/server.py:273: the REST API's HttpServer renders transport errors with message_error_renderer, so "
    'its 413 is {"message": "Request Entity Too Large"} without x-amzn-ErrorType, while API Gateway\'s '
    "REQUEST_TOO_LARGE gateway response (local_aws/apigateway/gateway.py REQUEST_TOO_LARGE) is 413 "
    '{"message":"Request Too Long"} with x-amzn-ErrorType and honours the template\'s GatewayResponses. Fix: an '
    "error_renderer for the API that renders gateway_response(REQUEST_TOO_LARGE, spec, request_id) (and DEFAULT_4XX "
    "for 400s)."
)


def test_api_oversize_answer_is_api_gateways_request_too_large(ports: dict[str, Port], requests_for: Requests) -> None:
    """The REST API's 413 for a body over 10 MB is API Gateway's REQUEST_TOO_LARGE gateway response, with the
    template's message for it (which names the real image limit; AWS's default is "Request Too Long")."""
    data = requests_for.framing_probe("api", [("Content-Length", str(LIMITS["api"]))])
    ex = exchange(ports["api"].port, data, timeout_s=2.0)
    assert ex.first.status == 413
    assert "images up to 4700160 bytes" in ex.first.json()["message"]
    assert ex.first.header("x-amzn-ErrorType")


# ------------------------------------------------------------------------------------------------ 3. slow clients

PARTIALS = (
    b"GET / HT",  # a partial request line
    b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",  # partial headers
    b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\nabc",  # a stalled body
)


def _open_half_open(port: int, count: int) -> list[socket.socket]:
    """``count`` connections, each holding a partial request line, partial headers or a stalled body."""
    socks: list[socket.socket] = []
    try:
        for i in range(count):
            sock = socket.create_connection((HOST, port), timeout=5)
            sock.sendall(PARTIALS[i % len(PARTIALS)])
            socks.append(sock)
    except BaseException:
        close_quietly(socks)
        raise
    return socks


def _still_open(sock: socket.socket) -> bool:
    """The server has not closed (or reset) this connection yet."""
    sock.setblocking(False)
    try:
        return sock.recv(1) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


@pytest.mark.parametrize("name", PORT_NAMES)
def test_half_open_connections_pin_no_threads_and_block_no_one(
    name: str, ports: dict[str, Port], requests_for: Requests, warm: None, record_property: Callable[..., None]
) -> None:
    """With 210 half-open connections held, a fresh request is answered within 2 s and no thread is added.

    Guards the OLD runtime's slow-client defect: no read or idle timeouts, a thread per connection, so 400
    half-open connections held 406 threads indefinitely.
    """
    port = ports[name]
    threads_before = port.threads()
    socks = _open_half_open(port.port, HALF_OPEN)
    try:
        time.sleep(0.3)  # let the server accept and read what each sent
        threads_during = port.threads()
        ex = exchange(port.port, requests_for.marker(name), timeout_s=2.0, quiet_s=0)
        open_now = sum(_still_open(s) for s in socks[:30])
    finally:
        close_quietly(socks)
    record_property("threads", {"before": threads_before, "during": threads_during})
    print(
        f"[half-open {name}] connections={HALF_OPEN} threads before={threads_before} during={threads_during} "
        f"fresh request answered in {ex.elapsed_s:.3f}s"
    )
    assert requests_for.is_marker(name, ex.first) and ex.elapsed_s < 2.0, ex.raw[:300]
    assert open_now == 30, "the half-open connections were dropped before the idle timeout"
    assert threads_during <= threads_before + 2, (threads_before, threads_during)


def test_idle_and_stalled_connections_are_closed_after_the_idle_timeout() -> None:
    """``HttpServer(idle_timeout_s=2)`` closes half-open, stalled and idle keep-alive connections within a few seconds.

    Guards the OLD runtime's slow-client defect (no read or idle timeout: half-open connections held forever). The
    real ports run with the 30 s default, so the timeout itself is checked here on a tiny WSGI app.
    """

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
        return [b"{}"]

    with HttpServer(
        app, name="idle-probe", max_body_bytes=1024, idle_timeout_s=2, error_renderer=message_error_renderer, threads=2
    ) as server:
        socks = _open_half_open(server.port, 30)
        try:
            idle = []
            for _ in range(5):  # a complete exchange, then silence on a keep-alive connection
                sock = socket.create_connection((HOST, server.port), timeout=5)
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert sock.recv(4096).startswith(b"HTTP/1.1 200")
                idle.append(sock)
            socks += idle
            time.sleep(0.5)
            assert all(_still_open(s) for s in socks), "closed before the idle timeout"
            deadline = time.monotonic() + 8.0
            while time.monotonic() < deadline and any(_still_open(s) for s in socks):
                time.sleep(0.25)
            closed = sum(not _still_open(s) for s in socks)
            fresh = exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", timeout_s=2.0, quiet_s=0)
        finally:
            close_quietly(socks)
    assert closed == len(socks), f"{len(socks) - closed} of {len(socks)} connections outlived the idle timeout"
    assert fresh.first.status == 200


# ------------------------------------------------------------------------------------------------ 4. methods, routes

MISSING_TOKEN = {"message": "Missing Authentication Token"}
AUTH_CODES = (
    "MissingAuthenticationTokenException",
    "UnrecognizedClientException",
    "IncompleteSignatureException",
    "InvalidSignatureException",
)


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("TRACE", "/predict"),
        ("FOO", "/predict"),
        ("OPTIONS", "/predict"),
        ("DELETE", "/predict"),
        ("TRACE", "/"),
        ("GET", "/nope"),
        ("POST", "/predict/extra"),
        ("GET", "/Health"),
        ("PUT", "/health"),
    ],
)
def test_api_unknown_method_or_route_is_missing_authentication_token(
    method: str, path: str, signed: bool, ports: dict[str, Port], signer: Signer
) -> None:
    """Any method/route the API does not define is 403 ``{"message":"Missing Authentication Token"}`` JSON.

    Guards the OLD runtime's defect: TRACE and FOO got http.server's HTML 501, where API Gateway answers the
    MISSING_AUTHENTICATION_TOKEN gateway response (JSON, with x-amzn-ErrorType), signed or not.
    """
    port = ports["api"].port
    if signed:
        data = signer.request("execute-api", method, port, path, [])
    else:
        data = build_request(method, path, [("Host", f"{HOST}:{port}")])
    ex = exchange(port, data, timeout_s=3.0, quiet_s=0)
    response = ex.first
    assert response.status == 403, response.body
    assert (response.header("Content-Type") or "").startswith("application/json")
    assert response.json() == MISSING_TOKEN
    assert response.header("x-amzn-ErrorType")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/nope"),
        ("TRACE", "/invocations"),
        ("FOO", "/ping"),
        ("GET", "/invocations"),
        ("POST", "/ping"),
        ("DELETE", "/invocations"),
        ("GET", "/ping/../invocations"),
    ],
)
def test_container_unknown_path_or_method_is_json_404(method: str, path: str, ports: dict[str, Port]) -> None:
    """The model container answers anything but ``GET /ping`` and ``POST /invocations`` with a JSON 404.

    Guards the OLD runtime's defect: unknown methods got http.server's HTML 501 page.
    """
    ex = exchange(ports["container"].port, build_request(method, path, [("Host", HOST)]), timeout_s=3.0, quiet_s=0)
    assert ex.first.status == 404, ex.first.body
    assert ex.first.json() == {"message": "Not found"}
    assert (ex.first.header("Content-Type") or "").startswith("application/json")


@pytest.mark.parametrize(
    ("method", "path", "headers", "shape"),
    [
        ("TRACE", "/", [], "s3"),
        ("FOO", "/", [], "s3"),
        ("OPTIONS", "/", [], "s3"),
        ("DELETE", "/x/y", [], "s3"),
        ("GET", "/endpoints/dogbreed-dev/invocations", [], "rest-json"),
        ("POST", "/endpoints/dogbreed-dev/invocations", [("Content-Type", "image/jpeg")], "rest-json"),
        ("POST", "/", [("X-Amz-Target", "SageMaker.ListModels"), ("Content-Type", JSON_11)], "json"),
        ("POST", "/", [("X-Amz-Target", "AWSStepFunctions.ListStateMachines")], "json"),
        ("POST", "/", [("Content-Type", "application/x-www-form-urlencoded")], "query"),
        (
            "FOO",
            "/",
            [
                (
                    "Authorization",
                    "AWS4-HMAC-SHA256 Credential=AKIAX/20240101/us-east-1/sagemaker/aws4_request, "
                    "SignedHeaders=host, Signature=00",
                )
            ],
            "json",
        ),
    ],
    ids=[
        "trace",
        "foo",
        "options",
        "delete",
        "get-invocations",
        "post-invocations",
        "sagemaker",
        "states",
        "sts-form",
        "forged-sagemaker",
    ],
)
def test_edge_unsigned_request_gets_aws_auth_error(
    method: str, path: str, headers: Headers, shape: str, ports: dict[str, Port]
) -> None:
    """An unsigned or forged request on the edge gets AWS's own auth error in the addressed protocol's shape.

    Guards the OLD runtime's defect: TRACE/FOO got http.server's HTML 501; AWS never answers HTML.
    """
    port = ports["edge"].port
    body = b"Action=GetCallerIdentity&Version=2011-06-15" if shape == "query" else b""
    all_headers = [("Host", f"{HOST}:{port}"), *headers, ("Content-Length", str(len(body)))]
    ex = exchange(port, build_request(method, path, all_headers, body), timeout_s=3.0, quiet_s=0)
    response = ex.first
    content_type = (response.header("Content-Type") or "").lower()
    assert response.status in (400, 403), response.body
    assert "html" not in content_type and "<html" not in response.text.lower(), response.text[:300]
    assert not leaks(response), leaks(response)
    if shape in ("json", "rest-json"):  # awsJson carries __type, rest-json the x-amzn-ErrorType header
        doc = response.json()
        code = doc.get("__type") if shape == "json" else response.header("x-amzn-ErrorType")
        assert code in AUTH_CODES, (code, doc)
        assert doc.get("message") or doc.get("Message"), doc
    else:
        assert "xml" in content_type, content_type
        assert b"<Code>" in response.body and b"</Error>" in response.body, response.body


@dataclass(frozen=True)
class EdgeFault:
    """A signed request that is the client's fault, and what the addressed service answers."""

    service: str
    method: str
    target: str
    headers: Headers
    body: bytes = b""


FORM = [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")]


def _json_target(target: str, version: str = "1.1") -> Headers:
    """Headers of an awsJson call."""
    return [("Content-Type", f"application/x-amz-json-{version}"), ("X-Amz-Target", target)]


STATES_DEFECT = (
    "local_aws/stepfunctions/api.py:127-132: StepFunctionsApi._moto catches only LookupError, so moto's MotoError "
    "for a bad ARN (InvalidArn, a 400 on AWS) escapes the handler and waitress answers 500 InternalFailure. Fix: "
    "catch MotoError in StepFunctionsApi.__call__ and answer its status/code/message."
)
STATES_PASSTHROUGH_DEFECT = (
    "local_aws/stepfunctions/api.py:91-92 hands operations it does not overlay straight to moto, whose "
    "request parsing raises on a non-UTF-8 body / unknown operation; the exception escapes and waitress answers "
    "500 InternalFailure (AWS: 400 SerializationException / UnknownOperationException). Fix: validate the body "
    "(json.loads) and the operation name before passing through, or catch exceptions from moto and answer 400."
)
LOGS_DEFECT = (
    "local_aws/logs/api.py:99-104 (LogsApi.__call__) catches only LogsError and KeyError; a logGroupName that is "
    "not a string raises TypeError in local_aws/logs/store.py:39 (quote) and waitress answers 500 InternalFailure "
    "(AWS: 400 SerializationException/InvalidParameterException). Fix: type-check parameters (or catch "
    "TypeError/ValueError and answer 400 InvalidParameterException)."
)
MOTO_500_DEFECT = (
    "local_aws/edge.py:72 -> local_aws/moto_services.py:51: moto's exceptions on malformed client input (int('abc') "
    "for MaxItems, int('%FF') for NextToken, a missing required parameter, an unknown action or signing name) "
    "escape moto's app and waitress answers 500 InternalFailure; AWS answers 400 (ValidationError/MalformedInput/"
    "InvalidParameterValue) in the service's protocol. Fix: wrap the moto fallback: catch exceptions raised before "
    "moto produced a response and answer 400 in protocol_for(service)'s shape; answer an unknown signing name with "
    "400 UnknownOperation (never a 500)."
)
MOTO_HTML_DEFECT = (
    "local_aws/edge.py:72 -> local_aws/moto_services.py:51: requests moto cannot route (a query body that is not a "
    "form, a service the local runtime does not serve such as lambda) are answered by moto/Flask with "
    "Content-Type text/html (an empty 404, or Flask's HTML 404 page); AWS never answers HTML. Fix: map "
    "moto's unroutable 404s to the protocol's error shape (query XML / JSON) in the fallback wrapper."
)
EDGE_FAULTS = [
    pytest.param(
        EdgeFault("sagemaker", "POST", "/", _json_target("SageMaker.DescribeEndpoint"), b'{"EndpointName": [1]}'),
        id="sagemaker-wrong-type",
    ),
    pytest.param(
        EdgeFault("sagemaker", "POST", "/", _json_target("SageMaker.NoSuchOp"), b"{}"), id="sagemaker-unknown-op"
    ),
    pytest.param(
        EdgeFault("sagemaker", "POST", "/", _json_target("SageMaker.ListModels"), b"\xff\xfe{"), id="sagemaker-non-utf8"
    ),
    pytest.param(
        EdgeFault("sagemaker", "POST", "/endpoints/no-such-endpoint/invocations", [], b"{}"),
        id="runtime-unknown-endpoint",
    ),
    pytest.param(EdgeFault("logs", "POST", "/", _json_target("Logs_20140328.NoSuchOp"), b"{}"), id="logs-unknown-op"),
    pytest.param(
        EdgeFault("logs", "POST", "/", _json_target("Logs_20140328.DescribeLogGroups"), b"\xff{"), id="logs-non-utf8"
    ),
    pytest.param(
        EdgeFault("cloudformation", "POST", "/", FORM, b"Action=DescribeStacks&Version=2010-05-15&StackName=x%00"),
        id="cloudformation-unknown-stack",
    ),
    pytest.param(
        EdgeFault(
            "states", "POST", "/", _json_target("AWSStepFunctions.DescribeExecution", "1.0"), b'{"executionArn": 5}'
        ),
        id="states-bad-arn",
    ),
    pytest.param(
        EdgeFault(
            "states", "POST", "/", _json_target("AWSStepFunctions.ListExecutions", "1.0"), b'{"stateMachineArn": "x"}'
        ),
        id="states-bad-machine-arn",
    ),
    pytest.param(
        EdgeFault("states", "POST", "/", _json_target("AWSStepFunctions.ListStateMachines", "1.0"), b"\xff\xfe{"),
        id="states-non-utf8",
    ),
    pytest.param(
        EdgeFault("states", "POST", "/", _json_target("AWSStepFunctions.NoSuchOp", "1.0"), b"{}"),
        id="states-unknown-op",
    ),
    pytest.param(
        EdgeFault(
            "logs",
            "POST",
            "/",
            _json_target("Logs_20140328.GetLogEvents"),
            b'{"logGroupName": [1], "logStreamName": "s"}',
        ),
        id="logs-wrong-type",
    ),
    pytest.param(
        EdgeFault("iam", "POST", "/", FORM, b"Action=ListRoles&Version=2010-05-08&MaxItems=abc"),
        id="iam-bad-integer",
    ),
    pytest.param(
        EdgeFault("sts", "POST", "/", FORM, b"Action=AssumeRole&Version=2011-06-15"),
        id="sts-missing-parameter",
    ),
    pytest.param(
        EdgeFault("sns", "POST", "/", FORM, b"Action=ListTopics&Version=2010-03-31&NextToken=%ff"),
        id="sns-bad-token",
    ),
    pytest.param(
        EdgeFault("nosuchservice", "POST", "/", _json_target("X.Y"), b"{}"),
        id="unknown-signing-name",
    ),
    pytest.param(
        EdgeFault("sts", "POST", "/", FORM, b"\xff\xfe"),
        id="sts-not-a-form",
    ),
    pytest.param(
        EdgeFault("lambda", "GET", "/2015-03-31/functions/%ff/configuration", []),
        id="unserved-service",
    ),
]


@pytest.mark.parametrize("fault", EDGE_FAULTS)
def test_edge_answers_signed_client_faults_with_a_4xx_in_the_service_shape(
    fault: EdgeFault, ports: dict[str, Port], signer: Signer
) -> None:
    """A correctly signed but malformed call is a 4xx in the addressed service's shape: never 5xx, HTML or a leak.

    Guards the OLD runtime's defects (tracebacks in bodies, http.server's HTML, dead request threads) for the
    services behind the edge; 5xx is a server fault, and every request here is the client's fault.
    """
    port = ports["edge"].port
    data = signer.request(fault.service, fault.method, port, fault.target, fault.headers, fault.body)
    response = exchange(port, data, timeout_s=5.0, quiet_s=0).first
    content_type = (response.header("Content-Type") or "").lower()
    assert 400 <= response.status < 500, (response.status, response.body[:300])
    assert "html" not in content_type, (content_type, response.body[:200])
    assert not leaks(response), leaks(response)
    if "json" in content_type:
        doc = response.json()
        assert doc.get("__type") or response.header("x-amzn-ErrorType"), doc
    else:
        assert "xml" in content_type and b"<Code>" in response.body, (content_type, response.body[:300])


# ------------------------------------------------------------------------------------------------ 5. no leaks


def _check_model_error(response: Response, container: Response | None) -> list[str]:
    """An InvokeEndpoint failure is ModelError 424 carrying only the container's status and message."""
    problems: list[str] = []
    if response.status != 424 or response.header("x-amzn-ErrorType") != "ModelError":
        return [f"not a ModelError 424: {response.status} {response.header('x-amzn-ErrorType')}"]
    doc = response.json()
    match = MODEL_ERROR_RX.fullmatch(str(doc.get("Message", "")))
    if match is None or match.group(2) != doc.get("OriginalMessage"):
        problems.append(f"ModelError message is not the container's message only: {doc}")
    if not 400 <= int(doc.get("OriginalStatusCode", 0)) < 500:
        problems.append(f"the container answered a client fault with {doc.get('OriginalStatusCode')}")
    if container is not None and (
        doc.get("OriginalStatusCode") != container.status
        or doc.get("OriginalMessage") != container.body.decode("utf-8", "replace")
    ):
        problems.append(f"ModelError {doc} differs from the container's own {container.status} {container.body!r}")
    return problems


def test_bad_input_corpus_is_answered_without_5xx_or_leaks_on_every_port(
    ports: dict[str, Port], requests_for: Requests, signer: Signer, warm: None, local_aws: Aws
) -> None:
    """Every ``tests/events/apigw_predict_*.json`` body, sent to the API, to InvokeEndpoint and to the container.

    Guards the OLD runtime's leak defect: 71 of 126 bad-input bodies on the SageMaker invocations URL carried full
    Python tracebacks with absolute paths. Here: no 5xx for any of them on any port, no body with a traceback, a
    path, ``.py"`` or an exception name, and every InvokeEndpoint failure is a ModelError 424 whose message is the
    container's own message, verbatim.
    """
    extra = (str(local_aws.home), str(REPO_ROOT))
    problems: list[str] = []
    table: list[str] = []
    for case in predict_corpus():
        headers: Headers = []
        if case.content_type is not None:
            headers.append(("Content-Type", case.content_type))
        if case.accept is not None:
            headers.append(("Accept", case.accept))
        query = f"?{urlencode(case.query)}" if case.query else ""
        container = exchange(
            ports["container"].port,
            build_request(
                "POST", "/invocations", [("Host", HOST), *headers, ("Content-Length", str(len(case.body)))], case.body
            ),
            timeout_s=30,
            quiet_s=0,
        ).first
        runtime = exchange(
            ports["edge"].port,
            signer.request(
                "sagemaker",
                "POST",
                ports["edge"].port,
                f"/endpoints/{requests_for.endpoint}/invocations",
                headers,
                case.body,
            ),
            timeout_s=30,
            quiet_s=0,
        ).first
        time.sleep(0.06)  # stay under the stage throttle (20 rps, burst 40): the API must run the Lambda every time
        api = exchange(
            ports["api"].port,
            signer.request("execute-api", "POST", ports["api"].port, f"/predict{query}", headers, case.body),
            timeout_s=30,
            quiet_s=0,
        ).first
        table.append(f"{case.name}: container {container.status}, runtime {runtime.status}, api {api.status}")
        if api.status == 429:
            problems.append(f"{case.name} api: throttled, the Lambda never ran")
        for where, response in (("container", container), ("runtime", runtime), ("api", api)):
            if response.status >= 500:
                problems.append(f"{case.name} {where}: {response.status} {response.body[:200]!r}")
            found = leaks(response, extra)
            if found:
                problems.append(f"{case.name} {where} leaks: {found}")
        if container.status >= 400:
            problems += [f"{case.name} runtime: {p}" for p in _check_model_error(runtime, container)]
        elif runtime.status != 200 or runtime.body != container.body:
            problems.append(f"{case.name}: runtime {runtime.status} differs from the container's 200")
    print("\n".join(table))
    assert not problems, "\n".join(problems)


@dataclass
class Tally:
    """Outcomes of one port's share of the fuzz."""

    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    problems: list[str] = field(default_factory=list)
    sent: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Pacer:
    """Spaces signed API calls under the stage throttle, so the fuzz reaches the Lambda instead of the bucket."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next = time.monotonic()
        self.lock = threading.Lock()

    def wait(self) -> None:
        with self.lock:
            now = time.monotonic()
            delay = max(0.0, self.next - now)
            self.next = max(now, self.next) + self.interval
        time.sleep(delay)


FUZZ_SEED = 20240601
FUZZ_SHARE = {"container": 4500, "edge": 4000, "api": 1500}  # 10,000 requests in all
API_SIGNED_SHARE = 0.17  # ~255 signed /predict calls paced at 15/s; the rest stop at auth or routing
API_SIGNED_RATE = 15.0


def _judge(name: str, request: FuzzRequest, ex: Exchange, extra: tuple[str, ...]) -> list[str]:
    """What is wrong with the answer to one fuzzed request (empty: nothing)."""
    if not ex.responses:
        return [f"{name}: no response to {request.label} (raw={ex.raw[:120]!r})"]
    response = ex.responses[0]
    problems: list[str] = []
    throttled = response.status == 503 and response.header("Retry-After")
    if response.status >= 500 and not throttled:
        problems.append(f"{name}: {response.status} for client fault {request.label}: {response.body[:200]!r}")
    if response.status == 429 and not response.header("Retry-After"):
        problems.append(f"{name}: 429 without Retry-After for {request.label}")
    found = leaks(response, extra)
    if found:
        problems.append(f"{name}: leak in the answer to {request.label}: {found}")
    if name == "edge" and "/invocations" in request.label and response.status == 424:
        problems += [f"{name}: {p} ({request.label})" for p in _check_model_error(response, None)]
    return problems


def _plan(
    name: str,
    rng: random.Random,
    bodies: FuzzBodies,
    signer: Signer,
    ports: dict[str, Port],
    endpoint: str,
    bucket: str,
) -> Iterator[tuple[FuzzRequest, bool]]:
    """One port's seeded share of the fuzz: (request, paced under the API's stage throttle)."""
    for _ in range(FUZZ_SHARE[name]):
        if name == "container":
            yield container_request(rng, bodies), False
        elif name == "edge":
            yield edge_request(rng, bodies, signer, ports["edge"].port, endpoint, bucket), False
        else:
            signed = rng.random() < API_SIGNED_SHARE
            yield api_request(rng, bodies, signer, ports["api"].port, signed), signed


def _near_limit_requests(name: str, signer: Signer, ports: dict[str, Port], endpoint: str) -> list[FuzzRequest]:
    """Bodies of exactly the port's limit (or just over the service's own limit behind it)."""
    rng = random.Random(FUZZ_SEED)
    port = ports[name].port
    if name == "container":
        sizes = [INVOKE_ENDPOINT_MAX_BYTES, INVOKE_ENDPOINT_MAX_BYTES - 1]
        return [
            FuzzRequest(
                f"container body of {n} B",
                build_request(
                    "POST",
                    "/invocations",
                    [("Host", HOST), ("Content-Type", ct), ("Content-Length", str(n))],
                    rng.randbytes(n),
                ),
            )
            for n in sizes
            for ct in ("image/jpeg", "application/json")
        ]
    if name == "edge":
        target = f"/endpoints/{endpoint}/invocations"
        return [
            FuzzRequest(
                f"edge invoke {target} body of {n} B",
                signer.request("sagemaker", "POST", port, target, [("Content-Type", "image/png")], rng.randbytes(n)),
            )
            for n in (INVOKE_ENDPOINT_MAX_BYTES, INVOKE_ENDPOINT_MAX_BYTES + 1)
        ]
    return [
        FuzzRequest(
            f"api signed POST /predict body of {n} B",
            signer.request("execute-api", "POST", port, "/predict", [("Content-Type", ct)], rng.randbytes(n)),
        )
        for n in (API_GATEWAY_MAX_BYTES,)
        for ct in ("image/jpeg", "application/json")
    ]


def _missing_content_type_requests(
    name: str, signer: Signer, ports: dict[str, Port], endpoint: str, count: int = 30
) -> list[FuzzRequest]:
    """The OLD runtime's thread killer, replayed: no Content-Type at all and a body that is not UTF-8."""
    rng = random.Random(FUZZ_SEED + 1)
    port = ports[name].port
    out = []
    for i in range(count):
        body = bytes(rng.choice((0x80, 0xC3, 0xFF, 0xFE, 0xA0)) for _ in range(1 + i * 7)) + rng.randbytes(i)
        accept: Headers = [("Accept", "application/json")] if i % 2 else []
        if name == "container":
            headers = [("Host", HOST), *accept, ("Content-Length", str(len(body)))]
            data = build_request("POST", "/invocations", headers, body)
        elif name == "edge":
            data = signer.request("sagemaker", "POST", port, f"/endpoints/{endpoint}/invocations", accept, body)
        else:
            data = signer.request("execute-api", "POST", port, "/predict", accept, body)
        out.append(FuzzRequest(f"{name} no Content-Type, non-UTF-8 body {body[:16]!r}", data))
    return out


def _truncated_declarations(name: str, ports: dict[str, Port], requests_for: Requests) -> list[str]:
    """Declare a body just under the limit, send 1 KiB of it, half-close: the server must drop it without a 5xx."""
    problems = []
    for _ in range(3):
        data = requests_for.framing_probe(name, [("Content-Length", str(LIMITS[name] - 2))], b"\xff" * 1024)
        with socket.create_connection((HOST, ports[name].port), timeout=5) as sock:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(5)
            raw = b""
            try:
                while chunk := sock.recv(65536):
                    raw += chunk
            except (TimeoutError, ConnectionResetError):
                pass
        if re.match(rb"HTTP/1\.[01] 5", raw):
            problems.append(f"{name}: truncated body answered {raw[:200]!r}")
    return problems


@pytest.mark.slow
def test_seeded_fuzz_gets_no_5xx_no_leak_and_leaves_no_dead_thread(
    ports: dict[str, Port],
    requests_for: Requests,
    signer: Signer,
    probe_endpoint: ProbeEndpoint,
    warm: None,
    local_aws: Aws,
    record_property: Callable[..., None],
) -> None:
    """10,000 seeded hostile requests across the three ports, two client threads per port, all at once.

    Guards the OLD runtime's defects: a missing Content-Type with non-UTF-8 bytes killed the worker's request thread
    (2,069 of 10,000 fuzzed requests got 503), and bad inputs came back with tracebacks. Random bytes, non-UTF-8
    text, truncated and bit-flipped JPEG/PNG headers, PNG headers claiming huge sizes, almost-valid JSON, random,
    missing and garbage Content-Type/Accept, garbage auth, bodies of exactly the limits and bodies declared just
    under the limits then cut off. Asserts: no 5xx (503 only with Retry-After), no leak, InvokeEndpoint failures
    are ModelError 424 with a 4xx from the container, and afterwards the container still answers a good request
    the same way, with the same number of threads.
    """
    extra = (str(local_aws.home), str(REPO_ROOT))
    container = ports["container"]
    good = requests_for.predict("container")
    baseline = exchange(container.port, good, timeout_s=30, quiet_s=0).first
    container_threads = container.threads()
    local_threads = threading.active_count()
    rng = random.Random(FUZZ_SEED)
    bodies = FuzzBodies(
        rng,
        corpus_image("apigw_predict_jpeg"),
        corpus_image("apigw_predict_png"),
        [case.body for case in predict_corpus()],
    )
    bucket = local_aws.output("ArtifactBucketName")
    plans = {name: list(_plan(name, rng, bodies, signer, ports, probe_endpoint.name, bucket)) for name in FUZZ_SHARE}
    for name in PORT_NAMES:
        extras = _near_limit_requests(name, signer, ports, probe_endpoint.name)
        extras += _missing_content_type_requests(name, signer, ports, probe_endpoint.name)
        plans[name] += [(r, name == "api") for r in extras]
    tallies = {name: Tally() for name in PORT_NAMES}
    pacer = Pacer(API_SIGNED_RATE)
    started = time.monotonic()
    deadline = started + 90.0

    def worker(name: str, items: list[tuple[FuzzRequest, bool]]) -> None:
        tally = tallies[name]
        for request, paced in items:
            if time.monotonic() > deadline:
                with tally.lock:
                    tally.problems.append(f"{name}: fuzz ran out of time")
                return
            if paced:
                pacer.wait()
            try:
                ex = exchange(ports[name].port, request.data, timeout_s=10.0, quiet_s=0, head_request=request.head)
            except OSError as exc:
                with tally.lock:
                    tally.problems.append(f"{name}: {type(exc).__name__} on {request.label}")
                continue
            with tally.lock:
                tally.sent += 1
                tally.statuses[ex.responses[0].status if ex.responses else 0] += 1
                tally.problems += _judge(name, request, ex, extra)

    threads = []
    for name, items in plans.items():
        for part in (items[0::2], items[1::2]):
            threads.append(threading.Thread(target=worker, args=(name, part), name=f"fuzz-{name}", daemon=True))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(1.0, deadline - time.monotonic() + 15))
    elapsed = time.monotonic() - started
    truncated = [p for name in PORT_NAMES for p in _truncated_declarations(name, ports, requests_for)]
    after = exchange(container.port, good, timeout_s=30, quiet_s=0).first
    container_threads_after = container.threads()
    summary = {name: {"sent": t.sent, "statuses": dict(sorted(t.statuses.items()))} for name, t in tallies.items()}
    record_property("fuzz", summary)
    print(f"[fuzz] {sum(t.sent for t in tallies.values())} requests in {elapsed:.1f}s: {json.dumps(summary)}")
    print(
        f"[fuzz] container threads {container_threads} -> {container_threads_after}; "
        f"in-process threads {local_threads} -> {threading.active_count()}"
    )
    problems = [p for t in tallies.values() for p in t.problems] + truncated
    assert not any(thread.is_alive() for thread in threads), "a fuzz worker hung"
    assert not problems, f"{len(problems)} problems, first 25:\n" + "\n".join(problems[:25])
    assert sum(t.sent for t in tallies.values()) >= sum(FUZZ_SHARE.values())
    assert (after.status, after.header("Content-Type")) == (baseline.status, baseline.header("Content-Type"))
    if probe_endpoint.created:
        assert after.status == 200 and b"predictions" in after.body
    assert container_threads_after == container_threads, "the container lost or gained threads under the fuzz"
    assert threading.active_count() <= local_threads + 8
