"""The endpoints view's data: DescribeEndpoint, Application Auto Scaling's activities, CloudWatch's AWS/SageMaker
metrics and the inference function's embedded-metric log lines (CloudWatch Logs), through the stack's own APIs.
"""

from __future__ import annotations

import json
import time
from collections import deque
from typing import Any

from botocore.exceptions import ClientError

from ops.console.reader import epoch as _epoch
from ops.target import Target

SAMPLES_KEPT = 720  # instance-count samples per endpoint (an hour at one poll each 5 s)
INVOCATION_WINDOW_S = 900  # the invocations table and chart look back 15 minutes
MAX_FILTER_PAGES = 5  # FilterLogEvents pages (up to 10,000 events each) read per refresh


def emf_metrics(message: str) -> dict[str, list[float]]:
    """The metrics of one CloudWatch embedded-metric-format log line: ``{name: [values]}`` (empty if it is not EMF).

    NOTE: the EMF specification lets a value be a number or an array of numbers; Powertools writes arrays.
    """
    if '"_aws"' not in message:
        return {}
    try:
        doc = json.loads(message)
        declared = [m["Name"] for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]]
    except (json.JSONDecodeError, KeyError, TypeError):
        return {}
    out: dict[str, list[float]] = {}
    for name in declared:
        raw = doc.get(name)
        values = raw if isinstance(raw, list) else [raw]
        numbers = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if numbers:
            out[name] = numbers
    return out


class ServingReader:
    """The endpoints, their scaling and their traffic, on one target."""

    def __init__(self, target: Target) -> None:
        self.target = target
        # DescribeEndpoint has no history: the console keeps the counts it has seen (scaling activities have the rest).
        self._instances: dict[str, deque[list[float]]] = {}

    def _client(self, service: str) -> Any:
        return self.target.client(service, retries=3)

    def endpoints(self) -> list[dict[str, Any]]:
        """Every endpoint with its variants, the instance counts this console has seen, and CloudWatch's figures."""
        sm = self._client("sagemaker")
        out = []
        now = time.time()
        for summary in sm.list_endpoints(SortBy="CreationTime", SortOrder="Descending", MaxResults=20)["Endpoints"]:
            name = summary["EndpointName"]
            try:
                endpoint = sm.describe_endpoint(EndpointName=name)
            except ClientError:  # deleted between the list and the describe
                continue
            variants = [
                {
                    "name": v["VariantName"],
                    "currentInstanceCount": v.get("CurrentInstanceCount"),
                    "desiredInstanceCount": v.get("DesiredInstanceCount"),
                    "currentWeight": v.get("CurrentWeight"),
                }
                for v in endpoint.get("ProductionVariants", [])
            ]
            samples = self._instances.setdefault(name, deque(maxlen=SAMPLES_KEPT))
            samples.append([now, float(sum(v["currentInstanceCount"] or 0 for v in variants))])
            out.append(
                {
                    "name": name,
                    "status": endpoint["EndpointStatus"],
                    "config": endpoint.get("EndpointConfigName"),
                    "failureReason": endpoint.get("FailureReason"),
                    "created": _epoch(endpoint.get("CreationTime")),
                    "modified": _epoch(endpoint.get("LastModifiedTime")),
                    "variants": variants,
                    "instanceSamples": list(samples),
                    "metrics": self._variant_metrics(name, [v["name"] for v in variants]),
                    "scaling": self._scaling_activities(name, [v["name"] for v in variants]),
                }
            )
        return out

    def _scaling_activities(self, endpoint: str, variants: list[str]) -> list[dict[str, Any]]:
        """Application Auto Scaling's record of each variant's capacity changes (DescribeScalingActivities)."""
        autoscaling = self._client("application-autoscaling")
        found: list[dict[str, Any]] = []
        for variant in variants:
            try:
                answer = autoscaling.describe_scaling_activities(
                    ServiceNamespace="sagemaker", ResourceId=f"endpoint/{endpoint}/variant/{variant}", MaxResults=20
                )
            except ClientError:  # no scalable target registered (yet): nothing to show
                continue
            found.extend(
                {
                    "variant": variant,
                    "start": _epoch(a.get("StartTime")),
                    "status": a.get("StatusCode"),
                    "description": a.get("Description"),
                    "cause": a.get("Cause"),
                }
                for a in answer.get("ScalingActivities", [])
            )
        return sorted(found, key=lambda a: a["start"] or 0, reverse=True)

    def _variant_metrics(self, endpoint: str, variants: list[str]) -> dict[str, Any]:
        """AWS/SageMaker Invocations (Sum) and ModelLatency (Average, µs) per minute, over the last hour."""
        queries = []
        for index, variant in enumerate(variants):
            dims = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]
            for metric, stat in (("Invocations", "Sum"), ("ModelLatency", "Average")):
                queries.append(
                    {
                        "Id": f"{metric.lower()}{index}",
                        "Label": f"{variant} {metric}",
                        "MetricStat": {
                            "Metric": {"Namespace": "AWS/SageMaker", "MetricName": metric, "Dimensions": dims},
                            "Period": 60,
                            "Stat": stat,
                        },
                    }
                )
        if not queries:
            return {}
        end = time.time()
        try:
            answer = self._client("cloudwatch").get_metric_data(
                MetricDataQueries=queries, StartTime=end - 3600, EndTime=end
            )
        except ClientError as exc:
            return {"error": exc.response["Error"].get("Message", "GetMetricData failed")}
        return {
            r["Label"]: [[_epoch(t), v] for t, v in zip(r["Timestamps"], r["Values"], strict=False)]
            for r in answer.get("MetricDataResults", [])
        }

    def recent_invocations(self, limit: int = 50) -> list[dict[str, Any]]:
        """The inference function's last requests, from its EMF log lines (what CloudWatch turns into metrics)."""
        group = f"/aws/lambda/{self.target.output('InferenceFunctionName')}"
        logs = self._client("logs")
        kwargs: dict[str, Any] = {"logGroupName": group, "startTime": int((time.time() - INVOCATION_WINDOW_S) * 1000)}
        events: deque[dict[str, Any]] = deque(maxlen=limit * 4)  # FilterLogEvents pages oldest first: keep the end
        try:
            for _ in range(MAX_FILTER_PAGES):
                page = logs.filter_log_events(**kwargs)
                events.extend(page.get("events", []))
                if not page.get("nextToken"):
                    break
                kwargs["nextToken"] = page["nextToken"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                return []
            raise
        found = []
        for event in events:
            metrics = emf_metrics(event.get("message", ""))
            if not metrics or metrics.keys() <= {"ColdStart"}:
                continue
            latency = metrics.get("EndpointLatency")
            outcome = "Prediction" if "Prediction" in metrics else next(iter(sorted(metrics.keys() - {"ColdStart"})))
            found.append(
                {
                    "timestamp": event.get("timestamp", 0) / 1000,
                    "latencyMs": latency[0] if latency else None,
                    "outcome": outcome,
                }
            )
        return found[-limit:]
