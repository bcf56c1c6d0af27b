"""Test functions whose behaviour the event decides: succeed, fail, or report partial failures."""

from __future__ import annotations

import json
import os
from typing import Any


def _payload(record: dict[str, Any]) -> Any:
    """The business payload of a record, whatever channel carried it."""
    if "body" in record:  # SQS
        try:
            return json.loads(record["body"])
        except ValueError:
            return record["body"]
    if "Sns" in record:
        return json.loads(record["Sns"]["Message"])
    return record


def succeed(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Always succeeds; returns what it saw, so tests can read it back."""
    print(json.dumps({"message": "handled", "function": context.function_name}))
    return {"ok": True, "remaining_ms": context.get_remaining_time_in_millis(), "env": os.environ.get("GREETING")}


def fail(event: dict[str, Any], context: Any) -> None:
    """Always raises: a failed invocation."""
    raise RuntimeError("this function always fails")


def fail_when_told(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Raises if any payload (EventBridge detail, SQS body, SNS message) has "fail": true."""
    payloads = [_payload(r) for r in event.get("Records", [])] or [event.get("detail", event)]
    if any(isinstance(p, dict) and (p.get("fail") or (p.get("detail") or {}).get("fail")) for p in payloads):
        raise ValueError("told to fail")
    return {"ok": True}


def report_failures(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS handler with ReportBatchItemFailures: reports the records whose payload has "fail": true."""
    failures = []
    for record in event["Records"]:
        payload = _payload(record)
        detail = payload.get("detail", payload) if isinstance(payload, dict) else {}
        if isinstance(detail, dict) and detail.get("fail"):
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
