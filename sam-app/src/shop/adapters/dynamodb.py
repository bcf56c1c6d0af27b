"""The orders repository on DynamoDB: one item per order, written with a conditional put
so that a redelivered order is stored once."""

from __future__ import annotations

import os
from typing import Any, Protocol

import boto3
from botocore.exceptions import ClientError

from shop.orders import AcceptedOrder

TABLE_NAME_VARIABLE = "ORDERS_TABLE_NAME"


class PutItemClient(Protocol):
    """The one DynamoDB client call this adapter needs (a boto3 DynamoDB client has it)."""

    def put_item(self, **kwargs: Any) -> Any: ...


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
    }
