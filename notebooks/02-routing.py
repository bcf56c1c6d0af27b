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
# # 2. Routing with EventBridge
#
# In stage 1 every shop event went to one audit queue. Consumers want less than
# that: order processing and inventory need every order, analytics wants every
# shop event, and someone should look at an order that is big or ships somewhere
# unusual before it leaves. An EventBridge **rule** picks the events for one
# target with an **event pattern** that filters on the event's content. The
# storefront does not change: it puts one `OrderPlaced` on the bus and never
# learns who reads it.
#
# This notebook runs stage 2 (`chapters/02-routing/template.yaml`) on the local
# cloud: that template deployed into moto, offline, in virtual time. You will
#
# - read the stage's rules and their patterns from the running system,
# - place a mix of orders and see which queues each one reached,
# - test patterns against sample events without a bus, edge cases first.

# %%
import json
import sys
from collections import Counter

import boto3
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

import edakit.paths
from edakit import LocalCloud
from edakit.diagrams import architecture, show
from edakit.patterns import as_event, matches, rule_patterns

if str(edakit.paths.SHOP_SRC) not in sys.path:
    sys.path.insert(0, str(edakit.paths.SHOP_SRC))  # the shop's code, shared by every stage

from shop.events import OrderConfirmed, OrderLine, OrderPlaced, to_put_events_entry

cloud = LocalCloud.from_template(edakit.paths.chapter("02"))
cloud.start()
bus = cloud.outputs["EventBusName"]
print(f"stage 2 is running: bus {bus}, {len(cloud.deployment.physical_ids)} resources")

# %% [markdown]
# ## The stage, as deployed
#
# Drawn from the running system (the rules and targets EventBridge reports, not the
# template's intentions): stage 1's audit queue and archive, and four new rules,
# each with the queue of one consumer.

# %%
show(architecture(cloud))

# %% [markdown]
# ## The rules
#
# Each rule has one pattern and one target here. A pattern names only the fields
# it cares about; every field must match. The value of a field is an **array**:
# the event matches if its value matches any item of the array. An item is a
# value (`"OrderPlaced"`) or a filter (`{"prefix": "shop."}`, `{"numeric": [">=", 50000]}`,
# `{"anything-but": [...]}`). `$or` makes one rule match either of two conditions.
#
# These are the patterns as deployed, read from the running system:

# %%
patterns = rule_patterns(cloud)
for rule, pattern in patterns.items():
    print(f"{rule}\n    {json.dumps(pattern)}")

# %% [markdown]
# ## A mix of orders
#
# The storefront publishes `OrderPlaced` events. Here the orders are built by hand,
# so each can have the total and the shipping country it needs, and two other
# events come along: an `OrderConfirmed` (another shop service) and an event from a
# partner's system that happens to use the same bus.


# %%
def order(total_cents: int, country: str) -> OrderPlaced:
    """One order of a single line worth `total_cents`, shipping to `country`."""
    return OrderPlaced(order_id=f"order-{total_cents}-{country}", customer_id="customer-42",
                       lines=(OrderLine(sku="SKU-1", quantity=1, unit_price_cents=total_cents),),
                       shipping_country=country)


entries = {
    "normal": to_put_events_entry(order(12_000, "FR"), bus),
    "high value": to_put_events_entry(order(90_000, "FR"), bus),
    "just under 500 EUR": to_put_events_entry(order(49_999, "DE"), bus),
    "exactly 500 EUR": to_put_events_entry(order(50_000, "NL"), bus),
    "risky country": to_put_events_entry(order(3_000, "US"), bus),
    "Belgium": to_put_events_entry(order(2_500, "BE"), bus),
    "OrderConfirmed": to_put_events_entry(
        OrderConfirmed(order_id="order-12000-FR", customer_id="customer-42", total_cents=12_000), bus),
    "partner event": {"Source": "partner.crm", "DetailType": "CustomerUpdated",
                      "Detail": json.dumps({"customer_id": "customer-42"}), "EventBusName": bus},
}
response = boto3.client("events").put_events(Entries=list(entries.values()))
label_of = {result["EventId"]: label for label, result in zip(entries, response["Entries"], strict=True)}
cloud.run_until_idle()
print(f"{len(entries)} events put, {response['FailedEntryCount']} refused")

# %% [markdown]
# Where did each event go? Every queue holds the events its rule sent, each as
# EventBridge delivers it (the envelope, with the shop's event in `detail`):

# %%
QUEUES = ["OrderProcessingQueue", "InventoryQueue", "AnalyticsQueue", "ReviewQueue"]
reached = {label: set() for label in entries}
for queue in QUEUES:
    for body in cloud.messages(queue):
        reached[label_of[json.loads(body)["id"]]].add(queue)

header = "| event | " + " | ".join(q.removesuffix("Queue") for q in QUEUES) + " |"
lines = [header, "|" + " --- |" * (len(QUEUES) + 1)]
lines += ["| " + " | ".join([label, *("✔" if q in reached[label] else "" for q in QUEUES)]) + " |" for label in entries]
display(Markdown("\n".join(lines)))

# %% [markdown]
# Read the table row by row against the patterns:
#
# - **just under 500 EUR** (49999 cents, Germany) is not reviewed: neither branch
#   of the `$or` matches. **exactly 500 EUR** is: `>=` includes its bound.
# - **risky country** is worth 30 EUR, but the United States is not in the
#   `anything-but` list, so it goes to review.
# - **OrderConfirmed** comes from `shop.orders`: analytics takes every source
#   starting with `shop.`; order processing and inventory want `shop.storefront`.
# - **partner event** matches no rule: `partner.crm` does not start with `shop.`.
#   EventBridge drops an event that matches nothing, without an error.
#
# ## Events per target
#
# The local cloud counts every delivery a rule made (`cloud.routes`). Drawn from
# the running system:

# %%
rule_of = {cloud.physical_id(rule): rule for rule in patterns}
deliveries = Counter({rule_of[name]: count for (name, _target), count in cloud.routes.items()})
names = sorted(deliveries, key=deliveries.get)
fig, ax = plt.subplots(figsize=(7, 2.8))
ax.barh(names, [deliveries[name] for name in names], color="#ff9900")
ax.set_xlabel(f"events delivered (of {len(entries)} put on the bus)")
ax.set_title("Stage 2: deliveries per rule")
for y, name in enumerate(names):
    ax.text(deliveries[name] + 0.1, y, str(deliveries[name]), va="center")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Testing a pattern without a bus
#
# `edakit.patterns.matches(pattern, event)` answers with the matcher the local
# cloud routes with, so you can try a pattern on many events in a moment. (On
# AWS, the `TestEventPattern` API does the same.) `as_event` turns a PutEvents
# entry into the event a rule sees. The edges of the review rule:

# %%
review = patterns["OrderPlacedToReview"]
samples = {
    "49999 cents to FR": to_put_events_entry(order(49_999, "FR"), bus),
    "50000 cents to FR": to_put_events_entry(order(50_000, "FR"), bus),
    "total as a string": {"Source": "shop.storefront", "DetailType": "OrderPlaced", "Detail": json.dumps(
        {"total_cents": "90000", "shipping_country": "FR"})},
    "country in lower case": {"Source": "shop.storefront", "DetailType": "OrderPlaced", "Detail": json.dumps(
        {"total_cents": 100, "shipping_country": "fr"})},
}
for label, sample in samples.items():
    print(f"{label:24} reaches review: {matches(review, as_event(sample))}")

# %% [markdown]
# Two of these surprise most people. `numeric` compares JSON numbers only, so a
# producer that sends `"90000"` slips past the review. Matching is exact and
# case-sensitive, so `"fr"` is not `"FR"` and the order goes to review. The
# shop's event models prevent both (`total_cents` is computed, `shipping_country`
# must be two capital letters); a pattern is only as good as the events it sees.
#
# ## Summary
#
# - A **rule** on the shop's bus sends a copy of every matching event to each of
#   its targets; the producer does not know who listens.
# - **Content filtering** decides on the event itself: `prefix` on the source,
#   `numeric` on the total, `anything-but` on the country, `$or` between
#   conditions. An event that matches several rules reaches every one of them.
# - **Negative cases** matter as much as positive ones: an order of 499.99 EUR
#   to France must not reach review, an `OrderConfirmed` must not reach order
#   processing.
# - `edakit.patterns.matches` is the matcher the local cloud routes with, so a
#   pattern can be tested without a bus.
#
# ## Try this
#
# 1. Write a pattern that matches only orders shipping to **Belgium**, and run the
#    cell: it checks your pattern against every event placed above.

# %%
belgium_only = {
    "source": ["shop.storefront"],
    "detail-type": ["OrderPlaced"],
    # "detail": {...},   <- your filter here
}
events_placed = {label: as_event(item) for label, item in entries.items()}
matched = {label for label, event in events_placed.items() if matches(belgium_only, event)}
print("matched:", sorted(matched))
print("done!" if matched == {"Belgium"} else "not yet: only the Belgian order should match")

# %% [markdown]
# 2. Lower the review threshold to 100 EUR in a copy of the template and predict
#    which rows of the table change; then start a cloud on your copy
#    (`LocalCloud.from_template("my-stage/template.yaml")`) and check.
# 3. Write a pattern for orders **over 1000 EUR to Germany only** (two conditions
#    on `detail`, no `$or`). Why does `$or` appear nowhere in it?
# 4. Misspell an operator (`"numberic"`) and try your pattern. AWS refuses the
#    pattern when you create the rule; moto, and so the local cloud, accepts it and
#    treats the unknown filter as matching everything. The tests of a stage are
#    what catch such a pattern offline.
#
# When you are done, stop the local cloud (its state lives in this kernel):

# %%
cloud.stop()
