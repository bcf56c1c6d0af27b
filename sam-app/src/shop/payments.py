"""The payments domain: charging each order at most once, whatever the deliveries.

The payments service hears OrderPlaced (it records the amount due) and InventoryReserved
(the stock is set aside: charge it). A gateway can fail in three ways, and each needs
a different answer:

- it is unavailable for a moment (a timeout, a 5xx): retry later, with backoff;
- it declines the card (a final answer): do not retry, publish PaymentFailed;
- it rejects the request itself (the shop's configuration is wrong): every retry fails
  the same way until someone fixes it; the message ends in the DLQ (a poison message).

The ledger is the idempotency record. It is keyed on the order_id (the business key,
as a Stripe idempotency key would be), and every change is a conditional write, so a
duplicate delivery, a redelivery or a replay finds the order settled and charges nothing.
Nothing here knows about SQS or DynamoDB; adapters and handlers do.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from shop.events import InventoryReserved, OrderPlaced, PaymentFailed, PaymentSucceeded
from shop.orders import follow_up

#: A customer whose id starts with this has a card the simulated gateway always declines
#: (as a payment provider's test card does).
DECLINED_CUSTOMER_PREFIX = "declined-"
#: How long one attempt may hold an order's claim: the function's Timeout and some margin.
#: An attempt that crashed mid-charge leaves the claim behind; after this, a retry may take it.
CLAIM_LEASE_SECONDS = 30.0

#: Backoff between retries of a failed payment message: 5 s, 10 s, 20 s... at most 15 minutes.
BACKOFF_BASE_SECONDS = 5
BACKOFF_CAP_SECONDS = 900


class PaymentStatus(StrEnum):
    """Where an order's payment stands in the ledger. CHARGED and DECLINED are final."""

    DUE = "DUE"
    CHARGING = "CHARGING"
    CHARGED = "CHARGED"
    DECLINED = "DECLINED"


# -- the gateway ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Charge:
    """The gateway took the money."""

    charge_id: str


@dataclass(frozen=True)
class Decline:
    """The gateway refused the card: a final answer, retrying changes nothing."""

    reason: str


class GatewayUnavailable(Exception):
    """A transient failure (timeout, 5xx) before anything was charged: retry later."""


class GatewayRejected(Exception):
    """The gateway refused the request itself; it will refuse every retry until the shop's
    configuration changes (a poison message, for the queue)."""


class PaymentGateway(Protocol):
    """A payment provider's API, reduced to the one call the shop makes."""

    def charge(self, *, idempotency_key: str, customer_id: str, amount_cents: int, currency: str) -> Charge | Decline:
        """Charge the customer, or decline; raise GatewayUnavailable or GatewayRejected."""
        ...


class SimulatedGateway:
    """A payment gateway that fails the way real ones do, from a seeded random generator.

    Of its calls, `failure_rate` fail transiently (GatewayUnavailable, nothing charged);
    customers whose id starts with DECLINED_CUSTOMER_PREFIX are declined; an amount above
    `max_amount_cents` (the merchant account's limit) is rejected every time.
    """

    TRANSIENT = ("timed out after 5 s", "503 Service Unavailable", "502 Bad Gateway")

    def __init__(self, failure_rate: float = 0.0, seed: int = 0, max_amount_cents: int = 1_000_000) -> None:
        if not 0.0 <= failure_rate < 1.0:
            raise ValueError(f"failure_rate must be at least 0 and below 1, got {failure_rate}")
        self.failure_rate = failure_rate
        self.max_amount_cents = max_amount_cents
        self.random = random.Random(seed)
        self.calls = 0
        self.charged: list[tuple[str, int]] = []  # (idempotency_key, amount): what the gateway took

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> "SimulatedGateway":
        """PAYMENT_FAILURE_RATE (0 to 1), PAYMENT_SEED and PAYMENT_MAX_AMOUNT_CENTS, from the function's Environment."""
        settings = {"PAYMENT_FAILURE_RATE": float, "PAYMENT_SEED": int, "PAYMENT_MAX_AMOUNT_CENTS": int}
        values: dict[str, float | int] = {}
        for name, kind in settings.items():
            text = environ.get(name)
            if text is None:
                continue
            try:
                values[name] = kind(text)
            except ValueError:
                raise ValueError(f"{name} must be a {kind.__name__}, got {text!r}: fix the function's Environment") from None
        gateway = cls(failure_rate=float(values.get("PAYMENT_FAILURE_RATE", 0.0)), seed=int(values.get("PAYMENT_SEED", 0)))
        if "PAYMENT_MAX_AMOUNT_CENTS" in values:
            gateway.max_amount_cents = int(values["PAYMENT_MAX_AMOUNT_CENTS"])
        return gateway

    def charge(self, *, idempotency_key: str, customer_id: str, amount_cents: int, currency: str) -> Charge | Decline:
        self.calls += 1
        if amount_cents > self.max_amount_cents:
            raise GatewayRejected(
                f"amount {amount_cents} {currency} cents is above the merchant account's limit of "
                f"{self.max_amount_cents}: raise PAYMENT_MAX_AMOUNT_CENTS, then redrive the DLQ")
        draw = self.random.random()
        if draw < self.failure_rate:
            raise GatewayUnavailable(self.TRANSIENT[int(draw / self.failure_rate * len(self.TRANSIENT))])
        if customer_id.startswith(DECLINED_CUSTOMER_PREFIX):
            return Decline("card_declined")
        self.charged.append((idempotency_key, amount_cents))
        return Charge(charge_id=f"ch_{len(self.charged):06d}")


def backoff_seconds(receive_count: int) -> int:
    """How long a failed message stays invisible before its next try: exponential in the
    number of receives so far (1 -> 5 s, 2 -> 10 s, 3 -> 20 s...), capped at 15 minutes."""
    exponent = min(max(receive_count, 1) - 1, 16)
    return min(BACKOFF_BASE_SECONDS * 2**exponent, BACKOFF_CAP_SECONDS)


# -- the ledger ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerEntry:
    """One order's payment, as the ledger holds it."""

    order_id: str
    customer_id: str
    amount_cents: int
    currency: str
    status: PaymentStatus
    charges: int = 0  # how many times money was taken for this order: 0 or 1, never more
    charge_id: str | None = None
    decline_reason: str | None = None
    attempts: int = 0

    @property
    def settled(self) -> bool:
        return self.status in (PaymentStatus.CHARGED, PaymentStatus.DECLINED)


class PaymentNotDue(LookupError):
    """InventoryReserved came before the OrderPlaced that says what to charge: a retry finds it."""

    def __init__(self, order_id: str) -> None:
        self.order_id = order_id
        super().__init__(f"no payment due for order {order_id} (yet): its OrderPlaced has not arrived; a retry may find it")


class PaymentInProgress(Exception):
    """Another attempt holds the order's claim (its lease has not run out): retry later."""

    def __init__(self, order_id: str) -> None:
        self.order_id = order_id
        super().__init__(f"order {order_id} is being charged by another attempt; retry after its lease")


class PaymentLedger(Protocol):
    """Where payments are kept. Every method is one atomic conditional write."""

    def record_due(self, order_id: str, customer_id: str, amount_cents: int, currency: str) -> bool:
        """Add the order as DUE unless it is in the ledger already; False if it was."""
        ...

    def claim(self, order_id: str, *, now: float, lease_seconds: float) -> LedgerEntry:
        """Move the order DUE -> CHARGING (or take over a CHARGING claim whose lease ran out) and
        return it. A settled order is returned as it is, unchanged. Raises PaymentNotDue for an
        order not in the ledger, PaymentInProgress for a claim still held."""
        ...

    def settle(self, order_id: str, outcome: Charge | Decline) -> LedgerEntry:
        """CHARGING -> CHARGED (counting the charge) or DECLINED; return the entry after."""
        ...

    def release(self, order_id: str) -> None:
        """CHARGING -> DUE: the attempt failed before anything was charged."""
        ...


def record_payment_due(ledger: PaymentLedger, order: OrderPlaced) -> bool:
    """Note what the order will cost, once; False for a redelivered OrderPlaced."""
    return ledger.record_due(order.order_id, order.customer_id, order.total_cents, order.currency)


def take_payment(
    ledger: PaymentLedger, gateway: PaymentGateway, reserved: InventoryReserved, *, now: float
) -> PaymentSucceeded | PaymentFailed:
    """Charge the order whose stock is reserved, at most once; return the event to publish.

    A settled order (a duplicate, a redelivery, a replay) is not charged again: it gives the
    same event as the first time, with the same event_id. A transient gateway failure puts
    the order back to DUE and raises, so the message is retried.
    """
    entry = ledger.claim(reserved.order_id, now=now, lease_seconds=CLAIM_LEASE_SECONDS)
    if not entry.settled:
        try:
            outcome = gateway.charge(idempotency_key=entry.order_id, customer_id=entry.customer_id,
                                     amount_cents=entry.amount_cents, currency=entry.currency)
        except Exception:
            ledger.release(entry.order_id)
            raise
        entry = ledger.settle(entry.order_id, outcome)
    return outcome_event(entry, reserved)


def outcome_event(entry: LedgerEntry, reserved: InventoryReserved) -> PaymentSucceeded | PaymentFailed:
    """The event a settled ledger entry publishes (the same event_id every time)."""
    if entry.status == PaymentStatus.CHARGED:
        return PaymentSucceeded(order_id=entry.order_id, customer_id=entry.customer_id,
                                amount_cents=entry.amount_cents, charge_id=entry.charge_id or "",
                                **follow_up(PaymentSucceeded, entry.order_id, reserved))
    if entry.status == PaymentStatus.DECLINED:
        return PaymentFailed(order_id=entry.order_id, customer_id=entry.customer_id,
                             reason=entry.decline_reason or "declined", lines=reserved.lines,
                             **follow_up(PaymentFailed, entry.order_id, reserved))
    raise ValueError(f"order {entry.order_id} is {entry.status.value}, not settled: nothing to publish")
