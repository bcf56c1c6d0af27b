"""Writes to standard output twice: with print and with a Powertools Logger."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

logger = Logger(service="runtime-logging")


def handler(event: Any, context: Any) -> None:
    print("printed by the handler")
    logger.info("logged by Powertools", extra={"order_id": event.get("order_id")})
