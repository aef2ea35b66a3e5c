"""ops.predict: the predict URL, SigV4 signing for execute-api (checked against an independent implementation) or
the API key header, and what ``predict`` sends on each target. No request leaves the process."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import urllib.error
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from ops import predict as predict_module
from ops.predict import build_predict_request, format_predictions, image_content_type, predict, predict_url, region_of
from ops.target import OpsError
from tests.unit.ops.ops_fakes import stubbed_target

CREDS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token")


def sigv4_reference(
    method: str, url: str, headers: dict[str, str], body: bytes, creds: Credentials, region: str
) -> str:
    """An independent SigV4 implementation (AWS General Reference, "Create a signed AWS API request")."""
    parts = urllib.parse.urlsplit(url)
    amz_date = headers["X-Amz-Date"]
    scope = f"{amz_date[:8]}/{region}/execute-api/aws4_request"
    signed = sorted(k.lower() for k in headers if k.lower() != "authorization")
    lower = {k.lower(): v.strip() for k, v in headers.items()}
    query = "&".join(sorted(parts.query.split("&"))) if parts.query else ""
    canonical = "\n".join(
        [
            method,
            parts.path,
            query,
            "".join(f"{h}:{lower[h]}\n" for h in signed),
            ";".join(signed),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = f"AWS4{creds.secret_key}".encode()
    for part in (amz_date[:8], region, "execute-api", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    credential = f"Credential={creds.access_key}/{scope}"
    return f"AWS4-HMAC-SHA256 {credential}, SignedHeaders={';'.join(signed)}, Signature={signature}"


def test_predict_request_is_sigv4_signed_for_execute_api() -> None:
    """Without an API key the request is signed for execute-api in the API's region, exactly as SigV4 specifies."""
    url = predict_url("https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/v1", 3)
    assert url == "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/v1/predict?top_k=3"
    image = b"\xff\xd8\xff\xe0fake-jpeg-bytes"
    region = region_of(url, None)
    assert region == "eu-west-1"
    request = build_predict_request(url, image, "image/jpeg", api_key=None, credentials=CREDS, region=region)
    prepared = request.prepare()
    headers = dict(prepared.headers.items())
    assert prepared.method == "POST" and prepared.body == image
    assert headers["Content-Type"] == "image/jpeg" and headers["Accept"] == "application/json"
    assert headers["X-Amz-Security-Token"] == "session-token"
    assert "x-api-key" not in {k.lower() for k in headers}
    today = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
    assert headers["Authorization"].startswith(
        f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{today}/eu-west-1/execute-api/"
    )
    # What was signed: the request's own headers plus Host (Content-Length is added after signing, unsigned).
    signed = dict(request.headers.items()) | {"Host": urllib.parse.urlsplit(url).netloc}
    assert headers["Authorization"] == sigv4_reference("POST", prepared.url, signed, image, CREDS, "eu-west-1")


def test_predict_request_with_an_api_key_is_not_signed() -> None:
    """With an API key: the x-api-key header, no Authorization, and no credentials needed."""
    request = build_predict_request(
        "http://127.0.0.1:3000/predict", b"x", "image/png", api_key="k-123", credentials=None, region=""
    )
    headers = dict(request.prepare().headers.items())
    assert headers["x-api-key"] == "k-123" and "Authorization" not in headers


def test_iam_auth_without_credentials_says_what_to_do() -> None:
    """No API key and no credentials: an OpsError pointing at a profile or --api-key."""
    with pytest.raises(OpsError, match="configure a profile or pass --api-key"):
        build_predict_request(
            "https://h/v1/predict", b"x", "image/png", api_key=None, credentials=None, region="us-east-1"
        )


@pytest.mark.parametrize(
    ("url", "top_k", "expected"),
    [
        (
            "https://x.execute-api.eu-west-1.amazonaws.com/v1/predict",
            None,
            "https://x.execute-api.eu-west-1.amazonaws.com/v1/predict",
        ),
        (
            "https://x.execute-api.eu-west-1.amazonaws.com/v1/",
            2,
            "https://x.execute-api.eu-west-1.amazonaws.com/v1/predict?top_k=2",
        ),
        ("http://127.0.0.1:3000/", None, "http://127.0.0.1:3000/predict"),
        ("http://127.0.0.1:3000", 10, "http://127.0.0.1:3000/predict?top_k=10"),
    ],
)
def test_predict_url_accepts_the_base_or_the_predict_url(url: str, top_k: int | None, expected: str) -> None:
    """The stack's ApiUrl or its PredictUrl both work; ``top_k`` becomes the query."""
    assert predict_url(url, top_k) == expected


@pytest.mark.parametrize("url", ["ftp://h/v1", "h/v1", "https://"])
def test_predict_url_refuses_what_is_not_http(url: str) -> None:
    """Only http(s)://host[/stage] is a valid --url, and the error names it."""
    with pytest.raises(OpsError, match=f"--url {url!r}: expected http"):
        predict_url(url, None)


def test_region_of_reads_the_execute_api_host_or_falls_back() -> None:
    """The region comes from ``<id>.execute-api.<region>.amazonaws.com``; elsewhere the default; none is an error."""
    assert region_of("https://x.execute-api.ap-south-1.amazonaws.com/v1/predict", "us-east-1") == "ap-south-1"
    assert region_of("https://api.example.com/predict", "eu-central-1") == "eu-central-1"
    with pytest.raises(OpsError, match="pass --region"):
        region_of("https://api.example.com/predict", None)


@pytest.mark.parametrize(
    ("name", "expected"), [("a.jpg", "image/jpeg"), ("a.JPEG", "image/jpeg"), ("a.png", "image/png")]
)
def test_image_content_type(name: str, expected: str) -> None:
    """Suffixes map to the API's binary media types, case-insensitively."""
    assert image_content_type(Path(name)) == expected


@pytest.mark.parametrize(("name", "shown"), [("a.webp", "'.webp'"), ("noext", "'(none)'")])
def test_unsupported_image_types_name_the_valid_ones(name: str, shown: str) -> None:
    """A .webp or a file without suffix is refused, listing .jpeg, .jpg, .png."""
    with pytest.raises(OpsError) as info:
        image_content_type(Path(name))
    assert shown in str(info.value) and "valid: .jpeg, .jpg, .png" in str(info.value)


def test_format_predictions_accepts_api_and_endpoint_shapes() -> None:
    """The API's flat list and the endpoint's list-per-image both render, cut to top_k."""
    api = {"predictions": [{"label": "001.zero", "probability": 0.9}, {"label": "002.one", "probability": 0.1}]}
    assert format_predictions(api, 1) == ["  1. 001.zero                 0.9000"]
    endpoint = {"predictions": [[{"label": "a", "probability": 1.0}]]}
    assert format_predictions(endpoint, 5) == ["  1. a                        1.0000"]
    assert format_predictions("not json", 5) == [] and format_predictions({}, 5) == []


# ----------------------------------------------------------------------------------------------- predict()
@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[AWSRequest]:
    """Capture what ``predict`` would send; the fake answers 200 with a JSON body."""
    requests: list[AWSRequest] = []

    def fake_send(request: AWSRequest, timeout: float) -> tuple[int, bytes]:
        requests.append(request)
        return 200, b'{"predictions": []}'

    monkeypatch.setattr(predict_module, "send", fake_send)
    return requests


def test_predict_on_aws_signs_for_the_apis_region_with_the_targets_credentials(sent: list[AWSRequest]) -> None:
    """On aws: the ApiUrl output, its region from the host, the session's credentials."""
    target = stubbed_target(outputs={"ApiUrl": "https://abc.execute-api.eu-west-1.amazonaws.com/v1"})
    assert predict(target, b"img", "image/png", top_k=2) == (200, {"predictions": []})
    request = sent[0]
    assert request.url == "https://abc.execute-api.eu-west-1.amazonaws.com/v1/predict?top_k=2"
    assert "/eu-west-1/execute-api/aws4_request" in request.headers["Authorization"]
    assert "Credential=testing/" in request.headers["Authorization"]  # tests/conftest.py's fake key


def test_predict_on_local_signs_for_the_targets_region(sent: list[AWSRequest]) -> None:
    """On local: the local API URL, signed for the runtime's region."""
    target = stubbed_target(outputs={"ApiUrl": "http://127.0.0.1:3000"})
    target.name = "local"
    predict(target, b"img", "image/jpeg")
    assert sent[0].url == "http://127.0.0.1:3000/predict"
    assert "/us-east-1/execute-api/aws4_request" in sent[0].headers["Authorization"]


def test_predict_with_an_api_key_and_url_skips_outputs_and_credentials(sent: list[AWSRequest]) -> None:
    """--api-key + --url: no DescribeStacks, no signing, the key header."""
    target = stubbed_target(outputs={})
    predict(target, b"img", "image/jpeg", api_key="k", url="http://127.0.0.1:3000")
    assert sent[0].headers["x-api-key"] == "k" and "Authorization" not in sent[0].headers


def test_predict_returns_text_when_the_body_is_not_json(monkeypatch: pytest.MonkeyPatch) -> None:
    """A non-JSON answer (an HTML error page) comes back as text with its status."""

    def fake_send(request: Any, timeout: float) -> tuple[int, bytes]:
        return 502, b"<html>Bad Gateway</html>"

    monkeypatch.setattr(predict_module, "send", fake_send)
    assert predict(stubbed_target(), b"x", "image/png", api_key="k") == (502, "<html>Bad Gateway</html>")


def test_send_reports_an_unreachable_api_as_an_ops_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection failure is one OpsError naming the URL and the reason, not a traceback."""

    def refuse(request: Any, timeout: float) -> Any:
        raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))

    monkeypatch.setattr(predict_module.urllib.request, "urlopen", refuse)
    request = build_predict_request(
        "http://127.0.0.1:9/predict", b"x", "image/png", api_key="k", credentials=None, region=""
    )
    with pytest.raises(OpsError, match=r"cannot reach http://127\.0\.0\.1:9/predict: .*Connection refused"):
        predict_module.send(request, timeout=1)


def test_send_returns_http_errors_as_status_and_body(monkeypatch: pytest.MonkeyPatch) -> None:
    """An HTTP error status (403 from API Gateway) is an answer, not an exception."""

    def forbidden(request: Any, timeout: float) -> Any:
        raise urllib.error.HTTPError(request.full_url, 403, "Forbidden", {}, io.BytesIO(b'{"message": "Forbidden"}'))  # type: ignore[arg-type]

    monkeypatch.setattr(predict_module.urllib.request, "urlopen", forbidden)
    request = build_predict_request(
        "http://127.0.0.1:9/predict", b"x", "image/png", api_key="k", credentials=None, region=""
    )
    assert predict_module.send(request, timeout=1) == (403, b'{"message": "Forbidden"}')
