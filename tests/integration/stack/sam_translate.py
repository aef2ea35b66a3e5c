"""Run the real SAM transform (samtranslator, from .venv-tools) offline and print the CloudFormation as JSON.

Usage: .venv-tools/bin/python sam_translate.py template.yaml [Name=Value ...]

Local CodeUri values become S3 placeholders (what `sam package` would do); a local DefinitionUri is inlined as
`Definition`, so linters of the output see the ASL. The managed-policy map is empty (the template names managed
policies by ARN only), so nothing reaches AWS. The template is read with the repository's one CloudFormation loader
(local_aws.cloudformation), the one the local runtime and the offline tests use.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from samtranslator.translator.transform import transform

# The repository root, so the tools venv imports local_aws (stdlib + PyYAML only) from the working tree.
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from local_aws.cloudformation import load_template


class _NoManagedPolicies:
    def load(self) -> dict[str, str]:
        return {}


def main(argv: list[str]) -> int:
    template: dict[str, Any] = load_template(argv[1])
    params = dict(arg.split("=", 1) for arg in argv[2:])
    # samtranslator reads the region from the environment (boto3's resolution); pin it offline.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            props["CodeUri"] = "s3://placeholder-bucket/function.zip"
        if resource["Type"] == "AWS::Serverless::StateMachine" and isinstance(props.get("DefinitionUri"), str):
            props["Definition"] = json.loads((Path(argv[1]).parent / props.pop("DefinitionUri")).read_text())
    json.dump(transform(template, params, _NoManagedPolicies()), sys.stdout, indent=1, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
