"""Publishing to SNS topics as an AWS service does (EventBridge rules, CloudWatch alarm actions), and the inbox that
stands in for a topic's subscribers.

The publish goes straight into moto's SNS backend: it is the service's own delivery, not a caller's request, so it
needs no credentials and no caller's IAM policy (the topic policy that AWS would check is not evaluated). A topic's
subscribers are an e-mail address at most, which cannot be reached from here, so every message published is also
appended to ``<home>/notifications/<topic name>.jsonl``: what a subscriber would have received, which ``ops status``
shows and a test can read.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from local_aws.constants import ACCOUNT_ID, REGION

LOGGER = logging.getLogger("local_aws.sns")


class TopicPublisher:
    """Publishes to moto's SNS and keeps each topic's inbox."""

    def __init__(self, inbox: Path, account: str = ACCOUNT_ID, region: str = REGION) -> None:
        self.inbox = Path(inbox)
        self.account = account
        self.region = region
        self._lock = threading.Lock()

    def is_local_topic(self, arn: str) -> bool:
        return arn.startswith(f"arn:aws:sns:{self.region}:{self.account}:")

    def publish(self, topic_arn: str, message: str, subject: str | None = None) -> str | None:
        """Publish one message; returns its MessageId, or None when the topic does not exist (AWS counts a failed
        delivery and moves on: nothing is raised to the event's source)."""
        # NOTE: moto is imported here, not at the top: ``ops status`` reads the inbox without loading a service.
        from moto.sns.models import sns_backends

        try:
            message_id = sns_backends[self.account][self.region].publish(message, arn=topic_arn, subject=subject)
        except Exception as exc:
            LOGGER.warning("could not publish to %s: %s", topic_arn, exc)
            return None
        record = {"TopicArn": topic_arn, "MessageId": message_id, "Subject": subject, "Message": message,
                  "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}  # fmt: skip
        with self._lock:
            self.inbox.mkdir(parents=True, exist_ok=True)
            with (self.inbox / f"{topic_arn.rsplit(':', 1)[-1]}.jsonl").open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
        return str(message_id)


def read_inbox(inbox: Path, topic_name: str, last: int = 10) -> list[dict[str, Any]]:
    """The last ``last`` messages published to a topic, oldest first (an empty list when there are none)."""
    try:
        lines = (Path(inbox) / f"{topic_name}.jsonl").read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    records: list[dict[str, Any]] = []
    for line in lines[-last:]:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by a crash mid-write
            continue
    return records
