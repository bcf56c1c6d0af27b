# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 1. Events and producers
#
# The shop sells books and mugs online, and it is growing fast. Today the
# storefront calls the order service, which calls inventory, which calls
# payments. When one of them is slow, checkout is slow; when one is down,
# orders are lost; and every new feature (a loyalty scheme, an analytics
# dashboard) means changing the storefront to call one more service.
#
# The team turns this around. The storefront stops calling anyone: it
# **announces what happened**, "an order was placed", on an event bus, and every
# service that cares listens. The storefront no longer knows who they are, so
# adding one changes nothing in it.
#
# This chapter builds the first piece of that system: the events themselves, the
# producer that publishes them, and a bus that keeps a copy of everything. The
# notebook runs stage 1 (`chapters/01-events/template.yaml`) on the local cloud:
# the template deployed into moto, offline, in virtual time. You will
#
# - see the stage as it is deployed,
# - place orders with the storefront and read one back, envelope and all,
# - follow one order's chain of events by its correlation id,
# - count what the archive kept,
# - watch bad events stop at the producer, before they reach the bus.

# %%
import json
import sys
from collections import Counter

import boto3
import matplotlib.pyplot as plt

import edakit.paths
from edakit import LocalCloud, diagrams

if str(edakit.paths.SHOP_SRC) not in sys.path:
    sys.path.insert(0, str(edakit.paths.SHOP_SRC))  # the shop's code, shared by every stage

from shop import schemas
from shop.events import (
    MAX_ENTRY_SIZE_BYTES,
    InvalidEvent,
    InventoryReserved,
    OrderConfirmed,
    OrderLine,
    OrderPlaced,
    OutOfStock,
    ReservedLine,
    from_eventbridge,
    parse_event,
    to_put_events_entry,
)
from shop.storefront import Cart, Storefront

cloud = LocalCloud.from_template(edakit.paths.chapter("01"))
cloud.start()
bus = cloud.physical_id("ShopBus")
events_client = boto3.client("events")
print(f"stage 1 is running: bus {bus}, {len(cloud.deployment.physical_ids)} resources")

# %% [markdown]
# ## The stage
#
# Four resources: the shop's own **custom event bus** (AWS services keep the
# `default` bus for their events), an **archive** that keeps every shop event for
# 30 days so that it can be replayed later, and an **audit queue** that a rule
# fills with a copy of every shop event, so you can read exactly what the
# producers publish. (A queue policy lets that one rule send to the queue.)
#
# The picture below is drawn from the running system (the rules, targets and
# archives the emulator reports), not from a drawing that could go stale:

# %%
diagrams.show(diagrams.architecture(cloud))

# %% [markdown]
# ## What an event is
#
# An event is a **fact**: something that happened, named in the past tense
# (`OrderPlaced`, not `PlaceOrder`). A command asks for something and may be
# refused; an event reports what already happened, and cannot be refused or
# changed, only reacted to. It carries what its readers need to react without
# calling back.
#
# Every shop event travels in two envelopes. EventBridge's own is the outside:
# `source` (who published it: `shop.storefront`), `detail-type` (what kind of
# fact: `OrderPlaced`), an `id` and the `time` it arrived. Inside, in `detail`,
# the shop adds its own envelope to every event, defined once in
# `shop.events.EventEnvelope`:
#
# | field | what it is for |
# | --- | --- |
# | `event_id` | this event, to tell a redelivery from a new event |
# | `correlation_id` | the chain the event belongs to, from the first event on |
# | `schema_version` | `1.x`: minor versions only add fields, so a 1.0 reader reads 1.1 |
# | `occurred_at` | when it happened, in UTC (not when it was delivered) |
#
# ## Placing orders
#
# The storefront is the producer. It builds one `OrderPlaced` per cart, checks
# it, and puts the events on the bus with `PutEvents`, up to 10 per call:

# %%
storefront = Storefront(bus)
carts = [
    Cart(
        customer_id=f"customer-{n}",
        lines=[OrderLine(sku="BOOK-001", quantity=n, unit_price_cents=3999)],
        order_id=f"order-{n}",
        correlation_id=f"checkout-{n}",  # the web request that started it all
    )
    for n in range(1, 6)
]
placed = storefront.place_orders(carts)
cloud.run_until_idle()  # let EventBridge deliver
for event in placed:
    print(f"{event.order_id}: {event.total_cents / 100:7.2f} EUR, correlation id {event.correlation_id}")

# %% [markdown]
# The rule sent a copy of each to the audit queue. Read one with boto3, exactly
# as on AWS (`VisibilityTimeout=0` leaves it in the queue for later cells):

# %%
sqs = boto3.client("sqs")
[message] = sqs.receive_message(
    QueueUrl=cloud.physical_id("AuditQueue"), MaxNumberOfMessages=1, VisibilityTimeout=0
)["Messages"]
delivered = json.loads(message["Body"])
print(json.dumps(delivered, indent=2))

# %% [markdown]
# EventBridge's fields are on the outside, the shop's envelope and the order
# inside `detail`. A consumer reads it back into the typed event with
# `from_eventbridge`, which checks both envelopes:

# %%
order = from_eventbridge(delivered)
print(f"{type(order).__name__} {order.order_id} for {order.customer_id}: {order.total_cents} cents, "
      f"schema {order.schema_version}, occurred at {order.occurred_at.isoformat()}")

# %% [markdown]
# ## One order, a chain of events
#
# In later chapters, services react to `OrderPlaced`: inventory reserves the
# stock (`InventoryReserved`, or `OutOfStock`), then orders confirms it
# (`OrderConfirmed`). Each publishes its own fact under its own `source`, and
# copies the **correlation id** of the event it reacted to. Here we publish them
# by hand, as those services will:

# %%
first, second = placed[0], placed[1]
follow_ups = [
    InventoryReserved(
        order_id=first.order_id,
        lines=[ReservedLine(sku=line.sku, quantity=line.quantity) for line in first.lines],
        correlation_id=first.correlation_id,
    ),
    OrderConfirmed(
        order_id=first.order_id, customer_id=first.customer_id, total_cents=first.total_cents,
        correlation_id=first.correlation_id,
    ),
    OutOfStock(
        order_id=second.order_id, sku="BOOK-001", requested=2, available=1,
        correlation_id=second.correlation_id,
    ),
]
response = events_client.put_events(Entries=[to_put_events_entry(event, bus) for event in follow_ups])
print(f"PutEvents: {len(follow_ups)} entries, {response['FailedEntryCount']} failed")
cloud.run_until_idle()

audit = [json.loads(body) for body in cloud.messages("AuditQueue")]
print("\nThe chain of checkout-1, from the audit queue:")
for event in audit:
    if event["detail"]["correlation_id"] == "checkout-1":
        print(f"  {event['source']:16} {event['detail-type']:18} event {event['detail']['event_id'][:8]}…")

# %% [markdown]
# Every event has its own id; the correlation id ties the chain together, so one
# search in the logs finds everything that happened to checkout-1.
#
# ## The archive
#
# The archive has its own event pattern (`source` starting with `shop.`), and
# keeps what matches for 30 days. An event from another source on the same bus
# is not archived:

# %%
def archived() -> int:
    """How many events the archive holds, as DescribeArchive reports it."""
    return events_client.describe_archive(ArchiveName=cloud.physical_id("ShopArchive"))["EventCount"]


archive = events_client.describe_archive(ArchiveName=cloud.physical_id("ShopArchive"))
print(f"archive: {archive['EventCount']} events, pattern {archive['EventPattern']}")
events_client.put_events(Entries=[{
    "Source": "acme.marketing", "DetailType": "CampaignStarted", "Detail": "{}", "EventBusName": bus,
}])
cloud.run_until_idle()
audited = len(cloud.messages("AuditQueue"))
print(f"after an acme.marketing event: {archived()} events archived, {audited} in the audit queue")

# %% [markdown]
# What arrived, by detail-type:

# %%
counts = Counter(event["detail-type"] for event in audit)
figure, axes = plt.subplots(figsize=(6, 2.2))
axes.barh(list(counts), list(counts.values()), color="#4c72b0")
axes.set_xlabel("events in the audit queue")
axes.invert_yaxis()
figure.tight_layout()
plt.show()
print(dict(counts))

# %% [markdown]
# ## Bad events stop at the producer
#
# EventBridge checks very little: an entry's `Detail` must be a JSON object, and
# the entry must fit its size limit. It carries an `OrderPlaced` without a customer as
# happily as a good one, and every consumer then fails on it, one after the
# other. So the shop checks each event **before** it is put on the bus, against
# its pydantic model, and checks its size as EventBridge counts it. The
# storefront does it for the carts it takes; `parse_event` does it for a producer
# that relays JSON it received (a partner's order, say):

# %%
def publish_json(detail_type: str, text: str) -> None:
    """A producer relaying JSON it received: check it, then put it on the bus."""
    entry = to_put_events_entry(parse_event(detail_type, text), bus)
    events_client.put_events(Entries=[entry])


bad_events = {
    "malformed JSON": lambda: publish_json("OrderPlaced", '{"order_id": "order-9", "customer_id": '),
    "missing field": lambda: publish_json("OrderPlaced", '{"order_id": "order-9", "lines": []}'),
    "wrong type": lambda: storefront.place_order(
        "customer-9", [{"sku": "BOOK-001", "quantity": "two", "unit_price_cents": 3999}]),
    "oversize": lambda: storefront.place_order(
        "customer-9", [OrderLine(sku="X" * MAX_ENTRY_SIZE_BYTES, quantity=1, unit_price_cents=3999)]),
}
before = len(cloud.messages("AuditQueue"))
for problem, publish in bad_events.items():
    try:
        publish()
    except InvalidEvent as error:
        print(f"{problem:>14}: rejected: {error}")
cloud.run_until_idle()
print(f"\naudit queue: {before} messages before, {len(cloud.messages('AuditQueue'))} after")

# %% [markdown]
# Each error names the field, what was expected and what came instead, and
# nothing reached the bus.
#
# ## The contract: JSON Schemas
#
# The pydantic models are the source of truth. Their JSON Schemas are exported to
# `sam-app/schemas/` (`python -m shop.schemas`) for consumers written in other
# languages and for the docs; a test fails when a model changes and its schema
# was not exported again. Each schema is named by source, detail-type and
# version:

# %%
schema = schemas.json_schema(OrderPlaced)
print(schema["$id"])
print(schema["title"])
print("required:", ", ".join(schema["required"]))

# %% [markdown]
# ## Summary
#
# - An event is a fact in the past tense. Its producer publishes it and does not
#   know who reads it.
# - Every shop event has one envelope: EventBridge's `source`, `detail-type`, `id`
#   and `time` outside, the shop's `event_id`, `correlation_id`, `schema_version`
#   and `occurred_at` inside `detail`.
# - The storefront puts events on the shop's custom bus, at most 10 per
#   `PutEvents`. A rule copies every shop event to the audit queue; the archive
#   keeps them for replay.
# - A bad event is stopped by the producer with an error that names the problem,
#   since EventBridge would carry it to every consumer.
#
# ## Try this
#
# 1. **A typo in the source.** Predict first: is an event from `shop-storefront`
#    (a dash, not a dot) archived? Run the cell below.

# %%
before = archived()
events_client.put_events(Entries=[{
    "Source": "shop-storefront", "DetailType": "OrderPlaced", "Detail": "{}", "EventBusName": bus,
}])
cloud.run_until_idle()
print(f"archived before: {before}, after: {archived()}")

# %% [markdown]
# 2. **Skip the check.** Put an `OrderPlaced` with no customer and no lines
#    straight on the bus with boto3. Does EventBridge accept it? What does a
#    consumer make of it?

# %%
unchecked = {"Source": "shop.storefront", "DetailType": "OrderPlaced",
             "Detail": json.dumps({"order_id": "order-10"}), "EventBusName": bus}
print("failed entries:", events_client.put_events(Entries=[unchecked])["FailedEntryCount"])
cloud.run_until_idle()
arrived = json.loads(cloud.messages("AuditQueue")[-1])
try:
    from_eventbridge(arrived)
except InvalidEvent as error:
    print(f"the consumer: {error}")

# %% [markdown]
# 3. **Trace a chain.** Place an order with `correlation_id="my-checkout"`, then
#    list every event in `cloud.messages("AuditQueue")` that carries it.
# 4. **Change the contract.** Add a field to `OrderPlaced` in
#    `sam-app/src/shop/events.py` (say `gift_wrap: bool = False`), run
#    `.venv/bin/python -m pytest tests/sam_app -q`, read which test fails and
#    why, then export the schemas again with
#    `PYTHONPATH=sam-app/src .venv/bin/python -m shop.schemas`.
# 5. **Archive less.** In the template, make the archive keep only
#    `OrderPlaced`, run this notebook again, and compare the counts.
#
# When you are done, stop the cloud (moto's state and virtual time go with it):

# %%
cloud.stop()
