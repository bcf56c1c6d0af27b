"""The shop's events: the envelope every event carries, the event models, and their
conversion to and from EventBridge (PutEvents entries out, delivered events in)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, ClassVar, Literal, Self, TypedDict, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    computed_field,
    field_validator,
)

SCHEMA_VERSION = "1.0"

# "The maximum size for a PutEvents event entry is 256 KB."
# https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html
MAX_ENTRY_SIZE_BYTES = 256 * 1024


E = TypeVar("E", bound="EventEnvelope")


class InvalidEvent(ValueError):
    """An event that does not match its model, or that EventBridge would refuse."""


class EventEnvelope(BaseModel):
    """What every shop event carries besides its own fields.

    `source` and `detail_type` belong to the bus entry, not to the detail, so each
    event class sets them as class constants.
    """

    # Events are facts: nobody edits one after it happened. Unknown fields are
    # ignored so that a consumer keeps working when a producer adds a field in a
    # minor schema version (the tolerant reader).
    model_config = ConfigDict(frozen=True, extra="ignore")

    source: ClassVar[str]
    detail_type: ClassVar[str]

    event_id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=1)
    # A chain of events starts with its first event, so by default the
    # correlation id is that event's own id; later events copy it forward.
    correlation_id: str = Field(
        default_factory=lambda data: data.get("event_id") or str(uuid.uuid4()),
        min_length=1,
    )
    # Minor versions only add fields, so a 1.x consumer reads any 1.y event.
    schema_version: str = Field(default=SCHEMA_VERSION, pattern=r"^1\.\d+$")
    occurred_at: AwareDatetime = Field(default_factory=lambda: datetime.now(timezone.utc))

    @field_validator("occurred_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return value.astimezone(timezone.utc)

    @classmethod
    def parse(cls, detail: Mapping[str, Any]) -> Self:
        """Validate an event's fields, raising InvalidEvent that names each wrong field."""
        try:
            return cls.model_validate(detail)
        except ValidationError as error:
            # `from None`: the message below already says everything pydantic's
            # traceback would, in fewer lines.
            raise InvalidEvent(_describe(cls.__name__, error)) from None


class OrderLine(BaseModel):
    """One product in an order. Prices are integer cents, so sums are exact."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    sku: str = Field(min_length=1)
    # Strict: a quantity of "2" or true is a producer bug, not something to coerce.
    quantity: StrictInt
    unit_price_cents: StrictInt

    @property
    def subtotal_cents(self) -> int:
        return self.quantity * self.unit_price_cents


class OrderPlaced(EventEnvelope):
    """The storefront took an order. Nothing has been checked or reserved yet."""

    source: ClassVar[str] = "shop.storefront"
    detail_type: ClassVar[str] = "OrderPlaced"

    order_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    # Shape only: whether the lines make a valid order is the domain's decision
    # (shop.orders.accept_order), so an empty or zero-quantity order parses.
    lines: tuple[OrderLine, ...]
    currency: Literal["EUR"] = "EUR"
    # Where the order ships (ISO 3166 alpha-2). Rules route on it: an order
    # shipping outside the shop's usual countries goes to review.
    shipping_country: str = Field(default="FR", pattern=r"^[A-Z]{2}$")

    # In the event's JSON, so that EventBridge rules can filter on the amount.
    @computed_field  # type: ignore[prop-decorator]
    @property
    def total_cents(self) -> int:
        return sum(line.subtotal_cents for line in self.lines)


class OrderConfirmed(EventEnvelope):
    """The shop accepted the order and its stock is reserved: it will ship."""

    source: ClassVar[str] = "shop.orders"
    detail_type: ClassVar[str] = "OrderConfirmed"

    order_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    total_cents: StrictInt


class ReservedLine(BaseModel):
    """Stock set aside for one line of an order."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    sku: str = Field(min_length=1)
    quantity: StrictInt


class InventoryReserved(EventEnvelope):
    """Stock for every line of the order is set aside."""

    source: ClassVar[str] = "shop.inventory"
    detail_type: ClassVar[str] = "InventoryReserved"

    order_id: str = Field(min_length=1)
    lines: tuple[ReservedLine, ...]


class OutOfStock(EventEnvelope):
    """At least one line of the order could not be reserved; nothing was reserved."""

    source: ClassVar[str] = "shop.inventory"
    detail_type: ClassVar[str] = "OutOfStock"

    order_id: str = Field(min_length=1)
    sku: str = Field(min_length=1)
    requested: StrictInt
    available: StrictInt


#: Every event the shop publishes, by its detail-type.
EVENT_TYPES: dict[str, type[EventEnvelope]] = {
    model.detail_type: model for model in (OrderPlaced, OrderConfirmed, InventoryReserved, OutOfStock)
}


class PutEventsEntry(TypedDict):
    """One entry of a PutEvents request, as boto3's `put_events(Entries=...)` takes it."""

    Source: str
    DetailType: str
    Detail: str
    EventBusName: str


def entry_size(entry: Mapping[str, Any]) -> int:
    """Size of a PutEvents entry in bytes, computed as EventBridge does.

    Time counts 14 bytes; Source, DetailType, Detail and each Resources item count
    their UTF-8 bytes; EventBusName does not count.
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html
    """
    size = 14 if entry.get("Time") is not None else 0
    for key in ("Source", "DetailType", "Detail"):
        size += len((entry.get(key) or "").encode("utf-8"))
    for resource in entry.get("Resources") or ():
        size += len(resource.encode("utf-8"))
    return size


def to_put_events_entry(event: EventEnvelope, bus_name: str) -> PutEventsEntry:
    """The PutEvents entry for `event` on `bus_name`; InvalidEvent if EventBridge would refuse it."""
    entry = PutEventsEntry(
        Source=event.source,
        DetailType=event.detail_type,
        Detail=event.model_dump_json(),
        EventBusName=bus_name,
    )
    size = entry_size(entry)
    if size > MAX_ENTRY_SIZE_BYTES:
        raise InvalidEvent(
            f"{event.detail_type} {event.event_id} is {size} bytes as a PutEvents entry; "
            f"EventBridge accepts at most {MAX_ENTRY_SIZE_BYTES} bytes (256 KB). "
            "Store large payloads elsewhere (for example S3) and send a reference."
        )
    return entry


def from_eventbridge(event: Mapping[str, Any] | str | bytes, model: type[E] = OrderPlaced) -> E:  # type: ignore[assignment]
    """The `model` event (OrderPlaced unless said) inside an EventBridge event: a dict, or its
    JSON text (as an SQS body)."""
    return model.parse(_detail_of(event, model))


def any_from_eventbridge(event: Mapping[str, Any] | str | bytes) -> EventEnvelope:
    """Whichever shop event an EventBridge event carries, chosen by its detail-type."""
    if isinstance(event, (str, bytes)):
        try:
            event = json.loads(event)
        except ValueError as error:
            raise InvalidEvent(f"EventBridge event is not valid JSON: {error}") from None
    detail_type = event.get("detail-type") if isinstance(event, Mapping) else None
    model = EVENT_TYPES.get(detail_type)  # type: ignore[arg-type]
    if model is None:
        raise InvalidEvent(
            f"EventBridge event field 'detail-type': {detail_type!r} is not a shop event; "
            f"expected one of {sorted(EVENT_TYPES)}"
        )
    return from_eventbridge(event, model)


def parse_event(detail_type: str, detail: Mapping[str, Any] | str | bytes) -> EventEnvelope:
    """The shop event `detail_type` made from a detail a producer received rather than
    built: a dict, or JSON text (a request body, a partner's webhook).

    EventBridge checks only that a detail is a JSON object, so this is where a bad
    event stops: InvalidEvent names the wrong field before anything is put on the bus.
    https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEventsRequestEntry.html
    """
    model = EVENT_TYPES.get(detail_type)
    if model is None:
        raise InvalidEvent(f"{detail_type!r} is not a shop event; expected one of {sorted(EVENT_TYPES)}")
    if isinstance(detail, (str, bytes)):
        try:
            detail = json.loads(detail)
        except ValueError as error:  # JSONDecodeError, or bytes that are not UTF-8
            raise InvalidEvent(f"{detail_type} detail is not valid JSON: {error}") from None
    if not isinstance(detail, Mapping):
        raise InvalidEvent(f"{detail_type} detail: expected a JSON object, got {type(detail).__name__}")
    return model.parse(detail)


def _detail_of(
    event: Mapping[str, Any] | str | bytes, model: type[EventEnvelope]
) -> Mapping[str, Any]:
    """Check that `event` is an EventBridge event for `model` and return its detail."""
    if isinstance(event, (str, bytes)):
        try:
            event = json.loads(event)
        except ValueError as error:  # JSONDecodeError, or bytes that are not UTF-8
            raise InvalidEvent(f"EventBridge event is not valid JSON: {error}") from None
    if not isinstance(event, Mapping):
        raise InvalidEvent(
            f"expected an EventBridge event (a JSON object), got {type(event).__name__}"
        )
    for key, expected in (("source", model.source), ("detail-type", model.detail_type)):
        if event.get(key) != expected:
            raise InvalidEvent(
                f"EventBridge event field {key!r}: expected {expected!r}, got {event.get(key)!r}"
            )
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise InvalidEvent(
            f"EventBridge event field 'detail': expected a JSON object, got {type(detail).__name__}"
        )
    return detail


def _describe(model_name: str, error: ValidationError) -> str:
    """One line per wrong field: where it is, what was expected, and what came instead."""
    problems = []
    for item in error.errors():
        where = "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in item["loc"]
        )
        problem = f"{where.lstrip('.') or '(event)'}: {item['msg']}"
        if item["type"] != "missing":
            got = repr(item["input"])
            problem += f", got {got if len(got) <= 60 else got[:57] + '...'}"
        problems.append(problem)
    return f"{model_name} is invalid: " + "; ".join(problems)


# -- clickstream (chapter 6): put on the analytics stream by shop.clickstream, never on the bus --


class ProductViewed(EventEnvelope):
    """A shopper opened a product's page. Put directly on the analytics stream (Kinesis), not on the bus."""

    source: ClassVar[str] = "shop.storefront"
    detail_type: ClassVar[str] = "ProductViewed"
    #: Where the producer puts it: the analytics stream, never the bus.
    channel: ClassVar[str] = "kinesis"

    # The stream's partition key: one session's events share a shard, in order.
    session_id: str = Field(min_length=1)
    sku: str = Field(min_length=1)


class ProductAddedToCart(EventEnvelope):
    """A shopper put a product in the cart. Put directly on the analytics stream (Kinesis), not on the bus."""

    source: ClassVar[str] = "shop.storefront"
    detail_type: ClassVar[str] = "ProductAddedToCart"
    #: Where the producer puts it: the analytics stream, never the bus.
    channel: ClassVar[str] = "kinesis"

    session_id: str = Field(min_length=1)
    sku: str = Field(min_length=1)
    quantity: StrictInt = Field(gt=0)


EVENT_TYPES.update({model.detail_type: model for model in (ProductViewed, ProductAddedToCart)})


# -- payments and compensation (chapter 7) ------------------------------------------------------


class PaymentSucceeded(EventEnvelope):
    """The order was charged, once (the payments ledger holds the charge)."""

    source: ClassVar[str] = "shop.payments"
    detail_type: ClassVar[str] = "PaymentSucceeded"

    order_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    amount_cents: StrictInt
    charge_id: str = Field(min_length=1)


class PaymentFailed(EventEnvelope):
    """The gateway declined the payment for good (retrying will not help); nothing was charged.

    It carries the reserved lines, so that the order's cancellation can say what to release.
    """

    source: ClassVar[str] = "shop.payments"
    detail_type: ClassVar[str] = "PaymentFailed"

    order_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    lines: tuple[ReservedLine, ...]


class OrderCancelled(EventEnvelope):
    """The order will not ship: the compensation event. Inventory releases the lines it reserved."""

    source: ClassVar[str] = "shop.orders"
    detail_type: ClassVar[str] = "OrderCancelled"

    order_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    lines: tuple[ReservedLine, ...]


EVENT_TYPES.update({model.detail_type: model for model in (PaymentSucceeded, PaymentFailed, OrderCancelled)})
