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
# # 4. Buffering with SQS
#
# In stage 3 an EventBridge rule invoked the order processor directly. When a
# spike of orders comes in, every event asks for an invocation at once. If the
# function cannot keep up, or its database cannot, the shop has a problem.
#
# Stage 4 puts a queue in between. The order processing rules now send to
# **OrdersQueue**, and Lambda **polls** it: it takes up to 10 messages at a
# time and runs at most 5 batches at once (`ScalingConfig.MaximumConcurrency`).
# A spike waits in the queue instead of overwhelming anything:
#
# - a message whose processing fails goes back to the queue, alone
#   (`ReportBatchItemFailures`), and becomes visible again after the
#   **visibility timeout**;
# - after 3 failed receives (`maxReceiveCount`), SQS moves it to the
#   **dead-letter queue**, OrdersDLQ;
# - once the cause is fixed, a **redrive** sends it back to OrdersQueue.
#
# The order processor's code has not changed. Only its channel has: the adapter
# in `shop/channels.py` unwraps an SQS batch as it unwrapped an EventBridge event.
#
# This notebook runs stage 4 (`chapters/04-queues/template.yaml`) on the local
# cloud: the template deployed into moto, offline, in virtual time.

# %%
import json
import sys
from collections import Counter
from datetime import datetime
from types import MappingProxyType

import boto3
import matplotlib.pyplot as plt

import edakit.paths
from edakit import LocalCloud
from edakit.diagrams import architecture, show
from edakit.redrive import redrive

if str(edakit.paths.SHOP_SRC) not in sys.path:
    sys.path.insert(0, str(edakit.paths.SHOP_SRC))  # the shop's code, shared by every stage

import shop.orders
from shop.adapters.dynamodb import DynamoDBStockRepository
from shop.adapters.order_history import DynamoDBStatusHistory
from shop.events import OrderLine
from shop.inventory import seed_stock
from shop.storefront import Cart, Storefront

cloud = LocalCloud.from_template(edakit.paths.chapter("04"))
cloud.start()
storefront = Storefront(cloud.outputs["EventBusName"])
print(f"stage 4 is running: {len(cloud.deployment.physical_ids)} resources, functions {sorted(cloud.functions)}")

# %% [markdown]
# ## The stage, as deployed
#
# OrdersQueue now stands between the bus and OrderProcessingFunction, with
# OrdersDLQ behind it. The FIFO queue on the right keeps each order's status
# history in order (more on it at the end).

# %%
show(architecture(cloud))

# %% [markdown]
# ## A burst
#
# The shop launches a poster, `POSTER-001`, and the storefront sells it at once.
# But the order service's catalogue has not been updated yet: it rejects every
# order for the poster, however often it is retried. Those are **poison
# messages**.
#
# To see a queue build up with a burst small enough for this page, each batch
# takes the order processor 6 virtual seconds, and we cap its event source
# mapping at 2 concurrent batches (2 is the lowest `MaximumConcurrency` allowed;
# the template says 5). Then 20 orders arrive at once. Each one makes two
# messages for the order processor: the `OrderPlaced`, and inventory's answer.

# %%
stock = DynamoDBStockRepository(cloud.physical_id("StockTable"), cloud.physical_id("ReservationsTable"))
seed_stock(stock, {"BOOK-001": 100, "POSTER-001": 10})

processor = cloud.function("OrderProcessingFunction")
processor.duration = 6.0
lambda_client = boto3.client("lambda")
[mapping] = lambda_client.list_event_source_mappings(FunctionName=processor.name)["EventSourceMappings"]
lambda_client.update_event_source_mapping(UUID=mapping["UUID"], ScalingConfig={"MaximumConcurrency": 2})


def line(sku: str) -> OrderLine:
    return OrderLine(sku=sku, quantity=1, unit_price_cents=1200)


carts = [Cart(f"customer-{n}", [line("POSTER-001" if n % 7 == 3 else "BOOK-001")]) for n in range(20)]
started = cloud.clock.now()
orders = storefront.place_orders(carts)
poison = [o for o in orders if o.lines[0].sku == "POSTER-001"]
print(f"{len(orders)} orders placed, {len(poison)} of them for POSTER-001; OrdersQueue: {cloud.queue_depth('OrdersQueue')}")

# %% [markdown]
# Now we let virtual time run, one second at a time, and read the queue each
# second: how many messages wait (visible), how many are being processed (in
# flight), and how long the oldest waiting message has been in the queue: now
# minus its `SentTimestamp`. (CloudWatch's `ApproximateAgeOfOldestMessage` is
# close to it; moto keeps no such metric, so we read the messages moto holds.)


# %%
def age_of_oldest_waiting(queue_id: str) -> float:
    queue = cloud.sqs_backend.get_queue(cloud.physical_id(queue_id).rsplit("/", 1)[-1])
    sent = [m.sent_timestamp / 1000 for m in queue.messages]  # moto's visible messages
    return cloud.clock.now() - min(sent) if sent else 0.0


samples = []
for second in range(16):
    depth = cloud.queue_depth("OrdersQueue")
    samples.append((second, depth["visible"], depth["in_flight"], age_of_oldest_waiting("OrdersQueue")))
    cloud.run_for(1)

fig, (ax_depth, ax_age) = plt.subplots(2, 1, figsize=(8, 4.4), sharex=True)
seconds = [s[0] for s in samples]
ax_depth.stackplot(seconds, [s[1] for s in samples], [s[2] for s in samples],
                   labels=["waiting (visible)", "being processed (in flight)"], colors=["#f9a825", "#1565c0"], step="post")
ax_depth.set_ylabel("messages")
ax_depth.legend(loc="upper right")
ax_depth.set_title("OrdersQueue absorbs a burst of 20 orders")
ax_age.step(seconds, [s[3] for s in samples], where="post", color="#c62828")
ax_age.set_ylabel("oldest waiting (s)")
ax_age.set_xlabel("virtual seconds since the burst")
for ax in (ax_depth, ax_age):
    ax.grid(alpha=0.3)
fig.tight_layout()
plt.show()

# %% [markdown]
# The queue took all 40 messages at once, and the function drained them at its
# own pace: 2 batches of 10 every 6 seconds. The oldest waiting message's age
# rose while the backlog waited, and fell to zero once the function caught up.
# That age is the number to watch (and alarm on) in production: it says how late
# the shop is running. What stays in flight after the backlog cleared are the
# poison orders: they failed, and they wait out their visibility timeout.
#
# ## Poison orders: 3 receives, then the DLQ
#
# A batch of 10 had one poison order in it. The handler reported that one
# message as failed (`batchItemFailures`), and Lambda deleted the nine others.
# The failed message became visible again after the visibility timeout (90 s),
# and Lambda took it in a new batch once the 1 s batching window closed. It
# failed again, and after its third receive SQS moved it to OrdersDLQ.

# %%
cloud.run_until_idle()


def status_of(order_id: str) -> str:
    item = boto3.client("dynamodb").get_item(
        TableName=cloud.physical_id("OrdersTable"), Key={"order_id": {"S": order_id}}).get("Item")
    return item["status"]["S"] if item else "not recorded"


def dead_lettered() -> list[str]:
    return [json.loads(body)["detail"]["order_id"] for body in cloud.messages("OrdersDLQ")]


def order_ids(invocation) -> list[str]:
    return [json.loads(record["body"])["detail"]["order_id"] for record in invocation.event["Records"]]


print(Counter(status_of(o.order_id) for o in orders), f"DLQ: {len(cloud.messages('OrdersDLQ'))} messages")
lost = [o for o in orders if status_of(o.order_id) != "CONFIRMED" and o.order_id not in dead_lettered()]
print(f"every order is confirmed or in the DLQ; lost: {len(lost)}")

first = next(i for i in cloud.invocations("OrderProcessingFunction") if poison[0].order_id in order_ids(i))
print(f"a batch of {len(first.event['Records'])} answered {first.result}")
receives = [i.time for i in cloud.invocations("OrderProcessingFunction") if poison[0].order_id in order_ids(i)]
print(f"{poison[0].order_id[:8]}: receives at " + ", ".join(f"+{t - receives[0]:.0f} s" for t in receives)
      + ", then the DLQ")

# %% [markdown]
# ## The fix, then a redrive
#
# The team adds the poster to the catalogue and deploys. On AWS that is a
# `sam deploy` of the new code. On the local cloud the functions run in this
# kernel and share the shop's domain module, so replacing the catalogue is the
# deploy.
#
# Then the DLQ is **redriven**: its messages go back to OrdersQueue, where the
# fixed function takes them. On AWS you would use the console's *Start DLQ
# redrive*, or the `StartMessageMoveTask` API. moto does not implement that API,
# so the kit has `edakit.redrive`: it receives each message from the DLQ, sends
# it to the source queue (the one whose `RedrivePolicy` names this DLQ), and
# deletes it from the DLQ only after the send succeeded. Nothing is lost if it
# stops halfway. It works on AWS too, with plain boto3.

# %%
shop.orders.CATALOGUE = MappingProxyType({**shop.orders.CATALOGUE, "POSTER-001": "Event-driven poster"})

result = redrive(cloud.physical_id("OrdersDLQ"))
print(result)
cloud.run_until_idle()
print(f"DLQ now holds {len(cloud.messages('OrdersDLQ'))}; poster orders:",
      Counter(status_of(o.order_id) for o in poison))

# %% [markdown]
# The poster orders are recorded, but only `PLACED`: inventory rejected them
# too. InventoryFunction is still invoked asynchronously by its rule (stage 3),
# so its failures went to `ConsumerFailuresQueue` as invocation records. Each
# record holds the original event (`requestPayload`), so we send it again, as the
# rule would:

# %%
for body in cloud.messages("ConsumerFailuresQueue"):
    record = json.loads(body)
    lambda_client.invoke(FunctionName=cloud.physical_id("InventoryFunction"), InvocationType="Event",
                         Payload=json.dumps(record["requestPayload"]))
cloud.run_until_idle()
print("poster orders:", Counter(status_of(o.order_id) for o in poison))

# %% [markdown]
# ## Where order matters: a FIFO queue
#
# A standard queue delivers at least once and *roughly* in order. For most
# consumers that is fine. The order status history is different: it must read
# `PLACED → RESERVED → CONFIRMED`, never the other way round. Its queue,
# **OrderStatusQueue.fifo**, is a FIFO queue: within a **message group**,
# messages are delivered in the order they were sent, and one at a time.
#
# EventBridge sets one `MessageGroupId` for a target, the same for every event
# (`SqsParameters`). So all orders share one group. Per-order order holds,
# because all orders are in one line, but the line moves one message at a time,
# and one failing message holds up every order behind it. With a group per order
# (sent by a function, or by EventBridge Pipes, which can take the group from
# the event), orders would not wait for each other.

# %%
history = DynamoDBStatusHistory(cloud.physical_id("OrderHistoryTable"))
book_order = next(o for o in orders if o not in poison)
print(f"{book_order.order_id[:8]}: " + " → ".join(history.history_of(book_order.order_id)))
print(f"{poison[0].order_id[:8]} (the poster): " + " → ".join(history.history_of(poison[0].order_id)))
groups = Counter(r["attributes"]["MessageGroupId"] for i in cloud.invocations("OrderStatusFunction")
                 for r in i.event["Records"])
print("message groups:", dict(groups))

# %% [markdown]
# The poster order's history shows what happened to it, in order: placed, then
# (after the fix) reserved and confirmed.
#
# ## Summary
#
# - A queue between the bus and a function **absorbs a burst**: the function
#   drains it at the pace its event source mapping allows (BatchSize,
#   MaximumConcurrency). Watch the **age of the oldest message**.
# - With `ReportBatchItemFailures`, only the failed messages of a batch return
#   to the queue. They come back after the **visibility timeout** (at least 6 ×
#   the function's timeout).
# - After `maxReceiveCount` receives, a message moves to the **DLQ**. After the
#   fix, a **redrive** sends it back (`edakit.redrive`, or StartMessageMoveTask
#   on AWS).
# - A **FIFO queue** keeps a message group in order, one message at a time.
# - The business code did not change: only the template's channel did.
#
# ## Try this
#
# 1. Put an `InventoryReserved` for an order that was never placed on the bus
#    (source `shop.inventory`), then place an order. Watch the status history's
#    single FIFO group: the new order's `PLACED` waits until the stray message
#    has failed three times (60 s visibility timeout) and moved to
#    `OrderStatusDLQ`.

# %%
# from shop.events import InventoryReserved, to_put_events_entry
# stray = InventoryReserved(order_id="never-placed", lines=[{"sku": "BOOK-001", "quantity": 1}])
# boto3.client("events").put_events(Entries=[to_put_events_entry(stray, cloud.outputs["EventBusName"])])

# %% [markdown]
# 2. Set the mapping's `MaximumConcurrency` back to 5 and run the burst again:
#    how much sooner is the backlog gone, and how old does the oldest message get?
# 3. In a copy of the template, lower the OrdersQueue `VisibilityTimeout` to 5
#    and set the function's `duration` to 8 s. What happens to a batch that is
#    still being processed when its messages become visible again? (That is why
#    AWS asks for at least 6 × the function's timeout.)
#
# When you are done, stop the local cloud (its state lives in this kernel):

# %%
cloud.stop()
