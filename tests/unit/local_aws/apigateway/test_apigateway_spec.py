"""local_aws.apigateway.spec: the REST API as template.yaml declares it (routes, auth, media types, throttling)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from local_aws.apigateway.spec import (
    ApiConfigError,
    GatewayResponse,
    Route,
    api_spec_from_template,
    is_binary_media_type,
    normalize_media_type,
)
from local_aws.cloudformation import load_template, make_resolver


def test_route_matching_with_path_parameters() -> None:
    """Method and path must match; ``{name}`` takes one segment, ``{proxy+}`` the rest; ANY matches any method."""
    assert Route("POST", "/predict").match("POST", "/predict") == {}
    assert Route("POST", "/predict").match("post", "/predict") == {}
    assert Route("POST", "/predict").match("GET", "/predict") is None
    assert Route("POST", "/predict").match("POST", "/predict/x") is None
    assert Route("GET", "/models/{name}").match("GET", "/models/abc") == {"name": "abc"}
    assert Route("ANY", "/files/{proxy+}").match("DELETE", "/files/a/b") == {"proxy": "a/b"}
    assert Route("GET", "/models/{name}").match("GET", "/models/a/b") is None
    assert Route("GET", "/").match("GET", "/") == {}


def test_route_auth_defaults_to_none() -> None:
    """A route without security needs no authentication."""
    assert Route("GET", "/health").auth == "NONE"


@pytest.mark.parametrize(
    ("content_type", "types", "expected"),
    [
        ("image/jpeg", ["image/jpeg"], True),
        ("IMAGE/JPEG; q=1", ["image/jpeg"], True),
        ("image/webp", ["image/*"], True),
        ("application/json", ["*/*"], True),
        ("application/json", ["image/jpeg"], False),
        (None, ["image/jpeg"], False),
        ("", ["*/*"], False),
    ],
)
def test_binary_media_type_matching(content_type: str | None, types: list[str], expected: bool) -> None:
    """API Gateway's rule: the Content-Type without parameters matches one of BinaryMediaTypes (wildcards too)."""
    assert is_binary_media_type(content_type, types) is expected


def test_template_media_type_escape() -> None:
    """Templates write ``image~1jpeg`` (JSON-pointer escape); the spec holds ``image/jpeg``."""
    assert normalize_media_type("image~1jpeg") == "image/jpeg"
    assert normalize_media_type(" Image/PNG ") == "image/png"


def test_spec_from_the_starts_resolver_is_the_spec_from_the_file(repo_root: Path) -> None:
    """Given the start's resolver, the spec is what loading the template with the same parameters gives."""
    path = repo_root / "template.yaml"
    resolver = make_resolver(load_template(path), {"ApiAuthMode": "API_KEY"})
    assert api_spec_from_template(path, resolver=resolver) == api_spec_from_template(
        path, overrides={"ApiAuthMode": "API_KEY"}
    )
    with pytest.raises(TypeError, match=r"resolver has its parameters already"):
        api_spec_from_template(path, resolver=resolver, overrides={"ApiAuthMode": "IAM"})


def test_spec_of_the_repository_template(repo_root: Path) -> None:
    """template.yaml: three SigV4 routes on stage v1, the binary image types, the stage throttle and its function."""
    spec = api_spec_from_template(repo_root / "template.yaml")
    assert spec.routes == [
        Route("GET", "/demo", "AWS_IAM"),
        Route("GET", "/health", "AWS_IAM"),
        Route("POST", "/predict", "AWS_IAM"),
    ]
    assert spec.stage_name == "v1"
    assert spec.binary_media_types == ["image/jpeg", "image/png", "application/x-image"]
    assert spec.throttle_rate is not None and spec.throttle_rate > 0
    assert spec.throttle_burst is not None and spec.throttle_burst >= 1
    assert spec.method_throttles == {("GET", "/demo"): (5.0, 10)}  # MethodSettings "/~1demo" GET
    assert spec.function.logical_id == "InferenceFunction"
    assert spec.function.handler == "app.lambda_handler"
    assert spec.function.code_dir == repo_root / "functions" / "inference"
    assert spec.find("POST", "/predict") == (Route("POST", "/predict", "AWS_IAM"), {})
    assert spec.find("GET", "/predict") is None


@pytest.mark.parametrize("mode", ["IAM", "API_KEY"])
def test_the_demo_page_is_the_one_open_route_and_only_when_enabled(repo_root: Path, mode: str) -> None:
    path = repo_root / "template.yaml"
    enabled = api_spec_from_template(path, overrides={"ApiAuthMode": mode, "DemoPage": "Enabled"})
    disabled = api_spec_from_template(path, overrides={"ApiAuthMode": mode, "DemoPage": "Disabled"})
    auth = "AWS_IAM" if mode == "IAM" else "API_KEY"
    assert {route.path: route.auth for route in enabled.routes} == {"/demo": "NONE", "/health": auth, "/predict": auth}
    assert {route.path: route.auth for route in disabled.routes} == {"/demo": auth, "/health": auth, "/predict": auth}


def test_template_declares_throttling_as_429_with_retry_after(repo_root: Path) -> None:
    """INTEGRATION_FAILURE (Lambda throttled) and THROTTLED (stage) are both 429 + Retry-After: 1 in the template."""
    spec = api_spec_from_template(repo_root / "template.yaml")
    for kind in ("INTEGRATION_FAILURE", "THROTTLED"):
        response = spec.gateway_responses[kind]
        assert isinstance(response, GatewayResponse)
        assert response.status == 429
        assert ("Retry-After", "1") in response.headers  # the mapping literal "'1'" loses its quotes
        assert response.body is not None and "message" in response.body


def test_api_key_mode_switches_every_route_to_api_key(repo_root: Path) -> None:
    """ApiAuthMode=API_KEY: the OpenAPI security flips to the x-api-key scheme on every method."""
    spec = api_spec_from_template(repo_root / "template.yaml", overrides={"ApiAuthMode": "API_KEY"})
    assert {route.auth for route in spec.routes} == {"API_KEY"}


def _template(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(body))
    return path


FUNCTION = """
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      CodeUri: src/
      Runtime: python3.13
      Events:
        Get:
          Type: Api
          Properties:
            {api}Path: /items/{{id}}
            Method: get
"""


def test_implicit_api_has_sams_defaults(tmp_path: Path) -> None:
    """Without RestApiId: SAM's implicit API, stage Prod, Globals.Api settings, no auth, no throttle."""
    path = _template(
        tmp_path,
        "Transform: AWS::Serverless-2016-10-31\nGlobals:\n  Api:\n    BinaryMediaTypes: [image~1png]\nResources:"
        + FUNCTION.format(api=""),
    )
    spec = api_spec_from_template(path)
    assert spec.routes == [Route("GET", "/items/{id}", "NONE")]
    assert (spec.stage_name, spec.binary_media_types) == ("Prod", ["image/png"])
    assert (spec.throttle_rate, spec.throttle_burst, spec.gateway_responses) == (None, None, {})
    assert spec.function.code_dir == tmp_path / "src"


def test_default_authorizer_aws_iam_applies_to_routes_without_security(tmp_path: Path) -> None:
    """``Auth.DefaultAuthorizer: AWS_IAM`` makes every route SigV4."""
    path = _template(
        tmp_path,
        "Transform: AWS::Serverless-2016-10-31\nGlobals:\n  Api:\n    Auth:\n      DefaultAuthorizer: AWS_IAM\n"
        "Resources:" + FUNCTION.format(api=""),
    )
    assert [route.auth for route in api_spec_from_template(path).routes] == ["AWS_IAM"]


def test_security_scheme_that_cannot_be_emulated_is_refused(tmp_path: Path) -> None:
    """A Cognito (or any non-SigV4, non-API-key) scheme is an ApiConfigError naming the method and scheme."""
    api = """
  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: dev
      DefinitionBody:
        swagger: "2.0"
        securityDefinitions:
          pool:
            type: apiKey
            name: Authorization
            in: header
            x-amazon-apigateway-authtype: cognito_user_pools
        paths:
          /items/{id}:
            get:
              security: [pool: []]
"""
    path = _template(
        tmp_path,
        "Transform: AWS::Serverless-2016-10-31\nResources:"
        + FUNCTION.format(api="RestApiId: !Ref Api\n            ")
        + api,
    )
    with pytest.raises(ApiConfigError, match=r"GET /items/\{id\}: security scheme 'pool' cannot be emulated"):
        api_spec_from_template(path)


def test_function_choice_is_explicit_when_several_functions_have_api_events(tmp_path: Path) -> None:
    """Two functions with Api events: the caller must name one; a function without Api events is refused."""
    second = FUNCTION.replace("  Fn:", "  Other:", 1).format(api="")
    quiet = "\n  Quiet:\n    Type: AWS::Serverless::Function\n    Properties:\n      Handler: a.b\n      CodeUri: q/\n"
    path = _template(tmp_path, "Resources:" + FUNCTION.format(api="") + second + quiet)
    with pytest.raises(ApiConfigError, match="expected exactly one function with Api events"):
        api_spec_from_template(path)
    assert api_spec_from_template(path, "Other").function.logical_id == "Other"
    with pytest.raises(ApiConfigError, match="'Quiet' has no Api events"):
        api_spec_from_template(path, "Quiet")
