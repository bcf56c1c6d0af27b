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
# # 8. Observability
#
# An event-driven system has no call stack to read. An order is an `OrderPlaced`
# on a bus, then a message in a queue, then an invocation of a function, which
# puts another event on the bus, and so on. When something goes wrong, three
# questions come up:
#
# 1. **What happened to this order?** Every function's log lines carry the
#    order's **correlation id**, so one search finds them all. The **trace** draws
#    the hops in the order they happened.
# 2. **How is the system doing?** **Metrics** answer this. AWS publishes some by
#    itself: Lambda counts invocations and errors, and SQS measures queue depth.
#    The shop publishes its own (orders placed, orders out of stock) in the
#    **embedded metric format** (EMF). That is a JSON log line that CloudWatch
#    turns into metrics.
# 3. **Who needs to know, and when?** **Alarms** watch metrics. At the end of each
#    period, an alarm looks at its last datapoints, changes state, and publishes
#    the change to an SNS topic. An operator's email subscribes to that topic.
#
# This notebook runs stage 8 (`chapters/08-observability/template.yaml`) on the
# local cloud. Virtual time runs minutes of CloudWatch periods in no wall time.

# %%
import json
import sys

import boto3
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

import edakit.paths
from edakit import LocalCloud
from edakit.diagrams import show

if str(edakit.paths.SHOP_SRC) not in sys.path:
    sys.path.insert(0, str(edakit.paths.SHOP_SRC))  # the shop's code, shared by every stage

from shop.adapters.dynamodb import DynamoDBStockRepository
from shop.events import OrderLine
from shop.inventory import seed_stock
from shop.storefront import Cart, Storefront

cloud = LocalCloud.from_template(edakit.paths.CHAPTERS / "08-observability")
cloud.start()
storefront = Storefront(cloud.outputs["EventBusName"])
seed_stock(DynamoDBStockRepository(cloud.physical_id("StockTable"), cloud.physical_id("ReservationsTable")),
           {"BOOK-001": 100, "MUG-001": 2, "POSTER-001": 5})
alarms = sorted(a["AlarmName"] for a in boto3.client("cloudwatch").describe_alarms()["MetricAlarms"])
print(f"stage 8 is running, with {len(alarms)} alarms: {', '.join(a.removeprefix('shop-') for a in alarms)}")


# %% [markdown]
# ## One order, followed by its correlation id
#
# Alice orders two books. The first event of an order is its `OrderPlaced`, and
# its `event_id` becomes the `correlation_id` that every later event of the
# order copies. The channel adapter (`shop/channels.py`), which every handler goes
# through, appends that id and the order's id to each log line, with Powertools
# Logger's `append_keys`. No handler had to change.

# %%
def cart(customer: str, sku: str, quantity: int = 1) -> Cart:
    return Cart(customer, [OrderLine(sku=sku, quantity=quantity, unit_price_cents=1500)])


[alice] = storefront.place_orders([cart("alice", "BOOK-001", 2)])
cloud.run_until_idle()

rows = ["| function | message | correlation_id |", "| --- | --- | --- |"]
for invocation in cloud.invocations():
    for line in invocation.logs:
        if line.startswith("{") and alice.correlation_id in line and '"message"' in line:
            entry = json.loads(line)
            rows.append(f"| {invocation.function} | {entry['message']} | `{entry['correlation_id'][:8]}…` |")
display(Markdown("\n".join(rows)))

# %% [markdown]
# ## The trace of the order
#
# The local cloud records every hop as it happens: a producer putting an event on
# the bus, a rule sending it on, a poller handing a batch to a function, a function
# publishing to a topic, and SNS delivering copies. `cloud.trace()` keeps the hops
# that carry this order's correlation id and draws them in virtual-time order. The
# copies that every event also sends to the audit and analytics queues are left out
# here (`exclude`), to keep the picture readable.

# %%
show(cloud.trace(alice.correlation_id, exclude=("AuditQueue", "AnalyticsQueue")))

# %% [markdown]
# ## Metrics, as the functions write them
#
# At the end of each invocation, the adapter writes what it counted as **one EMF
# line**: the `_aws` member says which members are metrics (`OrderPlaced`,
# `ShopEventHandled`), in which namespace (`Shop`) and with which dimensions
# (`service`). CloudWatch Logs extracts them. There is no `PutMetricData` call, and
# no extra latency. This is the inventory function's line for Alice's order:

# %%
emf = next(line for line in cloud.logs("InventoryFunction") if line.startswith('{"_aws"'))
print(json.dumps(json.loads(emf), indent=2))

# %% [markdown]
# ## Ten minutes of a shop
#
# Orders arrive in waves, one a minute. Mugs run out in the third minute. In the
# fourth minute comes an order for a poster, a product the order service's
# catalogue does not know yet: a **poison message**. It fails three receives and
# lands in `OrdersDLQ`.

# %%
waves = [
    [cart("c1", "BOOK-001"), cart("c2", "BOOK-001"), cart("c3", "MUG-001")],
    [cart("c4", "BOOK-001"), cart("c5", "MUG-001")],
    [cart("c6", "MUG-001"), cart("c7", "MUG-001"), cart("c8", "MUG-001")],
    [cart("mallory", "POSTER-001"), cart("c9", "BOOK-001")],
]
for wave in waves:
    storefront.place_orders(wave)
    cloud.run_for(60)
cloud.run_for(360)
print(f"{cloud.clock.datetime():%H:%M}: {len(cloud.messages('OrdersDLQ'))} message(s) in OrdersDLQ")

# %% [markdown]
# Every metric is a series over virtual time. The shop's own metrics (top) come
# from the EMF lines. Lambda's and SQS's (bottom) need no code at all. SQS samples
# each queue once a minute, so the DLQ's depth appears a minute after the poison
# message arrives.

# %%
def plot(ax, namespace, name, dimensions, stat="Sum", **style):
    points = cloud.metric(namespace, name, dimensions, stat=stat)
    ax.step([t for t, _ in points], [v for _, v in points], where="post", label=f"{name} ({stat})", **style)


queue = lambda logical_id: {"QueueName": cloud.physical_id(logical_id).rsplit("/", 1)[-1]}  # noqa: E731
function = {"FunctionName": cloud.physical_id("OrderProcessingFunction")}
fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
plot(top, "Shop", "OrderPlaced", {"service": "orders"}, marker="o")
plot(top, "Shop", "OutOfStock", {"service": "orders"}, marker="x")
top.set_title("Shop namespace (EMF), per minute")
top.legend(loc="upper right")
plot(bottom, "AWS/Lambda", "Errors", function, marker="o", color="#c62828")
plot(bottom, "AWS/SQS", "ApproximateNumberOfMessagesVisible", queue("OrdersDLQ"), stat="Maximum", color="#ef6c00")
bottom.set_title("AWS/Lambda (order processing) and AWS/SQS (OrdersDLQ)")
bottom.legend(loc="upper left")
bottom.set_xlabel("virtual time (UTC)")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The alarms' timeline
#
# Each alarm starts in `INSUFFICIENT_DATA`. At the end of each period it decides
# again. It goes to `ALARM` when at least *DatapointsToAlarm* of its last
# *EvaluationPeriods* datapoints breach the threshold. The DLQ alarm needs one
# minute with a message in the DLQ. The errors alarm needs 2 of 5 minutes with failed
# invocations. The out-of-stock alarm is a **business alarm**: metric math divides
# `OutOfStock` by `OrderPlaced` over 5 minutes, and alarms above 20 %.

# %%
def timeline() -> None:
    for change in cloud.alarm_history():
        print(f"{change.when:%H:%M} {change.alarm.removeprefix('shop-')}: {change.old_state} -> {change.new_state}")


timeline()

# %% [markdown]
# Each change is published to `AlarmTopic`, whose email subscription is the
# operator's. The local cloud records the email and sends nothing. The message is
# the JSON that CloudWatch publishes:

# %%
email = next(n for n in cloud.notifications
             if n.endpoint == "ops@example.com" and n.subject.startswith('ALARM: "shop-OrdersDLQNotEmptyAlarm"'))
message = json.loads(email.message)
print(f"To: {email.endpoint}\nSubject: {email.subject}\n")
print(json.dumps({k: message[k] for k in ("AlarmName", "NewStateValue", "NewStateReason", "StateChangeTime",
                                          "OldStateValue", "Trigger")}, indent=2))

# %% [markdown]
# ## Back to OK
#
# The operator reads the poison message, sees the unknown product, and removes it
# from the DLQ. A redrive after a fix would do the same (chapter 4). At the end of
# the next minute, the DLQ alarm goes back to `OK`, and says so by email.

# %%
boto3.client("sqs").purge_queue(QueueUrl=cloud.physical_id("OrdersDLQ"))
cloud.run_for(120)
timeline()

# %%
states = {"INSUFFICIENT_DATA": 0, "OK": 1, "ALARM": 2}
fig, ax = plt.subplots(figsize=(8, 2.8))
end = cloud.clock.datetime()
for row, name in enumerate(a.removeprefix("shop-") for a in alarms):
    changes = cloud.alarm_history(name)
    times = [cloud.clock.start] + [c.when for c in changes] + [end]
    values = [0] + [states[c.new_state] for c in changes]
    for start, stop, value in zip(times, times[1:], values):
        colour = ("#9e9e9e", "#2e7d32", "#c62828")[value]
        ax.barh(row, (stop - start).total_seconds() / 86400, left=start, color=colour, height=0.6)
ax.set_yticks(range(len(alarms)), [a.removeprefix("shop-") for a in alarms])
ax.set_title("Alarm states over virtual time (grey: INSUFFICIENT_DATA, green: OK, red: ALARM)")
ax.xaxis_date()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Summary
#
# - **Structured logs with a correlation id** let you follow one order across
#   functions. Put the keys in one place, the channel adapter, and every handler
#   logs them.
# - **A trace** shows the hops of an order in time order. On AWS, X-Ray and
#   CloudWatch ServiceLens draw it from trace headers. Here the local cloud draws it
#   from what actually ran.
# - **EMF** turns a JSON log line into metrics. Powertools Metrics writes it.
#   Lambda (`Invocations`, `Errors`, `Duration`, `Throttles`, `IteratorAge`) and
#   SQS (`ApproximateNumberOfMessagesVisible`, `ApproximateAgeOfOldestMessage`)
#   publish their own metrics.
# - **Alarms** decide at the end of each period, M out of N datapoints, with
#   `TreatMissingData` for the minutes without data. They tell an SNS topic on
#   every change, to `ALARM` and back to `OK`. Alarm on symptoms an operator can
#   act on: a non-empty DLQ, old messages, errors, and a business rate.
#
# ## Try this
#
# 1. Throttle the inventory function and watch `InventoryThrottlesAlarm`: give it
#    a reserved concurrency of 1 (`put_function_concurrency`), make each
#    invocation take 5 s (`cloud.function("InventoryFunction").duration = 5`), and
#    place four orders at once. When does the alarm go to `ALARM`, and when back
#    to `OK`?
# 2. Follow Mallory's poison order with `cloud.trace(...)`. Which hop failed, and
#    how often? (Hint: the failed invocations are drawn as crossed arrows.)
# 3. In a copy of the template, change `OrdersQueueOldestMessageAlarm` to
#    `DatapointsToAlarm: 1`. Stop the order processing function
#    (`put_function_concurrency` with 0) and place an order. When does the alarm
#    fire now?
# 4. Add a metric of your own: count the order lines in the orders service, and
#    alarm when an order has more than 10.
#
# When you are done, stop the local cloud (its state lives in this kernel):

# %%
cloud.stop()
