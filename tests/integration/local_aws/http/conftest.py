"""The probes' fixtures (defined in ``http_probe_fixtures``) for this folder."""

from __future__ import annotations

from http_probe_fixtures import ports, probe_endpoint, requests_for, signer, warm

__all__ = ["ports", "probe_endpoint", "requests_for", "signer", "warm"]
