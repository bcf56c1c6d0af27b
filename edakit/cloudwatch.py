"""CloudWatch for the local cloud: metrics, alarms and traces, tied to virtual time.

The cloud calls these hooks as it runs; nothing here keeps the scheduler busy. Queue
samples and alarm evaluations happen when virtual time passes a minute boundary (the
clock calls `minute`), so `run_until_idle()` still ends when no work is left.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from .alarms import AlarmEvaluator
from .metrics import LambdaMetrics, MetricStore, SqsMetrics
from .trace import Tracer

if TYPE_CHECKING:
    from .cloud import LocalCloud
    from .runtime import Function, Invocation


class CloudWatch:
    """Everything the local cloud observes: `store` (metric data), `alarms`, `tracer`."""

    def __init__(self, cloud: "LocalCloud") -> None:
        self.cloud = cloud
        self.store = MetricStore(cloud)
        self.lambda_metrics = LambdaMetrics(self.store)
        self.sqs_metrics = SqsMetrics(self.store)
        self.alarms = AlarmEvaluator(cloud, self.store)
        self.tracer = Tracer(cloud)
        self._originals: dict[str, Callable[..., Any]] = {}

    def install(self) -> None:
        from moto.cloudwatch.models import CloudWatchBackend
        from moto.logs.models import LogsBackend

        self.sqs_metrics.install()
        self.sqs_metrics.on_send.append(self.tracer.queue_sent)
        self.tracer.install()
        self._originals["put_log_events"] = LogsBackend.put_log_events
        original = self._originals["put_log_events"]
        store = self.store

        def put_log_events(backend: Any, log_group_name: str, log_stream_name: str,
                           log_events: list[dict[str, Any]]) -> Any:
            result = original(backend, log_group_name, log_stream_name, log_events)
            # CloudWatch Logs extracts the metrics of EMF lines, whoever writes them.
            store.log_lines(log_group_name, [event["message"] for event in log_events])
            return result

        LogsBackend.put_log_events = put_log_events  # type: ignore[method-assign]
        self._originals["put_metric_data"] = CloudWatchBackend.put_metric_data
        put_original = self._originals["put_metric_data"]

        def put_metric_data(backend: Any, namespace: str, metric_data: list[dict[str, Any]]) -> None:
            put_original(backend, namespace, metric_data)  # validates, and stores in moto
            store.index(namespace, metric_data)

        CloudWatchBackend.put_metric_data = put_metric_data  # type: ignore[method-assign]
        self.cloud.clock.minute_listeners.append(self.minute)

    def uninstall(self) -> None:
        from moto.cloudwatch.models import CloudWatchBackend
        from moto.logs.models import LogsBackend

        if self.minute in self.cloud.clock.minute_listeners:
            self.cloud.clock.minute_listeners.remove(self.minute)
        if "put_log_events" in self._originals:
            LogsBackend.put_log_events = self._originals.pop("put_log_events")  # type: ignore[method-assign]
        if "put_metric_data" in self._originals:
            CloudWatchBackend.put_metric_data = self._originals.pop("put_metric_data")  # type: ignore[method-assign]
        self.tracer.uninstall()
        self.sqs_metrics.uninstall()

    # -- hooks the cloud calls ------------------------------------------------------------

    def minute(self, at: float) -> None:
        """Virtual time reached a minute boundary: SQS samples its queues, alarms evaluate."""
        self.sqs_metrics.sample(at)
        self.alarms.boundary(at)

    def running(self, function: "Function", event: Any, trigger: str) -> Any:
        return self.tracer.running(function, event, trigger)

    def invoked(self, function: "Function", invocation: "Invocation") -> None:
        running = self.cloud._running
        self.lambda_metrics.invoked(function, invocation, running[function.logical_id], sum(running.values()))
        self.tracer.invoked(invocation)

    def throttled(self, function: "Function", request: object) -> None:
        self.lambda_metrics.throttled(function, request, self.cloud.clock.now())
