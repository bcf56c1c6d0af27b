"""Stage 5, fan-out with SNS: the notifications function publishes each order status change once
to OrderStatusTopic, and SNS delivers a copy to every subscription whose filter policy matches:
the customer's email and SMS (recorded by the local cloud, never sent) and other services'
queues. A new consumer (loyalty) subscribes without any change to a producer.

The same tests check a learner's workspace: `pytest tests/stages/test_stage_05.py --stage-dir workspace/`.
Run this file (`python tests/stages/test_stage_05.py`) to rewrite the diffs in the chapter's README.
"""

from __future__ import annotations

import difflib
import json
import re
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Logger

from edakit import LocalCloud
from edakit.chapters import check_readme, stage_diff, text_diff, write_readme
from edakit.paths import CHAPTERS, NOTEBOOKS, SHOP_SRC
from edakit.template import read_template

if str(SHOP_SRC) not in sys.path:
    sys.path.insert(0, str(SHOP_SRC))

from shop.adapters.dynamodb import DynamoDBStockRepository  # noqa: E402
from shop.channels import Consumer  # noqa: E402
from shop.events import OrderConfirmed, OrderLine, OrderPlaced, OutOfStock  # noqa: E402
from shop.inventory import seed_stock  # noqa: E402
from shop.storefront import Cart, Storefront  # noqa: E402

STAGE = "05-fanout"
PREVIOUS_STAGE = "04-queues"
NOTEBOOK = NOTEBOOKS / "05-fanout.py"
#: The notebook is a chapter page: it must run in seconds (wall time, with the kernel's start).
NOTEBOOK_SECONDS = 10

#: The new consumer: added to the stage without changing any producer.
NEW_CONSUMER = ["LoyaltyQueue", "LoyaltySubscription", "LoyaltyQueuePolicy"]
#: What stage 5 adds to stage 4; nothing of stage 4 changes.
ADDED_IN_STAGE_5 = ["OrderStatusTopic", "NotificationFunction",
                    "CustomerEmailSubscription", "CustomerSmsSubscription",
                    "ShippingQueue", "ShippingSubscription", "ShippingQueuePolicy",
                    "CustomerServiceQueue", "CustomerServiceSubscription", "CustomerServiceQueuePolicy",
                    *NEW_CONSUMER]
SERVICE_QUEUES = ["ShippingQueue", "CustomerServiceQueue", "LoyaltyQueue"]
EMAIL, PHONE = "customer@example.com", "+15555550100"  # the template's Parameter defaults
#: The lines that mark the new consumer in the template (resources and output).
NEW_CONSUMER_BLOCK = re.compile(r"^  # >>> new consumer: loyalty.*?^  # <<< new consumer: loyalty\n", re.M | re.S)


@pytest.fixture
def cloud(stage_dir: Path) -> Iterator[LocalCloud]:
    with LocalCloud.from_template(stage_dir) as cloud:
        yield cloud


def place(cloud: LocalCloud, *carts: Cart) -> list[OrderPlaced]:
    """The storefront places the orders (one PutEvents call); then everything runs to the end."""
    orders = Storefront(cloud.outputs["EventBusName"]).place_orders(carts)
    cloud.run_until_idle()
    return orders


def cart(customer_id: str, sku: str, quantity: int, unit_price_cents: int = 1500) -> Cart:
    return Cart(customer_id, [OrderLine(sku=sku, quantity=quantity, unit_price_cents=unit_price_cents)])


def seed(cloud: LocalCloud, levels: dict[str, int]) -> None:
    seed_stock(DynamoDBStockRepository(cloud.physical_id("StockTable"), cloud.physical_id("ReservationsTable")), levels)


def sent_to(cloud: LocalCloud, endpoint: str) -> list[Any]:
    """The recorded notifications to one email address or phone number, in order."""
    return [n for n in cloud.notifications if n.endpoint == endpoint]


def queued(cloud: LocalCloud, queue: str) -> list[dict[str, Any]]:
    """The messages in a service's queue (raw delivery: each body is the shop event)."""
    return [json.loads(body) for body in cloud.messages(queue)]


def order_ids(messages: list[dict[str, Any]]) -> list[str]:
    return [m["detail"]["order_id"] for m in messages]


@pytest.fixture
def two_orders(cloud: LocalCloud) -> tuple[OrderPlaced, OrderPlaced]:
    """Alice's order is confirmed (30.00 EUR); Bob's asks for two mugs where there is one."""
    seed(cloud, {"BOOK-001": 5, "MUG-001": 1})
    alice, bob = place(cloud, cart("alice", "BOOK-001", 2), cart("bob", "MUG-001", 2))
    return alice, bob


class TestFanOut:
    """One publish, one copy per matching subscription.
    https://docs.aws.amazon.com/sns/latest/dg/sns-common-scenarios.html"""

    def test_a_confirmed_order_reaches_the_customer_by_email_and_sms_and_the_shipping_queue(
        self, cloud: LocalCloud, two_orders: tuple[OrderPlaced, OrderPlaced]
    ) -> None:
        """https://docs.aws.amazon.com/sns/latest/dg/sns-user-notifications.html
        https://docs.aws.amazon.com/sns/latest/dg/sns-message-filtering.html
        """
        alice, _ = two_orders
        emails = [n for n in sent_to(cloud, EMAIL) if alice.order_id in n.message]
        texts = [n for n in sent_to(cloud, PHONE) if alice.order_id[:8] in n.message]
        assert [(n.protocol, n.subject) for n in emails] == [("email", f"Your order {alice.order_id[:8]} is confirmed")]
        assert "Total: 30.00 EUR" in emails[0].message
        assert [(n.protocol, n.subject) for n in texts] == [("sms", None)]
        assert order_ids(queued(cloud, "ShippingQueue")) == [alice.order_id]
        assert alice.order_id not in order_ids(queued(cloud, "CustomerServiceQueue"))

    def test_an_out_of_stock_order_reaches_the_customer_by_email_and_customer_service_only(
        self, cloud: LocalCloud, two_orders: tuple[OrderPlaced, OrderPlaced]
    ) -> None:
        """No text message, no shipping, no loyalty points: their filter policies do not match.
        https://docs.aws.amazon.com/sns/latest/dg/sns-message-filtering.html
        """
        _, bob = two_orders
        [email] = [n for n in sent_to(cloud, EMAIL) if bob.order_id in n.message]
        assert email.subject == f"We could not fulfil your order {bob.order_id[:8]}"
        assert "not been charged" in email.message
        assert [n for n in sent_to(cloud, PHONE) if bob.order_id[:8] in n.message] == []
        assert order_ids(queued(cloud, "CustomerServiceQueue")) == [bob.order_id]
        for queue in ("ShippingQueue", "LoyaltyQueue"):
            assert bob.order_id not in order_ids(queued(cloud, queue)), queue

    def test_each_status_change_is_published_once_and_sns_makes_the_copies(
        self, cloud: LocalCloud, two_orders: tuple[OrderPlaced, OrderPlaced]
    ) -> None:
        """The producer publishes one message per status; fan-out is the topic's work.
        https://docs.aws.amazon.com/sns/latest/dg/welcome.html
        """
        published = [i.result for i in cloud.invocations("NotificationFunction")]
        assert sorted(r["order_status"] for r in published) == ["CONFIRMED", "OUT_OF_STOCK"]
        topic = cloud.sns_backend.get_topic(cloud.physical_id("OrderStatusTopic"))
        assert len(topic.sent_notifications) == 2
        # confirmed: email, sms, shipping, loyalty; out of stock: email, customer service
        copies = len(cloud.notifications) + sum(len(cloud.messages(q)) for q in SERVICE_QUEUES)
        assert copies == 6

    def test_a_service_gets_the_shop_event_raw_and_reads_it_with_the_channel_adapter(
        self, cloud: LocalCloud, two_orders: tuple[OrderPlaced, OrderPlaced]
    ) -> None:
        """RawMessageDelivery: the queue's body is the message itself, without the SNS envelope.
        https://docs.aws.amazon.com/sns/latest/dg/sns-large-payload-raw-message-delivery.html
        """
        alice, bob = two_orders
        [shipping_body] = cloud.messages("ShippingQueue")
        assert "TopicArn" not in json.loads(shipping_body)
        received: list[Any] = []
        consumer = Consumer({OrderConfirmed: received.append, OutOfStock: received.append},
                            Logger(service="test-stage-05"))
        for body in cloud.messages("ShippingQueue") + cloud.messages("CustomerServiceQueue"):
            consumer.handle(body)
        assert [(type(e).__name__, e.order_id) for e in received] == [
            ("OrderConfirmed", alice.order_id), ("OutOfStock", bob.order_id)]
        assert received[0].correlation_id == alice.correlation_id


class TestAtLeastOnce:
    def test_a_redelivered_status_event_does_not_email_the_customer_twice(
        self, cloud: LocalCloud, two_orders: tuple[OrderPlaced, OrderPlaced]
    ) -> None:
        """EventBridge and Lambda deliver at least once; Idempotency on event_id publishes once.
        https://docs.powertools.aws.dev/lambda/python/latest/utilities/idempotency/
        https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html
        """
        first = cloud.invocations("NotificationFunction")[0]
        delivered_before = len(cloud.notifications)
        boto3.client("lambda").invoke(FunctionName=cloud.physical_id("NotificationFunction"),
                                      InvocationType="Event", Payload=json.dumps(first.event))
        cloud.run_until_idle()
        again = cloud.invocations("NotificationFunction")[-1]
        assert again.ok and again.result == first.result
        assert len(cloud.notifications) == delivered_before
        topic = cloud.sns_backend.get_topic(cloud.physical_id("OrderStatusTopic"))
        assert len(topic.sent_notifications) == 2


class TestFilterPolicies:
    def test_loyalty_takes_confirmed_orders_of_20_eur_or_more_only(self, cloud: LocalCloud) -> None:
        """A numeric filter matches a Number attribute: 30.00 EUR earns points, 15.00 EUR does not.
        https://docs.aws.amazon.com/sns/latest/dg/numeric-value-matching.html
        """
        seed(cloud, {"BOOK-001": 5})
        big, small = place(cloud, cart("alice", "BOOK-001", 2), cart("carol", "BOOK-001", 1))
        assert order_ids(queued(cloud, "LoyaltyQueue")) == [big.order_id]
        assert sorted(order_ids(queued(cloud, "ShippingQueue"))) == sorted([big.order_id, small.order_id])

    def test_a_message_without_the_attributes_reaches_nobody(self, cloud: LocalCloud) -> None:
        """Every subscription filters on order_status: a message without it matches none of them.
        https://docs.aws.amazon.com/sns/latest/dg/sns-message-filtering.html
        """
        boto3.client("sns").publish(TopicArn=cloud.physical_id("OrderStatusTopic"), Message="hello", Subject="Hi")
        cloud.run_until_idle()
        assert cloud.notifications == []
        assert all(cloud.messages(q) == [] for q in SERVICE_QUEUES)

    def test_each_subscription_has_the_filter_policy_of_its_channel(self, cloud: LocalCloud) -> None:
        """https://docs.aws.amazon.com/sns/latest/dg/sns-subscription-filter-policies.html"""
        sns, sqs = boto3.client("sns"), boto3.client("sqs")
        queues = {sqs.get_queue_attributes(QueueUrl=cloud.physical_id(q), AttributeNames=["QueueArn"])
                  ["Attributes"]["QueueArn"]: q for q in SERVICE_QUEUES}
        found = {}
        for subscription in sns.list_subscriptions_by_topic(TopicArn=cloud.physical_id("OrderStatusTopic"))["Subscriptions"]:
            attributes = sns.get_subscription_attributes(SubscriptionArn=subscription["SubscriptionArn"])["Attributes"]
            found[queues.get(subscription["Endpoint"], subscription["Endpoint"])] = (
                subscription["Protocol"], json.loads(attributes["FilterPolicy"]), attributes["RawMessageDelivery"])
        assert found == {
            EMAIL: ("email", {"order_status": ["CONFIRMED", "OUT_OF_STOCK"]}, "false"),
            PHONE: ("sms", {"order_status": ["CONFIRMED"]}, "false"),
            "ShippingQueue": ("sqs", {"order_status": ["CONFIRMED"]}, "true"),
            "CustomerServiceQueue": ("sqs", {"order_status": ["OUT_OF_STOCK"]}, "true"),
            "LoyaltyQueue": ("sqs", {"order_status": ["CONFIRMED"], "total_cents": [{"numeric": [">=", 2000]}]}, "true"),
        }


class TestNothingIsSent:
    def test_customer_notifications_are_recorded_and_no_connection_is_opened(
        self, cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Email and SMS are application-to-person deliveries: offline they are recorded, never sent.
        https://docs.aws.amazon.com/sns/latest/dg/sns-user-notifications.html
        """
        connections: list[Any] = []
        monkeypatch.setattr(socket.socket, "connect", lambda self, address: connections.append(address))
        monkeypatch.setattr(socket, "create_connection", lambda address, *a, **k: connections.append(address))
        seed(cloud, {"BOOK-001": 5, "MUG-001": 1})
        place(cloud, cart("alice", "BOOK-001", 2), cart("bob", "MUG-001", 2))
        assert sorted(n.protocol for n in cloud.notifications) == ["email", "email", "sms"]
        assert connections == []
        assert cloud.sns_backend.sms_messages == {}  # nor did anything go through SNS's direct SMS


def without_new_consumer(text: str) -> str:
    """The stage's template as it was before the loyalty consumer: its marked lines removed."""
    return NEW_CONSUMER_BLOCK.sub("", text)


def deployable_copy(stage_dir: Path, text: str, directory: Path) -> Path:
    """`text` written in `directory`, with a relative CodeUri made absolute so the code is still found."""
    def absolute(match: re.Match[str]) -> str:
        path = Path(match.group(2))
        # The template may be a link (stage 5 is sam-app/template.yaml): CodeUri is relative to the real file.
        base = (stage_dir / "template.yaml").resolve().parent
        return match.group(1) + str(path if path.is_absolute() else (base / path).resolve())

    path = directory / "template.yaml"
    path.write_text(re.sub(r"^(\s*CodeUri:\s*)(\S+)\s*$", absolute, text, flags=re.M))
    return path


def read_template_text(text: str) -> dict[str, Any]:
    """A template given as text, parsed as the local cloud parses a template file."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "template.yaml"
        path.write_text(text)
        return read_template(path)


def fan_out_of(template: Path) -> dict[str, Any]:
    """Who got what, in one scenario: a confirmed order and an out-of-stock one."""
    with LocalCloud.from_template(template) as cloud:
        seed(cloud, {"BOOK-001": 5, "MUG-001": 1})
        place(cloud, cart("alice", "BOOK-001", 2), cart("bob", "MUG-001", 2))
        queues = {q: [m["detail-type"] for m in queued(cloud, q)]
                  for q in SERVICE_QUEUES if q in cloud.deployment.physical_ids}  # type: ignore[union-attr]
        return {"notifications": sorted((n.protocol, n.subject.split(" ")[0] if n.subject else None)
                                        for n in cloud.notifications),
                "queues": queues,
                "invocations": sorted((i.function, i.ok) for i in cloud.invocations())}


class TestNewConsumer:
    """Publish-subscribe: a new consumer subscribes; no producer changes.
    https://docs.aws.amazon.com/sns/latest/dg/sns-create-subscribe-endpoint-to-topic.html"""

    def test_the_loyalty_consumer_adds_three_resources_and_changes_nothing_else(self, stage_dir: Path) -> None:
        """https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/template-anatomy.html"""
        text = (stage_dir / "template.yaml").read_text()
        before = read_template_text(without_new_consumer(text))
        after = read_template_text(text)
        assert sorted(set(after["Resources"]) - set(before["Resources"])) == sorted(NEW_CONSUMER)
        assert {k: after["Resources"][k] for k in before["Resources"]} == before["Resources"]
        assert set(after["Outputs"]) - set(before["Outputs"]) == {"LoyaltyQueueUrl"}
        # the diff only adds lines
        diff = list(difflib.unified_diff(without_new_consumer(text).splitlines(), text.splitlines(), lineterm=""))
        assert diff and not [line for line in diff[2:] if line.startswith("-")]

    def test_with_the_new_consumer_everyone_gets_what_they_got_and_loyalty_gets_the_confirmed_order(
        self, stage_dir: Path, tmp_path: Path
    ) -> None:
        """The same scenario, before and after: the producers ran the same way, the existing subscribers
        got the same, and the new queue got the confirmed order.
        https://docs.aws.amazon.com/sns/latest/dg/sns-message-filtering.html
        """
        text = (stage_dir / "template.yaml").read_text()
        before = fan_out_of(deployable_copy(stage_dir, without_new_consumer(text), tmp_path))
        after = fan_out_of(stage_dir / "template.yaml")
        assert "LoyaltyQueue" not in before["queues"]
        assert after["queues"].pop("LoyaltyQueue") == ["OrderConfirmed"]
        assert after == before


class TestResources:
    """What the template must hold besides the behaviour."""

    def test_stage_4_is_kept_and_stage_5_only_adds(self, stage_dir: Path) -> None:
        """A stage adds to the one before: every stage 4 resource and output is there as it was.
        https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/template-anatomy.html
        """
        previous = read_template(CHAPTERS / PREVIOUS_STAGE / "template.yaml")
        current = read_template(stage_dir / "template.yaml")
        assert {k: current["Resources"].get(k) for k in previous["Resources"]} == previous["Resources"]
        assert sorted(set(current["Resources"]) - set(previous["Resources"])) == sorted(ADDED_IN_STAGE_5)
        assert {k: current["Outputs"].get(k) for k in previous["Outputs"]} == previous["Outputs"]
        assert {k: p.get("Default") for k, p in current["Parameters"].items()} == {
            "CustomerEmail": EMAIL, "CustomerPhoneNumber": PHONE}

    def test_each_service_queue_accepts_messages_from_the_topic_only(self, cloud: LocalCloud) -> None:
        """The queue policy lets sns.amazonaws.com send, on condition that the source is this topic.
        https://docs.aws.amazon.com/sns/latest/dg/subscribe-sqs-queue-to-sns-topic.html
        """
        topic_arn = cloud.physical_id("OrderStatusTopic")
        for queue in SERVICE_QUEUES:
            policy = json.loads(boto3.client("sqs").get_queue_attributes(
                QueueUrl=cloud.physical_id(queue), AttributeNames=["Policy"])["Attributes"]["Policy"])
            [statement] = policy["Statement"]
            assert (statement["Principal"], statement["Action"]) == ({"Service": "sns.amazonaws.com"}, "sqs:SendMessage"), queue
            assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": topic_arn}}, queue

    def test_the_notifications_function_may_publish_to_its_topic_and_nothing_else_of_sns(self, cloud: LocalCloud) -> None:
        """SNSPublishMessagePolicy grants sns:Publish on the one topic.
        https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/serverless-policy-template-list.html
        """
        assert cloud.stage is not None
        role = json.dumps(cloud.stage.cloudformation["Resources"]["NotificationFunctionRole"]["Properties"]["Policies"])
        assert '"sns:Publish"' in role and "OrderStatusTopic" in role
        assert '"sns:*"' not in role and '"Action": "*"' not in role


# -- the chapter's own pages (not a learner's workspace) ---------------------------------------------




def readme_diffs() -> dict[str, str]:
    """The README's generated blocks: the unified diff from stage 4's template to stage 5's (what this
    chapter changes), and the one that adds the loyalty consumer to the stage (additions only)."""
    name = f"chapters/{STAGE}/template.yaml"
    text = (CHAPTERS / STAGE / "template.yaml").read_text()
    return {"template diff": stage_diff(PREVIOUS_STAGE, STAGE),
            "new consumer diff": text_diff(without_new_consumer(text), text,
                                           f"{name} (without the loyalty consumer)", name)}


@pytest.mark.usefixtures("chapter_only")
class TestChapter:
    def test_the_readme_shows_the_template_diff_from_stage_4_and_the_new_consumer_diff(self) -> None:
        """The README's diffs are those of the templates as they are (rewrite them by running this file).
        https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-specification.html
        """
        check_readme(STAGE, readme_diffs(), __file__)

    @pytest.mark.notebook
    def test_the_notebook_runs_in_seconds_and_shows_the_fan_out(self) -> None:
        """The chapter's notebook runs stage 5 on the local cloud: the recorded email and SMS, what each
        service queue got, the filter policies at work, and the new consumer.
        https://docs.aws.amazon.com/sns/latest/dg/sns-message-filtering.html
        """
        from edakit.notebooks import execute_notebook, outputs_of, text_of

        notebook, seconds = execute_notebook(NOTEBOOK)
        outputs = outputs_of(notebook)
        text = text_of(outputs)
        assert "alice: CONFIRMED" in text and "bob: OUT_OF_STOCK" in text
        assert "| email | customer@example.com | Your order" in text
        assert "| sms | +15555550100 |" in text
        assert "ShippingQueue: OrderConfirmed (alice)" in text
        assert "CustomerServiceQueue: OutOfStock (bob)" in text
        assert "LoyaltyQueue: OrderConfirmed (alice)" in text
        assert "1 publish per status change, 6 deliveries" in text
        assert "nothing was sent: 3 notifications recorded" in text
        assert any("image/png" in o.get("data", {}) for o in outputs), "the notebook draws no chart"
        assert seconds < NOTEBOOK_SECONDS, f"the notebook took {seconds:.1f} s"


if __name__ == "__main__":
    print(write_readme(STAGE, readme_diffs(), __file__))
