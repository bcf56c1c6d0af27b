"""Stage 1, events and producers: what the stage must do, checked on the running stage.

The storefront's events reach the shop's custom bus in the shop's envelope; a
rule copies every shop event to the audit queue; the archive keeps every shop
event and nothing else; bad events stop at the producer, before the bus. With
--stage-dir, the same tests check a learner's workspace instead of the chapter.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import jsonschema
import pytest

from edakit import LocalCloud
from edakit.notebooks import execute_notebook, outputs_of
from edakit.paths import NOTEBOOKS
from shop import schemas
from shop.events import (
    EVENT_TYPES,
    MAX_ENTRY_SIZE_BYTES,
    InvalidEvent,
    OrderConfirmed,
    OrderLine,
    OrderPlaced,
    PutEventsEntry,
    from_eventbridge,
    parse_event,
    to_put_events_entry,
)
from shop.storefront import Cart, Storefront

STAGE = "01-events"
NOTEBOOK = NOTEBOOKS / "01-events.py"
#: The notebook is the chapter: it must run in seconds, or nobody reruns it.
NOTEBOOK_SECONDS = 10

#: Every field of EventBridge's envelope, as a target receives it.
#: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html
EVENTBRIDGE_ENVELOPE = {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
#: Every field of the shop's own envelope, inside `detail`.
SHOP_ENVELOPE = {"event_id", "correlation_id", "schema_version", "occurred_at"}


# --- the running stage ---------------------------------------------------------


@pytest.fixture
def cloud(stage_dir: Path) -> Iterator[LocalCloud]:
    with LocalCloud.from_template(stage_dir) as running:
        yield running


@pytest.fixture
def bus(cloud: LocalCloud) -> str:
    return cloud.physical_id("ShopBus")


class RecordingEventsClient:
    """boto3's EventBridge client, keeping every PutEvents request it sends."""

    def __init__(self) -> None:
        self.requests: list[list[PutEventsEntry]] = []
        self._client = boto3.client("events")

    def put_events(self, *, Entries: Sequence[PutEventsEntry]) -> Any:
        self.requests.append(list(Entries))
        return self._client.put_events(Entries=Entries)


@dataclass
class Producers:
    """The two ways an event reaches the bus in this stage, sharing one recording client."""

    bus: str
    client: RecordingEventsClient = field(default_factory=RecordingEventsClient)

    @property
    def storefront(self) -> Storefront:
        return Storefront(self.bus, self.client)

    def publish_json(self, detail_type: str, text: str) -> None:
        """A producer relaying JSON it received: check it, then put it on the bus."""
        self.client.put_events(Entries=[to_put_events_entry(parse_event(detail_type, text), self.bus)])

    def publish(self, *events: Any) -> None:
        response = self.client.put_events(Entries=[to_put_events_entry(event, self.bus) for event in events])
        assert response["FailedEntryCount"] == 0, response["Entries"]


@pytest.fixture
def producers(bus: str) -> Producers:
    return Producers(bus)


def audit_queue(cloud: LocalCloud) -> list[dict[str, Any]]:
    """Every event the audit queue holds, as EventBridge delivered it."""
    return [json.loads(body) for body in cloud.messages("AuditQueue")]


def archived(cloud: LocalCloud) -> int:
    """DescribeArchive's EventCount for the stage's archive."""
    return boto3.client("events").describe_archive(ArchiveName=cloud.physical_id("ShopArchive"))["EventCount"]


def one_of_each() -> list[Any]:
    """A fresh event of every type the shop publishes, from the schemas' examples."""
    missing = set(EVENT_TYPES) - set(schemas.EXAMPLES)
    assert not missing, f"add an example detail for {sorted(missing)} to shop.schemas.EXAMPLES"
    return [parse_event(detail_type, schemas.EXAMPLES[detail_type]) for detail_type in EVENT_TYPES]


def book(quantity: int = 1) -> OrderLine:
    return OrderLine(sku="BOOK-001", quantity=quantity, unit_price_cents=3999)


# --- publishing -----------------------------------------------------------------


class TestTheStorefrontPublishes:
    def test_order_placed_reaches_the_audit_queue_in_the_full_envelope(self, cloud, producers):
        """A target receives EventBridge's envelope, with the producer's Detail as the `detail` object.

        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html
        """
        # given an order placed at the storefront
        event = producers.storefront.place_order("customer-7", [book(quantity=2)])
        # when EventBridge has delivered it
        cloud.run_until_idle()
        # then the audit queue holds it, in both envelopes
        [delivered] = audit_queue(cloud)
        assert set(delivered) == EVENTBRIDGE_ENVELOPE
        assert (delivered["source"], delivered["detail-type"]) == ("shop.storefront", "OrderPlaced")
        assert delivered["account"] == cloud.account_id and delivered["region"] == cloud.region
        assert SHOP_ENVELOPE <= set(delivered["detail"])
        assert delivered["detail"]["event_id"] == event.event_id
        assert delivered["detail"]["schema_version"] == "1.0"
        assert from_eventbridge(delivered) == event

    def test_it_puts_events_on_the_shops_custom_bus(self, cloud, producers, bus):
        """Rules match only events on their own bus; the default bus is for AWS services' events.

        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-bus.html
        """
        producers.storefront.place_order("customer-7", [book()])
        # the same event on the default bus reaches neither the audit queue nor the archive
        stray = to_put_events_entry(OrderPlaced.parse(schemas.EXAMPLES["OrderPlaced"]), "default")
        boto3.client("events").put_events(Entries=[stray])
        cloud.run_until_idle()
        [[sent]] = producers.client.requests
        assert sent["EventBusName"] == bus != "default"
        assert [e["detail"]["customer_id"] for e in audit_queue(cloud)] == ["customer-7"]
        assert archived(cloud) == 1

    def test_every_order_of_a_spike_arrives_once(self, cloud, producers):
        """PutEvents takes at most 10 entries; the storefront splits 23 orders into 3 calls.

        https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html
        """
        placed = producers.storefront.place_orders([Cart(f"customer-{n}", [book()]) for n in range(23)])
        cloud.run_until_idle()
        assert [len(request) for request in producers.client.requests] == [10, 10, 3]
        assert sorted(e["detail"]["event_id"] for e in audit_queue(cloud)) == sorted(e.event_id for e in placed)


# --- the archive -----------------------------------------------------------------


class TestTheArchive:
    def test_every_shop_event_type_is_archived(self, cloud, producers):
        """An archive keeps the events on its bus that match its event pattern.

        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-archive.html
        """
        # given one event of every type the shop publishes
        events = one_of_each()
        producers.publish(*events)
        cloud.run_until_idle()
        # then the archive counts each of them, and the audit queue has a copy of each
        assert archived(cloud) == len(EVENT_TYPES)
        assert sorted(e["detail-type"] for e in audit_queue(cloud)) == sorted(EVENT_TYPES)

    @pytest.mark.parametrize("source", ["acme.marketing", "shopping.cart", "shop-storefront", "aws.partner"])
    def test_events_from_other_sources_are_not_archived(self, cloud, bus, producers, source):
        """The archive's pattern (`source` prefix `shop.`) keeps out sources that only look alike.

        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-archive.html
        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html
        """
        boto3.client("events").put_events(Entries=[{
            "Source": source, "DetailType": "OrderPlaced", "EventBusName": bus,
            "Detail": json.dumps(schemas.example(OrderPlaced)),
        }])
        cloud.run_until_idle()
        assert archived(cloud) == 0
        assert audit_queue(cloud) == []
        # while a shop event on the same bus is archived
        producers.storefront.place_order("customer-7", [book()])
        cloud.run_until_idle()
        assert archived(cloud) == 1


# --- bad events --------------------------------------------------------------------


BAD_EVENTS: dict[str, tuple[Callable[[Producers], Any], str]] = {
    "malformed JSON": (
        lambda p: p.publish_json("OrderPlaced", '{"order_id": "order-1", "customer_id": '),
        r"^OrderPlaced detail is not valid JSON: Expecting value: line 1 column 40",
    ),
    "missing field": (
        lambda p: p.publish_json("OrderPlaced", '{"order_id": "order-1", "lines": []}'),
        r"^OrderPlaced is invalid: customer_id: Field required$",
    ),
    "wrong type": (
        # a caller's dict instead of an OrderLine: the model still checks every field
        lambda p: p.storefront.place_order(
            "customer-1", [{"sku": "BOOK-001", "quantity": "two", "unit_price_cents": 3999}]),  # type: ignore[list-item]
        r"^OrderPlaced is invalid: lines\[0\]\.quantity: Input should be a valid integer, got 'two'$",
    ),
    "oversize": (
        lambda p: p.storefront.place_order(
            "customer-1", [OrderLine(sku="B" * MAX_ENTRY_SIZE_BYTES, quantity=1, unit_price_cents=1)]),
        rf"^OrderPlaced \S+ is \d+ bytes as a PutEvents entry; "
        rf"EventBridge accepts at most {MAX_ENTRY_SIZE_BYTES} bytes",
    ),
}


class TestBadEventsStopAtTheProducer:
    @pytest.mark.parametrize("problem", list(BAD_EVENTS))
    def test_a_bad_event_is_rejected_with_a_clear_error_before_the_bus(self, cloud, producers, problem):
        """EventBridge imposes no schema on Detail, and the local cloud does not enforce its size
        limit, so the producer must stop bad events itself, naming what is wrong.

        https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEventsRequestEntry.html
        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html
        """
        publish, message = BAD_EVENTS[problem]
        with pytest.raises(InvalidEvent, match=message):
            publish(producers)
        cloud.run_until_idle()
        assert producers.client.requests == [], "no PutEvents request may be sent"
        assert audit_queue(cloud) == []
        assert archived(cloud) == 0

    def test_a_bad_cart_stops_the_whole_checkout(self, cloud, producers):
        """The storefront checks every event before the first PutEvents, so nothing is half-published."""
        carts = [Cart("customer-1", [book()]), Cart("", [book()])]
        with pytest.raises(InvalidEvent, match="customer_id: String should have at least 1 character"):
            producers.storefront.place_orders(carts)
        cloud.run_until_idle()
        assert audit_queue(cloud) == []

    def test_without_the_check_eventbridge_carries_an_event_with_missing_fields(self, cloud, bus):
        """Why the producer checks: a Detail that is a JSON object is accepted whatever it holds,
        and it is the consumer that fails on it.

        https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEventsRequestEntry.html
        """
        response = boto3.client("events").put_events(Entries=[{
            "Source": "shop.storefront", "DetailType": "OrderPlaced", "EventBusName": bus,
            "Detail": json.dumps({"order_id": "order-1"}),
        }])
        cloud.run_until_idle()
        assert response["FailedEntryCount"] == 0
        [delivered] = audit_queue(cloud)
        with pytest.raises(InvalidEvent, match="customer_id: Field required"):
            from_eventbridge(delivered)

    def test_eventbridge_itself_refuses_a_detail_that_is_not_json(self, bus):
        """PutEvents fails such an entry with MalformedDetail; the producer's check says more, sooner.

        https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEventsResultEntry.html
        """
        response = boto3.client("events").put_events(Entries=[{
            "Source": "shop.storefront", "DetailType": "OrderPlaced", "Detail": '{"order_id": ', "EventBusName": bus,
        }])
        assert response["FailedEntryCount"] == 1
        assert response["Entries"][0]["ErrorCode"] == "MalformedDetail"


# --- correlation ---------------------------------------------------------------------


class TestCorrelation:
    def test_the_correlation_id_given_at_checkout_arrives_with_the_event(self, cloud, producers):
        """EventBridge passes `detail` through unchanged, so the shop's envelope arrives whole.

        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html
        """
        producers.storefront.place_order("customer-7", [book()], correlation_id="checkout-42")
        cloud.run_until_idle()
        [delivered] = audit_queue(cloud)
        assert delivered["detail"]["correlation_id"] == "checkout-42"

    def test_without_one_the_first_event_starts_its_own_chain(self, cloud, producers):
        """https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html"""
        event = producers.storefront.place_order("customer-7", [book()])
        cloud.run_until_idle()
        [delivered] = audit_queue(cloud)
        assert delivered["detail"]["correlation_id"] == delivered["detail"]["event_id"] == event.event_id

    def test_a_follow_up_event_carries_the_chain_of_the_order(self, cloud, producers):
        """https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html"""
        # given an order, and the confirmation another service publishes for it
        placed = producers.storefront.place_order("customer-7", [book()], correlation_id="checkout-42")
        confirmed = OrderConfirmed(order_id=placed.order_id, customer_id=placed.customer_id,
                                   total_cents=placed.total_cents, correlation_id=placed.correlation_id)
        producers.publish(confirmed)
        cloud.run_until_idle()
        # then both arrive in one chain, each with its own event id
        chain = {e["detail-type"]: e["detail"] for e in audit_queue(cloud)}
        assert {d["correlation_id"] for d in chain.values()} == {"checkout-42"}
        assert chain["OrderPlaced"]["event_id"] != chain["OrderConfirmed"]["event_id"]
        assert (chain["OrderConfirmed"]["order_id"], chain["OrderConfirmed"]["total_cents"]) == (placed.order_id, 3999)


# --- schemas ----------------------------------------------------------------------------


class TestSchemas:
    def test_every_event_on_the_bus_matches_its_checked_in_schema(self, cloud, producers):
        """What consumers receive is what sam-app/schemas/ promises them.

        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-schema.html
        """
        producers.storefront.place_order("customer-7", [book()], correlation_id="checkout-42")
        producers.publish(*one_of_each())
        cloud.run_until_idle()
        delivered = audit_queue(cloud)
        assert len(delivered) == 1 + len(EVENT_TYPES)
        for event in delivered:
            path = schemas.default_directory() / f"{event['detail-type']}.json"
            schema = json.loads(path.read_text())
            validator = jsonschema.validators.validator_for(schema)(
                schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
            errors = [error.message for error in validator.iter_errors(event["detail"])]
            assert errors == [], f"{event['detail-type']} does not match {path.name}"


# --- the notebook ------------------------------------------------------------------------


class TestNotebook:
    @pytest.mark.notebook
    def test_the_notebook_runs_the_stage_in_seconds_and_shows_it(self, request):
        """The chapter's notebook, executed top to bottom in a fresh kernel, as the docs build does."""
        if request.config.getoption("--stage-dir"):
            pytest.skip("the notebook runs the chapter's own stage, not --stage-dir")
        notebook, seconds = execute_notebook(NOTEBOOK, timeout=60)
        assert seconds < NOTEBOOK_SECONDS, f"the notebook took {seconds:.1f} s"
        outputs = outputs_of(notebook)
        assert not [o for o in outputs if o.output_type == "error"]
        text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
        markdown = [o.data["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {})]
        images = [o for o in outputs if "image/png" in o.get("data", {})]

        # the architecture, drawn from the running stage
        [diagram] = markdown
        assert diagram.startswith("```mermaid\nflowchart LR\n")
        for node in ("ShopBus", "AllShopEventsRule", "AuditQueue", "ShopArchive"):
            assert node in diagram
        # an order read back from the audit queue, in its full envelope
        assert '"detail-type": "OrderPlaced"' in text and '"correlation_id": "checkout-1"' in text
        # the chain of one checkout, and the archive's count
        assert "shop.inventory   InventoryReserved" in text and "shop.orders      OrderConfirmed" in text
        assert "after an acme.marketing event: 8 events archived, 8 in the audit queue" in text
        # the events per detail-type, as a chart
        assert len(images) == 1
        assert "{'OrderPlaced': 5, 'InventoryReserved': 1, 'OrderConfirmed': 1, 'OutOfStock': 1}" in text
        # every bad event rejected with its reason, and none on the bus
        for reason in ("not valid JSON", "customer_id: Field required", "Input should be a valid integer",
                       f"EventBridge accepts at most {MAX_ENTRY_SIZE_BYTES} bytes"):
            assert reason in text
        assert "audit queue: 8 messages before, 8 after" in text
        # the schema's name, and the Try this cells
        assert "urn:shop:events:shop.storefront:OrderPlaced:1.0" in text
        assert "archived before: 8, after: 8" in text
        assert "the consumer: OrderPlaced is invalid: customer_id: Field required" in text
