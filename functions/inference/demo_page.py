"""GET /demo: the predict page for the deployed stack, one self-contained HTML response (template parameter DemoPage).

demo/index.html references its stylesheet and scripts as files (so it can be read and edited as a normal page); this
module inlines them once per cold start and answers with a Content-Security-Policy that allows exactly those inline
blocks by their SHA-256, the page's own origin for fetch, and blob: images (the preview). Nothing else loads.

How it authenticates (the page names the mode, from ApiAuthMode):
- API_KEY: the user pastes the key; the page sends it as ``x-api-key`` to /predict on the same stage.
- IAM: the user pastes short-lived credentials; the page SigV4-signs /predict with the vendored aws4fetch.
In both, credentials stay in the tab's sessionStorage. The page itself carries no secret and no data, which is why
its one method may be open (template.yaml: security [] on GET /demo only when DemoPage=Enabled).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from config import AUTH_MODES, DEMO_PAGE_ENABLED, ENV_API_AUTH_MODE, ENV_DEMO_PAGE, ENV_REGION
from errors import ConfigurationError, DemoPageDisabled

DEMO_DIR = Path(__file__).resolve().parent / "demo"

_STYLESHEET = re.compile(r'<link rel="stylesheet" href="([\w./-]+)">')
_SCRIPT = re.compile(r'<script src="([\w./-]+)"></script>')


@dataclass(frozen=True)
class DemoPage:
    body: str
    content_security_policy: str


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def _inline(page: str, directory: Path) -> tuple[str, list[str], list[str]]:
    """The page with its files inlined, and the CSP sources of its styles and scripts."""
    styles: list[str] = []
    scripts: list[str] = []

    def style(match: re.Match[str]) -> str:
        text = (directory / match.group(1)).read_text()
        styles.append(_sha256(text))
        return f"<style>{text}</style>"

    def script(match: re.Match[str]) -> str:
        text = (directory / match.group(1)).read_text()
        if "</script" in text.lower():  # would end the inline block early; never true of the vendored files
            raise ValueError(f"{match.group(1)} contains '</script'; it cannot be inlined")
        scripts.append(_sha256(text))
        return f"<script>{text}</script>"

    return _SCRIPT.sub(script, _STYLESHEET.sub(style, page)), styles, scripts


# NOTE: built on the first GET /demo, not at import: the predict path's cold start never reads these files.
@functools.cache
def render(auth_mode: str, region: str, directory: Path = DEMO_DIR) -> DemoPage:
    """The page for one auth mode and region, with its CSP.

    Raises:
        ConfigurationError: ``auth_mode`` is not one of ApiAuthMode's values.
    """
    if auth_mode not in AUTH_MODES:
        raise ConfigurationError(detail=f"{ENV_API_AUTH_MODE}={auth_mode!r}; expected one of {', '.join(AUTH_MODES)}")
    page = (directory / "index.html").read_text()
    page = page.replace("__AUTH_MODE__", html.escape(auth_mode)).replace("__REGION__", html.escape(region))
    body, styles, scripts = _inline(page, directory)
    policy = "; ".join(
        (
            "default-src 'none'",
            f"script-src {' '.join(scripts)}",
            f"style-src {' '.join(styles)}",
            "img-src blob:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )
    return DemoPage(body, policy)


def page_for(env: Mapping[str, str] = os.environ) -> DemoPage:
    """The page this function serves, or DemoPageDisabled unless DEMO_PAGE=Enabled."""
    if env.get(ENV_DEMO_PAGE) != DEMO_PAGE_ENABLED:
        raise DemoPageDisabled()
    return render(env.get(ENV_API_AUTH_MODE, "IAM"), env.get(ENV_REGION, "us-east-1"))
