"""What a shop function tells its operators about each event it handles: the keys its log
lines carry (to follow one order across functions), and a metric per event type and per
outcome, in CloudWatch's embedded metric format (EMF) through Powertools Metrics.

https://docs.powertools.aws.dev/lambda/python/latest/core/logger/
https://docs.powertools.aws.dev/lambda/python/latest/core/metrics/
"""

from __future__ import annotations

import os
from typing import Any, Literal

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

#: The metrics' namespace (the template's Globals set it from stage 8 on). Without it, the
#: function emits no metrics: Powertools refuses to flush metrics without a namespace.
NAMESPACE_VARIABLE = "POWERTOOLS_METRICS_NAMESPACE"
#: Counted once per shop event, by outcome.
HANDLED, FAILED = "ShopEventHandled", "ShopEventFailed"

Outcome = Literal["handled", "failed"]


def log_keys(event: Any) -> dict[str, str]:
    """The keys every log line about `event` carries: its correlation id, and its order's id."""
    keys = {"correlation_id": event.correlation_id, "event_type": event.detail_type,
            "event_id": event.event_id}
    order_id = getattr(event, "order_id", None)
    if order_id:
        keys["order_id"] = str(order_id)
    return keys


class EventMetrics:
    """Counts handled shop events: one metric per event type (OrderPlaced, OutOfStock...) when
    handled, and ShopEventHandled or ShopEventFailed per outcome; flushed once per invocation."""

    def __init__(self) -> None:
        self._metrics: Metrics | None = None
        self._pending = False

    @property
    def enabled(self) -> bool:
        return bool(os.environ.get(NAMESPACE_VARIABLE))

    def _powertools(self) -> Metrics:
        # Made on first use, inside the invocation, so the function's environment names
        # the namespace and the service (POWERTOOLS_SERVICE_NAME, the `service` dimension).
        if self._metrics is None:
            self._metrics = Metrics()
        return self._metrics

    def count(self, event: Any, outcome: Outcome) -> None:
        if not self.enabled:
            return
        metrics = self._powertools()
        if outcome == "handled":
            metrics.add_metric(name=event.detail_type, unit=MetricUnit.Count, value=1)
        metrics.add_metric(name=HANDLED if outcome == "handled" else FAILED, unit=MetricUnit.Count, value=1)
        self._pending = True

    def flush(self) -> None:
        """Write the invocation's metrics as one EMF log line (nothing when there are none)."""
        if self._pending and self._metrics is not None:
            self._pending = False
            self._metrics.flush_metrics(raise_on_empty_metrics=False)
