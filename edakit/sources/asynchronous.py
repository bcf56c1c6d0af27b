"""Asynchronous invocation: Lambda's own event queue, its retries, DLQ and destinations.

EventBridge rules and SNS subscriptions invoke functions this way.
https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..cloud import LocalCloud
    from ..runtime import Function, Invocation

#: "Lambda retries the function two more times ... waits one minute before the
#: second attempt, and two minutes before the third." (invocation-async-error-handling)
RETRY_DELAYS = (60.0, 120.0)
DEFAULT_MAXIMUM_RETRY_ATTEMPTS = 2
DEFAULT_MAXIMUM_EVENT_AGE = 21600.0


@dataclass
class QueuedEvent:
    """An event waiting in the function's asynchronous queue."""

    function: "Function"
    event: Any
    enqueued_at: float
    due: float
    attempts: int = 0
    sequence: int = 0


def invocation_record(function: "Function", invocation: "Invocation", condition: str, attempts: int, when: float) -> dict[str, Any]:
    """The record sent to an OnSuccess/OnFailure destination.

    https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html
    """
    response_context: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
    if invocation.error is not None:
        response_context["functionError"] = "Unhandled"
    return {
        "version": "1.0",
        "timestamp": dt.datetime.fromtimestamp(when, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": invocation.request_id,
            "functionArn": f"{function.arn}:$LATEST",
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "requestPayload": invocation.event,
        "responseContext": response_context,
        "responsePayload": invocation.result,
    }


class AsyncInvocationQueue:
    """The internal queue Lambda keeps for asynchronous invocations of every function."""

    kind = "async"

    def __init__(self, cloud: "LocalCloud") -> None:
        self.cloud = cloud
        self.queue: list[QueuedEvent] = []
        self._sequence = itertools.count()
        self.dropped: list[tuple[QueuedEvent, str]] = []

    def enqueue(self, function: "Function", event: Any) -> None:
        now = self.cloud.clock.now()
        self.queue.append(QueuedEvent(function, event, now, now, sequence=next(self._sequence)))

    # -- EventSource ------------------------------------------------------------

    def next_due(self, now: float) -> float | None:
        due = [q.due for q in self.queue if self.cloud.free_concurrency(q.function) > 0]
        return max(now, min(due)) if due else None

    def run(self, now: float) -> bool:
        started = False
        for queued in sorted(self.queue, key=lambda q: (q.due, q.sequence)):
            if queued.due > now or self.cloud.free_concurrency(queued.function) <= 0:
                continue  # a throttled event waits in the queue for a free slot
            self.queue.remove(queued)
            config = self.cloud.event_invoke_config(queued.function)
            max_age = float(config.get("MaximumEventAgeInSeconds", DEFAULT_MAXIMUM_EVENT_AGE))
            if now - queued.enqueued_at > max_age:
                self._fail(queued, None, "EventAgeExceeded")
                started = True
                continue
            queued.attempts += 1
            self.cloud.start_invocation(
                queued.function, queued.event, trigger="async",
                on_done=lambda inv, q=queued: self._complete(q, inv),
            )
            started = True
        return started

    def _complete(self, queued: QueuedEvent, invocation: "Invocation") -> None:
        config = self.cloud.event_invoke_config(queued.function)
        now = self.cloud.clock.now()
        if invocation.error is None:
            destination = (config.get("DestinationConfig") or {}).get("OnSuccess", {}).get("Destination")
            if destination:
                record = invocation_record(queued.function, invocation, "Success", queued.attempts, now)
                self.cloud.send_to_destination(destination, record, source=queued.function)
            return
        max_retries = int(config.get("MaximumRetryAttempts", DEFAULT_MAXIMUM_RETRY_ATTEMPTS))
        max_age = float(config.get("MaximumEventAgeInSeconds", DEFAULT_MAXIMUM_EVENT_AGE))
        if queued.attempts > max_retries:
            self._fail(queued, invocation, "RetriesExhausted")
            return
        delay = RETRY_DELAYS[min(queued.attempts - 1, len(RETRY_DELAYS) - 1)]
        if now + delay - queued.enqueued_at > max_age:
            self._fail(queued, invocation, "EventAgeExceeded")
            return
        queued.due = now + delay
        self.queue.append(queued)

    def _fail(self, queued: QueuedEvent, invocation: "Invocation | None", condition: str) -> None:
        """Send a discarded event to the OnFailure destination and/or the function's DLQ."""
        from ..runtime import Invocation

        now = self.cloud.clock.now()
        if invocation is None:
            invocation = Invocation(queued.function.logical_id, queued.event, now, "", "async", error=condition)
        config = self.cloud.event_invoke_config(queued.function)
        destination = (config.get("DestinationConfig") or {}).get("OnFailure", {}).get("Destination")
        delivered = False
        if destination:
            record = invocation_record(queued.function, invocation, condition, queued.attempts, now)
            self.cloud.send_to_destination(destination, record, source=queued.function)
            delivered = True
        if queued.function.dead_letter_arn:
            # The dead-letter queue gets the original event, with the error in attributes.
            # https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html#invocation-dlq
            error = invocation.result or {}
            attributes = {
                "RequestID": invocation.request_id,
                "ErrorCode": "200",
                "ErrorMessage": str(error.get("errorMessage", condition) if isinstance(error, dict) else condition),
            }
            self.cloud.send_to_destination(queued.function.dead_letter_arn, queued.event, source=queued.function, attributes=attributes)
            delivered = True
        if not delivered:
            self.dropped.append((queued, condition))

    def describe_pending(self) -> str:
        return f"{len(self.queue)} asynchronous event(s) waiting" if self.queue else ""
