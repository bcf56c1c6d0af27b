"""The storefront: the producer that puts OrderPlaced events on the shop's bus.

It is a library the demo and notebooks call, not a Lambda function.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import boto3

from shop.events import OrderLine, OrderPlaced, PutEventsEntry, to_put_events_entry
from shop.retrying import MAX_ATTEMPTS, put_with_retries

# PutEvents takes at most 10 entries per request.
# https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html
MAX_ENTRIES_PER_PUT_EVENTS = 10


class PutEventsClient(Protocol):
    """The one EventBridge client call the storefront needs (a boto3 "events" client has it)."""

    def put_events(self, *, Entries: Sequence[PutEventsEntry]) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class Cart:
    """What a customer checks out: becomes one OrderPlaced."""

    customer_id: str
    lines: Sequence[OrderLine]
    correlation_id: str | None = None
    # The caller's own id makes a retried checkout the same order, which the order
    # processor then records once; without it every call makes a new order.
    order_id: str | None = None
    shipping_country: str = "FR"


class PutEventsFailed(Exception):
    """EventBridge refused some entries; `failures` says which, and why."""

    def __init__(self, failures: list[tuple[OrderPlaced, str, str]], attempted: int,
                 attempts: int = MAX_ATTEMPTS) -> None:
        self.failures = failures
        details = "; ".join(
            f"order {event.order_id} (event {event.event_id}): {code}: {message}"
            for event, code, message in failures
        )
        super().__init__(
            f"EventBridge refused {len(failures)} of {attempted} entries {attempts} times, "
            f"which were not published: {details}"
        )


class Storefront:
    """Places orders by publishing OrderPlaced on the shop's custom bus."""

    def __init__(self, bus_name: str, events_client: PutEventsClient | None = None,
                 wait: Callable[[float], None] = time.sleep) -> None:
        self.bus_name = bus_name
        self._events_client = events_client
        self.wait = wait

    @property
    def events_client(self) -> PutEventsClient:
        # Created on first use, so a Storefront can be built before any AWS setup.
        if self._events_client is None:
            self._events_client = boto3.client("events")
        return self._events_client

    def place_order(
        self, customer_id: str, lines: Sequence[OrderLine], correlation_id: str | None = None
    ) -> OrderPlaced:
        """Publish one OrderPlaced and return it; raise if it was not published."""
        [event] = self.place_orders([Cart(customer_id, lines, correlation_id)])
        return event

    def place_orders(self, carts: Iterable[Cart]) -> list[OrderPlaced]:
        """Publish one OrderPlaced per cart, 10 to a PutEvents call.

        Every event is validated before the first call, so a bad cart sends nothing.
        EventBridge may still refuse single entries in a call that succeeds (at the
        PutEvents quota, a ThrottlingException): those, and only those, are put again
        after a wait, up to MAX_ATTEMPTS times (chapter 10). Entries refused every time
        are raised together as PutEventsFailed once every batch was tried.
        """
        events = [_order_placed(cart) for cart in carts]
        entries = [to_put_events_entry(event, self.bus_name) for event in events]
        failures: list[tuple[OrderPlaced, str, str]] = []
        for start in range(0, len(entries), MAX_ENTRIES_PER_PUT_EVENTS):
            batch = slice(start, start + MAX_ENTRIES_PER_PUT_EVENTS)
            failures += self._publish(events[batch], entries[batch])
        if failures:
            raise PutEventsFailed(failures, attempted=len(events))
        return events

    def _publish(self, events: list[OrderPlaced], entries: list[PutEventsEntry]
                 ) -> list[tuple[OrderPlaced, str, str]]:
        """Put one batch, and again what EventBridge refused; return what it refused every time."""
        refused = put_with_retries(self._put_events, list(zip(events, entries)), self.wait)
        return [(event, code, message) for (event, _), code, message in refused]

    def _put_events(
        self, pending: list[tuple[OrderPlaced, PutEventsEntry]]
    ) -> list[tuple[tuple[OrderPlaced, PutEventsEntry], str, str]]:
        """One PutEvents call; returns the (event, entry) pairs EventBridge refused, with their error."""
        response = self.events_client.put_events(Entries=[entry for _, entry in pending])
        if not response.get("FailedEntryCount"):
            return []
        # The response lists one result per request entry, in request order; a
        # refused entry has ErrorCode instead of EventId.
        # https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevents.html
        return [
            (item, result["ErrorCode"], result.get("ErrorMessage", ""))
            for item, result in zip(pending, response["Entries"], strict=True)
            if "ErrorCode" in result
        ]


def _order_placed(cart: Cart) -> OrderPlaced:
    detail: dict[str, Any] = {
        "order_id": cart.order_id or str(uuid.uuid4()),
        "customer_id": cart.customer_id,
        "lines": list(cart.lines),
        "shipping_country": cart.shipping_country,
    }
    if cart.correlation_id is not None:
        detail["correlation_id"] = cart.correlation_id
    return OrderPlaced.parse(detail)
