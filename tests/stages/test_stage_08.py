"""Stage 8, observability: every hop of an order logs its correlation id, the shop's functions
count what they handle (EMF metrics in the Shop namespace), Lambda and SQS publish their own
metrics, and alarms on them tell the operators through AlarmTopic. The trace of one order is
drawn from what ran.

The same tests check a learner's workspace: `pytest tests/stages/test_stage_08.py --stage-dir workspace/`.
Run this file (`python tests/stages/test_stage_08.py`) to rewrite the diff in the chapter's README.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from edakit import LocalCloud
from edakit.chapters import check_readme, stage_diff, write_readme
from edakit.paths import CHAPTERS, NOTEBOOKS, SHOP_SRC
from edakit.template import read_template

if str(SHOP_SRC) not in sys.path:
    sys.path.insert(0, str(SHOP_SRC))

from shop.adapters.dynamodb import DynamoDBStockRepository  # noqa: E402
from shop.events import OrderLine, OrderPlaced  # noqa: E402
from shop.inventory import seed_stock  # noqa: E402
from shop.storefront import Cart, Storefront  # noqa: E402

STAGE = "08-observability"
PREVIOUS_STAGE = "07-resilience"
NOTEBOOK = NOTEBOOKS / "08-observability.py"
#: The notebook is a chapter page: it must run in seconds (wall time, with the kernel's start).
NOTEBOOK_SECONDS = 10

ADDED_IN_STAGE_8 = ["AlarmTopic", "OperatorEmailSubscription", "OrdersDLQNotEmptyAlarm",
                    "OrdersQueueOldestMessageAlarm", "OrderProcessingErrorsAlarm", "InventoryThrottlesAlarm",
                    "OutOfStockRateAlarm", "PaymentsDLQNotEmptyAlarm", "AnalyticsIteratorAgeAlarm"]
OPERATOR = "ops@example.com"  # the OperatorEmail parameter's default
#: A product the storefront sells before the order service's catalogue knows it: a poison order.
NEW_PRODUCT = "POSTER-001"


@pytest.fixture
def cloud(stage_dir: Path) -> Iterator[LocalCloud]:
    with LocalCloud.from_template(stage_dir) as cloud:
        seed_stock(DynamoDBStockRepository(cloud.physical_id("StockTable"), cloud.physical_id("ReservationsTable")),
                   {"BOOK-001": 10, "MUG-001": 1, NEW_PRODUCT: 5})
        yield cloud


def cart(customer_id: str, sku: str, quantity: int = 1) -> Cart:
    return Cart(customer_id, [OrderLine(sku=sku, quantity=quantity, unit_price_cents=1500)])


def place(cloud: LocalCloud, *carts: Cart) -> list[OrderPlaced]:
    orders = Storefront(cloud.outputs["EventBusName"]).place_orders(carts)
    cloud.run_until_idle()
    return orders


def json_lines(lines: list[str]) -> list[dict[str, Any]]:
    found = []
    for line in lines:
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict):
            found.append(document)
    return found


def alarm_emails(cloud: LocalCloud) -> list[tuple[str, dict[str, Any]]]:
    return [(n.subject or "", json.loads(n.message)) for n in cloud.notifications if n.endpoint == OPERATOR]


class TestLogs:
    def test_every_invocation_on_an_orders_way_logs_its_correlation_id(self, cloud: LocalCloud) -> None:
        """Each function that handles one of the order's events writes JSON log lines that carry the
        order's correlation_id and order_id (Powertools Logger's appended keys), so one query in
        CloudWatch Logs follows the order across functions.
        https://docs.powertools.aws.dev/lambda/python/latest/core/logger/#appending-additional-keys
        https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html
        """
        [order] = place(cloud, cart("alice", "BOOK-001", 2))
        on_its_way = [i for i in cloud.invocations() if order.correlation_id in json.dumps(i.event)]
        assert {i.function for i in on_its_way} >= {"InventoryFunction", "OrderProcessingFunction",
                                                    "OrderStatusFunction", "NotificationFunction"}
        for invocation in on_its_way:
            tagged = [d for d in json_lines(invocation.logs) if d.get("correlation_id") == order.correlation_id]
            assert tagged, f"{invocation.function} logged nothing with the correlation id"
            assert all(d["order_id"] == order.order_id for d in tagged)
            assert {"level", "service", "function_request_id"} <= set(tagged[0])


class TestMetrics:
    def test_the_shop_counts_each_event_it_handles_in_emf(self, cloud: LocalCloud) -> None:
        """The channel adapter adds one metric per handled event type and per outcome; Powertools writes
        them as one EMF log line per invocation, and CloudWatch turns it into metrics in the Shop namespace.
        https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
        https://docs.powertools.aws.dev/lambda/python/latest/core/metrics/
        """
        place(cloud, cart("alice", "BOOK-001"), cart("bob", "MUG-001", 2), cart("carol", "BOOK-001"))

        def total(name: str, service: str) -> float:
            return sum(v for _, v in cloud.metric("Shop", name, {"service": service}))

        assert total("OrderPlaced", "orders") == 3
        assert total("OutOfStock", "orders") == 1
        assert total("InventoryReserved", "orders") == 2
        assert total("ShopEventHandled", "inventory") == 3
        emf = [d for d in json_lines(cloud.logs("InventoryFunction")) if "_aws" in d]
        assert emf and emf[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Shop"

    def test_lambda_and_sqs_publish_their_own_metrics(self, cloud: LocalCloud) -> None:
        """AWS/Lambda (Invocations, Errors, Duration per FunctionName) and AWS/SQS (per QueueName) need no code.
        https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html
        """
        place(cloud, cart("alice", "BOOK-001"))
        cloud.run_for(120)
        function = {"FunctionName": cloud.physical_id("OrderProcessingFunction")}
        assert sum(v for _, v in cloud.metric("AWS/Lambda", "Invocations", function)) >= 1
        assert sum(v for _, v in cloud.metric("AWS/Lambda", "Errors", function)) == 0
        queue = {"QueueName": cloud.physical_id("OrdersQueue").rsplit("/", 1)[-1]}
        assert sum(v for _, v in cloud.metric("AWS/SQS", "NumberOfMessagesSent", queue)) == 3  # placed, reserved, paid
        assert [v for _, v in cloud.metric("AWS/SQS", "ApproximateNumberOfMessagesVisible", queue)][-1] == 0


class TestAlarms:
    def test_a_poison_order_raises_the_dlq_alarm_and_emptying_the_dlq_clears_it(self, cloud: LocalCloud) -> None:
        """A message that fails three receives lands in OrdersDLQ; at the end of the next minute the DLQ alarm
        goes to ALARM and publishes to AlarmTopic, whose email subscriber gets it. Once the DLQ is emptied,
        the alarm goes back to OK and says so.
        https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html
        """
        assert cloud.alarm_state("OrdersDLQNotEmptyAlarm") == "INSUFFICIENT_DATA"
        place(cloud, cart("mallory", NEW_PRODUCT))
        assert len(cloud.messages("OrdersDLQ")) == 1
        cloud.run_for(120)
        assert cloud.alarm_state("OrdersDLQNotEmptyAlarm") == "ALARM"
        name = cloud.physical_id("OrdersDLQNotEmptyAlarm")
        [(subject, message)] = [(s, m) for s, m in alarm_emails(cloud)
                                if m["AlarmName"] == name and m["NewStateValue"] == "ALARM"]
        assert subject == f'ALARM: "{name}" in US East (N. Virginia)'
        assert message["Trigger"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert message["Trigger"]["Dimensions"] == [
            {"value": cloud.physical_id("OrdersDLQ").rsplit("/", 1)[-1], "name": "QueueName"}]
        # when the operator has looked at the message and emptied the DLQ
        boto3.client("sqs").purge_queue(QueueUrl=cloud.physical_id("OrdersDLQ"))
        cloud.run_for(120)
        assert cloud.alarm_state("OrdersDLQNotEmptyAlarm") == "OK"
        assert [c.new_state for c in cloud.alarm_history("OrdersDLQNotEmptyAlarm")][-2:] == ["ALARM", "OK"]
        assert alarm_emails(cloud)[-1][1]["NewStateValue"] == "OK"

    def test_the_out_of_stock_rate_alarm_is_a_business_alarm_on_emf_metrics(self, cloud: LocalCloud) -> None:
        """Metric math on the shop's own metrics: more than 20 % of 5 minutes' orders out of stock.
        https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Create-alarm-on-metric-math-expression.html
        """
        place(cloud, *(cart(f"c{n}", "BOOK-001") for n in range(4)))
        cloud.run_for(600)
        assert cloud.alarm_state("OutOfStockRateAlarm") == "OK"
        place(cloud, cart("bob", "MUG-001", 2), cart("dan", "MUG-001", 2), cart("eve", "BOOK-001"))
        cloud.run_for(300)
        assert cloud.alarm_state("OutOfStockRateAlarm") == "ALARM"
        assert "[66.6" in cloud.alarm_history("OutOfStockRateAlarm")[-1].reason

    def test_every_alarm_tells_the_alarm_topic(self, cloud: LocalCloud) -> None:
        """AlarmActions and OKActions name AlarmTopic, which an operator's email subscribes to.
        https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html
        """
        topic = cloud.physical_id("AlarmTopic")
        alarms = boto3.client("cloudwatch").describe_alarms()["MetricAlarms"]
        assert sorted(a["AlarmName"] for a in alarms) == sorted(
            cloud.physical_id(a) for a in ADDED_IN_STAGE_8 if a.endswith("Alarm"))
        assert all(a["AlarmActions"] == [topic] and a["OKActions"] == [topic] for a in alarms)
        [subscription] = boto3.client("sns").list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        assert (subscription["Protocol"], subscription["Endpoint"]) == ("email", OPERATOR)


class TestTrace:
    def test_the_trace_of_one_order_names_every_hop(self, cloud: LocalCloud) -> None:
        """From what ran: storefront -> bus -> rules -> queues and functions -> topic -> subscribers.
        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rules.html
        """
        [order] = place(cloud, cart("alice", "BOOK-001", 2))
        diagram = cloud.trace(order.correlation_id)
        for hop in ["shop_storefront->>ShopBus: +0.0s PutEvents OrderPlaced",
                    "ShopBus->>OrdersQueue:", "ShopBus->>InventoryFunction:", "InventoryFunction->>ShopBus:",
                    "OrdersQueue->>OrderProcessingFunction:", "OrderProcessingFunction->>ShopBus:",
                    "ShopBus->>NotificationFunction:", "NotificationFunction->>OrderStatusTopic:",
                    "OrderStatusTopic->>email__customer_example_com:", "OrderStatusTopic->>ShippingQueue:"]:
            assert hop in diagram, hop


def previous_template() -> Path:
    """The template stage 8 is built on."""
    return CHAPTERS / PREVIOUS_STAGE / "template.yaml"


class TestResources:
    def test_stage_8_keeps_the_previous_stage_and_only_adds(self, stage_dir: Path) -> None:
        """Every resource, output and parameter of the previous stage is there as it was; stage 8 adds the
        alarm topic, its subscription and the alarms.
        https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/template-anatomy.html
        """
        previous = read_template(previous_template())
        current = read_template(stage_dir / "template.yaml")
        assert {k: current["Resources"].get(k) for k in previous["Resources"]} == previous["Resources"]
        assert sorted(set(current["Resources"]) - set(previous["Resources"])) == sorted(ADDED_IN_STAGE_8)
        assert {k: current["Outputs"].get(k) for k in previous["Outputs"]} == previous["Outputs"]
        assert set(current["Parameters"]) - set(previous["Parameters"]) == {"OperatorEmail"}
        assert current["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"] == "Shop"

    def test_every_function_names_its_service(self, stage_dir: Path) -> None:
        """POWERTOOLS_SERVICE_NAME is the `service` of each log line and metric dimension.
        https://docs.powertools.aws.dev/lambda/python/latest/#environment-variables
        """
        current = read_template(stage_dir / "template.yaml")
        functions = {k: r for k, r in current["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
        assert functions and all(r["Properties"]["Environment"]["Variables"].get("POWERTOOLS_SERVICE_NAME")
                                 for r in functions.values())


# -- the chapter's own pages (not a learner's workspace) ---------------------------------------------


def readme_diffs() -> dict[str, str]:
    """The README's template diff, from stage 7's template to stage 8's: what this chapter changes."""
    return {"template diff": stage_diff(PREVIOUS_STAGE, STAGE)}


@pytest.mark.usefixtures("chapter_only")
class TestChapter:
    def test_the_readme_shows_the_template_diff_from_stage_7(self) -> None:
        """The README's diff is that of the templates as they are (rewrite it by running this file).
        https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-specification.html
        """
        check_readme(STAGE, readme_diffs(), __file__)

    @pytest.mark.notebook
    def test_the_notebook_runs_in_seconds_and_shows_metrics_alarms_and_the_trace(self) -> None:
        """The chapter's notebook runs stage 8 on the local cloud: metrics over virtual time, the alarm
        timeline and the trace of one order.
        https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html
        """
        from edakit.notebooks import execute_notebook, outputs_of, text_of

        notebook, seconds = execute_notebook(NOTEBOOK)
        outputs = outputs_of(notebook)
        text = text_of(outputs)
        assert "sequenceDiagram" in text
        assert "OrdersDLQNotEmptyAlarm: OK -> ALARM" in text
        assert "OrdersDLQNotEmptyAlarm: ALARM -> OK" in text
        assert 'ALARM: "shop-OrdersDLQNotEmptyAlarm"' in text
        assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2, "the notebook draws no charts"
        assert seconds < NOTEBOOK_SECONDS, f"the notebook took {seconds:.1f} s"


if __name__ == "__main__":
    print(write_readme(STAGE, readme_diffs(), __file__))
