"""The trace of one order: every hop its events took, from what actually ran, as a mermaid
sequence diagram.

The local cloud records each hop as it happens: a producer putting an event on a bus, a
rule sending it to a target, a function publishing to a topic, SNS delivering a copy, and
Lambda invoking a function with a batch. A trace keeps the hops whose payload carries
the order's correlation id, in virtual-time order.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from .errors import EdakitError

if TYPE_CHECKING:
    from .cloud import LocalCloud
    from .runtime import Function, Invocation


@dataclass
class Hop:
    """One step of an event's way through the system. `payload` is what travelled: its
    text, or (for an invocation) the event, turned into text when a trace reads it."""

    time: float
    sequence: int
    source: str
    target: str
    label: str
    payload: Any = field(repr=False)
    ok: bool = True

    @property
    def text(self) -> str:
        if not isinstance(self.payload, str):
            self.payload = json.dumps(self.payload, default=str)
        return self.payload


#: What is being delivered right now (a bus event, an SNS message), for the hooks below it.
_delivering: contextvars.ContextVar[str | None] = contextvars.ContextVar("edakit_delivering", default=None)
_sns_deliveries: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("edakit_sns_sends", default=None)


class Tracer:
    """Records hops while the cloud runs; `trace(correlation_id)` draws one order's."""

    def __init__(self, cloud: "LocalCloud") -> None:
        self.cloud = cloud
        self.hops: list[Hop] = []
        self._running: list[tuple["Function", Hop]] = []
        self._originals: dict[str, Callable[..., Any]] = {}

    # -- names -------------------------------------------------------------------------

    def _logical(self, physical: str) -> str:
        """A resource's logical id from its name, URL or ARN (the name itself if it is not the stack's)."""
        assert self.cloud.deployment is not None
        short = physical.rsplit("/", 1)[-1].rsplit(":", 1)[-1]
        for logical_id, value in self.cloud.deployment.physical_ids.items():
            if value == physical or value.rsplit("/", 1)[-1].rsplit(":", 1)[-1] == short:
                return logical_id
        return short

    def _producer(self, fallback: str) -> str:
        return self._running[-1][0].logical_id if self._running else fallback

    def _add(self, source: str, target: str, label: str, payload: Any) -> Hop:
        hop = Hop(self.cloud.clock.now(), len(self.hops), source, target, label, payload)
        self.hops.append(hop)
        return hop

    # -- hooks -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def running(self, function: "Function", event: Any, trigger: str) -> Iterator[None]:
        """A function is being invoked with ``event``: the hop that brought it, then what it does."""
        source, label = self._invoked_by(event, trigger)
        hop = self._add(source, function.logical_id, label, event) if source else None
        self._running.append((function, hop or Hop(0, -1, "", "", "", "")))
        try:
            yield
        finally:
            self._running.pop()

    def invoked(self, invocation: "Invocation") -> None:
        """Mark the last hop into the function with the invocation's outcome."""
        for hop in reversed(self.hops):
            if hop.target == invocation.function:
                if not invocation.ok:
                    hop.ok = False
                    hop.label += " ✗ error"
                return

    def _invoked_by(self, event: Any, trigger: str) -> tuple[str | None, str]:
        records = event.get("Records") if isinstance(event, dict) else None
        first = records[0] if isinstance(records, list) and records and isinstance(records[0], dict) else {}
        if trigger == "sqs" and first:
            return self._logical(first.get("eventSourceARN", "queue")), f"batch of {len(records)} (SQS poller)"
        if first.get("EventSource") == "aws:sns":
            return None, ""  # drawn when SNS delivered it
        if trigger in ("kinesis", "dynamodb") and first:
            return self._logical(first.get("eventSourceARN", trigger).split("/stream/")[0]), \
                f"batch of {len(records)} ({trigger} poller)"
        if trigger == "async":
            return None, ""  # the rule's or the topic's hop drew it
        return "Client", f"Invoke ({trigger})"

    def route(self, rule_name: str, target_arn: str) -> None:
        """An EventBridge rule sent the event being delivered to a target."""
        payload = _delivering.get()
        if payload is None:
            return
        detail_type = json.loads(payload).get("DetailType", "event") if payload.startswith("{") else "event"
        bus = json.loads(payload).get("EventBusName", "default")
        self._add(self._logical(bus), self._logical(target_arn), f"{detail_type} (rule {self._logical(rule_name)})",
                  payload)

    def install(self) -> None:
        """Watch PutEvents (producers to buses) and SNS Publish (functions to topics)."""
        from moto.events.models import EventsBackend
        from moto.sns.models import Topic

        originals = self._originals
        originals.update(put_events=EventsBackend.put_events, publish=Topic.publish)
        tracer = self

        def put_events(backend: Any, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
            if len(events) > 10:
                return originals["put_events"](backend, events)  # moto refuses it as AWS does
            results = []
            for entry in events:
                payload = json.dumps({k: v for k, v in entry.items() if k in
                                      ("Source", "DetailType", "Detail", "EventBusName")}, default=str)
                bus = str(entry.get("EventBusName") or "default")
                tracer._add(tracer._producer(str(entry.get("Source", "Client"))), tracer._logical(bus),
                            f"PutEvents {entry.get('DetailType', '')}", payload)
                token = _delivering.set(payload)
                try:
                    results += originals["put_events"](backend, [entry])
                finally:
                    _delivering.reset(token)
            return results

        def publish(topic: Any, message: str, *args: Any, **kwargs: Any) -> str:
            subject = kwargs.get("subject") if "subject" in kwargs else (args[0] if args else None)
            hop = tracer._add(tracer._producer("Client"), tracer._logical(topic.arn),
                              "Publish" + (f" {subject!r}" if subject else ""), message)
            before = len(tracer.cloud.notifications)
            sends: list[str] = []
            token = _sns_deliveries.set(sends)
            try:
                message_id = originals["publish"](topic, message, *args, **kwargs)
            finally:
                _sns_deliveries.reset(token)
            for notification in tracer.cloud.notifications[before:]:
                tracer._add(hop.target, f"{notification.protocol}: {notification.endpoint}",
                            notification.subject or notification.protocol, message)
            for queue in sends:
                tracer._add(hop.target, tracer._logical(queue), "delivery (SNS)", message)
            for subscription in topic.sns_backend.list_subscriptions_by_topic(topic_arn=topic.arn)[0]:
                if subscription.protocol == "lambda" and _lambda_got(tracer.cloud, subscription, message_id):
                    tracer._add(hop.target, tracer._logical(subscription.endpoint), "delivery (SNS)", message)
            return message_id

        EventsBackend.put_events = put_events  # type: ignore[method-assign]
        Topic.publish = publish  # type: ignore[method-assign]

    def uninstall(self) -> None:
        from moto.events.models import EventsBackend
        from moto.sns.models import Topic

        if self._originals:
            EventsBackend.put_events = self._originals.pop("put_events")  # type: ignore[method-assign]
            Topic.publish = self._originals.pop("publish")  # type: ignore[method-assign]

    @staticmethod
    def queue_sent(queue_name: str) -> None:
        """A message was sent to a queue: if SNS is delivering, it is one of its copies."""
        sends = _sns_deliveries.get()
        if sends is not None:
            sends.append(queue_name)

    # -- reading ------------------------------------------------------------------------------

    def trace(self, correlation_id: str, exclude: Iterable[str] = ()) -> list[Hop]:
        """The hops whose payload carries ``correlation_id``, in virtual-time order; hops from or
        to a resource named in ``exclude`` (logical ids) are left out."""
        if not correlation_id:
            raise EdakitError("trace() needs a correlation id (an event's correlation_id field)")
        hops = [hop for hop in self.hops if correlation_id in hop.text]
        if not hops:
            raise EdakitError(f"no hop carried correlation id {correlation_id!r}: place an order and run "
                              "the cloud first (cloud.run_until_idle()), then trace its correlation_id")
        left_out = set(exclude)
        return sorted((h for h in hops if not {h.source, h.target} & left_out), key=lambda h: (h.time, h.sequence))


def _lambda_got(cloud: "LocalCloud", subscription: Any, message_id: str) -> bool:
    """Whether SNS queued an invocation of a subscribed function for this message."""
    return any(message_id in json.dumps(queued.event) for queued in cloud.async_queue.queue)


def _mermaid_id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def _mermaid_text(text: str) -> str:
    return text.replace(";", ",").replace("#", "").replace("\n", " ")


def sequence_diagram(hops: list[Hop], title: str | None = None) -> str:
    """Mermaid text for the hops: one participant per producer, bus, queue, topic or function."""
    participants: list[str] = []
    for hop in hops:
        for name in (hop.source, hop.target):
            if name not in participants:
                participants.append(name)
    start = hops[0].time if hops else 0.0
    lines = ["sequenceDiagram"]
    if title:
        lines.append(f"    title {_mermaid_text(title)}")
    lines += [f"    participant {_mermaid_id(p)} as {_mermaid_text(p)}" for p in participants]
    for hop in hops:
        arrow = "-x" if not hop.ok else "->>"
        offset = dt.timedelta(seconds=round(hop.time - start, 3))
        lines.append(f"    {_mermaid_id(hop.source)}{arrow}{_mermaid_id(hop.target)}: "
                     f"+{offset.total_seconds():.1f}s {_mermaid_text(hop.label)}")
    return "\n".join(lines) + "\n"
