"""Operator commands for a deployed stack: ``python -m tools.ops <command> --help``.

package-source  deterministic, content-addressed ``sourcedir-<sha256[:12]>.tar.gz`` of training/
upload-source   package-source, then upload to s3://<artifact bucket>/code/ (skipped if the key exists)
upload-data     upload a dogImages-style tree (train/ valid/ test/) to s3://<data bucket>/datasets/dogImages/
start           start a state-machine execution from a JSON input, optionally watching it to the end
predict         POST an image to the API, SigV4-signed (IAM auth) or with an API key
teardown        delete the endpoint, endpoint configs and models the workflow created, and their autoscaling

Every AWS client is a plain boto3 client, so AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE> point the commands at
the local runtime as well.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import re
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError, ClientError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO_ROOT / "training"
DEFAULT_CODE_PREFIX = "code/"
DEFAULT_DATA_PREFIX = "datasets/dogImages/"
DATA_SPLITS = ("train", "valid", "test")
EXCLUDED_NAMES = frozenset({"__pycache__", ".DS_Store", ".ipynb_checkpoints", ".pytest_cache", ".mypy_cache"})
EXCLUDED_SUFFIXES = (".pyc", ".pyo")
IMAGE_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}
TERMINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
SAGEMAKER_NAMESPACE = "sagemaker"


class OpsError(Exception):
    """A failure the operator can act on; printed as one line, exit status 1."""


def stack_outputs(stack: str) -> dict[str, str]:
    """The CloudFormation outputs of ``stack`` (template.yaml Outputs), by key."""
    try:
        stacks = boto3.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    except ClientError as exc:
        raise OpsError(f"stack {stack!r}: {exc.response['Error'].get('Message', exc)}") from None
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def output(stack: str, key: str) -> str:
    outputs = stack_outputs(stack)
    if key not in outputs:
        raise OpsError(f"stack {stack!r} has no output {key!r}; it has: {', '.join(sorted(outputs)) or 'none'}")
    return outputs[key]


@dataclass(frozen=True)
class SourcePackage:
    name: str
    data: bytes
    sha256: str


def _included(path: Path, root: Path) -> bool:
    parts = path.relative_to(root).parts
    return not any(p in EXCLUDED_NAMES for p in parts) and not path.name.endswith(EXCLUDED_SUFFIXES)


def package_source(src: Path) -> SourcePackage:
    """Build a byte-for-byte reproducible sourcedir tarball of ``src``.

    Files are added in sorted order with mtime 0, uid/gid 0, empty owner names and normalised modes, and the gzip
    header carries no name or timestamp, so the same tree always hashes the same; bytecode caches are skipped.

    Args:
        src: the directory to package (SageMaker extracts it to /opt/ml/code, so paths are relative to it).

    Returns:
        The archive bytes, its sha256 and its content-addressed name ``sourcedir-<sha256[:12]>.tar.gz``.

    Raises:
        OpsError: ``src`` is not a directory or has no files.
    """
    if not src.is_dir():
        raise OpsError(f"--src {src}: not a directory")
    files = sorted((p for p in src.rglob("*") if p.is_file() and _included(p, src)), key=lambda p: p.as_posix())
    if not files:
        raise OpsError(f"--src {src}: no files to package")
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in files:
            info = tarfile.TarInfo(path.relative_to(src).as_posix())
            info.size = path.stat().st_size
            info.mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            with path.open("rb") as fh:
                tar.addfile(info, fh)
    gz = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=gz, mtime=0, compresslevel=9) as out:
        out.write(tar_bytes.getvalue())
    data = gz.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    return SourcePackage(name=f"sourcedir-{digest[:12]}.tar.gz", data=data, sha256=digest)


def cmd_package_source(args: argparse.Namespace) -> int:
    package = package_source(args.src)
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / package.name
    target.write_bytes(package.data)
    print(target)
    return 0


def _split_uri(bucket: str, prefix: str) -> tuple[str, str]:
    prefix = prefix.lstrip("/")
    return bucket, prefix if not prefix or prefix.endswith("/") else prefix + "/"


def upload_source(s3: Any, package: SourcePackage, bucket: str, prefix: str) -> tuple[str, bool]:
    """Upload a source package unless its content-addressed key already exists; returns (uri, uploaded)."""
    bucket, prefix = _split_uri(bucket, prefix)
    key = prefix + package.name
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return f"s3://{bucket}/{key}", False
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
            raise
    s3.put_object(Bucket=bucket, Key=key, Body=package.data, ContentType="application/gzip")
    return f"s3://{bucket}/{key}", True


def cmd_upload_source(args: argparse.Namespace) -> int:
    bucket = args.bucket or output(args.stack, "ArtifactBucketName")
    uri, uploaded = upload_source(boto3.client("s3"), package_source(args.src), bucket, args.prefix)
    print(f"{'uploaded' if uploaded else 'already present'}: {uri}", file=sys.stderr)
    print(uri)
    return 0


def data_files(src: Path) -> list[Path]:
    """Every file under a dogImages-style tree, sorted; refuses trees without train/, valid/ and test/."""
    if not src.is_dir():
        raise OpsError(f"--src {src}: not a directory")
    missing = [split for split in DATA_SPLITS if not (src / split).is_dir()]
    if missing:
        raise OpsError(f"--src {src}: missing {', '.join(missing)}/; expected the dogImages layout {DATA_SPLITS}")
    return sorted((p for p in src.rglob("*") if p.is_file() and _included(p, src)), key=lambda p: p.as_posix())


def _existing_sizes(s3: Any, bucket: str, prefix: str) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        sizes.update({obj["Key"]: obj["Size"] for obj in page.get("Contents", [])})
    return sizes


def upload_data(s3: Any, src: Path, bucket: str, prefix: str) -> tuple[int, int]:
    """Upload ``src`` under ``prefix``, skipping keys that already hold a file of the same size."""
    files = data_files(src)
    bucket, prefix = _split_uri(bucket, prefix)
    existing = _existing_sizes(s3, bucket, prefix)
    uploaded = 0
    for path in files:
        key = prefix + path.relative_to(src).as_posix()
        if existing.get(key) == path.stat().st_size:
            continue
        s3.upload_file(str(path), bucket, key)
        uploaded += 1
    return uploaded, len(files) - uploaded


def cmd_upload_data(args: argparse.Namespace) -> int:
    bucket = args.bucket or output(args.stack, "DataBucketName")
    uploaded, skipped = upload_data(boto3.client("s3"), args.src, bucket, args.prefix)
    _, prefix = _split_uri(bucket, args.prefix)
    print(f"uploaded {uploaded} file(s), {skipped} unchanged", file=sys.stderr)
    print(f"s3://{bucket}/{prefix}")
    return 0


def load_input(path: Path, overrides: dict[str, str]) -> dict[str, Any]:
    """Read an execution input file (docs/CONTRACTS.md §6) and apply top-level overrides."""
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise OpsError(f"--input {path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise OpsError(f"--input {path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(doc, dict):
        raise OpsError(f"--input {path}: must be a JSON object")
    doc.update(overrides)
    return doc


def history_events(sfn: Any, execution_arn: str, seen: set[int]) -> Iterator[dict[str, Any]]:
    """Events of an execution not yet in ``seen`` (which this updates), oldest first."""
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        for event in page["events"]:
            if event["id"] not in seen:
                seen.add(event["id"])
                yield event


def describe_event(event: dict[str, Any]) -> str:
    details = next((v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)), {})
    name = details.get("name") or details.get("resource") or ""
    extra = details.get("error") or ""
    stamp = event["timestamp"].strftime("%H:%M:%S") if hasattr(event["timestamp"], "strftime") else ""
    return "  ".join(part for part in (stamp, event["type"], name, extra) if part)


def watch(
    sfn: Any,
    execution_arn: str,
    *,
    poll_seconds: float,
    echo: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Print state transitions until the execution ends; return the final DescribeExecution."""
    seen: set[int] = set()
    while True:
        description = sfn.describe_execution(executionArn=execution_arn)
        for event in history_events(sfn, execution_arn, seen):
            echo(describe_event(event))
        if description["status"] in TERMINAL_STATUSES:
            return dict(description)
        sleep(poll_seconds)


def cmd_start(args: argparse.Namespace) -> int:
    overrides = {
        k: v
        for k, v in (
            ("SourceDir", args.source_dir),
            ("TrainingData", args.training_data),
            ("PretrainedWeights", args.pretrained_weights),
        )
        if v
    }
    execution_input = load_input(args.input, overrides)
    arn = args.state_machine_arn or output(args.stack, "StateMachineArn")
    sfn = boto3.client("stepfunctions")
    start_args: dict[str, Any] = {"stateMachineArn": arn, "input": json.dumps(execution_input)}
    if args.name:
        start_args["name"] = args.name
    execution_arn = sfn.start_execution(**start_args)["executionArn"]
    print(execution_arn)
    if not args.watch:
        return 0
    final = watch(sfn, execution_arn, poll_seconds=args.poll_seconds)
    print(f"status: {final['status']}")
    if final["status"] == "SUCCEEDED":
        print(json.dumps(json.loads(final.get("output") or "{}"), indent=2))
        return 0
    print(f"error: {final.get('error', '')}  cause: {final.get('cause', '')}", file=sys.stderr)
    return 1


def predict_url(url: str, top_k: int | None) -> str:
    """``https://id.execute-api.region.amazonaws.com/v1`` (or .../predict) → the predict URL with ?top_k."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise OpsError(f"--url {url!r}: expected http(s)://host/stage, e.g. the stack output ApiUrl")
    path = parsed.path.rstrip("/")
    path = path if path.endswith("/predict") else f"{path}/predict"
    query = urllib.parse.urlencode({"top_k": top_k}) if top_k is not None else ""
    return urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, path, query, ""))


def region_of(url: str, default: str | None) -> str:
    match = re.search(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com", urllib.parse.urlsplit(url).netloc)
    region = match.group(1) if match else default
    if not region:
        raise OpsError("cannot tell the API's region from the URL; pass --region")
    return region


def image_content_type(path: Path) -> str:
    content_type = IMAGE_TYPES.get(path.suffix.lower())
    if content_type is None:
        raise OpsError(f"--image {path}: unsupported extension {path.suffix!r}; supported: {', '.join(IMAGE_TYPES)}")
    return content_type


def build_predict_request(
    url: str,
    image: bytes,
    content_type: str,
    *,
    api_key: str | None,
    credentials: Credentials | None,
    region: str,
) -> AWSRequest:
    """The HTTP request for POST /predict: ``x-api-key`` when given, else SigV4 for ``execute-api``.

    Args:
        url: the full predict URL (``predict_url``).
        image: raw image bytes, sent as the binary body.
        content_type: ``image/jpeg`` or ``image/png``.
        api_key: API key for the usage-plan auth mode.
        credentials: AWS credentials for IAM auth (required when ``api_key`` is None).
        region: the API's region (part of the SigV4 scope).

    Returns:
        A ready-to-send request; signed unless an API key is used.
    """
    headers = {"Content-Type": content_type, "Accept": "application/json"}
    if api_key:
        headers["x-api-key"] = api_key
    request = AWSRequest(method="POST", url=url, data=image, headers=headers)
    if not api_key:
        if credentials is None:
            raise OpsError("no AWS credentials found for SigV4 signing; configure a profile or pass --api-key")
        SigV4Auth(credentials, "execute-api", region).add_auth(request)
    return request


def send(request: AWSRequest, timeout: float) -> tuple[int, bytes]:
    prepared = request.prepare()
    http_request = urllib.request.Request(
        prepared.url, data=prepared.body, headers=dict(prepared.headers.items()), method=prepared.method
    )
    try:
        with urllib.request.urlopen(http_request, timeout=timeout) as response:  # scheme checked in predict_url
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())
    except (urllib.error.URLError, TimeoutError) as exc:
        raise OpsError(f"cannot reach {prepared.url}: {getattr(exc, 'reason', exc)}") from None


def cmd_predict(args: argparse.Namespace) -> int:
    if not args.image.is_file():
        raise OpsError(f"--image {args.image}: no such file")
    content_type = image_content_type(args.image)
    url = predict_url(args.url or output(args.stack, "ApiUrl"), args.top_k)
    session = boto3.session.Session()
    credentials = None if args.api_key else session.get_credentials()
    request = build_predict_request(
        url,
        args.image.read_bytes(),
        content_type,
        api_key=args.api_key,
        credentials=credentials,
        region=region_of(url, args.region or session.region_name) if not args.api_key else "",
    )
    status, body = send(request, args.timeout)
    try:
        print(json.dumps(json.loads(body), indent=2))
    except ValueError:
        print(body.decode("utf-8", "replace"))
    if status >= 400:
        print(f"HTTP {status}", file=sys.stderr)
        return 1
    return 0


def created_by_workflow(name: str, prefix: str) -> bool:
    """Whether a model/endpoint-config name is one the state machine made: ``<prefix>-<token without dashes>``.

    NOTE: the ASL names them ``${ResourcePrefix}-<md5 of the execution name>``; requiring no further dash keeps
    ``dogbreed-dev`` from matching another environment's ``dogbreed-dev-2-<md5>``.
    """
    rest = name[len(prefix) + 1 :] if name.startswith(prefix + "-") else ""
    return bool(rest) and "-" not in rest


@dataclass
class TeardownPlan:
    endpoint: str | None
    scalable_targets: list[str]
    scaling_policies: list[tuple[str, str]]
    endpoint_configs: list[str]
    models: list[str]

    def lines(self) -> list[str]:
        out = [f"endpoint        {self.endpoint}"] if self.endpoint else []
        out += [f"scaling policy  {policy} on {resource}" for resource, policy in self.scaling_policies]
        out += [f"scalable target {resource}" for resource in self.scalable_targets]
        out += [f"endpoint config {name}" for name in self.endpoint_configs]
        out += [f"model           {name}" for name in self.models]
        return out


def _names(pages: Iterator[dict[str, Any]], list_key: str, name_key: str, prefix: str) -> list[str]:
    return sorted(
        item[name_key] for page in pages for item in page[list_key] if created_by_workflow(item[name_key], prefix)
    )


def plan_teardown(sagemaker: Any, autoscaling: Any, endpoint_name: str, prefix: str) -> TeardownPlan:
    """Find what to delete; nothing is changed."""
    try:
        sagemaker.describe_endpoint(EndpointName=endpoint_name)
        endpoint: str | None = endpoint_name
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ValidationException":
            raise
        endpoint = None  # already gone: "Could not find endpoint"
    targets = [
        t["ResourceId"]
        for page in autoscaling.get_paginator("describe_scalable_targets").paginate(
            ServiceNamespace=SAGEMAKER_NAMESPACE
        )
        for t in page["ScalableTargets"]
        if t["ResourceId"].startswith(f"endpoint/{endpoint_name}/variant/")
    ]
    policies = [
        (p["ResourceId"], p["PolicyName"])
        for resource in targets
        for page in autoscaling.get_paginator("describe_scaling_policies").paginate(
            ServiceNamespace=SAGEMAKER_NAMESPACE, ResourceId=resource
        )
        for p in page["ScalingPolicies"]
    ]
    configs = _names(
        sagemaker.get_paginator("list_endpoint_configs").paginate(NameContains=prefix),
        "EndpointConfigs",
        "EndpointConfigName",
        prefix,
    )
    models = _names(sagemaker.get_paginator("list_models").paginate(NameContains=prefix), "Models", "ModelName", prefix)
    return TeardownPlan(endpoint, targets, policies, configs, models)


def execute_teardown(sagemaker: Any, autoscaling: Any, plan: TeardownPlan, echo: Callable[[str], None]) -> None:
    """Delete in dependency order: scaling first (UpdateEndpoint/DeleteEndpoint refuse otherwise), then the rest."""
    for resource, policy in plan.scaling_policies:
        autoscaling.delete_scaling_policy(
            PolicyName=policy,
            ServiceNamespace=SAGEMAKER_NAMESPACE,
            ResourceId=resource,
            ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        )
        echo(f"deleted scaling policy {policy}")
    for resource in plan.scalable_targets:
        autoscaling.deregister_scalable_target(
            ServiceNamespace=SAGEMAKER_NAMESPACE,
            ResourceId=resource,
            ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        )
        echo(f"deregistered scalable target {resource}")
    if plan.endpoint:
        sagemaker.delete_endpoint(EndpointName=plan.endpoint)
        echo(f"deleted endpoint {plan.endpoint}")
    for name in plan.endpoint_configs:
        sagemaker.delete_endpoint_config(EndpointConfigName=name)
        echo(f"deleted endpoint config {name}")
    for name in plan.models:
        sagemaker.delete_model(ModelName=name)
        echo(f"deleted model {name}")


def cmd_teardown(args: argparse.Namespace) -> int:
    endpoint = args.endpoint_name or output(args.stack, "EndpointName")
    prefix = args.prefix or (output(args.stack, "ResourcePrefix") if args.stack else endpoint)
    sagemaker, autoscaling = boto3.client("sagemaker"), boto3.client("application-autoscaling")
    plan = plan_teardown(sagemaker, autoscaling, endpoint, prefix)
    lines = plan.lines()
    if not lines:
        print(f"nothing to delete for endpoint {endpoint!r} / prefix {prefix!r}")
        return 0
    print("will delete:\n  " + "\n  ".join(lines))
    if args.dry_run:
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            raise OpsError("refusing to delete without --yes (stdin is not a terminal)")
        if input(f"type the endpoint name ({endpoint}) to confirm: ").strip() != endpoint:
            print("aborted")
            return 1
    execute_teardown(sagemaker, autoscaling, plan, print)
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer; expected a whole number ≥ 1") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is out of range; expected a whole number ≥ 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; expected seconds > 0") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} is out of range; expected seconds > 0")
    return value


def _target(parser: argparse.ArgumentParser, flag: str, help_text: str) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument(flag, help=help_text)
    group.add_argument("--stack", help="read it from this CloudFormation stack's outputs instead")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.ops", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")

    p = sub.add_parser("package-source", help="write sourcedir-<sha256[:12]>.tar.gz of training/")
    p.add_argument("--src", type=Path, default=DEFAULT_SOURCE, help="directory to package (default: training/)")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "build", help="output directory (default: build/)")
    p.set_defaults(func=cmd_package_source)

    p = sub.add_parser("upload-source", help="package training/ and upload it, content-addressed")
    _target(p, "--bucket", "artifact bucket name")
    p.add_argument("--src", type=Path, default=DEFAULT_SOURCE, help="directory to package (default: training/)")
    p.add_argument("--prefix", default=DEFAULT_CODE_PREFIX, help=f"key prefix (default: {DEFAULT_CODE_PREFIX})")
    p.set_defaults(func=cmd_upload_source)

    p = sub.add_parser("upload-data", help="upload a dogImages tree (train/ valid/ test/)")
    p.add_argument("--src", type=Path, required=True, help="local directory holding train/, valid/ and test/")
    _target(p, "--bucket", "data bucket name")
    p.add_argument("--prefix", default=DEFAULT_DATA_PREFIX, help=f"key prefix (default: {DEFAULT_DATA_PREFIX})")
    p.set_defaults(func=cmd_upload_data)

    p = sub.add_parser("start", help="start an execution (and --watch it)")
    p.add_argument("--input", type=Path, required=True, help="execution input JSON (docs/CONTRACTS.md §6)")
    _target(p, "--state-machine-arn", "state machine ARN")
    p.add_argument("--name", help="execution name (default: generated)")
    p.add_argument("--source-dir", help="override the input's SourceDir (s3://.../sourcedir-*.tar.gz)")
    p.add_argument("--training-data", help="override the input's TrainingData (s3://.../)")
    p.add_argument("--pretrained-weights", help="override the input's PretrainedWeights (s3://.../resnet50.pth)")
    p.add_argument("--watch", action="store_true", help="print state transitions until the execution ends")
    p.add_argument("--poll-seconds", type=_positive_float, default=10.0, help="watch interval (default: 10)")
    p.set_defaults(func=cmd_start)

    p = sub.add_parser("predict", help="POST an image to the API (SigV4 unless --api-key)")
    _target(p, "--url", "API base URL (stack output ApiUrl) or its /predict URL")
    p.add_argument("--image", type=Path, required=True, help=f"image file ({', '.join(IMAGE_TYPES)})")
    p.add_argument("--top-k", type=_positive_int, help="number of breeds to return (the API caps it)")
    p.add_argument("--api-key", help="API key (API-key auth mode); without it the request is SigV4-signed")
    p.add_argument("--region", help="SigV4 region when the URL does not show it")
    p.add_argument("--timeout", type=_positive_float, default=30.0, help="HTTP timeout in seconds (default: 30)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("teardown", help="delete the endpoint, endpoint configs, models and autoscaling")
    _target(p, "--endpoint-name", "endpoint name (e.g. dogbreed-dev)")
    p.add_argument("--prefix", help="resource prefix of configs/models (default: the endpoint name)")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--dry-run", action="store_true", help="only print what would be deleted")
    p.set_defaults(func=cmd_teardown)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one operator command; returns the process exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except OpsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ClientError as exc:
        error = exc.response.get("Error", {})
        print(f"error: AWS {error.get('Code', '?')}: {error.get('Message', exc)}", file=sys.stderr)
        return 1
    except BotoCoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
