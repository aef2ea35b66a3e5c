"""The REST API as ``template.yaml`` declares it: routes, binary media types, stage, throttling, gateway responses,
auth per method, and the Lambda function behind it. Nothing about the API is hard-coded in the emulator.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_aws.cloudformation import Resolver, api_events, load_template, make_resolver
from local_aws.constants import TEMPLATE_PATH
from local_aws.lambda_runtime.function import FunctionSpec, function_spec_from_template


class ApiConfigError(ValueError):
    """template.yaml does not describe an API this emulator can serve."""


@dataclass(frozen=True)
class Route:
    """One API Gateway resource + method, e.g. ``POST /predict`` or ``ANY /items/{id}``; ``auth`` per its security."""

    method: str
    path: str
    auth: str = "NONE"  # NONE | AWS_IAM | API_KEY

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters when this route serves ``method path``, else None."""
        if self.method not in ("ANY", method.upper()):
            return None
        found = _path_regex(self.path).fullmatch(path)
        if found is None:
            return None
        return {name.rstrip("+"): value for name, value in found.groupdict().items()}


# NOTE: cached because ApiSpec.find tries every route on every request; keyed by the template's route paths
# (never by request paths), so it stays as small as the template.
@functools.cache
def _path_regex(template_path: str) -> re.Pattern[str]:
    pattern = ""
    for part in re.split(r"(\{[^}]+\})", template_path):
        if part.startswith("{") and part.endswith("}"):
            name = part[1:-1]
            group = re.sub(r"\W", "_", name.rstrip("+"))
            pattern += f"(?P<{group}>.+)" if name.endswith("+") else f"(?P<{group}>[^/]+)"
        else:
            pattern += re.escape(part)
    return re.compile(pattern.rstrip("/") or "/")


@dataclass(frozen=True)
class GatewayResponse:
    """One GatewayResponses entry: status code, JSON body template and static headers (quotes stripped)."""

    status: int | None = None
    body: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class ApiSpec:
    """The REST API as template.yaml declares it."""

    function: FunctionSpec
    routes: list[Route]
    binary_media_types: list[str] = field(default_factory=list)
    stage_name: str = "Prod"
    gateway_responses: dict[str, GatewayResponse] = field(default_factory=dict)
    # Stage-wide MethodSettings throttling ("/*" "*"): steady rate (requests/s) and burst (bucket size).
    throttle_rate: float | None = None
    throttle_burst: int | None = None
    # MethodSettings for one resource and method ("/~1demo" GET): (METHOD, path) → (rate, burst); they override the
    # stage's for that method (API Gateway docs, "Throttle requests to your REST APIs": method-level throttling).
    method_throttles: dict[tuple[str, str], tuple[float | None, int | None]] = field(default_factory=dict)

    def find(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route serving ``method path`` and its path parameters."""
        for route in self.routes:
            params = route.match(method, path)
            if params is not None:
                return route, params
        return None


def normalize_media_type(value: str) -> str:
    """BinaryMediaTypes are written ``image~1jpeg`` in templates because '/' is a JSON-pointer separator there."""
    return value.replace("~1", "/").strip().lower()


def is_binary_media_type(content_type: str | None, binary_media_types: list[str]) -> bool:
    """API Gateway's rule: the Content-Type (parameters ignored) matches one of BinaryMediaTypes (wildcards too)."""
    if not content_type:
        return False
    mimetype = content_type.split(";", 1)[0].strip().lower()
    return any(fnmatch.fnmatchcase(mimetype, pattern) for pattern in binary_media_types)


def _api_events(resource: Mapping[str, Any]) -> list[dict[str, Any]]:
    events = (resource.get("Properties") or {}).get("Events") or {}
    return [e for e in events.values() if isinstance(e, dict) and e.get("Type") == "Api"]


def _route_auth(definition: Mapping[str, Any], path: str, method: str, default: str) -> str:
    """The auth a method requires, from the OpenAPI ``security`` + ``securityDefinitions`` (x-amazon-apigateway)."""
    operation = ((definition.get("paths") or {}).get(path) or {}).get(method.lower()) or {}
    security = operation.get("security", definition.get("security"))
    if not security:
        return default
    schemes = definition.get("securityDefinitions") or {}
    for requirement in security:
        for name in requirement:
            scheme = schemes.get(name) or {}
            if scheme.get("x-amazon-apigateway-authtype") == "awsSigv4":
                return "AWS_IAM"
            if scheme.get("type") == "apiKey" and str(scheme.get("name", "")).lower() == "x-api-key":
                return "API_KEY"
            raise ApiConfigError(
                f"{method} {path}: security scheme {name!r} cannot be emulated (only SigV4 and API keys)"
            )
    return default


def api_spec_from_template(
    template_path: Path = TEMPLATE_PATH,
    function_logical_id: str | None = None,
    overrides: Mapping[str, str] | None = None,
    *,
    resolver: Resolver | None = None,
) -> ApiSpec:
    """Build the API description from template.yaml.

    Args:
        template_path: the template; the function's relative CodeUri is relative to its directory.
        function_logical_id: the function behind the API; default: the one function with Api events.
        overrides: parameter values instead of the defaults (not with ``resolver``).
        resolver: the start's resolver of that template (it holds the loaded template and its parameters);
            default: one built from ``template_path`` and ``overrides``.

    Raises:
        ApiConfigError: no (or more than one) function with Api events, or an API this emulator cannot serve.
        TemplateError: an Api event whose Path or Method is not a literal string.
    """
    if resolver is not None and overrides:
        raise TypeError("the resolver has its parameters already; give overrides to make_resolver")
    template = resolver.template if resolver is not None else load_template(template_path)
    resources: dict[str, Any] = template.get("Resources", {})
    candidates = [
        lid for lid, res in resources.items() if res.get("Type") == "AWS::Serverless::Function" and _api_events(res)
    ]
    if function_logical_id is None:
        if len(candidates) != 1:
            raise ApiConfigError(f"expected exactly one function with Api events in {template_path}, got {candidates}")
        function_logical_id = candidates[0]
    elif function_logical_id not in candidates:
        raise ApiConfigError(f"{function_logical_id!r} has no Api events; functions with Api events: {candidates}")
    if resolver is None:
        resolver = make_resolver(template, dict(overrides or {}))

    api_ids: set[str] = set()
    for event in _api_events(resources[function_logical_id]):
        rest_api = event.get("Properties", {}).get("RestApiId")
        if isinstance(rest_api, Mapping) and "Ref" in rest_api:
            api_ids.add(str(rest_api["Ref"]))
    if len(api_ids) > 1:
        raise ApiConfigError(f"{function_logical_id!r} is attached to several APIs {sorted(api_ids)}; serve one")
    # Without RestApiId, SAM creates the implicit ServerlessRestApi with stage "Prod" and Globals.Api settings.
    api_props: dict[str, Any] = dict((template.get("Globals") or {}).get("Api") or {})
    if api_ids:
        api_props.update(resources[next(iter(api_ids))].get("Properties", {}) or {})
    api_props = resolver.resolve(api_props)
    definition = api_props.get("DefinitionBody") or {}
    default_auth = "AWS_IAM" if ((api_props.get("Auth") or {}).get("DefaultAuthorizer") == "AWS_IAM") else "NONE"
    routes = [
        Route(method=method, path=path, auth=_route_auth(definition, path, method, default_auth))
        for path, method in api_events(template, function_logical_id)  # sorted by path, then method
    ]
    gateway_responses: dict[str, GatewayResponse] = {}
    for rtype, cfg in (api_props.get("GatewayResponses") or {}).items():
        status = cfg.get("StatusCode")
        body = (cfg.get("ResponseTemplates") or {}).get("application/json")
        # Static header values are quoted API Gateway mapping literals ("'1'"); other sources can't be emulated.
        headers = tuple(
            (str(name), str(value)[1:-1])
            for name, value in ((cfg.get("ResponseParameters") or {}).get("Headers") or {}).items()
            if str(value).startswith("'") and str(value).endswith("'")
        )
        gateway_responses[str(rtype)] = GatewayResponse(int(status) if status is not None else None, body, headers)
    throttle_rate: float | None = None
    throttle_burst: int | None = None
    method_throttles: dict[tuple[str, str], tuple[float | None, int | None]] = {}
    for setting in api_props.get("MethodSettings") or []:
        rate = float(setting["ThrottlingRateLimit"]) if setting.get("ThrottlingRateLimit") is not None else None
        burst = int(setting["ThrottlingBurstLimit"]) if setting.get("ThrottlingBurstLimit") is not None else None
        if setting.get("ResourcePath") == "/*" and setting.get("HttpMethod") == "*":
            throttle_rate, throttle_burst = rate, burst
        elif rate is not None and str(setting.get("ResourcePath", "")).startswith("/"):
            # The resource path is JSON-pointer escaped after its leading "/": "/~1demo" is /demo.
            path = str(setting["ResourcePath"])[1:].replace("~1", "/")
            method_throttles[(str(setting.get("HttpMethod", "*")).upper(), path)] = (rate, burst)
    function = function_spec_from_template(function_logical_id, template_path, resolver=resolver)
    return ApiSpec(
        function=function,
        routes=routes,
        binary_media_types=[normalize_media_type(str(t)) for t in api_props.get("BinaryMediaTypes", []) or []],
        stage_name=str(api_props.get("StageName", "Prod")),
        gateway_responses=gateway_responses,
        throttle_rate=throttle_rate,
        throttle_burst=throttle_burst,
        method_throttles=method_throttles,
    )
