"""The shop's tables on DynamoDB. Orders: one item per order, written with a conditional
put so that a redelivered order is stored once, its status moved by a conditional update.
Stock: one item per SKU, reserved in a transaction whose conditions keep stock from going
negative."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Protocol, cast

import boto3
from botocore.exceptions import ClientError

from shop.events import ReservedLine
from shop.inventory import Shortage
from shop.orders import AcceptedOrder, OrderNotFound, OrderStatus, RecordedOrder

TABLE_NAME_VARIABLE = "ORDERS_TABLE_NAME"
STOCK_TABLE_VARIABLE = "STOCK_TABLE_NAME"
RESERVATIONS_TABLE_VARIABLE = "RESERVATIONS_TABLE_NAME"
# "TransactWriteItems is a synchronous write operation that groups up to 100 action requests."
# https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html
MAX_TRANSACTION_ITEMS = 100


class PutItemClient(Protocol):
    """The one DynamoDB client call this adapter needs (a boto3 DynamoDB client has it)."""

    def put_item(self, **kwargs: Any) -> Any: ...


class OrdersTableClient(PutItemClient, Protocol):
    """The calls that record an order and move its status."""

    def update_item(self, **kwargs: Any) -> Any: ...


class StockTableClient(Protocol):
    """The calls the stock repository makes (a boto3 DynamoDB client has them)."""

    def transact_write_items(self, **kwargs: Any) -> Any: ...

    def put_item(self, **kwargs: Any) -> Any: ...

    def get_item(self, **kwargs: Any) -> Any: ...


class DynamoDBOrderRepository:
    """Accepted orders in the table named by ORDERS_TABLE_NAME (the template sets it)."""

    def __init__(self, table_name: str | None = None, client: PutItemClient | None = None) -> None:
        if table_name is None:
            table_name = os.environ.get(TABLE_NAME_VARIABLE)
        if not table_name:
            raise RuntimeError(
                f"{TABLE_NAME_VARIABLE} is not set: the function's Environment in the "
                "SAM template names the Orders table"
            )
        self.table_name = table_name
        self._client = client

    @property
    def client(self) -> PutItemClient:
        # Created on first use, so constructing a repository needs no credentials or region.
        if self._client is None:
            self._client = boto3.client("dynamodb")
        return self._client

    def add(self, order: AcceptedOrder) -> bool:
        """Put the order unless its order_id is already in the table; False if it was."""
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=_item(order),
                # The existence check and the write are one atomic step in DynamoDB.
                # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html
                ConditionExpression="attribute_not_exists(order_id)",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def change_status(
        self, order_id: str, new: OrderStatus, *, expected: OrderStatus
    ) -> RecordedOrder:
        """Set the status to `new` if it is `expected`; return the order as it was before."""
        # A boto3 client has update_item; the order processor's own tests give a put-only fake.
        client = cast(OrdersTableClient, self.client)
        try:
            response = client.update_item(
                TableName=self.table_name,
                Key={"order_id": {"S": order_id}},
                UpdateExpression="SET #status = :new",
                # The check and the change are one atomic step, so two deliveries of
                # the same event cannot both move the order.
                ConditionExpression="#status = :expected",
                ExpressionAttributeNames={"#status": "status"},  # STATUS is a reserved word
                ExpressionAttributeValues={":new": {"S": new.value}, ":expected": {"S": expected.value}},
                ReturnValues="ALL_OLD",
                # On a failed condition, DynamoDB returns the item as it is: no second read.
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            before = error.response.get("Item")
        else:
            before = response.get("Attributes")
        if not before:
            raise OrderNotFound(order_id)
        return _recorded(before)


class DynamoDBStockRepository:
    """Stock levels in the table named by STOCK_TABLE_NAME (one item per SKU, attribute
    `stock`), and one reservation per order in RESERVATIONS_TABLE_NAME."""

    def __init__(
        self,
        table_name: str | None = None,
        reservations_table_name: str | None = None,
        client: StockTableClient | None = None,
    ) -> None:
        self.table_name = _table_name(table_name, STOCK_TABLE_VARIABLE, "Stock")
        self.reservations_table_name = _table_name(
            reservations_table_name, RESERVATIONS_TABLE_VARIABLE, "Reservations"
        )
        self._client = client

    @property
    def client(self) -> StockTableClient:
        if self._client is None:
            self._client = boto3.client("dynamodb")
        return self._client

    def reserve(self, order_id: str, lines: Sequence[ReservedLine]) -> Shortage | None:
        """One transaction: the order's reservation, plus one conditional update per line."""
        if len(lines) + 1 > MAX_TRANSACTION_ITEMS:
            raise ValueError(
                f"order {order_id} has {len(lines)} SKUs; one transaction reserves at most "
                f"{MAX_TRANSACTION_ITEMS - 1}"
            )
        reservation = {
            "Put": {
                "TableName": self.reservations_table_name,
                "Item": {"order_id": {"S": order_id}, "lines": _lines_attribute(lines)},
                # Fails if the order was reserved before; then nothing in the transaction happens.
                "ConditionExpression": "attribute_not_exists(order_id)",
            }
        }
        takes = [
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": {"sku": {"S": line.sku}},
                    "UpdateExpression": "SET stock = stock - :quantity",
                    # Stock never goes negative: the update happens only if the stock
                    # covers the line. A SKU never stocked has no `stock`, so it fails too.
                    # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html
                    "ConditionExpression": "stock >= :quantity",
                    "ExpressionAttributeValues": {":quantity": {"N": str(line.quantity)}},
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            }
            for line in lines
        ]
        try:
            self.client.transact_write_items(TransactItems=[reservation, *takes])
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            return _why_cancelled(error, lines)
        return None

    def release(self, order_id: str, lines: Sequence[ReservedLine]) -> bool:
        """One transaction: mark the reservation released, plus one stock increase per line."""
        released = {
            "Update": {
                "TableName": self.reservations_table_name,
                "Key": {"order_id": {"S": order_id}},
                "UpdateExpression": "SET released = :yes",
                # Only a reservation not yet released: a second OrderCancelled changes nothing.
                # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html
                "ConditionExpression": "attribute_exists(order_id) AND attribute_not_exists(released)",
                "ExpressionAttributeValues": {":yes": {"BOOL": True}},
            }
        }
        gives = [
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": {"sku": {"S": line.sku}},
                    "UpdateExpression": "SET stock = stock + :quantity",
                    "ExpressionAttributeValues": {":quantity": {"N": str(line.quantity)}},
                }
            }
            for line in lines
        ]
        try:
            self.client.transact_write_items(TransactItems=[released, *gives])
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = error.response.get("CancellationReasons") or []
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                return False
            raise
        return True

    def set_stock(self, sku: str, quantity: int) -> None:
        self.client.put_item(
            TableName=self.table_name,
            Item={"sku": {"S": sku}, "stock": {"N": str(quantity)}},
        )

    def stock_of(self, sku: str) -> int:
        item = self.client.get_item(
            TableName=self.table_name, Key={"sku": {"S": sku}}, ConsistentRead=True
        ).get("Item")
        return int(item["stock"]["N"]) if item and "stock" in item else 0


def _why_cancelled(error: ClientError, lines: Sequence[ReservedLine]) -> Shortage | None:
    """Why the transaction was cancelled: None if the order was already reserved, else the
    first line that stock could not cover. Reasons come in the order of the items sent.
    https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html
    """
    reasons = error.response.get("CancellationReasons") or []
    if len(reasons) != len(lines) + 1:
        raise error  # cancelled for a reason other than the conditions (a conflict, throttling)
    reservation, *takes = reasons
    if reservation.get("Code") == "ConditionalCheckFailed":
        return None
    for line, reason in zip(lines, takes, strict=True):
        if reason.get("Code") == "ConditionalCheckFailed":
            stock = (reason.get("Item") or {}).get("stock")
            return Shortage(line.sku, line.quantity, int(stock["N"]) if stock else 0)
    raise error


def _table_name(given: str | None, variable: str, table: str) -> str:
    name = given or os.environ.get(variable)
    if not name:
        raise RuntimeError(
            f"{variable} is not set: the function's Environment in the SAM template names "
            f"the {table} table"
        )
    return name


def _lines_attribute(lines: Sequence[ReservedLine]) -> dict[str, Any]:
    return {
        "L": [
            {"M": {"sku": {"S": line.sku}, "quantity": {"N": str(line.quantity)}}}
            for line in lines
        ]
    }


def _recorded(item: dict[str, Any]) -> RecordedOrder:
    return RecordedOrder(
        order_id=item["order_id"]["S"],
        customer_id=item["customer_id"]["S"],
        total_cents=int(item["total_cents"]["N"]),
        status=OrderStatus(item["status"]["S"]),
    )


def _item(order: AcceptedOrder) -> dict[str, Any]:
    """The order in DynamoDB's attribute-value format (numbers travel as strings)."""
    return {
        "order_id": {"S": order.order_id},
        "customer_id": {"S": order.customer_id},
        "lines": {
            "L": [
                {
                    "M": {
                        "sku": {"S": line.sku},
                        "quantity": {"N": str(line.quantity)},
                        "unit_price_cents": {"N": str(line.unit_price_cents)},
                    }
                }
                for line in order.lines
            ]
        },
        "total_cents": {"N": str(order.total_cents)},
        "currency": {"S": order.currency},
        "placed_at": {"S": order.placed_at.isoformat()},
        "correlation_id": {"S": order.correlation_id},
        "status": {"S": OrderStatus.PLACED.value},
    }
