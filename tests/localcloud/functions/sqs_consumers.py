"""SQS consumers for the event source mapping tests: each fails or replies in one telling way."""

from __future__ import annotations

import json
from typing import Any


def _first_receive(record: dict[str, Any]) -> bool:
    return record["attributes"]["ApproximateReceiveCount"] == "1"


def fail_first_receive(event: dict[str, Any], context: Any) -> None:
    """Raises while any message of the batch is seen for the first time; succeeds on a retry."""
    if any(_first_receive(r) for r in event["Records"]):
        raise RuntimeError("the first delivery always fails")


def report_failures_on_first_receive(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """ReportBatchItemFailures: reports each message whose body has "fail": true, on its first receive."""
    failures = [
        {"itemIdentifier": r["messageId"]}
        for r in event["Records"]
        if _first_receive(r) and json.loads(r["body"]).get("fail")
    ]
    return {"batchItemFailures": failures}


def reply_from_body(event: dict[str, Any], context: Any) -> Any:
    """Returns the first message's "reply" as the response on a first receive; None on a retry."""
    first = event["Records"][0]
    if not _first_receive(first):
        return None
    return json.loads(first["body"])["reply"]
