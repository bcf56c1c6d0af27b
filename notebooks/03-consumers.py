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
# # 3. Lambda consumers
#
# In stage 2 the rules for order processing and inventory filled queues that
# nobody read. Now two Lambda functions take their place, and the shop starts to
# *do* things:
#
# - **InventoryFunction** gets every `OrderPlaced`. It reserves stock for every
#   line of the order, or for none, and publishes `InventoryReserved` or
#   `OutOfStock`.
# - **OrderProcessingFunction** gets `OrderPlaced` too, and records the order as
#   `PLACED`. When inventory answers, it marks the order `CONFIRMED` (and
#   publishes `OrderConfirmed`) or `OUT_OF_STOCK`.
#
# Nobody calls anybody: each service reacts to events and publishes what
# happened. This is **choreography**. A rule invokes its function
# **asynchronously**: Lambda puts the event in its own queue, answers EventBridge
# at once, and then runs the function. If the function fails, Lambda retries it
# twice. After that, the function's **OnFailure** destination gets a record of the
# failure. Delivery is **at least once**, so every consumer must give a
# redelivered event one effect.
#
# This notebook runs stage 3 (`chapters/03-consumers/template.yaml`) on the local
# cloud: the template deployed into moto, offline, in virtual time.

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

if str(edakit.paths.SHOP_SRC) not in sys.path:
    sys.path.insert(0, str(edakit.paths.SHOP_SRC))  # the shop's code, shared by every stage

from shop.adapters.dynamodb import DynamoDBStockRepository
from shop.events import OrderLine
from shop.inventory import seed_stock
from shop.storefront import Cart, Storefront

cloud = LocalCloud.from_template(edakit.paths.chapter("03"))
cloud.start()
started = cloud.clock.now()
storefront = Storefront(cloud.outputs["EventBusName"])
print(f"stage 3 is running: {len(cloud.deployment.physical_ids)} resources, functions {sorted(cloud.functions)}")

# %% [markdown]
# ## The stage, as deployed
#
# Read back from the running system. The two functions hang off the bus through
# their own rules; the dotted lines are what each function's configuration names:
# its tables, the bus it publishes on, and its OnFailure destination.

# %%
show(architecture(cloud))

# %% [markdown]
# ## Stock first
#
# The stock table holds one item per SKU, `{sku, stock}`. A learner (or the
# warehouse) sets the levels before any order comes in. There is one mug left.

# %%
stock = DynamoDBStockRepository(cloud.physical_id("StockTable"), cloud.physical_id("ReservationsTable"))
seed_stock(stock, {"BOOK-001": 5, "BOOK-002": 5, "MUG-001": 1})
print({sku: stock.stock_of(sku) for sku in ("BOOK-001", "BOOK-002", "MUG-001")})

# %% [markdown]
# ## Two customers, one mug
#
# Alice and Bob each order the last mug, in the same PutEvents call. Inventory
# takes stock with a DynamoDB **conditional update**, `stock >= :quantity`: the
# check and the write are one step, so the second order cannot take a mug that
# is no longer there.


# %%
def line(sku: str, quantity: int = 1) -> OrderLine:
    return OrderLine(sku=sku, quantity=quantity, unit_price_cents=1250)


def status_of(order_id: str) -> str:
    item = boto3.client("dynamodb").get_item(
        TableName=cloud.physical_id("OrdersTable"), Key={"order_id": {"S": order_id}}).get("Item")
    return item["status"]["S"] if item else "not recorded"


alice, bob = storefront.place_orders([Cart("alice", [line("MUG-001")]), Cart("bob", [line("MUG-001")])])
cloud.run_until_idle()
for name, order in (("alice", alice), ("bob", bob)):
    print(f"{name}: {status_of(order.order_id)}")
print("mugs left:", stock.stock_of("MUG-001"))

# %% [markdown]
# ### Who ran when
#
# `cloud.invocations()` lists every invocation: which function, what event, and
# what came of it. Two orders made six invocations: each `OrderPlaced` reached
# both functions, and the order processor heard back from inventory once per order:

# %%
def offset(invocation) -> str:
    return f"+{invocation.time - started:.1f} s"


rows = ["| time | function | event | order | result |", "| --- | --- | --- | --- | --- |"]
for invocation in cloud.invocations():
    detail = invocation.event["detail"]
    result = invocation.result or {}
    outcome = invocation.error or ", ".join(f"{k}: {v}" for k, v in result.items() if k not in ("order_id", "event_id"))
    rows.append(f"| {offset(invocation)} | {invocation.function} | {invocation.event['detail-type']} "
                f"| {detail['order_id'][:8]} | {outcome} |")
display(Markdown("\n".join(rows)))

# %% [markdown]
# And the events on the bus. Stage 1's audit queue still receives a copy of
# every shop event, follow-up events included. Each order's chain shares one
# `correlation_id`:

# %%
def chain_of(order_id: str) -> str:
    events = [json.loads(body) for body in cloud.messages("AuditQueue")]
    return " → ".join(e["detail-type"] for e in events if e["detail"]["order_id"] == order_id)


for name, order in (("alice", alice), ("bob", bob)):
    print(f"{name}: {chain_of(order.order_id)}")

# %% [markdown]
# ## All or nothing
#
# An order of several lines must not take books when the mugs are missing.
# Inventory writes every line, plus a reservation record for the order, in one
# **TransactWriteItems** call. If any line's condition fails, none of the writes
# happens.

# %%
[carol] = storefront.place_orders([Cart("carol", [line("BOOK-001", 2), line("BOOK-002", 1), line("MUG-001", 1)])])
cloud.run_until_idle()
print(f"carol: {status_of(carol.order_id)}; chain: {chain_of(carol.order_id)}")
print({sku: stock.stock_of(sku) for sku in ("BOOK-001", "BOOK-002", "MUG-001")}, "(unchanged)")

# %% [markdown]
# ## A poison order: two retries, then OnFailure
#
# Dave's order names a product the shop does not sell. Both functions reject it
# by raising an error, and raising again won't help. Lambda doesn't know that: it
# retries the event after one minute, and again after two more. Then it sends an
# **invocation record** to the OnFailure destination, `ConsumerFailuresQueue`.
# On the local cloud those three minutes are virtual and take no time.

# %%
failed_before = len(cloud.messages("ConsumerFailuresQueue"))
[dave] = storefront.place_orders([Cart("dave", [line("UNICORN-001")])])
seconds = cloud.run_until_idle()
print(f"run_until_idle covered {seconds:.0f} virtual seconds")
for function in ("InventoryFunction", "OrderProcessingFunction"):
    attempts = [i for i in cloud.invocations(function) if i.event["detail"]["order_id"] == dave.order_id]
    first = attempts[0].time
    print(f"{function}: attempts at " + ", ".join(f"+{a.time - first:.0f} s" for a in attempts)
          + f"; each failed with {attempts[0].result['errorType']}")

# %% [markdown]
# The record names the function, the condition, how often Lambda tried, the
# event (`requestPayload`) and the last error (`responsePayload`). That is enough
# to find the problem and, once it is fixed, send the event again.

# %%
for body in cloud.messages("ConsumerFailuresQueue")[failed_before:]:
    record = json.loads(body)
    context = record["requestContext"]
    function = context["functionArn"].split(":")[6]
    print(f"{function}: condition {context['condition']} after {context['approximateInvokeCount']} attempts; "
          f"error: {record['responsePayload']['errorMessage']}")
print(json.dumps({k: v for k, v in record.items() if k not in ("requestPayload", "responsePayload")}, indent=2))

# %% [markdown]
# ## The same event, twice
#
# EventBridge and Lambda deliver **at least once**: now and then, an event
# arrives twice. Here we deliver it again ourselves: we take the exact event the
# rule gave InventoryFunction for Erin's order, and invoke the function with it
# once more, asynchronously, as the rule does.
#
# The function is wrapped in **Powertools Idempotency**, keyed on the event's
# `event_id`. The first delivery ran and its result was saved in the
# `IdempotencyTable`. The second delivery gets that saved result back, and the
# business code does not run again.

# %%
before = stock.stock_of("BOOK-001")
[erin] = storefront.place_orders([Cart("erin", [line("BOOK-001")])])
cloud.run_until_idle()
delivered = next(i.event for i in cloud.invocations("InventoryFunction") if i.event["detail"]["order_id"] == erin.order_id)
boto3.client("lambda").invoke(FunctionName=cloud.physical_id("InventoryFunction"),
                              InvocationType="Event", Payload=json.dumps(delivered))
cloud.run_until_idle()

runs = [i for i in cloud.invocations("InventoryFunction") if i.event == delivered]
reserved = [e for e in (json.loads(b) for b in cloud.messages("AuditQueue"))
            if e["detail-type"] == "InventoryReserved" and e["detail"]["order_id"] == erin.order_id]
print(f"delivered {len(runs)} times: stock taken once ({before} → {stock.stock_of('BOOK-001')}), "
      f"InventoryReserved published {len(reserved)} time{'s' if len(reserved) != 1 else ''}")
print("same result both times:", runs[0].result == runs[1].result)

# %% [markdown]
# The logs tell the two runs apart. The first run logged its work; the second
# logged nothing of its own, because Powertools answered from the idempotency
# record before the business code ran:

# %%
for run in runs:
    messages = [json.loads(line)["message"] for line in run.logs if line.startswith("{")]
    print(f"{offset(run)}: {messages or 'no lines of its own'}")

# %% [markdown]
# ## A timeline
#
# Every invocation so far, per function, over virtual time. The red ones failed.
# The retries of Dave's order stand out, one and three minutes after the first
# attempt.

# %%
functions = sorted(cloud.functions)
fig, ax = plt.subplots(figsize=(8, 2.6))
for y, function in enumerate(functions):
    for invocation in cloud.invocations(function):
        ax.scatter(invocation.time - started, y, s=60, marker="o" if invocation.ok else "X",
                   color="#2e7d32" if invocation.ok else "#c62828", zorder=3)
counts = Counter((i.function, i.ok) for i in cloud.invocations())
ax.set_yticks(range(len(functions)),
              [f"{f}\n{counts[(f, True)]} ok, {counts[(f, False)]} failed" for f in functions])
ax.set_xlabel("virtual seconds since the stage started")
ax.set_title("Stage 3: invocations per function (X = failed)")
ax.grid(axis="x", alpha=0.3)
ax.set_ylim(-0.6, len(functions) - 0.4)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Summary
#
# - A rule invokes a function **asynchronously**. Lambda queues the event, and
#   it retries a failed invocation twice (after 1 and then 2 minutes), as
#   `EventInvokeConfig.MaximumRetryAttempts` says. Then the **OnFailure**
#   destination gets an invocation record with the event and the error.
# - A **conditional write** keeps stock from going negative. A **transaction**
#   makes a multi-line order reserve all of its lines or none.
# - Services **choreograph**: each one publishes what happened
#   (`InventoryReserved`, `OutOfStock`, `OrderConfirmed`), and the others react.
# - Delivery is at least once, so each consumer uses **Powertools Idempotency**,
#   keyed on the event's `event_id`: the same event has one effect.
# - The business code (`shop/inventory.py`, `shop/orders.py`) never sees the
#   envelope. `shop/channels.py` unwraps an EventBridge event, an SQS batch, an
#   SNS message or a Kinesis record alike.
#
# ## Try this
#
# 1. Four customers order the last two books, all in one call. Predict the
#    statuses, then run the cell.

# %%
seed_stock(stock, {"BOOK-002": 2})
rush = storefront.place_orders([Cart(f"customer-{n}", [line("BOOK-002")]) for n in range(4)])
cloud.run_until_idle()
print(Counter(status_of(order.order_id) for order in rush), "books left:", stock.stock_of("BOOK-002"))

# %% [markdown]
# 2. In a copy of the template (`LocalCloud.from_template("my-stage/template.yaml")`,
#    with `CodeUri` still pointing at `sam-app/src/`), set `MaximumRetryAttempts: 0`
#    on InventoryFunction. Place Dave's order again: how many attempts, and when
#    does the record reach the failures queue?
# 3. In your copy, add `POWERTOOLS_IDEMPOTENCY_DISABLED: "true"` to
#    InventoryFunction's environment, and deliver Erin's event twice again. The
#    stock is still taken once: the reservation record in `ReservationsTable` is
#    written in the same transaction as the stock, and it refuses a second
#    reservation. But `InventoryReserved` is published twice. Why is that
#    harmless to a consumer that deduplicates on `event_id`? (Compare the two
#    events' `event_id`.)
# 4. Put an `InventoryReserved` for an order that does not exist yet on the bus
#    (source `shop.inventory`). Watch OrderProcessingFunction fail with
#    `OrderNotFound` and retry. A bus does not keep events in order, and the retry
#    is what lets the order catch up.
#
# When you are done, stop the local cloud (its state lives in this kernel):

# %%
cloud.stop()
