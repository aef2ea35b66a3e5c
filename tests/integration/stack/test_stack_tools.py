"""Lint, scan and build template.yaml with the real tools (sam, cfn-lint, checkov), offline, as CI runs them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from local_aws.cloudformation import Resolver, load_template
from local_aws.constants import REPO_ROOT
from local_aws.constants import TEMPLATE_PATH as TEMPLATE
from tests.unit.stack.stack_helpers import CHECKOV_SKIP_ALLOWLIST

TOOLS_BIN = REPO_ROOT / ".venv-tools" / "bin"
TOOL_TIMEOUT_S = 240


def tool(name: str) -> str:
    """Find a tool in .venv-tools, then next to this interpreter; fail (not skip) if missing: CI installs them."""
    for candidate in (TOOLS_BIN / name, Path(sys.executable).parent / name):
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    pytest.fail(f"{name} not found in {TOOLS_BIN} or on PATH; run `make tools`")


def run(args: list[str], cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SAM_CLI_TELEMETRY": "0",
        "SAM_CLI_POLL_DELAY": "0",
        "BC_SKIP_MAPPING": "TRUE",  # checkov: no guideline download
        "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false",
    }
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False)


def test_sam_validate_lint_has_no_findings(tmp_path: Path) -> None:
    # NOTE: cwd is a temp dir because the SAM CLI creates .aws-sam/ in its working directory.
    result = run([tool("sam"), "validate", "--lint", "--template", str(TEMPLATE)], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_cfn_lint_including_informational_rules_has_no_findings() -> None:
    result = run([tool("cfn-lint"), "-c", "I", "--format", "parseable", "--", str(TEMPLATE)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "", result.stdout


def test_cfn_lint_passes_for_the_non_default_branches(tmp_path: Path) -> None:
    # cfn-lint transforms with parameter defaults; flip the ones SAM resolves at transform time.
    text = TEMPLATE.read_text()
    variant = text.replace("    Default: IAM\n", "    Default: API_KEY\n", 1)
    variant = variant.replace(
        "  LambdaProvisionedConcurrency:\n    Type: Number\n    Default: 0\n",
        "  LambdaProvisionedConcurrency:\n    Type: Number\n    Default: 2\n",
        1,
    )
    variant = variant.replace(
        "  DemoPage:\n    Type: String\n    Default: Disabled\n",
        "  DemoPage:\n    Type: String\n    Default: Enabled\n",
        1,
    )
    assert variant.count("Default: API_KEY") == 1 and "Default: 2\n" in variant and "Default: Enabled\n" in variant
    path = tmp_path / "template.yaml"
    path.write_text(variant)
    (tmp_path / "statemachine").symlink_to(REPO_ROOT / "statemachine")
    (tmp_path / "functions").symlink_to(REPO_ROOT / "functions")
    result = run([tool("cfn-lint"), "-c", "I", "--format", "parseable", "--", str(path)], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_checkov_has_no_failures_and_only_justified_allowlisted_skips() -> None:
    result = run(
        [tool("checkov"), "-f", str(TEMPLATE), "--framework", "cloudformation", "--skip-download", "--output", "json"]
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    report: dict[str, Any] = json.loads(result.stdout)
    summary = report["summary"]
    assert summary["failed"] == 0, [c["check_id"] for c in report["results"]["failed_checks"]]
    assert summary["parsing_errors"] == 0
    assert summary["passed"] >= 50, summary  # the scan really ran over the resources
    for check in report["results"]["skipped_checks"]:
        logical_id = check["resource"].rsplit(".", 1)[1]
        assert logical_id in CHECKOV_SKIP_ALLOWLIST.get(check["check_id"], set()), check["check_id"]
        assert check["check_result"].get("suppress_comment", "").strip(), check["check_id"]


@pytest.mark.slow  # pip resolves the function's wheels: ~20 s alone, more on a busy machine
def test_sam_build_succeeds(tmp_path: Path) -> None:
    makefile = REPO_ROOT / "functions" / "inference" / "Makefile"
    if not makefile.exists():
        pytest.skip("functions/inference/Makefile (BuildMethod: makefile) is not written yet (inference part)")
    asl = REPO_ROOT / "statemachine" / "train_and_deploy.asl.json"
    if not asl.exists():
        pytest.skip("statemachine/train_and_deploy.asl.json is not written yet (statemachine part)")
    build_dir = tmp_path / "build"
    args = [tool("sam"), "build", "--template", str(TEMPLATE), "--build-dir", str(build_dir)]
    result = run([*args, "--cache-dir", str(tmp_path / "cache"), "--no-cached"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "Build Succeeded" in result.stdout + result.stderr
    built = load_template(build_dir / "template.yaml")
    code_dir = build_dir / built["Resources"]["InferenceFunction"]["Properties"]["CodeUri"]
    assert (code_dir / "app.py").is_file(), sorted(p.name for p in code_dir.iterdir())
    # The built function serves the demo page from its own files (every file the page names is there).
    source = REPO_ROOT / "functions" / "inference"
    assert {p.relative_to(code_dir) for p in (code_dir / "demo").rglob("*")} == {
        p.relative_to(source) for p in (source / "demo").rglob("*")
    }
    assert {p.name for p in source.glob("*.py")} <= {p.name for p in code_dir.glob("*.py")}
    definition = built["Resources"]["TrainDeployStateMachine"]["Properties"]["DefinitionUri"]
    assert json.loads((build_dir / definition).read_text())["StartAt"]


# ---------------------------------------------------------------------------------------------- SAM transform
# cfn-lint 1.5x validates SAM templates against SAM schemas without running the transform, and `sam validate --lint`
# only runs cfn-lint, so the real transform (what CloudFormation runs) is checked here for both auth modes.
TRANSLATE_SCRIPT = Path(__file__).resolve().parent / "sam_translate.py"


def translate(**params: str) -> dict[str, Any]:
    python = TOOLS_BIN / "python"
    if not python.exists():
        pytest.fail(f"{python} not found; run `make tools` (samtranslator comes with aws-sam-cli)")
    result = run([str(python), str(TRANSLATE_SCRIPT), str(TEMPLATE), *(f"{k}={v}" for k, v in params.items())])
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout)


@pytest.mark.parametrize(("mode", "scheme", "demo"), [("IAM", "sigv4", "Disabled"), ("API_KEY", "api_key", "Enabled")])
def test_sam_transform_wires_auth_integrations_and_concurrency(mode: str, scheme: str, demo: str) -> None:
    params = {"ApiAuthMode": mode, "LambdaProvisionedConcurrency": "2", "DemoPage": demo}
    cfn = translate(**params)
    resources = cfn["Resources"]
    resolver = Resolver(cfn, params)
    body = resources["InferenceApi"]["Properties"]["Body"]
    assert body["x-amazon-apigateway-binary-media-types"] == ["image/jpeg", "image/png", "application/x-image"]
    assert body["securityDefinitions"]["sigv4"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    routes = {(verb, path) for path, methods in body["paths"].items() for verb in methods}
    assert routes == {("post", "/predict"), ("get", "/health"), ("get", "/demo")}
    for path, methods in body["paths"].items():
        for verb, method in methods.items():
            # The demo page's GET is open only with DemoPage=Enabled (SAM keeps the definition's security as is).
            wanted = [] if (path, demo) == ("/demo", "Enabled") else [{scheme: []}]
            assert resolver.resolve(method["security"]) == wanted, (mode, verb, path)
            integration = method["x-amazon-apigateway-integration"]
            assert integration["type"] == "aws_proxy", (verb, path)
            # API Gateway calls the alias, so provisioned concurrency serves the traffic.
            assert "${InferenceFunctionAliaslive}" in integration["uri"]["Fn::Sub"], (verb, path)

    alias = resolver.resolve(resources["InferenceFunctionAliaslive"]["Properties"])
    assert alias["ProvisionedConcurrencyConfig"] == {"ProvisionedConcurrentExecutions": "2"}
    function = resources["InferenceFunction"]["Properties"]
    assert function["ReservedConcurrentExecutions"] == {"Ref": "LambdaReservedConcurrency"}
    assert function["TracingConfig"] == {"Mode": "Active"}
    assert function["Runtime"] == "python3.13"

    stage = next(v["Properties"] for v in resources.values() if v["Type"] == "AWS::ApiGateway::Stage")
    assert stage["TracingEnabled"] is True
    assert stage["AccessLogSetting"]["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    assert stage["MethodSettings"][0]["ThrottlingRateLimit"] == {"Ref": "ApiThrottlingRateLimit"}
    assert resolver.resource_exists("ApiUsagePlan") is (mode == "API_KEY")

    machine = resources["TrainDeployStateMachine"]
    assert machine["Type"] == "AWS::StepFunctions::StateMachine"
    assert machine["Properties"]["TracingConfiguration"] == {"Enabled": True}
    assert machine["Properties"]["LoggingConfiguration"]["Destinations"]
    for permission in (v for v in resources.values() if v["Type"] == "AWS::Lambda::Permission"):
        assert permission["Properties"]["Principal"] == "apigateway.amazonaws.com"
        assert "${__ApiId__}" in permission["Properties"]["SourceArn"]["Fn::Sub"][0]
