"""The payments ledger on DynamoDB: one item per order in the table named by
PAYMENTS_TABLE_NAME. Every change is a conditional write, so the check ("is this order
still due?") and the change ("it is being charged") are one atomic step: two deliveries
of the same event cannot both charge.
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html
"""

from __future__ import annotations

import os
from typing import Any, Protocol

import boto3
from botocore.exceptions import ClientError

from shop.payments import (
    Charge,
    Decline,
    LedgerEntry,
    PaymentInProgress,
    PaymentNotDue,
    PaymentStatus,
)

TABLE_NAME_VARIABLE = "PAYMENTS_TABLE_NAME"
_CONDITION_FAILED = "ConditionalCheckFailedException"


class LedgerClient(Protocol):
    """The DynamoDB calls the ledger makes (a boto3 DynamoDB client has them)."""

    def put_item(self, **kwargs: Any) -> Any: ...

    def update_item(self, **kwargs: Any) -> Any: ...

    def get_item(self, **kwargs: Any) -> Any: ...


class LedgerConflict(Exception):
    """The order's ledger entry changed while this attempt was charging it."""


class DynamoDBPaymentLedger:
    """The payments ledger in the table named by PAYMENTS_TABLE_NAME (the template sets it)."""

    def __init__(self, table_name: str | None = None, client: LedgerClient | None = None) -> None:
        table_name = table_name or os.environ.get(TABLE_NAME_VARIABLE)
        if not table_name:
            raise RuntimeError(f"{TABLE_NAME_VARIABLE} is not set: the function's Environment in the "
                               "SAM template names the Payments table")
        self.table_name = table_name
        self._client = client

    @property
    def client(self) -> LedgerClient:
        if self._client is None:
            self._client = boto3.client("dynamodb")
        return self._client

    def record_due(self, order_id: str, customer_id: str, amount_cents: int, currency: str) -> bool:
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item={"order_id": {"S": order_id}, "customer_id": {"S": customer_id},
                      "amount_cents": {"N": str(amount_cents)}, "currency": {"S": currency},
                      "status": {"S": PaymentStatus.DUE.value}, "charges": {"N": "0"}, "attempts": {"N": "0"}},
                ConditionExpression="attribute_not_exists(order_id)",
            )
        except ClientError as error:
            if _code(error) == _CONDITION_FAILED:
                return False
            raise
        return True

    def claim(self, order_id: str, *, now: float, lease_seconds: float) -> LedgerEntry:
        try:
            response = self.client.update_item(
                TableName=self.table_name,
                Key={"order_id": {"S": order_id}},
                UpdateExpression="SET #status = :charging, claimed_until = :until ADD attempts :one",
                # Due, or claimed by an attempt that has run out of time (it crashed mid-charge).
                # A settled order fails the condition and is left as it is.
                ConditionExpression="#status = :due OR (#status = :charging AND claimed_until < :now)",
                ExpressionAttributeNames={"#status": "status"},  # STATUS is a reserved word
                ExpressionAttributeValues={
                    ":charging": {"S": PaymentStatus.CHARGING.value}, ":due": {"S": PaymentStatus.DUE.value},
                    ":until": {"N": str(now + lease_seconds)}, ":now": {"N": str(now)}, ":one": {"N": "1"},
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if _code(error) != _CONDITION_FAILED:
                raise
            item = error.response.get("Item")
            if not item:
                raise PaymentNotDue(order_id) from None
            entry = _entry(item)
            if not entry.settled:
                raise PaymentInProgress(order_id) from None
            return entry
        return _entry(response["Attributes"])

    def settle(self, order_id: str, outcome: Charge | Decline) -> LedgerEntry:
        if isinstance(outcome, Charge):
            update = "SET #status = :status, charge_id = :detail ADD charges :one REMOVE claimed_until"
            values = {":status": {"S": PaymentStatus.CHARGED.value}, ":detail": {"S": outcome.charge_id},
                      ":one": {"N": "1"}}
        else:
            update = "SET #status = :status, decline_reason = :detail REMOVE claimed_until"
            values = {":status": {"S": PaymentStatus.DECLINED.value}, ":detail": {"S": outcome.reason}}
        try:
            response = self.client.update_item(
                TableName=self.table_name,
                Key={"order_id": {"S": order_id}},
                UpdateExpression=update,
                ConditionExpression="#status = :charging",  # only the attempt holding the claim settles
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={**values, ":charging": {"S": PaymentStatus.CHARGING.value}},
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if _code(error) == _CONDITION_FAILED:
                raise LedgerConflict(f"order {order_id} changed while it was being charged") from None
            raise
        return _entry(response["Attributes"])

    def release(self, order_id: str) -> None:
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"order_id": {"S": order_id}},
                UpdateExpression="SET #status = :due REMOVE claimed_until",
                ConditionExpression="#status = :charging",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":due": {"S": PaymentStatus.DUE.value},
                                           ":charging": {"S": PaymentStatus.CHARGING.value}},
            )
        except ClientError as error:
            if _code(error) != _CONDITION_FAILED:
                raise

    def entry(self, order_id: str) -> LedgerEntry | None:
        """The order's entry as it is now, or None (reports and tests read it)."""
        item = self.client.get_item(TableName=self.table_name, Key={"order_id": {"S": order_id}},
                                    ConsistentRead=True).get("Item")
        return _entry(item) if item else None


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _entry(item: dict[str, Any]) -> LedgerEntry:
    return LedgerEntry(
        order_id=item["order_id"]["S"],
        customer_id=item["customer_id"]["S"],
        amount_cents=int(item["amount_cents"]["N"]),
        currency=item["currency"]["S"],
        status=PaymentStatus(item["status"]["S"]),
        charges=int(item.get("charges", {}).get("N", "0")),
        charge_id=item.get("charge_id", {}).get("S"),
        decline_reason=item.get("decline_reason", {}).get("S"),
        attempts=int(item.get("attempts", {}).get("N", "0")),
    )
