"""A function that calls AWS with clients of its own: the least-privilege tests record what it calls."""

from __future__ import annotations

import os
from typing import Any

import boto3

# Made at import, from a session of its own, as Powertools makes its DynamoDB client.
dynamodb = boto3.session.Session().client("dynamodb")


def lambda_handler(event: dict[str, Any], context: Any) -> None:
    boto3.client("sqs").send_message(QueueUrl=os.environ["QUEUE_URL"], MessageBody="hello")
    dynamodb.transact_write_items(TransactItems=[
        {"Put": {"TableName": os.environ["TABLE_NAME"], "Item": {"id": {"S": "1"}}}},
        {"ConditionCheck": {"TableName": os.environ["TABLE_NAME"], "Key": {"id": {"S": "2"}},
                            "ConditionExpression": "attribute_not_exists(id)"}},
    ])
