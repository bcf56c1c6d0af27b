"""Unit tests of payments and compensation: the payments domain (charging at most once, which
failures are retried), the simulated gateway, the backoff, the order's cancellation, the
stock's release, and the payments handler's backoff, against hand-written fakes (no AWS)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

from shop.events import InventoryReserved, OrderCancelled, OrderPlaced, PaymentFailed, PaymentSucceeded, ReservedLine
from shop.inventory import Shortage, release_inventory
from shop.orders import InvalidTransition, OrderStatus, RecordedOrder, cancel_order, confirm_order
from shop.payments import (
    BACKOFF_CAP_SECONDS,
    Charge,
    Decline,
    GatewayRejected,
    GatewayUnavailable,
    LedgerEntry,
    PaymentInProgress,
    PaymentNotDue,
    PaymentStatus,
    SimulatedGateway,
    backoff_seconds,
    record_payment_due,
    take_payment,
)

LINES = (ReservedLine(sku="BOOK-001", quantity=2),)


def placed(order_id: str = "order-1", customer_id: str = "customer-1") -> OrderPlaced:
    return OrderPlaced.parse({"order_id": order_id, "customer_id": customer_id,
                              "lines": [{"sku": "BOOK-001", "quantity": 2, "unit_price_cents": 1500}]})


def reserved(order_id: str = "order-1") -> InventoryReserved:
    return InventoryReserved(order_id=order_id, lines=LINES, correlation_id="checkout-7")


class FakeLedger:
    """The ledger in a dict, honouring the same conditions as the DynamoDB adapter."""

    def __init__(self) -> None:
        self.entries: dict[str, LedgerEntry] = {}
        self.claimed_until: dict[str, float] = {}

    def record_due(self, order_id: str, customer_id: str, amount_cents: int, currency: str) -> bool:
        if order_id in self.entries:
            return False
        self.entries[order_id] = LedgerEntry(order_id, customer_id, amount_cents, currency, PaymentStatus.DUE)
        return True

    def claim(self, order_id: str, *, now: float, lease_seconds: float) -> LedgerEntry:
        entry = self.entries.get(order_id)
        if entry is None:
            raise PaymentNotDue(order_id)
        if entry.settled:
            return entry
        if entry.status == PaymentStatus.CHARGING and self.claimed_until[order_id] >= now:
            raise PaymentInProgress(order_id)
        self.claimed_until[order_id] = now + lease_seconds
        entry = replace(entry, status=PaymentStatus.CHARGING, attempts=entry.attempts + 1)
        self.entries[order_id] = entry
        return entry

    def settle(self, order_id: str, outcome: Charge | Decline) -> LedgerEntry:
        entry = self.entries[order_id]
        assert entry.status == PaymentStatus.CHARGING
        if isinstance(outcome, Charge):
            entry = replace(entry, status=PaymentStatus.CHARGED, charges=entry.charges + 1, charge_id=outcome.charge_id)
        else:
            entry = replace(entry, status=PaymentStatus.DECLINED, decline_reason=outcome.reason)
        self.entries[order_id] = entry
        return entry

    def release(self, order_id: str) -> None:
        if self.entries[order_id].status == PaymentStatus.CHARGING:
            self.entries[order_id] = replace(self.entries[order_id], status=PaymentStatus.DUE)


class ScriptedGateway:
    """Answers each charge with the next scripted outcome (or raises it); records every call."""

    def __init__(self, *outcomes: Charge | Decline | Exception) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[dict[str, Any]] = []

    def charge(self, **request: Any) -> Charge | Decline:
        self.calls.append(request)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


@pytest.fixture
def ledger() -> FakeLedger:
    ledger = FakeLedger()
    record_payment_due(ledger, placed())
    return ledger


class TestTakePayment:
    def test_a_due_order_is_charged_with_the_order_id_as_idempotency_key(self, ledger: FakeLedger) -> None:
        gateway = ScriptedGateway(Charge("ch_1"))
        event = take_payment(ledger, gateway, reserved(), now=0)
        assert isinstance(event, PaymentSucceeded)
        assert (event.order_id, event.amount_cents, event.charge_id, event.correlation_id) == (
            "order-1", 3000, "ch_1", "checkout-7")
        assert gateway.calls == [{"idempotency_key": "order-1", "customer_id": "customer-1",
                                  "amount_cents": 3000, "currency": "EUR"}]
        assert ledger.entries["order-1"].charges == 1

    def test_a_settled_order_is_not_charged_again_and_gives_the_same_event(self, ledger: FakeLedger) -> None:
        gateway = ScriptedGateway(Charge("ch_1"))
        first = take_payment(ledger, gateway, reserved(), now=0)
        again = take_payment(ledger, gateway, reserved(), now=60)
        assert len(gateway.calls) == 1 and ledger.entries["order-1"].charges == 1
        assert again.event_id == first.event_id

    def test_a_decline_is_final_and_carries_the_reserved_lines(self, ledger: FakeLedger) -> None:
        gateway = ScriptedGateway(Decline("card_declined"))
        event = take_payment(ledger, gateway, reserved(), now=0)
        assert isinstance(event, PaymentFailed)
        assert (event.reason, event.lines) == ("card_declined", LINES)
        assert take_payment(ledger, gateway, reserved(), now=5).event_id == event.event_id
        assert len(gateway.calls) == 1 and ledger.entries["order-1"].charges == 0

    def test_a_transient_failure_puts_the_order_back_to_due_and_raises_for_a_retry(self, ledger: FakeLedger) -> None:
        gateway = ScriptedGateway(GatewayUnavailable("503"), Charge("ch_1"))
        with pytest.raises(GatewayUnavailable):
            take_payment(ledger, gateway, reserved(), now=0)
        assert ledger.entries["order-1"].status == PaymentStatus.DUE
        assert isinstance(take_payment(ledger, gateway, reserved(), now=5), PaymentSucceeded)
        assert ledger.entries["order-1"].attempts == 2

    def test_a_rejected_request_raises_every_time(self, ledger: FakeLedger) -> None:
        gateway = ScriptedGateway(GatewayRejected("limit"), GatewayRejected("limit"))
        for now in (0, 5):
            with pytest.raises(GatewayRejected):
                take_payment(ledger, gateway, reserved(), now=now)
        assert ledger.entries["order-1"].charges == 0

    def test_an_order_whose_order_placed_has_not_arrived_is_not_due_yet(self) -> None:
        with pytest.raises(PaymentNotDue, match="a retry may find it"):
            take_payment(FakeLedger(), ScriptedGateway(), reserved(), now=0)

    def test_a_claim_held_by_another_attempt_is_retried_later(self, ledger: FakeLedger) -> None:
        ledger.claim("order-1", now=0, lease_seconds=30)
        with pytest.raises(PaymentInProgress):
            take_payment(ledger, ScriptedGateway(), reserved(), now=10)
        event = take_payment(ledger, ScriptedGateway(Charge("ch_1")), reserved(), now=31)
        assert isinstance(event, PaymentSucceeded)

    def test_an_order_placed_twice_is_due_once(self, ledger: FakeLedger) -> None:
        assert record_payment_due(ledger, placed()) is False


class TestSimulatedGateway:
    def test_the_same_seed_fails_the_same_calls(self) -> None:
        def outcomes(seed: int) -> list[str]:
            gateway, seen = SimulatedGateway(failure_rate=0.3, seed=seed), []
            for n in range(50):
                try:
                    seen.append(type(gateway.charge(idempotency_key=f"o{n}", customer_id="c",
                                                    amount_cents=100, currency="EUR")).__name__)
                except GatewayUnavailable:
                    seen.append("unavailable")
            return seen

        assert outcomes(7) == outcomes(7) != outcomes(8)
        assert 5 <= outcomes(7).count("unavailable") <= 25

    def test_a_declined_customer_is_declined_and_nothing_is_taken(self) -> None:
        gateway = SimulatedGateway()
        outcome = gateway.charge(idempotency_key="o", customer_id="declined-dave", amount_cents=100, currency="EUR")
        assert outcome == Decline("card_declined") and gateway.charged == []

    def test_an_amount_above_the_limit_is_rejected_with_the_fix(self) -> None:
        gateway = SimulatedGateway(max_amount_cents=1000)
        with pytest.raises(GatewayRejected, match="raise PAYMENT_MAX_AMOUNT_CENTS"):
            gateway.charge(idempotency_key="o", customer_id="c", amount_cents=1001, currency="EUR")

    def test_settings_come_from_the_environment_and_a_bad_one_says_which(self) -> None:
        gateway = SimulatedGateway.from_environment(
            {"PAYMENT_FAILURE_RATE": "0.3", "PAYMENT_SEED": "7", "PAYMENT_MAX_AMOUNT_CENTS": "500"})
        assert (gateway.failure_rate, gateway.max_amount_cents) == (0.3, 500)
        with pytest.raises(ValueError, match="PAYMENT_SEED must be a int, got 'seven'"):
            SimulatedGateway.from_environment({"PAYMENT_SEED": "seven"})
        with pytest.raises(ValueError, match="failure_rate must be at least 0 and below 1"):
            SimulatedGateway(failure_rate=1.5)


class TestBackoff:
    def test_doubles_from_5_seconds_with_each_receive(self) -> None:
        assert [backoff_seconds(n) for n in range(1, 8)] == [5, 10, 20, 40, 80, 160, 320]

    def test_is_capped_at_15_minutes(self) -> None:
        assert backoff_seconds(9) == backoff_seconds(1000) == BACKOFF_CAP_SECONDS == 900


class FakeOrders:
    def __init__(self, status: OrderStatus) -> None:
        self.order = RecordedOrder("order-1", "customer-1", 3000, status)

    def change_status(self, order_id: str, new: OrderStatus, *, expected: OrderStatus) -> RecordedOrder:
        before = self.order
        if before.status == expected:
            self.order = replace(before, status=new)
        return before


def payment_failed() -> PaymentFailed:
    return PaymentFailed(order_id="order-1", customer_id="customer-1", reason="card_declined", lines=LINES)


class TestCancelOrder:
    def test_a_placed_order_is_cancelled_with_the_lines_to_release(self) -> None:
        orders = FakeOrders(OrderStatus.PLACED)
        cancelled = cancel_order(orders, payment_failed())
        assert orders.order.status == OrderStatus.CANCELLED
        assert (cancelled.reason, cancelled.lines) == ("card_declined", LINES)
        assert cancel_order(orders, payment_failed()).event_id == cancelled.event_id

    def test_a_confirmed_order_is_never_cancelled(self) -> None:
        with pytest.raises(InvalidTransition, match="CONFIRMED: it cannot become CANCELLED"):
            cancel_order(FakeOrders(OrderStatus.CONFIRMED), payment_failed())

    def test_a_payment_confirms_a_placed_order(self) -> None:
        orders = FakeOrders(OrderStatus.PLACED)
        paid = PaymentSucceeded(order_id="order-1", customer_id="customer-1", amount_cents=3000, charge_id="ch_1")
        assert confirm_order(orders, paid).order_id == "order-1"
        assert orders.order.status == OrderStatus.CONFIRMED


class FakeStock:
    def __init__(self) -> None:
        self.levels = {"BOOK-001": 3}
        self.released: set[str] = set()

    def reserve(self, order_id: str, lines: Sequence[ReservedLine]) -> Shortage | None:
        return None

    def release(self, order_id: str, lines: Sequence[ReservedLine]) -> bool:
        if order_id in self.released:
            return False
        self.released.add(order_id)
        for line in lines:
            self.levels[line.sku] += line.quantity
        return True

    def set_stock(self, sku: str, quantity: int) -> None:
        self.levels[sku] = quantity

    def stock_of(self, sku: str) -> int:
        return self.levels.get(sku, 0)


class TestReleaseInventory:
    def test_the_lines_of_a_cancelled_order_go_back_to_stock_once(self) -> None:
        stock = FakeStock()
        cancelled = OrderCancelled(order_id="order-1", customer_id="c", reason="card_declined", lines=LINES)
        assert release_inventory(stock, cancelled) is True
        assert release_inventory(stock, cancelled) is False
        assert stock.stock_of("BOOK-001") == 5


class FakeSqs:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def change_message_visibility(self, **request: Any) -> None:
        self.calls.append(request)


class TestHandlerBackoff:
    def test_each_failed_message_stays_invisible_for_its_backoff_and_the_others_are_left_alone(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from shop.handlers import payments as handler

        sqs = FakeSqs()
        monkeypatch.setattr(handler, "sqs_client", sqs)
        monkeypatch.setenv("PAYMENTS_QUEUE_URL", "https://sqs.example/payments")
        records = [{"messageId": f"m{n}", "receiptHandle": f"r{n}",
                    "attributes": {"ApproximateReceiveCount": str(n)}} for n in (1, 2, 3)]
        handler.back_off(records, {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m3"}]})
        assert sqs.calls == [
            {"QueueUrl": "https://sqs.example/payments", "ReceiptHandle": "r1", "VisibilityTimeout": 5},
            {"QueueUrl": "https://sqs.example/payments", "ReceiptHandle": "r3", "VisibilityTimeout": 20},
        ]
