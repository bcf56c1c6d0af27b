"""Publishing the shop's follow-up events on its bus, named by EVENT_BUS_NAME.

EventBridge can refuse single entries of a call that succeeds; the publisher raises
then, so the invocation fails and Lambda retries it.
"""

from __future__ import annotations

import os
from typing import Protocol

import boto3

from shop.events import EventEnvelope, to_put_events_entry
from shop.storefront import MAX_ENTRIES_PER_PUT_EVENTS, PutEventsClient

BUS_NAME_VARIABLE = "EVENT_BUS_NAME"


class EventPublisher(Protocol):
    """Where handlers send the events the domain returns."""

    def publish(self, *events: EventEnvelope) -> None: ...


class PublishFailed(Exception):
    """EventBridge refused some entries: the events named were not published."""


class EventBridgePublisher:
    """Puts shop events on the bus named by EVENT_BUS_NAME (the template sets it)."""

    def __init__(self, bus_name: str | None = None, client: PutEventsClient | None = None) -> None:
        bus_name = bus_name or os.environ.get(BUS_NAME_VARIABLE)
        if not bus_name:
            raise RuntimeError(
                f"{BUS_NAME_VARIABLE} is not set: the function's Environment in the SAM "
                "template names the shop's bus"
            )
        self.bus_name = bus_name
        self._client = client

    @property
    def client(self) -> PutEventsClient:
        # Created on first use, so a publisher can be built before any AWS setup.
        if self._client is None:
            self._client = boto3.client("events")
        return self._client

    def publish(self, *events: EventEnvelope) -> None:
        """Put every event on the bus, 10 to a PutEvents call; raise PublishFailed if any was refused."""
        refused: list[str] = []
        for start in range(0, len(events), MAX_ENTRIES_PER_PUT_EVENTS):
            batch = events[start : start + MAX_ENTRIES_PER_PUT_EVENTS]
            response = self.client.put_events(
                Entries=[to_put_events_entry(event, self.bus_name) for event in batch]
            )
            if not response.get("FailedEntryCount"):
                continue
            # One result per entry, in request order; a refused one has ErrorCode.
            # https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevents.html
            refused += [
                f"{event.detail_type} {event.event_id}: {result['ErrorCode']}: {result.get('ErrorMessage', '')}"
                for event, result in zip(batch, response["Entries"], strict=True)
                if "ErrorCode" in result
            ]
        if refused:
            raise PublishFailed(
                f"EventBridge refused {len(refused)} of {len(events)} events: " + "; ".join(refused)
            )
