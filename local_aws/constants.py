"""The one place for what the local AWS shares: identity, where things live, service limits, the metric format.

Every module of ``local_aws`` and of the ``ops`` CLI imports these names instead of repeating them. Limits cite the
AWS page that fixes them; nothing here is tunable at run time except through the environment variables named below.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------------------------------------------------- identity
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
# REGION as CloudWatch names it in alarm notifications ("Region" and the subject of the SNS message).
REGION_DISPLAY_NAME = "US East (N. Virginia)"
# The detail-type of the EventBridge event Step Functions sends when an execution changes status.
EXECUTION_STATUS_CHANGE = "Step Functions Execution Status Change"
PARTITION = "aws"
URL_SUFFIX = "amazonaws.com"

# ---------------------------------------------------------------------------------------------------------- the repo
REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
SAMCONFIG_PATH = REPO_ROOT / "samconfig.toml"
ASL_PATH = REPO_ROOT / "statemachine" / "train_and_deploy.asl.json"
TRAINING_DIR = REPO_ROOT / "training"
METRIC_DEFINITIONS_PATH = TRAINING_DIR / "metric_definitions.json"
# Logical ids in template.yaml that the local stack serves (docs/CONTRACTS.md §7).
STATE_MACHINE_LOGICAL_ID = "TrainDeployStateMachine"
FUNCTION_LOGICAL_ID = "InferenceFunction"
DEFAULT_STACK_NAME = "dogbreed-dev"

# ---------------------------------------------------------------------------------------------------------- ports
ENV_HOME = "LOCAL_RUNTIME_HOME"
HOST = "127.0.0.1"  # every local service binds loopback only
DEFAULT_AWS_PORT = 4566  # the one AWS endpoint (all services, like LocalStack's edge port)
DEFAULT_API_PORT = 3000  # the REST API, as `sam local start-api` serves it
DEFAULT_CONSOLE_PORT = 3001  # the local console (ops/console): the pipeline, training jobs, endpoints, predict

# ---------------------------------------------------------------------------------------------------------- limits
# InvokeEndpoint: "Maximum payload size 6 MB" (docs.aws.amazon.com/sagemaker/latest/dg/realtime-endpoints.html);
# botocore's sagemaker-runtime model caps Body at max 6291456.
INVOKE_ENDPOINT_MAX_BYTES = 6_291_456
# Lambda synchronous invocation payload, request and response: 6 MB = 6,291,456 bytes
# (docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
LAMBDA_SYNC_PAYLOAD_MAX_BYTES = 6_291_456
# API Gateway REST: 10 MB payload, 29 s default integration timeout
# (docs.aws.amazon.com/apigateway/latest/developerguide/limits.html).
API_GATEWAY_MAX_BYTES = 10 * 1024 * 1024
API_INTEGRATION_TIMEOUT_S = 29.0
# SageMaker returns the first 1024 characters of /opt/ml/output/failure as FailureReason
# (docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-output.html); botocore: FailureReason max 1024.
FAILURE_REASON_MAX_CHARS = 1024
# StopTrainingJob: "SageMaker sends the algorithm the SIGTERM signal, which delays job termination for 120 seconds"
# (StopTrainingJob API reference; botocore's sagemaker model). In AWS seconds: the local runtime scales it.
TRAINING_STOP_GRACE_S = 120.0
# "MaxRuntimeInSeconds ... The default value is 1 day" (StoppingCondition API reference).
TRAINING_DEFAULT_MAX_RUNTIME_S = 86_400
# S3 single PUT: 5 GB (docs.aws.amazon.com/AmazonS3/latest/userguide/upload-objects.html). The local HTTP layer
# refuses larger bodies before reading them.
S3_MAX_PUT_BYTES = 5 * 1024**3
# Every AWS JSON/query API accepts far less than this per request; the edge refuses larger bodies unread.
AWS_API_MAX_BODY_BYTES = 16 * 1024 * 1024
# SigV4: a request whose X-Amz-Date is more than 15 minutes off is refused (RequestTimeTooSkewed / InvalidSignature).
SIGV4_MAX_SKEW_S = 15 * 60
# Idle keep-alive connections and stalled uploads are closed after this many seconds without traffic.
HTTP_IDLE_TIMEOUT_S = int(os.environ.get("LOCAL_HTTP_IDLE_TIMEOUT", "30"))

# STS AssumeRole: "DurationSeconds ... default value of 3600 seconds" (AssumeRole API reference; botocore's sts
# model: roleDurationSecondsType min 900). Sessions are renewed 15 minutes before expiry, botocore's own advisory
# refresh window for temporary credentials (botocore/credentials.py, RefreshableCredentials._advisory_refresh_timeout).
ROLE_SESSION_DURATION_S = 3600
ROLE_SESSION_REFRESH_S = 15 * 60
# Step Functions: "Maximum execution history size: 25,000 events in a single state machine execution history"
# (docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html, hard quota; bp-history-limit.html). Read at each
# event, so a unit test may lower it on this module; nothing else should.
SFN_HISTORY_MAX_EVENTS = 25_000

# --------------------------------------------------------------------------------------------------- alarms, scaling
# The local CloudWatch evaluates alarms and Application Auto Scaling checks its targets this often (AWS seconds,
# scaled by LOCAL_AWS_TIME_SCALE), never more often than LOOP_MIN_INTERVAL_S real seconds (two cores are shared).
ALARM_EVALUATION_INTERVAL_S = 10.0
# An alarm itself is evaluated once a minute, or once a period when its period is shorter (high resolution).
ALARM_MAX_EVALUATION_INTERVAL_S = 60.0
SCALING_INTERVAL_S = 10.0
LOOP_MIN_INTERVAL_S = 0.2
# The alarms a target tracking policy creates: one-minute periods; "AlarmHigh" (metric > target, 3 of 3) scales
# out, "AlarmLow" (metric < 90 % of target, 15 of 15) scales in, so scale out is fast and scale in gradual
# (docs.aws.amazon.com/autoscaling/application/userguide/target-tracking-scaling-policy-overview.html; the
# 3-datapoint high alarm at a 60 s period: hashicorp/terraform-provider-aws#42553, the 15-datapoint low alarm:
# aws/containers-roadmap#638).
TARGET_TRACKING_PERIOD_S = 60
TARGET_TRACKING_HIGH_DATAPOINTS = 3
TARGET_TRACKING_LOW_DATAPOINTS = 15
TARGET_TRACKING_LOW_RATIO = 0.9
# ScaleOutCooldown / ScaleInCooldown when the policy names none: 300 s for SageMaker variants
# (the user guide's "Define cooldown periods", which TargetTrackingScalingPolicyConfiguration in botocore refers to).
DEFAULT_SCALING_COOLDOWN_S = 300
# SageMakerVariantInvocationsPerInstance: AWS/SageMaker InvocationsPerInstance per (EndpointName, VariantName), Sum.
SAGEMAKER_VARIANT_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
SAGEMAKER_METRIC_NAMESPACE = "AWS/SageMaker"

# ---------------------------------------------------------------------------------------------------------- statuses
EXECUTION_TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
TRAINING_TERMINAL = frozenset({"Completed", "Failed", "Stopped"})

# The CloudWatch log group SageMaker writes training jobs' output to, one stream per host: ``<job>/algo-N-<epoch>``
# (docs.aws.amazon.com/sagemaker/latest/dg/logging-cloudwatch.html).
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"


@functools.cache
def metric_definitions() -> tuple[dict[str, str], ...]:
    """SageMaker MetricDefinitions for train.py's ``METRIC ...`` lines: the one list, shipped in ``training/``.

    The ASL embeds the same list (a unit test asserts it), SageMaker applies it on AWS, and the local SageMaker and
    the ``ops watch`` progress apply it here, so the format is defined once, next to the code that prints it.
    """
    raw: list[dict[str, Any]] = json.loads(METRIC_DEFINITIONS_PATH.read_text(encoding="utf-8"))
    return tuple({"Name": str(d["Name"]), "Regex": str(d["Regex"])} for d in raw)


def home_dir(explicit: str | Path | None = None) -> Path:
    """The state dir: an explicit value beats ``$LOCAL_RUNTIME_HOME``, which beats ``<repo>/.local``."""
    raw = explicit or os.environ.get(ENV_HOME) or REPO_ROOT / ".local"
    return Path(raw).expanduser().resolve()


@dataclass(frozen=True)
class StateLayout:
    """Where each service keeps its state under the home dir (one tree, so one ``rm -rf`` resets everything)."""

    home: Path

    @property
    def s3(self) -> Path:
        """Objects of the local S3: ``<home>/s3/<bucket>/<key>``."""
        return self.home / "s3"

    @property
    def sagemaker(self) -> Path:
        """SageMaker resource records (one JSON file per resource)."""
        return self.home / "state"

    @property
    def jobs(self) -> Path:
        """Training hosts' /opt/ml trees."""
        return self.home / "jobs"

    @property
    def endpoints(self) -> Path:
        """Extracted model artifacts of deployed endpoints."""
        return self.home / "endpoints"

    @property
    def executions(self) -> Path:
        """Step Functions execution records (moto keeps executions in memory only)."""
        return self.home / "executions"

    @property
    def logs(self) -> Path:
        """Log files, laid out like CloudWatch log groups (``TrainingJobs/``, ``Endpoints/``, ``lambda/``)."""
        return self.home / "logs"

    @property
    def cache(self) -> Path:
        """Caches the runtime owns (pip, per-requirements environments); never the user's ~/.cache."""
        return self.home / "cache"

    @property
    def credentials(self) -> Path:
        """The access key pair the runtime issues (mode 0600)."""
        return self.home / "credentials.json"

    @property
    def runtime_file(self) -> Path:
        """The serving process's record: pid and URLs (mode 0600)."""
        return self.home / "runtime.json"

    @property
    def api_key(self) -> Path:
        """The stack's API key when its methods require one (ApiAuthMode=API_KEY; mode 0600)."""
        return self.home / "api-key.json"

    @property
    def notifications(self) -> Path:
        """What was published to each SNS topic, one JSON line per message (local_aws/events/delivery.py)."""
        return self.home / "notifications"

    @property
    def processes(self) -> Path:
        """Child processes the runtime started, for reaping after a crash."""
        return self.home / "processes.json"
