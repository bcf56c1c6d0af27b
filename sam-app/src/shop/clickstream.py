"""The storefront's clickstream: the producer that puts ProductViewed and ProductAddedToCart
directly on the analytics stream (Kinesis PutRecords), partitioned by session.

Each record's data is the shop event wrapped as EventBridge delivers events (detail-type,
source, detail), so the analytics function reads clicks and orders (which reach the
stream through an EventBridge rule) with the same channel adapter. It is a library the
demo and notebooks call, not a Lambda function.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import boto3

from shop.events import EventEnvelope, InvalidEvent, ProductAddedToCart, ProductViewed
from shop.retrying import FIRST_RETRY_WAIT_SECONDS, MAX_ATTEMPTS, put_with_retries  # noqa: F401

# "Each PutRecords request can support up to 500 records. Each record in the request can
# be as large as 1 MiB." https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html
MAX_RECORDS_PER_PUT_RECORDS = 500
MAX_RECORD_BYTES = 1024 * 1024
#: Attempts per record (the first included) before PutRecordsFailed, and the first wait,
#: are shop.retrying's (MAX_ATTEMPTS, FIRST_RETRY_WAIT_SECONDS).

ClickEvent = ProductViewed | ProductAddedToCart


class PutRecordsClient(Protocol):
    """The one Kinesis client call the clickstream needs (a boto3 "kinesis" client has it)."""

    def put_records(self, *, StreamName: str, Records: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]: ...


class PutRecordsFailed(Exception):
    """Kinesis refused some records on every attempt; `failures` says which, and why."""

    def __init__(self, failures: list[tuple[ClickEvent, str, str]], attempted: int, attempts: int) -> None:
        self.failures = failures
        details = "; ".join(f"{event.detail_type} {event.event_id} (session {event.session_id}): {code}: {message}"
                            for event, code, message in failures)
        super().__init__(
            f"Kinesis refused {len(failures)} of {attempted} records {attempts} times; they are not on the "
            f"stream: {details}. Put them again later (the events keep their event_id)."
        )


def as_eventbridge_event(event: EventEnvelope, account: str, region: str) -> dict[str, Any]:
    """`event` in the shape EventBridge delivers it, with the event's own id and time.

    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html
    """
    return {
        "version": "0",
        "id": event.event_id,
        "detail-type": event.detail_type,
        "source": event.source,
        "account": account,
        "time": event.occurred_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [],
        "detail": event.model_dump(mode="json"),
    }


class Clickstream:
    """Puts clickstream events on a Kinesis data stream, up to 500 to a PutRecords call."""

    def __init__(self, stream_name: str, kinesis_client: PutRecordsClient | None = None,
                 account: str | None = None, region: str | None = None,
                 wait: Callable[[float], None] = time.sleep) -> None:
        self.stream_name = stream_name
        self._kinesis = kinesis_client
        self._account = account
        self._region = region
        self.wait = wait

    @property
    def kinesis(self) -> PutRecordsClient:
        # Created on first use, so a Clickstream can be built before any AWS setup.
        if self._kinesis is None:
            self._kinesis = boto3.client("kinesis")
        return self._kinesis

    def _origin(self) -> tuple[str, str]:
        if self._account is None:
            self._account = boto3.client("sts").get_caller_identity()["Account"]
        if self._region is None:
            self._region = boto3.session.Session().region_name or "us-east-1"
        return self._account, self._region

    def viewed(self, session_id: str, sku: str) -> ProductViewed:
        """Put one ProductViewed on the stream and return it."""
        [event] = self.put([ProductViewed(session_id=session_id, sku=sku)])
        return event  # type: ignore[return-value]

    def added_to_cart(self, session_id: str, sku: str, quantity: int = 1) -> ProductAddedToCart:
        """Put one ProductAddedToCart on the stream and return it."""
        [event] = self.put([ProductAddedToCart(session_id=session_id, sku=sku, quantity=quantity)])
        return event  # type: ignore[return-value]

    def put(self, events: Iterable[ClickEvent]) -> list[ClickEvent]:
        """Put every event on the stream, partitioned by its session_id; return them.

        Every event is checked before the first call, so a bad one sends nothing. A
        PutRecords call can succeed while refusing single records (FailedRecordCount);
        those, and only those, are put again after a wait, up to MAX_ATTEMPTS times.
        Records still refused then are raised together as PutRecordsFailed: nothing is
        dropped silently. Kinesis keeps a session's records in order within a call, but
        a retried record lands after the records of its session that got through first.
        https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html
        """
        events = list(events)
        account, region = self._origin()
        entries = [self._entry(event, account, region) for event in events]
        failures: list[tuple[ClickEvent, str, str]] = []
        for start in range(0, len(entries), MAX_RECORDS_PER_PUT_RECORDS):
            chunk = slice(start, start + MAX_RECORDS_PER_PUT_RECORDS)
            failures += self._put_with_retries(events[chunk], entries[chunk])
        if failures:
            raise PutRecordsFailed(failures, attempted=len(events), attempts=MAX_ATTEMPTS)
        return events

    def _entry(self, event: ClickEvent, account: str, region: str) -> dict[str, Any]:
        if not isinstance(event, (ProductViewed, ProductAddedToCart)):
            raise InvalidEvent(
                f"the clickstream puts ProductViewed and ProductAddedToCart, not {type(event).__name__}: "
                "orders reach the analytics stream from the bus, through the template's rule"
            )
        data = json.dumps(as_eventbridge_event(event, account, region)).encode()
        if len(data) > MAX_RECORD_BYTES:
            raise InvalidEvent(f"{event.detail_type} {event.event_id} is {len(data)} bytes; a Kinesis record "
                               f"holds at most {MAX_RECORD_BYTES} bytes (1 MiB)")
        return {"Data": data, "PartitionKey": event.session_id}

    def _put_with_retries(self, events: list[ClickEvent], entries: list[dict[str, Any]]
                          ) -> list[tuple[ClickEvent, str, str]]:
        """Put one chunk; return the events refused on the last attempt, with their error."""
        refused = put_with_retries(self._put_once, list(zip(events, entries)), self.wait)
        return [(event, code, message) for (event, _), code, message in refused]

    def _put_once(self, pending: list[tuple[ClickEvent, dict[str, Any]]]
                  ) -> list[tuple[tuple[ClickEvent, dict[str, Any]], str, str]]:
        response = self.kinesis.put_records(StreamName=self.stream_name, Records=[e for _, e in pending])
        if not response.get("FailedRecordCount"):
            return []
        # One result per request record, in request order; a refused one has ErrorCode.
        return [(item, result["ErrorCode"], result.get("ErrorMessage", ""))
                for item, result in zip(pending, response["Records"], strict=True) if "ErrorCode" in result]