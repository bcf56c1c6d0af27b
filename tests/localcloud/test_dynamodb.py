"""DynamoDB transactions on the local cloud: all or nothing, as on AWS, at a cost that does
not grow with the table (moto backs up whole tables; the local cloud backs up the items)."""

from __future__ import annotations

import time

import boto3
import pytest
from botocore.exceptions import ClientError

TABLES = """
    Stock:
      Type: AWS::DynamoDB::Table
      Properties:
        AttributeDefinitions: [{AttributeName: sku, AttributeType: S}]
        KeySchema: [{AttributeName: sku, KeyType: HASH}]
        BillingMode: PAY_PER_REQUEST
        StreamSpecification: {StreamViewType: NEW_AND_OLD_IMAGES}
    Lines:
      Type: AWS::DynamoDB::Table
      Properties:
        AttributeDefinitions: [{AttributeName: order_id, AttributeType: S}, {AttributeName: line, AttributeType: N}]
        KeySchema: [{AttributeName: order_id, KeyType: HASH}, {AttributeName: line, KeyType: RANGE}]
        BillingMode: PAY_PER_REQUEST
"""


def take(table: str, sku: str, quantity: int) -> dict:
    return {"Update": {"TableName": table, "Key": {"sku": {"S": sku}},
                       "UpdateExpression": "SET stock = stock - :q", "ConditionExpression": "stock >= :q",
                       "ExpressionAttributeValues": {":q": {"N": str(quantity)}}}}


def everything(dynamodb, table: str) -> list[dict]:
    return sorted(dynamodb.scan(TableName=table)["Items"], key=str)


def stream_records(cloud, logical_id: str) -> int:
    return len(cloud.dynamodb_backend.tables[cloud.physical_id(logical_id)].stream_shard.items)


@pytest.fixture
def shop(cloud_for):
    cloud = cloud_for(TABLES)
    dynamodb = boto3.client("dynamodb")
    stock, lines = cloud.physical_id("Stock"), cloud.physical_id("Lines")
    for sku, count in (("A", 5), ("B", 1)):
        dynamodb.put_item(TableName=stock, Item={"sku": {"S": sku}, "stock": {"N": str(count)}})
    dynamodb.put_item(TableName=lines, Item={"order_id": {"S": "o-0"}, "line": {"N": "1"}, "sku": {"S": "A"}})
    return cloud, dynamodb, stock, lines


class TestTransactions:
    def test_a_cancelled_transaction_changes_no_item_and_writes_no_stream_record(self, shop):
        """If any condition fails, none of the actions happens: the items written before the
        failing one are as they were, new items are not there, and the reasons name the failing one.

        https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html
        """
        cloud, dynamodb, stock, lines = shop
        before = {table: everything(dynamodb, table) for table in (stock, lines)}
        records = stream_records(cloud, "Stock")

        with pytest.raises(ClientError) as refused:
            dynamodb.transact_write_items(TransactItems=[
                {"Put": {"TableName": lines, "Item": {"order_id": {"S": "o-1"}, "line": {"N": "1"}}}},
                {"Put": {"TableName": lines, "Item": {"order_id": {"S": "o-0"}, "line": {"N": "1"}, "sku": {"S": "Z"}}}},
                take(stock, "A", 2),
                take(stock, "B", 2),  # only 1 in stock: this one fails
            ])

        assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"
        assert [r["Code"] for r in refused.value.response["CancellationReasons"]] == [
            "None", "None", "None", "ConditionalCheckFailed"]
        assert {table: everything(dynamodb, table) for table in (stock, lines)} == before
        assert stream_records(cloud, "Stock") == records

    def test_a_transaction_whose_conditions_hold_applies_every_action(self, shop):
        """https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html"""
        cloud, dynamodb, stock, lines = shop
        records = stream_records(cloud, "Stock")

        dynamodb.transact_write_items(TransactItems=[
            {"Put": {"TableName": lines, "Item": {"order_id": {"S": "o-1"}, "line": {"N": "1"}}}},
            take(stock, "A", 2),
            take(stock, "B", 1),
        ])

        assert [(i["sku"]["S"], i["stock"]["N"]) for i in everything(dynamodb, stock)] == [("A", "3"), ("B", "0")]
        assert len(everything(dynamodb, lines)) == 2
        assert stream_records(cloud, "Stock") == records + 2

    @pytest.mark.timing
    def test_a_transactions_cost_does_not_grow_with_its_tables(self, shop):
        """The same 20 transactions on a table of 3,000 items take about as long as on a table
        of 2 (moto's own backup, a deep copy of every table named, took 40 times as long)."""
        cloud, dynamodb, stock, lines = shop

        def twenty_transactions() -> float:
            started = time.perf_counter()
            for n in range(20):
                with pytest.raises(ClientError):
                    dynamodb.transact_write_items(TransactItems=[
                        {"Put": {"TableName": lines, "Item": {"order_id": {"S": f"t-{n}"}, "line": {"N": "1"}}}},
                        take(stock, "B", 2)])
            return time.perf_counter() - started

        small = min(twenty_transactions() for _ in range(2))
        table = cloud.dynamodb_backend.tables[lines]
        for n in range(3000):
            table.put_item({"order_id": {"S": f"o-{n:04}"}, "line": {"N": "1"}, "sku": {"S": "A" * 50}})
        large = min(twenty_transactions() for _ in range(2))

        assert large < 3 * small, f"20 transactions: {small:.3f} s on 2 items, {large:.3f} s on 3,002"
