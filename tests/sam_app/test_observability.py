"""Unit tests of what the channel adapter tells operators: the keys of every log line about an
event, and its EMF metrics (Powertools Metrics), with or without a namespace configured."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shop.events import OrderPlaced
from shop.observability import NAMESPACE_VARIABLE, EventMetrics, log_keys
from test_channels import consumer_with, eventbridge_event, order_placed, sqs_batch


class FakeContext:
    function_name = "orders"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:orders"
    aws_request_id = "request-1"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def emf_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith('{"_aws"')]


class TestLogKeys:
    def test_every_line_about_an_event_carries_its_correlation_id_and_order_id(self) -> None:
        """https://docs.powertools.aws.dev/lambda/python/latest/core/logger/#appending-additional-keys"""
        order = order_placed("order-7")
        consumer, stream = consumer_with({OrderPlaced: lambda event: {"ok": True}})
        consumer(eventbridge_event(order), FakeContext())  # type: ignore[arg-type]
        lines = [json.loads(line) for line in stream.getvalue().splitlines()]
        assert lines and all(line["correlation_id"] == order.correlation_id for line in lines)
        assert lines[0]["message"] == "Handling OrderPlaced" and lines[0]["order_id"] == "order-7"
        assert log_keys(order) == {"correlation_id": order.correlation_id, "event_type": "OrderPlaced",
                                   "event_id": order.event_id, "order_id": "order-7"}

    def test_the_keys_of_one_record_do_not_leak_into_the_next(self) -> None:
        """Keys are removed once the event is handled: the warning about a later, invalid record
        carries no correlation id.
        https://docs.powertools.aws.dev/lambda/python/latest/core/logger/#removing-additional-keys"""
        consumer, stream = consumer_with({OrderPlaced: lambda event: {"ok": True}})
        consumer(sqs_batch(json.dumps(eventbridge_event(order_placed("order-1"))), '{"not": "an event"}'),
                 FakeContext())  # type: ignore[arg-type]
        lines = [json.loads(line) for line in stream.getvalue().splitlines()]
        handling = next(line for line in lines if line["message"] == "Handling OrderPlaced")
        invalid = next(line for line in lines if line["message"] == "Invalid event")
        assert handling["order_id"] == "order-1"
        assert "correlation_id" not in invalid and "order_id" not in invalid


class TestMetrics:
    def test_without_a_namespace_nothing_is_emitted_and_nothing_fails(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Earlier stages set no POWERTOOLS_METRICS_NAMESPACE: Powertools would refuse to flush.
        https://docs.powertools.aws.dev/lambda/python/latest/core/metrics/#getting-started
        """
        monkeypatch.delenv(NAMESPACE_VARIABLE, raising=False)
        consumer, _ = consumer_with({OrderPlaced: lambda event: {"ok": True}})
        assert consumer(eventbridge_event(order_placed()), FakeContext()) == {"ok": True}  # type: ignore[arg-type]
        assert emf_lines(capsys.readouterr().out) == []

    def test_one_emf_line_per_invocation_counts_each_event_type_and_outcome(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html"""
        monkeypatch.setenv(NAMESPACE_VARIABLE, "Shop")
        monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "orders")

        def handle(event: OrderPlaced) -> dict[str, bool]:
            if event.order_id == "bad":
                raise ValueError("bad order")
            return {"ok": True}

        consumer, _ = consumer_with({OrderPlaced: handle})
        batch = sqs_batch(*(json.dumps(eventbridge_event(order_placed(o))) for o in ("a", "b", "bad")))
        consumer(batch, FakeContext())  # type: ignore[arg-type]
        [line] = emf_lines(capsys.readouterr().out)
        assert line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Shop"
        assert line["service"] == "orders"
        assert (line["OrderPlaced"], line["ShopEventHandled"], line["ShopEventFailed"]) == ([1.0, 1.0], [1.0, 1.0], [1.0])

    def test_flushing_with_nothing_counted_writes_nothing(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """https://docs.powertools.aws.dev/lambda/python/latest/core/metrics/#raising-schemavalidationerror-on-empty-metrics"""
        monkeypatch.setenv(NAMESPACE_VARIABLE, "Shop")
        EventMetrics().flush()
        assert capsys.readouterr().out == ""
