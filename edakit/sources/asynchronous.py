"""Asynchronous invocation: Lambda's own event queue, its retries, DLQ and destinations.

EventBridge rules, SNS subscriptions and `invoke(InvocationType="Event")` invoke functions this way.
https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..cloud import LocalCloud
    from ..runtime import Function, Invocation

#: "Lambda attempts to run it two more times, with a one-minute wait between the
#: first two attempts, and two minutes between the second and third attempts."
#: https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html
RETRY_DELAYS = (60.0, 120.0)
DEFAULT_MAXIMUM_RETRY_ATTEMPTS = 2
#: Lambda keeps an event in the queue for up to 6 hours unless told otherwise.
DEFAULT_MAXIMUM_EVENT_AGE = 21600.0
#: A dead-letter message carries "the first 1 KB of the error message".
DLQ_ERROR_MESSAGE_BYTES = 1024


@dataclass
class QueuedEvent:
    """An event waiting in the function's asynchronous queue."""

    function: "Function"
    event: Any
    enqueued_at: float
    due: float
    attempts: int = 0
    sequence: int = 0
    request_id: str = ""
    last_invocation: "Invocation | None" = None


def _timestamp(when: float) -> str:
    return dt.datetime.fromtimestamp(when, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def invocation_record(function: "Function", queued: QueuedEvent, condition: str, when: float) -> dict[str, Any]:
    """The record sent to an OnSuccess/OnFailure destination.

    An event discarded before any attempt (it aged out while throttled) has no
    response, so its record has no responseContext or responsePayload.
    https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html
    """
    invocation = queued.last_invocation
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": _timestamp(when),
        "requestContext": {
            "requestId": invocation.request_id if invocation else queued.request_id,
            "functionArn": f"{function.arn}:$LATEST",
            "condition": condition,
            "approximateInvokeCount": queued.attempts,
        },
        "requestPayload": queued.event,
    }
    if invocation is not None:
        response_context: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
        if invocation.error is not None:
            response_context["functionError"] = "Unhandled"
        record["responseContext"] = response_context
        record["responsePayload"] = invocation.result
    return record


class AsyncInvocationQueue:
    """The internal queue Lambda keeps for asynchronous invocations of every function."""

    kind = "async"

    def __init__(self, cloud: "LocalCloud") -> None:
        self.cloud = cloud
        self.queue: list[QueuedEvent] = []
        self._sequence = itertools.count()
        #: Events discarded with nowhere to go (no DLQ, no OnFailure destination), and why.
        self.dropped: list[tuple[QueuedEvent, str]] = []

    def enqueue(self, function: "Function", event: Any) -> None:
        now = self.cloud.clock.now()
        self.queue.append(QueuedEvent(function, event, now, now, sequence=next(self._sequence),
                                      request_id=str(uuid.uuid4())))

    def _maximum_event_age(self, function: "Function") -> float:
        config = self.cloud.event_invoke_config(function)
        return float(config.get("MaximumEventAgeInSeconds", DEFAULT_MAXIMUM_EVENT_AGE))

    # -- EventSource ------------------------------------------------------------

    def next_due(self, now: float) -> float | None:
        """The next retry or first attempt that can start, or the next throttled event to expire."""
        due = []
        for queued in self.queue:
            if self.cloud.free_concurrency(queued.function) > 0:
                due.append(queued.due)
            else:
                due.append(max(queued.due, queued.enqueued_at + self._maximum_event_age(queued.function)))
        return max(now, min(due)) if due else None

    def run(self, now: float) -> bool:
        started = False
        for queued in sorted(self.queue, key=lambda q: (q.due, q.sequence)):
            if queued.due > now:
                continue
            # Events that wait too long in the queue are discarded, retries left or not.
            if now - queued.enqueued_at >= self._maximum_event_age(queued.function):
                self.queue.remove(queued)
                self._fail(queued, "EventAgeExceeded")
                started = True
                continue
            if self.cloud.free_concurrency(queued.function) <= 0:
                self.cloud.cloudwatch.throttled(queued.function, (queued.sequence, queued.attempts))
                continue  # throttled: the event waits in the queue, and no retry is spent
            self.queue.remove(queued)
            queued.attempts += 1
            self.cloud.start_invocation(
                queued.function, queued.event, trigger="async",
                on_done=lambda inv, q=queued: self._complete(q, inv),
            )
            started = True
        return started

    def _complete(self, queued: QueuedEvent, invocation: "Invocation") -> None:
        queued.last_invocation = invocation
        config = self.cloud.event_invoke_config(queued.function)
        now = self.cloud.clock.now()
        if invocation.error is None:
            destination = ((config.get("DestinationConfig") or {}).get("OnSuccess") or {}).get("Destination")
            if destination:
                record = invocation_record(queued.function, queued, "Success", now)
                self.cloud.send_to_destination(destination, record, source=queued.function)
            return
        max_retries = int(config.get("MaximumRetryAttempts", DEFAULT_MAXIMUM_RETRY_ATTEMPTS))
        if queued.attempts > max_retries:
            self._fail(queued, "RetriesExhausted")
            return
        # Back in the queue; if it ages out before the retry is due, run() discards it then.
        queued.due = now + RETRY_DELAYS[min(queued.attempts - 1, len(RETRY_DELAYS) - 1)]
        self.queue.append(queued)

    def _dead_letter_target(self, function: "Function") -> str | None:
        """Read live, so that update_function_configuration(DeadLetterConfig=...) applies at once."""
        live = getattr(self.cloud.lambda_backend.get_function(function.name), "dead_letter_config", None)
        if live is not None:
            return live.get("TargetArn") or None
        return function.dead_letter_arn

    def _fail(self, queued: QueuedEvent, condition: str) -> None:
        """Send a discarded event to the OnFailure destination and/or the function's DLQ."""
        now = self.cloud.clock.now()
        config = self.cloud.event_invoke_config(queued.function)
        destination = ((config.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        delivered = False
        if destination:
            record = invocation_record(queued.function, queued, condition, now)
            self.cloud.send_to_destination(destination, record, source=queued.function)
            delivered = True
        dead_letter = self._dead_letter_target(queued.function)
        if dead_letter:
            # The dead-letter queue gets the original event as-is, with the error in attributes.
            # https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html#invocation-dlq
            self.cloud.send_to_destination(dead_letter, queued.event, source=queued.function,
                                           attributes=self._dead_letter_attributes(queued, condition))
            delivered = True
        if not delivered:
            self.dropped.append((queued, condition))

    @staticmethod
    def _dead_letter_attributes(queued: QueuedEvent, condition: str) -> dict[str, Any]:
        invocation = queued.last_invocation
        if invocation is None:
            # Never run: it waited, throttled (429), until it aged out.
            return {"RequestID": queued.request_id, "ErrorCode": 429, "ErrorMessage": condition}
        result = invocation.result if isinstance(invocation.result, dict) else {}
        message = str(result.get("errorMessage") or invocation.error or condition)
        return {
            "RequestID": invocation.request_id,
            # A function error is an HTTP 200 response with X-Amz-Function-Error set.
            "ErrorCode": 200,
            "ErrorMessage": message.encode()[:DLQ_ERROR_MESSAGE_BYTES].decode(errors="ignore"),
        }

    def describe_pending(self) -> str:
        return f"{len(self.queue)} asynchronous event(s) waiting" if self.queue else ""
