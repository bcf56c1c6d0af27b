"""Stage 7, failure is normal: payments charge each order at most once through a flaky gateway,
a poison order ends in the DLQ and is redriven after the fix, duplicates and redeliveries charge
nothing more, a stopped consumer catches up, an archive replay recovers missed events, and a
declined payment cancels the order and releases its stock. The chaos test mixes all of them.

The same tests check a learner's workspace: `pytest tests/stages/test_stage_07.py --stage-dir workspace/`.
Run this file (`python tests/stages/test_stage_07.py`) to rewrite the diff in the chapter's README.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest

from edakit import LocalCloud
from edakit.chaos import ChaosPlan, ChaosRun
from edakit.chapters import check_readme, stage_diff, write_readme
from edakit.paths import CHAPTERS, NOTEBOOKS, SHOP_SRC
from edakit.redrive import redrive
from edakit.template import read_template

if str(SHOP_SRC) not in sys.path:
    sys.path.insert(0, str(SHOP_SRC))

from shop.adapters.dynamodb import DynamoDBStockRepository  # noqa: E402
from shop.adapters.payments import DynamoDBPaymentLedger  # noqa: E402
from shop.events import OrderLine, OrderPlaced, to_put_events_entry  # noqa: E402
from shop.inventory import seed_stock  # noqa: E402
from shop.payments import LedgerEntry, PaymentStatus, backoff_seconds  # noqa: E402
from shop.storefront import Cart, Storefront  # noqa: E402

STAGE = "07-resilience"
PREVIOUS_STAGE = "06-analytics"
NOTEBOOK = NOTEBOOKS / "07-resilience.py"
NOTEBOOK_SECONDS = 10
#: The chaos test's wall time: the target on a quiet machine is about 40 s; it fails only past
#: ten times that, which is a regression (a cost that grows with the run), not a slow machine.
CHAOS_TARGET_SECONDS = 40

ADDED_IN_STAGE_7 = ["PaymentsTable", "PaymentsQueue", "PaymentsDLQ", "OrderEventsToPaymentsQueue",
                    "PaymentsQueuePolicy", "PaymentsFunction", "PaymentOutcomeToOrdersQueue"]
#: Earlier resources stage 7 changes (marked "stage 7: changed" in the template).
CHANGED_IN_STAGE_7 = ["OrderProcessingFunction", "InventoryFunction", "OrdersQueuePolicy",
                      "OrderLifecycleToStatusQueue"]
MAX_RECEIVE_COUNT = 8
MERCHANT_LIMIT_CENTS = 100_000


@pytest.fixture
def cloud(stage_dir: Path) -> Iterator[LocalCloud]:
    with LocalCloud.from_template(stage_dir) as cloud:
        yield cloud


def line(sku: str = "BOOK-001", quantity: int = 1, unit_price_cents: int = 1500) -> OrderLine:
    return OrderLine(sku=sku, quantity=quantity, unit_price_cents=unit_price_cents)


def seed(cloud: LocalCloud, levels: dict[str, int]) -> DynamoDBStockRepository:
    stock = DynamoDBStockRepository(cloud.physical_id("StockTable"), cloud.physical_id("ReservationsTable"))
    seed_stock(stock, levels)
    return stock


def place(cloud: LocalCloud, *carts: Cart, run: bool = True) -> list[OrderPlaced]:
    orders = Storefront(cloud.outputs["EventBusName"]).place_orders(carts)
    if run:
        cloud.run_until_idle()
    return orders


def status_of(cloud: LocalCloud, order_id: str) -> str:
    item = boto3.client("dynamodb").get_item(
        TableName=cloud.physical_id("OrdersTable"), Key={"order_id": {"S": order_id}}).get("Item")
    return item["status"]["S"] if item else "not recorded"


def payment_of(cloud: LocalCloud, order_id: str) -> LedgerEntry | None:
    return DynamoDBPaymentLedger(cloud.physical_id("PaymentsTable")).entry(order_id)


def history_of(cloud: LocalCloud, order_id: str) -> list[str]:
    item = boto3.client("dynamodb").get_item(
        TableName=cloud.physical_id("OrderHistoryTable"), Key={"order_id": {"S": order_id}}).get("Item")
    return [entry["M"]["status"]["S"] for entry in item["history"]["L"]] if item else []


def gateway_failure_rate(cloud: LocalCloud, rate: str) -> None:
    """Set the simulated gateway's transient failure rate before anything is charged."""
    cloud.function("PaymentsFunction").environment["PAYMENT_FAILURE_RATE"] = rate


def payments_mapping(cloud: LocalCloud) -> str:
    [mapping] = boto3.client("lambda").list_event_source_mappings(
        FunctionName=cloud.physical_id("PaymentsFunction"))["EventSourceMappings"]
    return str(mapping["UUID"])


def published(cloud: LocalCloud, detail_type: str) -> list[str]:
    """Order ids of the events of one type on the bus, in order (the audit queue has a copy of each)."""
    events = [json.loads(body) for body in cloud.messages("AuditQueue")]
    return [e["detail"]["order_id"] for e in events if e["detail-type"] == detail_type]


def payments_records(cloud: LocalCloud) -> list[tuple[float, dict[str, Any]]]:
    return [(i.time, r) for i in cloud.invocations("PaymentsFunction") for r in i.event["Records"]]


class TestPayment:
    def test_a_reserved_order_is_charged_once_then_confirmed(self, cloud: LocalCloud) -> None:
        """InventoryReserved -> payments charges -> PaymentSucceeded -> the order is CONFIRMED.
        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rules.html
        """
        gateway_failure_rate(cloud, "0")
        seed(cloud, {"BOOK-001": 5})
        [order] = place(cloud, Cart("alice", [line(quantity=2)]))
        payment = payment_of(cloud, order.order_id)
        assert payment is not None
        assert (payment.status, payment.charges, payment.amount_cents) == (PaymentStatus.CHARGED, 1, 3000)
        assert status_of(cloud, order.order_id) == "CONFIRMED"
        assert history_of(cloud, order.order_id) == ["PLACED", "RESERVED", "CONFIRMED"]

    def test_the_order_is_confirmed_only_after_the_payment(self, cloud: LocalCloud) -> None:
        """While the payments consumer is stopped, a reserved order stays PLACED: it is not confirmed on stock alone.
        https://docs.aws.amazon.com/lambda/latest/api/API_UpdateEventSourceMapping.html
        """
        seed(cloud, {"BOOK-001": 5})
        boto3.client("lambda").update_event_source_mapping(UUID=payments_mapping(cloud), Enabled=False)
        [order] = place(cloud, Cart("alice", [line()]))
        assert status_of(cloud, order.order_id) == "PLACED"
        assert published(cloud, "InventoryReserved") == [order.order_id]
        assert published(cloud, "OrderConfirmed") == []


class TestPoisonOrder:
    def test_an_order_that_always_fails_goes_to_the_dlq_and_completes_after_the_fix_and_a_redrive(
        self, cloud: LocalCloud
    ) -> None:
        """The gateway rejects an amount above the merchant limit on every try: after maxReceiveCount
        receives SQS moves the message to the DLQ. The fix (a higher limit) and a redrive complete it.
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-dead-letter-queue-redrive.html
        """
        gateway_failure_rate(cloud, "0")
        seed(cloud, {"BOOK-002": 5})
        [big] = place(cloud, Cart("carol", [line("BOOK-002", 2, 60_000)]))

        [dead] = [json.loads(body) for body in cloud.messages("PaymentsDLQ")]
        assert (dead["detail-type"], dead["detail"]["order_id"]) == ("InventoryReserved", big.order_id)
        tries = [r for _, r in payments_records(cloud) if json.loads(r["body"])["id"] == dead["id"]]
        assert [r["attributes"]["ApproximateReceiveCount"] for r in tries] == [str(n) for n in range(1, 9)]
        assert status_of(cloud, big.order_id) == "PLACED"
        payment = payment_of(cloud, big.order_id)
        assert payment is not None and (payment.status, payment.charges) == (PaymentStatus.DUE, 0)

        client = boto3.client("lambda")
        name = cloud.physical_id("PaymentsFunction")
        variables = client.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
        client.update_function_configuration(
            FunctionName=name, Environment={"Variables": {**variables, "PAYMENT_MAX_AMOUNT_CENTS": "200000"}})
        result = redrive(cloud.physical_id("PaymentsDLQ"))
        cloud.run_until_idle()

        assert result.moved == 1
        assert status_of(cloud, big.order_id) == "CONFIRMED"
        payment = payment_of(cloud, big.order_id)
        assert payment is not None and (payment.status, payment.charges) == (PaymentStatus.CHARGED, 1)
        assert cloud.messages("PaymentsDLQ") == []


class TestFlakyGateway:
    def test_transient_failures_are_retried_with_exponential_backoff_until_every_order_is_charged(
        self, cloud: LocalCloud
    ) -> None:
        """30 % of gateway calls fail; each failed message is retried after 5, 10, 20... seconds
        (ChangeMessageVisibility from its ApproximateReceiveCount), and every order is charged once.
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ChangeMessageVisibility.html
        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html
        """
        seed(cloud, {"BOOK-001": 100})
        orders = place(cloud, *[Cart(f"customer-{n}", [line()]) for n in range(20)])

        assert [status_of(cloud, o.order_id) for o in orders] == ["CONFIRMED"] * 20
        assert [payment_of(cloud, o.order_id).charges for o in orders] == [1] * 20  # type: ignore[union-attr]
        assert cloud.messages("PaymentsDLQ") == []
        by_message: dict[str, list[tuple[float, int]]] = {}
        for when, record in payments_records(cloud):
            by_message.setdefault(record["messageId"], []).append(
                (when, int(record["attributes"]["ApproximateReceiveCount"])))
        retried = {m: tries for m, tries in by_message.items() if len(tries) > 1}
        assert retried, "with 30 % failures, some message must have been retried"
        for tries in retried.values():
            for (before, count), (after, _) in zip(tries, tries[1:]):
                assert after - before == pytest.approx(backoff_seconds(count), abs=1.01)

    def test_a_partial_batch_failure_returns_only_the_failed_messages(self, cloud: LocalCloud) -> None:
        """With ReportBatchItemFailures, the messages not reported are deleted; only the reported ones come back.
        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html#services-sqs-batchfailurereporting
        """
        seed(cloud, {"BOOK-001": 100})
        place(cloud, *[Cart(f"customer-{n}", [line()]) for n in range(20)])
        invocations = cloud.invocations("PaymentsFunction")
        partial = [i for i in invocations if 0 < len(i.result["batchItemFailures"]) < len(i.event["Records"])]
        assert partial, "some batch must have failed in part"
        for invocation in partial:
            failed = {f["itemIdentifier"] for f in invocation.result["batchItemFailures"]}
            later = [r["messageId"] for i in invocations if i.time > invocation.time for r in i.event["Records"]]
            for record in invocation.event["Records"]:
                assert (record["messageId"] in later) == (record["messageId"] in failed)


class TestDuplicates:
    def test_the_same_event_put_twice_charges_once(self, cloud: LocalCloud) -> None:
        """EventBridge delivers at least once, and a producer may put an event twice: the ledger's
        conditional write lets one charge through.
        https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html
        """
        gateway_failure_rate(cloud, "0")
        seed(cloud, {"BOOK-001": 5})
        [order] = place(cloud, Cart("alice", [line()]))
        reserved = next(json.loads(r["body"]) for _, r in payments_records(cloud)
                        if json.loads(r["body"])["detail-type"] == "InventoryReserved")
        entry = {"Source": reserved["source"], "DetailType": reserved["detail-type"],
                 "Detail": json.dumps(reserved["detail"]), "EventBusName": cloud.outputs["EventBusName"]}
        boto3.client("events").put_events(Entries=[entry, entry])
        cloud.run_until_idle()

        assert sum(1 for _, r in payments_records(cloud) if json.loads(r["body"])["detail-type"] == "InventoryReserved") == 3
        payment = payment_of(cloud, order.order_id)
        assert payment is not None and (payment.charges, payment.attempts) == (1, 1)
        assert status_of(cloud, order.order_id) == "CONFIRMED"

    def test_an_sqs_redelivery_charges_nothing_more(self, cloud: LocalCloud) -> None:
        """A standard queue delivers at least once: the same message body again finds the order settled.
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/standard-queues-at-least-once-delivery.html
        """
        gateway_failure_rate(cloud, "0")
        seed(cloud, {"BOOK-001": 5})
        [order] = place(cloud, Cart("alice", [line()]))
        bodies = [r["body"] for _, r in payments_records(cloud)]
        sqs = boto3.client("sqs")
        for body in bodies:
            sqs.send_message(QueueUrl=cloud.physical_id("PaymentsQueue"), MessageBody=body)
        cloud.run_until_idle()

        payment = payment_of(cloud, order.order_id)
        assert payment is not None and payment.charges == 1
        again = cloud.invocations("PaymentsFunction")[-1]
        assert again.ok and again.result == {"batchItemFailures": []}
        assert published(cloud, "OrderConfirmed") == [order.order_id]


class TestConsumerOutage:
    def test_orders_wait_in_the_queue_while_the_consumer_is_stopped_and_drain_when_it_is_back(
        self, cloud: LocalCloud
    ) -> None:
        """UpdateEventSourceMapping Enabled=False stops polling: messages wait (nothing is received,
        so nothing reaches the DLQ); Enabled=True drains the backlog.
        https://docs.aws.amazon.com/lambda/latest/api/API_UpdateEventSourceMapping.html
        """
        gateway_failure_rate(cloud, "0")
        seed(cloud, {"BOOK-001": 50})
        client = boto3.client("lambda")
        client.update_event_source_mapping(UUID=payments_mapping(cloud), Enabled=False)
        orders = place(cloud, *[Cart(f"customer-{n}", [line()]) for n in range(10)], run=False)
        cloud.run_for(30 * 60)

        assert cloud.queue_depth("PaymentsQueue")["visible"] == 20  # OrderPlaced and InventoryReserved
        assert {status_of(cloud, o.order_id) for o in orders} == {"PLACED"}
        assert cloud.messages("PaymentsDLQ") == []

        client.update_event_source_mapping(UUID=payments_mapping(cloud), Enabled=True)
        cloud.run_until_idle()

        assert {status_of(cloud, o.order_id) for o in orders} == {"CONFIRMED"}
        assert cloud.queue_depth("PaymentsQueue") == {"visible": 0, "in_flight": 0, "delayed": 0}


class TestArchiveReplay:
    def test_events_missed_during_an_outage_are_replayed_from_the_archive_and_charged_once(
        self, cloud: LocalCloud
    ) -> None:
        """The payments rule was disabled for a while: its events were not delivered. A replay of the
        window from ShopArchive, to that rule only, delivers them; orders already charged are not
        charged again.
        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-replay-archived-event.html
        https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_StartReplay.html
        """
        gateway_failure_rate(cloud, "0")
        seed(cloud, {"BOOK-001": 50})
        events = boto3.client("events")
        bus = cloud.outputs["EventBusName"]
        rule = cloud.physical_id("OrderEventsToPaymentsQueue")
        replay_from = cloud.clock.now()
        [before] = place(cloud, Cart("alice", [line()]))
        cloud.clock.advance(60)
        events.disable_rule(Name=rule, EventBusName=bus)
        missed = place(cloud, *[Cart(f"customer-{n}", [line()]) for n in range(3)])
        events.enable_rule(Name=rule, EventBusName=bus)
        outage_end = cloud.clock.now()
        assert {status_of(cloud, o.order_id) for o in missed} == {"PLACED"}
        assert all(payment_of(cloud, o.order_id) is None for o in missed)
        inventory_runs = len(cloud.invocations("InventoryFunction"))

        events.start_replay(
            ReplayName="payments-outage",
            EventSourceArn=events.describe_archive(ArchiveName=cloud.outputs["ArchiveName"])["ArchiveArn"],
            EventStartTime=datetime.fromtimestamp(replay_from, timezone.utc),  # alice's order too
            EventEndTime=datetime.fromtimestamp(outage_end, timezone.utc),
            Destination={"Arn": events.describe_event_bus(Name=bus)["Arn"],
                         "FilterArns": [events.describe_rule(Name=rule, EventBusName=bus)["Arn"]]})
        cloud.run_until_idle()

        assert {status_of(cloud, o.order_id) for o in [before, *missed]} == {"CONFIRMED"}
        assert [payment_of(cloud, o.order_id).charges for o in [before, *missed]] == [1] * 4  # type: ignore[union-attr]
        assert len(cloud.invocations("InventoryFunction")) == inventory_runs  # FilterArns: payments only


class TestCompensation:
    def test_a_declined_payment_cancels_the_order_and_releases_its_stock_once(self, cloud: LocalCloud) -> None:
        """PaymentFailed -> the order is CANCELLED and OrderCancelled published -> inventory releases
        the reservation in one transaction, once (a second OrderCancelled releases nothing).
        https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html
        https://docs.aws.amazon.com/prescriptive-guidance/latest/cloud-design-patterns/saga-choreography.html
        """
        gateway_failure_rate(cloud, "0")
        stock = seed(cloud, {"BOOK-001": 5, "MUG-001": 3})
        [order] = place(cloud, Cart("declined-dave", [line("BOOK-001", 2), line("MUG-001", 1)]))

        payment = payment_of(cloud, order.order_id)
        assert payment is not None and (payment.status, payment.charges, payment.decline_reason) == (
            PaymentStatus.DECLINED, 0, "card_declined")
        assert status_of(cloud, order.order_id) == "CANCELLED"
        assert history_of(cloud, order.order_id) == ["PLACED", "RESERVED", "CANCELLED"]
        assert (stock.stock_of("BOOK-001"), stock.stock_of("MUG-001")) == (5, 3)
        [release] = [i for i in cloud.invocations("InventoryFunction") if "released" in (i.result or {})]
        assert release.result == {"order_id": order.order_id, "released": True}

        cancelled = release.event
        boto3.client("events").put_events(Entries=[{
            "Source": cancelled["source"], "DetailType": cancelled["detail-type"],
            "Detail": json.dumps({**cancelled["detail"], "event_id": "another-delivery"}),
            "EventBusName": cloud.outputs["EventBusName"]}])
        cloud.run_until_idle()
        assert cloud.invocations("InventoryFunction")[-1].result == {"order_id": order.order_id, "released": False}
        assert (stock.stock_of("BOOK-001"), stock.stock_of("MUG-001")) == (5, 3)


class TestChaos:
    def test_500_orders_with_every_failure_mixed_in_lose_nothing_charge_once_and_conserve_stock(
        self, stage_dir: Path
    ) -> None:
        """Poison orders, a 30 % flaky gateway, declined cards, duplicate events, SQS redeliveries
        and a consumer outage, seeded. Every order ends confirmed and charged, cancelled with its
        stock released, or out of stock; the poison ones wait in the DLQ until the fix and the
        redrive. No order is charged twice, and stock is conserved.
        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html
        """
        started = time.perf_counter()
        with LocalCloud.from_template(stage_dir) as cloud:
            run = ChaosRun(cloud, ChaosPlan(orders=500)).run()
            kinds = Counter(run.kinds.values())
            assert kinds["poison"] > 0 and kinds["declined"] > 0 and run.duplicates > 0 and run.redelivered > 0
            assert any(not s.consumer_enabled and s.payments_queue > 0 for s in run.samples), "no outage backlog"

            assert run.check(allow_dead_letters=True) == []
            outcomes = run.outcomes()
            dead = {o for o, outcome in outcomes.items() if outcome == "dead-lettered"}
            assert dead == {o for o, kind in run.kinds.items() if kind == "poison"}

            result = run.fix_and_redrive()
            assert result.moved >= len(dead)
            assert run.check() == []
            outcomes = run.outcomes()
            assert Counter(outcomes.values())["confirmed"] == run.charges()
            assert {o for o, kind in run.kinds.items() if kind == "declined"} <= {
                o for o, outcome in outcomes.items() if outcome in ("cancelled", "out of stock")}
            for queue in ("PaymentsQueue", "PaymentsDLQ", "OrdersQueue", "OrdersDLQ", "ConsumerFailuresQueue"):
                assert cloud.messages(queue) == [], queue
        seconds = time.perf_counter() - started
        print(f"chaos: 500 orders in {seconds:.1f} s wall, {run.samples[-1].seconds:.0f} s virtual")
        assert seconds < CHAOS_TARGET_SECONDS * 10, f"the chaos test took {seconds:.1f} s"


def base_stage(current: dict[str, Any]) -> str:
    """The stage this template builds on."""
    return PREVIOUS_STAGE


class TestResources:
    def test_earlier_stages_are_kept_and_stage_7_adds_payments_and_marks_its_changes(self, stage_dir: Path) -> None:
        """Stage 7 keeps every resource of the stage before; besides its additions, it changes four,
        each marked in the template.
        https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/template-anatomy.html
        """
        current = read_template(stage_dir / "template.yaml")
        previous = read_template(CHAPTERS / base_stage(current) / "template.yaml")
        assert set(ADDED_IN_STAGE_7) <= set(current["Resources"]) - set(previous["Resources"])
        for logical_id, resource in previous["Resources"].items():
            if logical_id not in CHANGED_IN_STAGE_7:
                assert current["Resources"].get(logical_id) == resource, logical_id
        orders_env = current["Resources"]["OrderProcessingFunction"]["Properties"]["Environment"]["Variables"]
        assert orders_env["CONFIRM_ORDERS_AFTER"] == "PaymentSucceeded"
        inventory_events = current["Resources"]["InventoryFunction"]["Properties"]["Events"]
        assert inventory_events["OrderCancelled"]["Properties"]["Pattern"]["detail-type"] == ["OrderCancelled"]
        assert "OrderCancelled" in current["Resources"]["OrderLifecycleToStatusQueue"]["Properties"][
            "EventPattern"]["detail-type"]
        text = (stage_dir / "template.yaml").read_text()
        assert text.count("stage 7: changed") >= len(CHANGED_IN_STAGE_7)

    def test_the_payments_queue_has_a_dlq_and_the_function_reports_batch_item_failures(self, cloud: LocalCloud) -> None:
        """https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html"""
        sqs = boto3.client("sqs")
        attributes = sqs.get_queue_attributes(QueueUrl=cloud.physical_id("PaymentsQueue"),
                                              AttributeNames=["All"])["Attributes"]
        policy = json.loads(attributes["RedrivePolicy"])
        assert policy["maxReceiveCount"] == MAX_RECEIVE_COUNT
        assert policy["deadLetterTargetArn"].endswith(cloud.physical_id("PaymentsDLQ").rsplit("/", 1)[-1])
        [mapping] = boto3.client("lambda").list_event_source_mappings(
            FunctionName=cloud.physical_id("PaymentsFunction"))["EventSourceMappings"]
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]

    def test_the_payments_function_may_change_message_visibility_on_its_queue(self, cloud: LocalCloud) -> None:
        """An inline statement grants sqs:ChangeMessageVisibility on the payments queue, which the backoff needs.
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ChangeMessageVisibility.html
        """
        assert cloud.stage is not None
        role = json.dumps(cloud.stage.cloudformation["Resources"]["PaymentsFunctionRole"]["Properties"]["Policies"])
        assert "sqs:ChangeMessageVisibility" in role


# -- the chapter's own pages (not a learner's workspace) ---------------------------------------------


def readme_diffs() -> dict[str, str]:
    """The README's template diff, from the stage stage 7 builds on (stage 6 once it is merged in)."""
    current = read_template(CHAPTERS / STAGE / "template.yaml")
    return {"template diff": stage_diff(base_stage(current), STAGE)}


@pytest.mark.usefixtures("chapter_only")
class TestChapter:
    def test_the_asl_sketch_of_the_orchestrated_saga_is_valid_json_with_its_compensation(self) -> None:
        """The page includes it; it is a sketch, never deployed (https://states-language.net/spec.html).
        https://docs.aws.amazon.com/step-functions/latest/dg/concepts-amazon-states-language.html
        """
        machine = json.loads((CHAPTERS / STAGE / "saga.asl.json").read_text())
        states = machine["States"]
        assert machine["StartAt"] == "ReserveStock"
        assert states["ChargePayment"]["Catch"][0]["Next"] == "ReleaseStock"
        assert states["ReleaseStock"]["Next"] == "CancelOrder"

    def test_the_readme_shows_the_template_diff_from_stage_6(self) -> None:
        """The README's diff is that of the templates as they are (rewrite it by running this file).
        https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-specification.html
        """
        if not (CHAPTERS / PREVIOUS_STAGE / "template.yaml").exists():
            pytest.skip(f"chapters/{PREVIOUS_STAGE}/template.yaml does not exist yet: no diff to check")
        check_readme(STAGE, readme_diffs(), __file__)

    @pytest.mark.notebook
    def test_the_notebook_runs_in_seconds_and_shows_every_recovery(self) -> None:
        """The chapter's notebook runs stage 7: the poison order and its redrive, the backoff, the
        outage, the compensation, and a small chaos run drawn over virtual time.
        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html
        """
        from edakit.notebooks import execute_notebook, outputs_of, text_of

        notebook, seconds = execute_notebook(NOTEBOOK)
        outputs = outputs_of(notebook)
        text = text_of(outputs)
        assert "carol: in the DLQ after 8 receives" in text
        assert "carol: CONFIRMED after the redrive, charged 1 time(s)" in text
        assert "dave: CANCELLED, stock back to 5" in text
        assert "broken properties: none" in text
        assert any("image/png" in o.get("data", {}) for o in outputs), "the notebook draws no chart"
        assert seconds < NOTEBOOK_SECONDS, f"the notebook took {seconds:.1f} s"


if __name__ == "__main__":
    print(write_readme(STAGE, readme_diffs(), __file__))
