"""Lambda entrypoint of real-time analytics. A Kinesis event source mapping with a
tumbling window invokes it with each shard's records of each minute; it returns the
window's running totals as `state`, and writes them when the window closes.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from shop.adapters.analytics import DynamoDBWindowResults
from shop.analytics import WindowResults, aggregate_window

logger = Logger()  # service name from POWERTOOLS_SERVICE_NAME

# Made on first use, so importing the handler needs no table; tests set a fake.
results: WindowResults | None = None


def _results() -> WindowResults:
    global results
    if results is None:
        results = DynamoDBWindowResults()  # the table named by ANALYTICS_TABLE_NAME
    return results


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return aggregate_window(event, _results(), logger)
