"""Test functions for Kinesis and DynamoDB Streams mappings: the records' payloads decide what they do."""

from __future__ import annotations

import base64
import json
from typing import Any


def payload(record: dict[str, Any]) -> Any:
    """The business payload of a stream record: Kinesis JSON data, or a DynamoDB item's new image."""
    if "kinesis" in record:
        data = base64.b64decode(record["kinesis"]["data"])
        try:
            return json.loads(data)
        except ValueError:
            return data.decode()
    image = record["dynamodb"].get("NewImage") or record["dynamodb"].get("OldImage") or {}
    return {name: next(iter(value.values())) for name, value in image.items()}


def sequence_number(record: dict[str, Any]) -> str:
    return record["kinesis"]["sequenceNumber"] if "kinesis" in record else record["dynamodb"]["SequenceNumber"]


def _poisoned(record: dict[str, Any]) -> bool:
    value = payload(record)
    return isinstance(value, dict) and value.get("poison") in (True, "yes")


def succeed(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Processes every record."""
    return {"processed": [payload(r) for r in event["Records"]]}


def fail_on_poison(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Raises when any record of the batch is poisoned: the whole batch fails."""
    if any(_poisoned(r) for r in event["Records"]):
        raise ValueError("poisoned record in the batch")
    return {"processed": [payload(r) for r in event["Records"]]}


def report_poison(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """ReportBatchItemFailures: reports every poisoned record (Lambda checkpoints at the lowest)."""
    failures = [{"itemIdentifier": sequence_number(r)} for r in event["Records"] if _poisoned(r)]
    return {"batchItemFailures": list(reversed(failures))}


def report_unknown_record(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """ReportBatchItemFailures with an identifier that names no record of the batch."""
    return {"batchItemFailures": [{"itemIdentifier": "no-such-record"}]}


def count_in_window(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Tumbling window: adds up the records' amounts in the state; the final invocation reports the total."""
    state = dict(event.get("state") or {})
    if event.get("isFinalInvokeForWindow"):
        return {"total": state}
    for record in event["Records"]:
        state["records"] = state.get("records", 0) + 1
        state["amount"] = state.get("amount", 0) + payload(record)["amount"]
    return {"state": state}


def forget_state(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Tumbling window handler that returns no state: Lambda treats that as a failure."""
    return {"ok": True}


def count_in_window_until_poison(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Tumbling window with ReportBatchItemFailures: counts the records before the first poisoned one,
    and returns that state with the poisoned record as the batch item failure (TimeWindowEventResponse)."""
    state = dict(event.get("state") or {})
    for record in event["Records"]:
        if _poisoned(record):
            return {"state": state, "batchItemFailures": [{"itemIdentifier": sequence_number(record)}]}
        state["records"] = state.get("records", 0) + 1
        state["amount"] = state.get("amount", 0) + payload(record)["amount"]
    return {"state": state, "batchItemFailures": []}
