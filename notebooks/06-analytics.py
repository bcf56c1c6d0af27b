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
# # 6. Real-time analytics with Kinesis
#
# The shop wants to see, minute by minute, what it sells and which products
# shoppers look at. Orders are already events on the bus. Clicks are many
# more, and small. In this stage both flow into one **Kinesis data stream**:
# order events through an EventBridge rule, the clickstream straight from the
# storefront with `PutRecords`.
#
# A stream is split into **shards**. Each record has a **partition key**, and
# the key chooses the shard. A shard keeps its records in the order they
# arrived, and Lambda reads each shard in order. So a customer's orders (key:
# the customer) and a session's clicks (key: the session) are read in order.
#
# The analytics function reads the stream in **one-minute tumbling windows**.
# Lambda hands it a window's records in batches, each time with the `state` the
# previous batch returned, and calls it once more when the window ends. That
# last call writes the minute's totals to `AnalyticsTable`.
#
# This notebook runs stage 6 (`chapters/06-analytics/template.yaml`) on the
# local cloud, in virtual time: a few minutes of shopping take a second.

# %%
import base64
import datetime as dt
import json
import random
import sys

import boto3
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

import edakit.paths
from edakit import LocalCloud
from edakit.diagrams import architecture, show

if str(edakit.paths.SHOP_SRC) not in sys.path:
    sys.path.insert(0, str(edakit.paths.SHOP_SRC))  # the shop's code, shared by every stage

from shop.adapters.analytics import DynamoDBWindowResults
from shop.adapters.dynamodb import DynamoDBStockRepository
from shop.analytics import WindowTotals, per_window
from shop.clickstream import Clickstream
from shop.events import OrderLine, ProductAddedToCart, ProductViewed
from shop.inventory import seed_stock
from shop.storefront import Cart, Storefront

cloud = LocalCloud.from_template(edakit.paths.chapter("06"))
cloud.start()
storefront = Storefront(cloud.outputs["EventBusName"])
clickstream = Clickstream(cloud.outputs["AnalyticsStreamName"])
results = DynamoDBWindowResults(cloud.outputs["AnalyticsTableName"])
kinesis = boto3.client("kinesis")
shards = kinesis.list_shards(StreamName=cloud.outputs["AnalyticsStreamName"])["Shards"]
print(f"stage 6 is running: {len(cloud.deployment.physical_ids)} resources, "
      f"AnalyticsStream has {len(shards)} shards")

# %% [markdown]
# ## The stage, as deployed
#
# Stage 5 is all there. The new part: the rule `OrderEventsToAnalyticsStream`
# sends `OrderPlaced` and `OrderConfirmed` to `AnalyticsStream`, and
# `AnalyticsFunction` reads the stream and writes `AnalyticsTable`. The
# clickstream is not on the picture: it is a producer outside the template,
# putting records on the stream directly.

# %%
show(architecture(cloud))

# %% [markdown]
# ## A few minutes of shopping
#
# Four shoppers browse for three minutes. Each minute, each session views a few products and puts
# some in the cart; then some of them check out. The clickstream puts its events
# with `PutRecords`, keyed by session. The orders go on the bus, and the rule
# puts them on the stream keyed by `customer_id`
# (`KinesisParameters.PartitionKeyPath: $.detail.customer_id`).
#
# After each minute, `cloud.run_until_idle()` runs everything that is due:
# inventory, order processing, notifications, and the analytics function, up to
# the end of the minute, when the window closes.

# %%
PRICES = {"BOOK-001": 3999, "BOOK-002": 4500, "MUG-001": 1200, "SHIRT-001": 2000, "STICKER-001": 300}
SHOPPERS = ["alice", "bob", "carol", "dave"]
seed_stock(DynamoDBStockRepository(cloud.physical_id("StockTable"), cloud.physical_id("ReservationsTable")),
           {sku: 1000 for sku in PRICES})
rng = random.Random(6)  # seeded: the same minutes every run
sent_sales: dict[str, int] = {}
for _ in range(3):
    minute = cloud.clock.datetime().strftime("%H:%M")
    clicks = []
    for shopper in SHOPPERS:
        for sku in rng.sample(sorted(PRICES), k=rng.randint(1, 3)):
            clicks.append(ProductViewed(session_id=f"session-{shopper}", sku=sku))
            if rng.random() < 0.5:
                clicks.append(ProductAddedToCart(session_id=f"session-{shopper}", sku=sku, quantity=1))
    clickstream.put(clicks)
    buyers = rng.sample(SHOPPERS, k=rng.randint(1, 2))
    orders = storefront.place_orders([
        Cart(buyer, [OrderLine(sku=sku, quantity=rng.randint(1, 2), unit_price_cents=PRICES[sku])
                     for sku in rng.sample(sorted(PRICES), k=rng.randint(1, 2))]) for buyer in buyers])
    sent_sales[minute] = sum(order.total_cents for order in orders)
    cloud.run_until_idle()
    print(f"{minute}: {len(clicks)} clicks, {len(orders)} orders "
          f"({', '.join(o.customer_id for o in orders)}), clock now {cloud.clock.datetime():%H:%M:%S}")

# %% [markdown]
# ## How the function was called
#
# Each shard has its own window and its own state. Per shard and per minute, the
# function got one or more batches of records, then a final call with no
# records (`isFinalInvokeForWindow`). The `state` column is what Lambda passed
# in: the totals so far, as the previous call returned them.

# %%
rows = ["| called at | shard | records | final | state passed in (orders, sales) |", "| --- | --- | --- | --- | --- |"]
for invocation in cloud.invocations("AnalyticsFunction")[:8]:
    event = invocation.event
    state = WindowTotals.from_state(event["state"])
    called = dt.datetime.fromtimestamp(invocation.time, dt.timezone.utc)
    rows.append(f"| {called:%H:%M:%S} | {event['shardId'][-1]} "
                f"| {len(event['Records'])} | {event['isFinalInvokeForWindow']} "
                f"| {state.orders_placed} orders, {state.sales_cents / 100:.2f} EUR |")
display(Markdown("\n".join(rows)))
print(f"... {len(cloud.invocations('AnalyticsFunction'))} invocations in all")

# %% [markdown]
# ## Sales per minute
#
# `AnalyticsTable` holds one item per minute and shard. Adding up the shards of
# each minute gives the shop's sales per minute. They match what the
# storefront sent:

# %%
minutes = per_window(results.all())
rows = ["| minute | orders | sales (EUR) | confirmed | top product |", "| --- | --- | --- | --- | --- |"]
for start, totals in minutes.items():
    [(top, activity)] = totals.top_products(1)
    rows.append(f"| {start[11:16]} | {totals.orders_placed} | {totals.sales_cents / 100:.2f} "
                f"| {totals.orders_confirmed} | {top} ({activity.units_ordered} ordered) |")
display(Markdown("\n".join(rows)))
print("the table matches what was sent:",
      {start[11:16]: t.sales_cents for start, t in minutes.items()} == sent_sales)

# %% [markdown]
# ## Top products
#
# Per product, over the three minutes: views, add-to-carts and units ordered.
# Products rank by units ordered, then add-to-carts, then views.

# %%
overall = sum(minutes.values(), WindowTotals())
ranked = overall.top_products(len(overall.products))
fig, (ax_sales, ax_products) = plt.subplots(1, 2, figsize=(10, 3.4))
labels = [start[11:16] for start in minutes]
ax_sales.bar(labels, [t.sales_cents / 100 for t in minutes.values()], color="#1565c0")
ax_sales.set_ylabel("EUR")
ax_sales.set_title("Sales per minute")
skus = [sku for sku, _ in ranked][::-1]
activity = dict(ranked)
left = [0] * len(skus)
for field, label, colour in (("units_ordered", "units ordered", "#2e7d32"),
                             ("added_to_cart", "add-to-carts", "#f9a825"), ("views", "views", "#90a4ae")):
    counts = [getattr(activity[sku], field) for sku in skus]
    ax_products.barh(skus, counts, left=left, color=colour, label=label)
    left = [a + b for a, b in zip(left, counts)]
ax_products.set_title("Top products, 3 minutes")
ax_products.legend(loc="lower right", fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## One shard per customer, in order
#
# Every record of a customer has the same partition key, so it is in the same
# shard, and the function read it in the order it was put. Alice's events, as the
# function processed them:

# %%
def processed(key: str) -> list[str]:
    out = []
    for invocation in cloud.invocations("AnalyticsFunction"):
        for record in invocation.event["Records"]:
            if invocation.ok and record["kinesis"]["partitionKey"] == key:
                event = json.loads(base64.b64decode(record["kinesis"]["data"]))
                out.append(f"{invocation.event['shardId'][-1]}: {event['detail-type']} {event['detail'].get('order_id', '')[:8]}")
    return out


print("\n".join(processed("alice")) or "alice did not order")

# %% [markdown]
# ## A poison record
#
# A buggy producer puts a record that is not a shop event in the middle of a
# session's clicks. The function cannot count it: it raises, and the invocation
# fails. The mapping has `BisectBatchOnFunctionError`: Lambda splits the batch in
# two and tries each half, again and again, until the bad record is alone. The
# halves without it succeed and are counted once (a failed invocation's state is
# thrown away). The bad record is tried `MaximumRetryAttempts` (2) more times, then
# its **position** goes to `AnalyticsFailuresQueue`, and the shard moves on.

# %%
good = clickstream.put([ProductViewed(session_id="session-erin", sku="MUG-001") for _ in range(4)])
poison = kinesis.put_record(StreamName=cloud.outputs["AnalyticsStreamName"], PartitionKey="session-erin",
                            Data=b'{"detail-type": "ProductViewed", "detail": "oops"}')
good += clickstream.put([ProductViewed(session_id="session-erin", sku="MUG-001") for _ in range(4)])
before = len(cloud.invocations("AnalyticsFunction"))
cloud.run_until_idle()
for invocation in cloud.invocations("AnalyticsFunction")[before:]:
    numbers = [r["kinesis"]["sequenceNumber"] for r in invocation.event["Records"]]
    marked = ["*" + n if n == poison["SequenceNumber"] else n for n in numbers]
    print(f"{'ok    ' if invocation.ok else 'FAILED'} records {', '.join(marked) or '(window closes)'}")
[failure_body] = cloud.messages("AnalyticsFailuresQueue")
info = json.loads(failure_body)["KinesisBatchInfo"]
print(f"\nAnalyticsFailuresQueue: 1 failure record, batchSize {info['batchSize']}, "
      f"sequence {info['startSequenceNumber']} of {info['shardId']}")

# %% [markdown]
# The failure record says where the bad record is, not what it holds. Read it
# back from the stream before the stream trims it (24 hours here):

# %%
iterator = kinesis.get_shard_iterator(
    StreamName=cloud.outputs["AnalyticsStreamName"], ShardId=info["shardId"],
    ShardIteratorType="AT_SEQUENCE_NUMBER", StartingSequenceNumber=info["startSequenceNumber"])["ShardIterator"]
print(kinesis.get_records(ShardIterator=iterator, Limit=1)["Records"][0]["Data"])
last = list(per_window(results.all()).values())[-1]
print(f"MUG-001 views counted in that minute: {last.products['MUG-001'].views} (of {len(good)} good views)")

# %% [markdown]
# ## Summary
#
# - **Shards and partition keys.** A stream is made of shards; the partition key
#   chooses a record's shard, and a shard keeps its order. Key by what must stay
#   in order: a customer's orders, a session's clicks.
# - **Two ways in.** An EventBridge rule puts bus events on a stream
#   (`PartitionKeyPath`, and a role EventBridge assumes). A producer puts records
#   itself with `PutRecords`, and must retry the records it refuses
#   (`FailedRecordCount`), or say which ones were lost.
# - **Tumbling windows.** Lambda passes a window's `state` from batch to batch,
#   per shard, and calls once more with `isFinalInvokeForWindow` when the window
#   ends. Write the result then, keyed so that writing it twice changes nothing.
# - **Poison records.** `BisectBatchOnFunctionError` isolates a bad record
#   without spending retries; `MaximumRetryAttempts` and the `OnFailure`
#   destination keep it from blocking its shard. The destination gets the
#   record's position, and the stream still has the record for its retention.
#
# ## Try this
#
# 1. Key the orders by `$.detail.order_id` instead of the customer (in a copy of
#    the template). Are Alice's placed and confirmed events still in one shard?
# 2. Set `TumblingWindowInSeconds: 300`. How many items does `AnalyticsTable`
#    get for the same shopping, and how many final invocations?
# 3. Remove `BisectBatchOnFunctionError` and run the poison record again. Which
#    good views are lost with it, and why?
# 4. Add `ReportBatchItemFailures` and make the function report the bad record
#    (return `{"state": ..., "batchItemFailures": [...]}`). What reaches the
#    failures queue now?
#
# When you are done, stop the local cloud (its state lives in this kernel):

# %%
cloud.stop()
