"""Window results on DynamoDB: one item per window and shard, keyed {window_start, shard_id}.

A window's final invocation can run more than once (a retry after a timeout, a
mapping that reads the stream again from TRIM_HORIZON). Each run computes the same
totals for the same key, so PutItem replaces the item with an equal one: the write
is idempotent without a condition.
https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-windows.html
"""

from __future__ import annotations

import os
from typing import Any

import boto3

from shop.analytics import ProductActivity, WindowResult, WindowTotals

TABLE_NAME_VARIABLE = "ANALYTICS_TABLE_NAME"
_COUNTS = ("orders_placed", "sales_cents", "orders_confirmed", "confirmed_cents")


class DynamoDBWindowResults:
    """Window results in the table named by ANALYTICS_TABLE_NAME (the template sets it)."""

    def __init__(self, table_name: str | None = None, client: Any | None = None) -> None:
        table_name = table_name or os.environ.get(TABLE_NAME_VARIABLE)
        if not table_name:
            raise RuntimeError(
                f"{TABLE_NAME_VARIABLE} is not set: the function's Environment in the SAM "
                "template names the analytics table"
            )
        self.table_name = table_name
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client("dynamodb")
        return self._client

    def save(self, result: WindowResult) -> None:
        self.client.put_item(TableName=self.table_name, Item=to_item(result))

    def all(self) -> list[WindowResult]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self.table_name}
        while True:
            page = self.client.scan(**kwargs)
            items += page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return sorted((from_item(item) for item in items), key=lambda r: (r.window_start, r.shard_id))


def to_item(result: WindowResult) -> dict[str, Any]:
    totals = result.totals
    return {
        "window_start": {"S": result.window_start},
        "shard_id": {"S": result.shard_id},
        "window_end": {"S": result.window_end},
        **{name: {"N": str(getattr(totals, name))} for name in _COUNTS},
        "products": {"M": {sku: {"M": {k: {"N": str(v)} for k, v in vars(activity).items()}}
                           for sku, activity in sorted(totals.products.items())}},
        # The ranking as the window saw it, for readers that only want the top.
        "top_products": {"L": [{"S": sku} for sku, _ in totals.top_products()]},
    }


def from_item(item: dict[str, Any]) -> WindowResult:
    products = {sku: ProductActivity(**{k: int(v["N"]) for k, v in value["M"].items()})
                for sku, value in item.get("products", {}).get("M", {}).items()}
    totals = WindowTotals(**{name: int(item[name]["N"]) for name in _COUNTS}, products=products)
    return WindowResult(item["window_start"]["S"], item["window_end"]["S"], item["shard_id"]["S"], totals)
