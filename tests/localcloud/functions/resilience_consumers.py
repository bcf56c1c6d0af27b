"""Consumers for the chapter 7 tests of the local cloud: backoff set by the function itself,
and a reply read from the function's environment."""

from __future__ import annotations

import os
from typing import Any

import boto3

#: How long a failed message stays invisible, set by the function (the queue says 30 s).
BACKOFF_SECONDS = 300


def fail_first_receive_and_back_off(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Reports every message seen for the first time as failed, and keeps it invisible for
    BACKOFF_SECONDS with ChangeMessageVisibility; succeeds on a retry."""
    failures = []
    for record in event["Records"]:
        if record["attributes"]["ApproximateReceiveCount"] == "1":
            boto3.client("sqs").change_message_visibility(
                QueueUrl=os.environ["QUEUE_URL"], ReceiptHandle=record["receiptHandle"],
                VisibilityTimeout=BACKOFF_SECONDS)
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


def reply_with_environment(event: dict[str, Any], context: Any) -> str:
    """Returns the REPLY environment variable, as the function sees it now."""
    return os.environ.get("REPLY", "")
