"""Unit tests of stock reservation and of what the inventory's answer does to an order: the
inventory domain, the order status transitions, and their DynamoDB adapters, all against
hand-written fakes (no AWS, no moto)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from botocore.exceptions import ClientError

from shop.adapters.dynamodb import DynamoDBOrderRepository, DynamoDBStockRepository
from shop.events import EventEnvelope, InventoryReserved, OrderPlaced, OutOfStock, ReservedLine
from shop.inventory import Shortage, reserve_inventory, reserved_lines, seed_stock
from shop.orders import (
    InvalidTransition,
    OrderNotFound,
    OrderRejected,
    OrderStatus,
    RecordedOrder,
    follow_up,
    confirm_order,
    mark_out_of_stock,
)

# --- builders -----------------------------------------------------------------


def order_placed(*lines: tuple[str, int], order_id: str = "order-1", **fields: Any) -> OrderPlaced:
    """An OrderPlaced with one line per (sku, quantity), at 10.00 EUR a unit."""
    detail = {
        "order_id": order_id,
        "customer_id": "customer-1",
        "lines": [{"sku": sku, "quantity": qty, "unit_price_cents": 1000} for sku, qty in lines],
    }
    return OrderPlaced.parse(detail | fields)


def reserved(order_id: str = "order-1") -> InventoryReserved:
    return InventoryReserved(order_id=order_id, lines=(ReservedLine(sku="BOOK-001", quantity=1),),
                             correlation_id="checkout-42")


def out_of_stock(order_id: str = "order-1") -> OutOfStock:
    return OutOfStock(order_id=order_id, sku="BOOK-001", requested=2, available=1)


def same_event(one: EventEnvelope, other: EventEnvelope) -> bool:
    """Same event_id and fields; occurred_at is the time of each attempt."""
    return one.model_dump(exclude={"occurred_at"}) == other.model_dump(exclude={"occurred_at"})


def client_error(code: str, operation: str, **response: Any) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}, **response}, operation)


# --- fakes --------------------------------------------------------------------


class FakeStockRepository:
    """Stock in a dict; `reserve` is atomic because nothing else runs meanwhile."""

    def __init__(self, **levels: int) -> None:
        self.levels = dict(levels)
        self.reservations: dict[str, tuple[ReservedLine, ...]] = {}

    def reserve(self, order_id: str, lines: Sequence[ReservedLine]) -> Shortage | None:
        if order_id in self.reservations:
            return None
        for line in lines:
            available = self.levels.get(line.sku, 0)
            if available < line.quantity:
                return Shortage(line.sku, line.quantity, available)
        for line in lines:
            self.levels[line.sku] -= line.quantity
        self.reservations[order_id] = tuple(lines)
        return None

    def set_stock(self, sku: str, quantity: int) -> None:
        self.levels[sku] = quantity

    def stock_of(self, sku: str) -> int:
        return self.levels.get(sku, 0)


class FakeOrderStatusRepository:
    """Order statuses in a dict, changed only from the expected status, as the conditional update does."""

    def __init__(self, *orders: RecordedOrder) -> None:
        self.orders = {order.order_id: order for order in orders}

    def change_status(self, order_id: str, new: OrderStatus, *, expected: OrderStatus) -> RecordedOrder:
        if order_id not in self.orders:
            raise OrderNotFound(order_id)
        before = self.orders[order_id]
        if before.status == expected:
            self.orders[order_id] = RecordedOrder(before.order_id, before.customer_id, before.total_cents, new)
        return before


def recorded(status: OrderStatus = OrderStatus.PLACED, order_id: str = "order-1") -> RecordedOrder:
    return RecordedOrder(order_id, "customer-1", 2000, status)


class FakeStockTableClient:
    """Honours the stock repository's transaction the way DynamoDB does: every condition is
    checked first; if any fails, nothing is written and each item gets a cancellation reason
    (with the item as it is, for ReturnValuesOnConditionCheckFailure ALL_OLD)."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[str, dict[str, Any]]] = {}
        self.transactions: list[list[dict[str, Any]]] = []

    def put_item(self, *, TableName: str, Item: dict[str, Any], **_: Any) -> dict[str, Any]:
        key = next(iter(Item.values()))["S"]
        self.tables.setdefault(TableName, {})[key] = Item
        return {}

    def get_item(self, *, TableName: str, Key: dict[str, Any], **_: Any) -> dict[str, Any]:
        item = self.tables.get(TableName, {}).get(next(iter(Key.values()))["S"])
        return {"Item": item} if item else {}

    def transact_write_items(self, *, TransactItems: list[dict[str, Any]]) -> dict[str, Any]:
        self.transactions.append(TransactItems)
        reasons, writes = [], []
        for action in TransactItems:
            if "Put" in action:
                put = action["Put"]
                assert put["ConditionExpression"] == "attribute_not_exists(order_id)"
                key = put["Item"]["order_id"]["S"]
                existing = self.tables.get(put["TableName"], {}).get(key)
                reasons.append({"Code": "None"} if existing is None else _cancelled(existing))
                writes.append(lambda put=put, key=key: self.tables.setdefault(put["TableName"], {}).__setitem__(key, put["Item"]))
            else:
                update = action["Update"]
                assert update["UpdateExpression"] == "SET stock = stock - :quantity"
                assert update["ConditionExpression"] == "stock >= :quantity"
                quantity = int(update["ExpressionAttributeValues"][":quantity"]["N"])
                item = self.tables.get(update["TableName"], {}).get(update["Key"]["sku"]["S"])
                enough = item is not None and int(item["stock"]["N"]) >= quantity
                reasons.append({"Code": "None"} if enough else _cancelled(item))
                writes.append(lambda item=item, quantity=quantity: item.__setitem__(
                    "stock", {"N": str(int(item["stock"]["N"]) - quantity)}))
        if any(reason["Code"] != "None" for reason in reasons):
            raise client_error("TransactionCanceledException", "TransactWriteItems", CancellationReasons=reasons)
        for write in writes:
            write()
        return {}

    def level(self, table: str, sku: str) -> int:
        return int(self.tables[table][sku]["stock"]["N"])


def _cancelled(item: dict[str, Any] | None) -> dict[str, Any]:
    """A failed condition's reason; ALL_OLD adds the item, if there is one."""
    reason: dict[str, Any] = {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"}
    if item:
        reason["Item"] = item
    return reason


class ConflictingStockTableClient(FakeStockTableClient):
    """Another transaction touched the same item: DynamoDB cancels with TransactionConflict."""

    def transact_write_items(self, *, TransactItems: list[dict[str, Any]]) -> dict[str, Any]:
        reasons = [{"Code": "TransactionConflict"} for _ in TransactItems]
        raise client_error("TransactionCanceledException", "TransactWriteItems", CancellationReasons=reasons)


class FakeOrdersTableClient:
    """Honours `#status = :expected` with ReturnValues ALL_OLD, as DynamoDB's UpdateItem does."""

    def __init__(self, *items: dict[str, Any]) -> None:
        self.items = {item["order_id"]["S"]: item for item in items}
        self.requests: list[dict[str, Any]] = []

    def put_item(self, **request: Any) -> dict[str, Any]:
        self.items[request["Item"]["order_id"]["S"]] = request["Item"]
        return {}

    def update_item(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        assert request["ConditionExpression"] == "#status = :expected"
        item = self.items.get(request["Key"]["order_id"]["S"])
        values = request["ExpressionAttributeValues"]
        if item is None or item["status"] != values[":expected"]:
            response = {"Item": dict(item)} if item else {}
            raise client_error("ConditionalCheckFailedException", "UpdateItem", **response)
        before = dict(item)
        item["status"] = values[":new"]
        return {"Attributes": before}


def order_item(status: str = "PLACED", order_id: str = "order-1") -> dict[str, Any]:
    return {"order_id": {"S": order_id}, "customer_id": {"S": "customer-1"},
            "total_cents": {"N": "2000"}, "status": {"S": status}}


# --- inventory ----------------------------------------------------------------


class TestReservedLines:
    def test_lines_of_one_sku_are_added_up_in_order_of_first_appearance(self) -> None:
        order = order_placed(("BOOK-001", 1), ("MUG-001", 2), ("BOOK-001", 3))
        assert reserved_lines(order.lines) == (
            ReservedLine(sku="BOOK-001", quantity=4), ReservedLine(sku="MUG-001", quantity=2))


class TestReserveInventory:
    def test_reserves_every_line_when_stock_covers_it(self) -> None:
        stock = FakeStockRepository(**{"BOOK-001": 5, "MUG-001": 1})
        outcome = reserve_inventory(stock, order_placed(("BOOK-001", 2), ("MUG-001", 1)))
        assert isinstance(outcome, InventoryReserved)
        assert outcome.order_id == "order-1"
        assert [(line.sku, line.quantity) for line in outcome.lines] == [("BOOK-001", 2), ("MUG-001", 1)]
        assert stock.levels == {"BOOK-001": 3, "MUG-001": 0}

    def test_one_short_line_reserves_nothing_and_names_the_shortage(self) -> None:
        # given stock for the first line only
        stock = FakeStockRepository(**{"BOOK-001": 5, "MUG-001": 1})
        # when an order needs more mugs than there are
        outcome = reserve_inventory(stock, order_placed(("BOOK-001", 2), ("MUG-001", 3)))
        # then it is out of stock, and not even the books were taken
        assert isinstance(outcome, OutOfStock)
        assert (outcome.sku, outcome.requested, outcome.available) == ("MUG-001", 3, 1)
        assert stock.levels == {"BOOK-001": 5, "MUG-001": 1}

    def test_a_sku_never_stocked_is_out_of_stock_with_none_available(self) -> None:
        outcome = reserve_inventory(FakeStockRepository(), order_placed(("STICKER-001", 1)))
        assert isinstance(outcome, OutOfStock)
        assert (outcome.sku, outcome.available) == ("STICKER-001", 0)

    def test_two_lines_of_one_sku_are_checked_against_the_stock_together(self) -> None:
        stock = FakeStockRepository(**{"BOOK-001": 3})
        outcome = reserve_inventory(stock, order_placed(("BOOK-001", 2), ("BOOK-001", 2)))
        assert isinstance(outcome, OutOfStock)
        assert (outcome.requested, outcome.available) == (4, 3)

    def test_of_two_orders_for_the_last_units_the_second_is_out_of_stock(self) -> None:
        stock = FakeStockRepository(**{"BOOK-001": 2})
        first = reserve_inventory(stock, order_placed(("BOOK-001", 2), order_id="order-1"))
        second = reserve_inventory(stock, order_placed(("BOOK-001", 1), order_id="order-2"))
        assert isinstance(first, InventoryReserved) and isinstance(second, OutOfStock)
        assert stock.levels == {"BOOK-001": 0}

    def test_the_same_order_again_takes_no_more_stock_and_gives_the_same_event(self) -> None:
        # given an order whose stock is reserved
        stock = FakeStockRepository(**{"BOOK-001": 5})
        order = order_placed(("BOOK-001", 2))
        first = reserve_inventory(stock, order)
        # when its OrderPlaced is handled again (a retry after publishing failed)
        again = reserve_inventory(stock, order)
        # then the stock is taken once, and the event to publish is the same one
        assert stock.levels == {"BOOK-001": 3}
        assert same_event(again, first)

    def test_the_outcome_continues_the_order_s_correlation_id(self) -> None:
        stock = FakeStockRepository(**{"BOOK-001": 5})
        outcome = reserve_inventory(stock, order_placed(("BOOK-001", 1), correlation_id="checkout-42"))
        assert outcome.correlation_id == "checkout-42"

    @pytest.mark.parametrize(("sku", "quantity"), [("BOOK-001", 0), ("BOOK-001", -3), ("UNICORN-001", 1)])
    def test_an_order_the_shop_rejects_reserves_nothing(self, sku: str, quantity: int) -> None:
        """A negative quantity would *add* stock if it reached the repository."""
        stock = FakeStockRepository(**{"BOOK-001": 5})
        with pytest.raises(OrderRejected):
            reserve_inventory(stock, order_placed((sku, quantity)))
        assert stock.levels == {"BOOK-001": 5} and stock.reservations == {}


class TestSeedStock:
    def test_sets_each_level(self) -> None:
        stock = FakeStockRepository(**{"BOOK-001": 9})
        seed_stock(stock, {"BOOK-001": 3, "MUG-001": 1})
        assert stock.levels == {"BOOK-001": 3, "MUG-001": 1}

    def test_a_negative_level_is_refused(self) -> None:
        with pytest.raises(ValueError, match="stock of BOOK-001 must not be negative"):
            seed_stock(FakeStockRepository(), {"BOOK-001": -1})


class TestFollowUp:
    def test_the_event_id_derives_from_the_order_so_a_second_cause_gives_the_same_event(self) -> None:
        """A retried checkout puts a second OrderPlaced (another event_id) for the same order."""
        placed, placed_again = order_placed(("BOOK-001", 1)), order_placed(("BOOK-001", 1))
        assert placed.event_id != placed_again.event_id
        first = follow_up(InventoryReserved, "order-1", placed)["event_id"]
        assert follow_up(InventoryReserved, "order-1", placed_again)["event_id"] == first

    def test_another_order_or_another_effect_gets_another_event_id(self) -> None:
        placed = order_placed(("BOOK-001", 1))
        ids = {follow_up(InventoryReserved, "order-1", placed)["event_id"],
               follow_up(InventoryReserved, "order-2", placed)["event_id"],
               follow_up(OutOfStock, "order-1", placed)["event_id"]}
        assert len(ids) == 3

    def test_the_correlation_id_is_the_cause_s_and_the_event_id_a_uuid(self) -> None:
        fields = follow_up(OutOfStock, "order-1", order_placed(("BOOK-001", 1), correlation_id="checkout-42"))
        assert fields["correlation_id"] == "checkout-42"
        assert uuid.UUID(fields["event_id"])


# --- the order's status ---------------------------------------------------------


class TestConfirmOrder:
    def test_a_placed_order_becomes_confirmed_with_an_order_confirmed_to_publish(self) -> None:
        orders = FakeOrderStatusRepository(recorded(OrderStatus.PLACED))
        confirmed = confirm_order(orders, reserved())
        assert orders.orders["order-1"].status is OrderStatus.CONFIRMED
        assert (confirmed.order_id, confirmed.customer_id, confirmed.total_cents) == ("order-1", "customer-1", 2000)
        assert confirmed.correlation_id == "checkout-42"

    def test_an_order_already_confirmed_gives_the_same_order_confirmed_again(self) -> None:
        """A retry after the first attempt failed to publish must publish the same event."""
        orders = FakeOrderStatusRepository(recorded(OrderStatus.PLACED))
        event = reserved()
        first = confirm_order(orders, event)
        assert same_event(confirm_order(orders, event), first)

    def test_an_out_of_stock_order_is_never_confirmed(self) -> None:
        orders = FakeOrderStatusRepository(recorded(OrderStatus.OUT_OF_STOCK))
        with pytest.raises(InvalidTransition, match="order-1 is OUT_OF_STOCK: it cannot become CONFIRMED"):
            confirm_order(orders, reserved())
        assert orders.orders["order-1"].status is OrderStatus.OUT_OF_STOCK

    def test_an_order_not_recorded_yet_raises_so_that_a_retry_finds_it(self) -> None:
        with pytest.raises(OrderNotFound, match="a retry may find it"):
            confirm_order(FakeOrderStatusRepository(), reserved())


class TestMarkOutOfStock:
    def test_a_placed_order_becomes_out_of_stock(self) -> None:
        orders = FakeOrderStatusRepository(recorded(OrderStatus.PLACED))
        mark_out_of_stock(orders, out_of_stock())
        assert orders.orders["order-1"].status is OrderStatus.OUT_OF_STOCK

    def test_again_changes_nothing(self) -> None:
        orders = FakeOrderStatusRepository(recorded(OrderStatus.OUT_OF_STOCK))
        mark_out_of_stock(orders, out_of_stock())
        assert orders.orders["order-1"].status is OrderStatus.OUT_OF_STOCK

    def test_a_confirmed_order_is_not_marked_out_of_stock(self) -> None:
        with pytest.raises(InvalidTransition):
            mark_out_of_stock(FakeOrderStatusRepository(recorded(OrderStatus.CONFIRMED)), out_of_stock())


# --- adapters -----------------------------------------------------------------


class TestDynamoDBStockRepository:
    @pytest.fixture
    def client(self) -> FakeStockTableClient:
        client = FakeStockTableClient()
        stock = DynamoDBStockRepository("stock", "reservations", client)
        seed_stock(stock, {"BOOK-001": 5, "MUG-001": 1})
        return client

    def test_one_transaction_puts_the_reservation_and_takes_each_line_on_condition(
        self, client: FakeStockTableClient
    ) -> None:
        """https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html"""
        lines = [ReservedLine(sku="BOOK-001", quantity=2), ReservedLine(sku="MUG-001", quantity=1)]
        assert DynamoDBStockRepository("stock", "reservations", client).reserve("order-1", lines) is None
        [[reservation, *takes]] = client.transactions
        assert reservation["Put"]["TableName"] == "reservations"
        assert [take["Update"]["Key"]["sku"]["S"] for take in takes] == ["BOOK-001", "MUG-001"]
        assert (client.level("stock", "BOOK-001"), client.level("stock", "MUG-001")) == (3, 0)

    def test_a_short_line_cancels_the_transaction_and_reports_what_is_available(
        self, client: FakeStockTableClient
    ) -> None:
        lines = [ReservedLine(sku="BOOK-001", quantity=2), ReservedLine(sku="MUG-001", quantity=4)]
        shortage = DynamoDBStockRepository("stock", "reservations", client).reserve("order-1", lines)
        assert shortage == Shortage("MUG-001", 4, 1)
        assert (client.level("stock", "BOOK-001"), client.level("stock", "MUG-001")) == (5, 1)
        assert "reservations" not in client.tables

    def test_a_sku_without_an_item_has_none_available(self, client: FakeStockTableClient) -> None:
        repository = DynamoDBStockRepository("stock", "reservations", client)
        assert repository.reserve("order-1", [ReservedLine(sku="SHIRT-001", quantity=1)]) == Shortage("SHIRT-001", 1, 0)

    def test_an_order_reserved_before_takes_nothing_more(self, client: FakeStockTableClient) -> None:
        repository = DynamoDBStockRepository("stock", "reservations", client)
        lines = [ReservedLine(sku="BOOK-001", quantity=2)]
        repository.reserve("order-1", lines)
        assert repository.reserve("order-1", lines) is None
        assert repository.stock_of("BOOK-001") == 3

    def test_a_cancellation_for_another_reason_propagates(self) -> None:
        """TransactionConflict: another transaction touched an item; Lambda's retry tries again.
        https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html"""
        repository = DynamoDBStockRepository("stock", "reservations", ConflictingStockTableClient())
        with pytest.raises(ClientError, match="TransactionCanceledException"):
            repository.reserve("order-1", [ReservedLine(sku="BOOK-001", quantity=1)])

    def test_more_skus_than_a_transaction_holds_are_refused_before_calling(self) -> None:
        client = FakeStockTableClient()
        lines = [ReservedLine(sku=f"SKU-{n}", quantity=1) for n in range(100)]
        with pytest.raises(ValueError, match="at most 99"):
            DynamoDBStockRepository("stock", "reservations", client).reserve("order-1", lines)
        assert client.transactions == []

    def test_stock_of_a_sku_never_stocked_is_0(self, client: FakeStockTableClient) -> None:
        assert DynamoDBStockRepository("stock", "reservations", client).stock_of("SHIRT-001") == 0

    def test_table_names_come_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("STOCK_TABLE_NAME", "stock-from-env")
        monkeypatch.setenv("RESERVATIONS_TABLE_NAME", "reservations-from-env")
        repository = DynamoDBStockRepository(client=FakeStockTableClient())
        assert (repository.table_name, repository.reservations_table_name) == ("stock-from-env", "reservations-from-env")

    def test_a_missing_table_name_is_a_clear_error(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("STOCK_TABLE_NAME", raising=False)
        with pytest.raises(RuntimeError, match="STOCK_TABLE_NAME is not set"):
            DynamoDBStockRepository(reservations_table_name="reservations")


class TestDynamoDBOrderRepositoryStatus:
    def test_a_new_order_is_recorded_as_placed(self) -> None:
        from shop.orders import accept_order

        client = FakeOrdersTableClient()
        DynamoDBOrderRepository("orders", client).add(accept_order(order_placed(("BOOK-001", 1))))
        assert client.items["order-1"]["status"] == {"S": "PLACED"}

    def test_changes_the_status_on_condition_and_returns_the_order_as_it_was(self) -> None:
        """https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html"""
        client = FakeOrdersTableClient(order_item("PLACED"))
        before = DynamoDBOrderRepository("orders", client).change_status(
            "order-1", OrderStatus.CONFIRMED, expected=OrderStatus.PLACED)
        assert before == recorded(OrderStatus.PLACED)
        assert client.items["order-1"]["status"] == {"S": "CONFIRMED"}
        [request] = client.requests
        assert request["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"

    def test_a_failed_condition_returns_the_order_unchanged(self) -> None:
        client = FakeOrdersTableClient(order_item("OUT_OF_STOCK"))
        before = DynamoDBOrderRepository("orders", client).change_status(
            "order-1", OrderStatus.CONFIRMED, expected=OrderStatus.PLACED)
        assert before.status is OrderStatus.OUT_OF_STOCK
        assert client.items["order-1"]["status"] == {"S": "OUT_OF_STOCK"}

    def test_an_order_not_in_the_table_is_not_found(self) -> None:
        with pytest.raises(OrderNotFound):
            DynamoDBOrderRepository("orders", FakeOrdersTableClient()).change_status(
                "order-1", OrderStatus.CONFIRMED, expected=OrderStatus.PLACED)
