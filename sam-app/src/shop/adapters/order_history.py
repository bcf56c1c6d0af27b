"""Status histories on DynamoDB: one item per order, {order_id, history, event_ids}. Each change
is appended with one conditional UpdateItem, so a redelivered event is appended once and a
change that arrives before PLACED is refused."""

from __future__ import annotations

import os
from typing import Any

import boto3
from botocore.exceptions import ClientError

from shop.order_history import HistoryNotStarted, StatusChange

TABLE_NAME_VARIABLE = "ORDER_HISTORY_TABLE_NAME"


class DynamoDBStatusHistory:
    """Histories in the table named by ORDER_HISTORY_TABLE_NAME (the template sets it)."""

    def __init__(self, table_name: str | None = None, client: Any | None = None) -> None:
        table_name = table_name or os.environ.get(TABLE_NAME_VARIABLE)
        if not table_name:
            raise RuntimeError(
                f"{TABLE_NAME_VARIABLE} is not set: the function's Environment in the SAM "
                "template names the order history table"
            )
        self.table_name = table_name
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client("dynamodb")
        return self._client

    def append(self, change: StatusChange, *, starts_history: bool) -> bool:
        condition = "NOT contains(event_ids, :event_id)"
        if not starts_history:
            condition = f"attribute_exists(order_id) AND {condition}"
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"order_id": {"S": change.order_id}},
                UpdateExpression="SET history = list_append(if_not_exists(history, :empty), :change) "
                                 "ADD event_ids :event_ids",
                ConditionExpression=condition,
                ExpressionAttributeValues={
                    ":empty": {"L": []},
                    ":change": {"L": [{"M": {
                        "status": {"S": change.status},
                        "event_id": {"S": change.event_id},
                        "occurred_at": {"S": change.occurred_at.isoformat()},
                    }}]},
                    ":event_ids": {"SS": [change.event_id]},
                    ":event_id": {"S": change.event_id},
                },
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            item = self._item(change.order_id)
            if item is None:
                raise HistoryNotStarted(change) from None
            return False  # this event_id is already in the history: a redelivery
        return True

    def history_of(self, order_id: str) -> list[str]:
        item = self._item(order_id)
        return [entry["M"]["status"]["S"] for entry in item["history"]["L"]] if item else []

    def _item(self, order_id: str) -> dict[str, Any] | None:
        return self.client.get_item(
            TableName=self.table_name, Key={"order_id": {"S": order_id}}, ConsistentRead=True
        ).get("Item")
