"""GET /demo through the real ``app.lambda_handler``: off by default, and when on, one self-contained page whose CSP
allows exactly its own inline blocks (hashes computed here from what was served, not copied from the module)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from html.parser import HTMLParser
from typing import Any

import pytest

import app
from tests.conftest import load_event


class _Blocks(HTMLParser):
    """The page's inline <script>/<style> texts, and any tag that would load something from elsewhere."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks: dict[str, list[str]] = {"script": [], "style": []}
        self.external: list[tuple[str, str]] = []
        self.body: dict[str, str | None] = {}
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "body":
            self.body = found
        if tag in ("script", "link", "iframe") and (found.get("src") or found.get("href")):
            self.external.append((tag, str(found.get("src") or found.get("href"))))
        if tag in self.blocks:
            self._open = tag
            self.blocks[tag].append("")

    def handle_endtag(self, tag: str) -> None:
        self._open = None

    def handle_data(self, data: str) -> None:
        if self._open:
            self.blocks[self._open][-1] += data


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def _directives(policy: str) -> dict[str, list[str]]:
    return {name: values for name, *values in (part.split() for part in policy.split(";"))}


def test_the_demo_page_is_off_by_default(lambda_context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEMO_PAGE", raising=False)
    response = app.lambda_handler(load_event("apigw_demo"), lambda_context)
    assert response["statusCode"] == 404
    assert response["multiValueHeaders"]["Content-Type"] == ["application/json"]
    assert "DemoPage=Disabled" in json.loads(response["body"])["message"]


@pytest.mark.parametrize("mode", ["IAM", "API_KEY"])
def test_the_demo_page_is_one_document_whose_csp_allows_exactly_its_blocks(
    lambda_context: Any, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setenv("DEMO_PAGE", "Enabled")
    monkeypatch.setenv("API_AUTH_MODE", mode)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    response = app.lambda_handler(load_event("apigw_demo"), lambda_context)
    assert response["statusCode"] == 200 and response["isBase64Encoded"] is False
    headers = {name: values[0] for name, values in response["multiValueHeaders"].items()}
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["X-Content-Type-Options"] == "nosniff"
    page = _Blocks()
    page.feed(response["body"])
    assert page.external == []  # everything is inlined: nothing to fetch, nothing a CSP must allow by URL
    assert page.body["data-auth-mode"] == mode and page.body["data-region"] == "eu-west-1"
    assert len(page.blocks["script"]) == 2 and len(page.blocks["style"]) == 1  # aws4fetch, demo.js; demo.css
    policy = _directives(headers["Content-Security-Policy"])
    assert policy["default-src"] == ["'none'"]
    assert sorted(policy["script-src"]) == sorted(_sha256(text) for text in page.blocks["script"])
    assert sorted(policy["style-src"]) == sorted(_sha256(text) for text in page.blocks["style"])
    assert policy["connect-src"] == ["'self'"] and policy["frame-ancestors"] == ["'none'"]
    # The page's script posts to the stage's /predict, the sibling of /demo; no other URL is written in it.
    script = page.blocks["script"][1]
    assert re.findall(r"\"/(\w+)\"", script.replace("\\/", "/")) == ["predict"]


def test_a_bad_auth_mode_is_a_configuration_error_not_a_traceback(
    lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEMO_PAGE", "Enabled")
    monkeypatch.setenv("API_AUTH_MODE", "COGNITO")
    response = app.lambda_handler(load_event("apigw_demo"), lambda_context)
    assert response["statusCode"] == 500
    assert json.loads(response["body"])["message"] == "The service is misconfigured"
    assert "COGNITO" not in response["body"]
