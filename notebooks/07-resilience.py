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
# # 7. Failure is normal
#
# Payment gateways time out, cards are declined, a bad deploy stops a consumer,
# SQS hands over a message twice. In a distributed system none of this is an
# exception: it is Tuesday. This chapter adds payments to the shop and breaks the
# system on purpose, one way at a time, to show each recovery path:
#
# - a **poison order** that fails every time ends in a dead-letter queue, and a
#   redrive completes it after the fix;
# - a **flaky gateway** (30 % of calls fail) is retried with **exponential backoff**;
# - a **duplicate** or a **redelivery** charges nothing more: the payments ledger
#   is written with conditions, keyed on the order;
# - a **stopped consumer** leaves its orders waiting in the queue, and catches up;
# - a **declined payment** cancels the order, and inventory releases the stock: a
#   **compensation**, by choreography.
#
# This notebook runs stage 7 (`chapters/07-resilience/template.yaml`) on the local
# cloud, in virtual time: the retries below take minutes of AWS time and no wall time.

# %%
import json
import sys
from collections import Counter

import boto3
import matplotlib.pyplot as plt

import edakit.paths
from edakit import LocalCloud
from edakit.chaos import ChaosPlan, ChaosRun
from edakit.redrive import redrive

if str(edakit.paths.SHOP_SRC) not in sys.path:
    sys.path.insert(0, str(edakit.paths.SHOP_SRC))  # the shop's code, shared by every stage

from shop.adapters.dynamodb import DynamoDBStockRepository
from shop.adapters.payments import DynamoDBPaymentLedger
from shop.events import OrderLine
from shop.inventory import seed_stock
from shop.storefront import Cart, Storefront

cloud = LocalCloud.from_template(edakit.paths.chapter("07"))
cloud.start()
storefront = Storefront(cloud.outputs["EventBusName"])
ledger = DynamoDBPaymentLedger(cloud.physical_id("PaymentsTable"))
stock = DynamoDBStockRepository(cloud.physical_id("StockTable"), cloud.physical_id("ReservationsTable"))
seed_stock(stock, {"BOOK-001": 5, "BOOK-002": 5, "MUG-001": 50})
variables = dict(cloud.function("PaymentsFunction").environment)
print(f"stage 7 is running: the gateway fails {float(variables['PAYMENT_FAILURE_RATE']):.0%} of calls, "
      f"and refuses amounts above {int(variables['PAYMENT_MAX_AMOUNT_CENTS']) / 100:.2f} EUR")


# %%
def status_of(order_id: str) -> str:
    item = boto3.client("dynamodb").get_item(
        TableName=cloud.physical_id("OrdersTable"), Key={"order_id": {"S": order_id}}).get("Item")
    return item["status"]["S"] if item else "not recorded"


def tries_of(order_id: str, detail_type: str = "InventoryReserved") -> list[tuple[float, int]]:
    """When the payments function got the order's event, and its ApproximateReceiveCount each time."""
    return [(invocation.time, int(record["attributes"]["ApproximateReceiveCount"]))
            for invocation in cloud.invocations("PaymentsFunction") for record in invocation.event["Records"]
            if json.loads(record["body"])["detail"]["order_id"] == order_id
            and json.loads(record["body"])["detail-type"] == detail_type]


# %% [markdown]
# ## The flow: reserve, then charge, then confirm
#
# Stage 5 confirmed an order as soon as its stock was reserved. A real shop
# confirms it once it is paid. So in stage 7 the orders service waits:
# `InventoryReserved` goes to payments too, payments charges the order and
# publishes `PaymentSucceeded` or `PaymentFailed`, and *that* confirms or cancels
# the order. Alice's order takes the happy path:

# %%
[alice] = storefront.place_orders([Cart("alice", [OrderLine(sku="MUG-001", quantity=2, unit_price_cents=1200)])])
cloud.run_until_idle()
payment = ledger.entry(alice.order_id)
print(f"alice: {status_of(alice.order_id)}, payment {payment.status.value}, charged {payment.charges} time(s), "
      f"{payment.attempts} attempt(s) at the gateway")

# %% [markdown]
# ## A poison order: retries, the DLQ, the fix, the redrive
#
# Carol orders two books at 600.00 EUR each. The merchant account's limit is
# 1000.00 EUR, so the gateway refuses the request, every time. The payments
# function reports the message as failed and sets its visibility timeout from its
# receive count: 5 s, 10 s, 20 s... After `maxReceiveCount` (8) receives, SQS
# moves the message to `PaymentsDLQ`. Nothing is lost, and nothing is charged.

# %%
[carol] = storefront.place_orders([Cart("carol", [OrderLine(sku="BOOK-002", quantity=2, unit_price_cents=60_000)])])
cloud.run_until_idle()
tries = tries_of(carol.order_id)
print("receives:", [count for _, count in tries])
print("seconds between tries:", [round(b[0] - a[0]) for a, b in zip(tries, tries[1:])])
in_dlq = [json.loads(body)["detail"]["order_id"] for body in cloud.messages("PaymentsDLQ")]
print(f"carol: in the DLQ after {tries[-1][1]} receives" if carol.order_id in in_dlq else "carol: not in the DLQ")
print(f"carol's order: {status_of(carol.order_id)}, charged {ledger.entry(carol.order_id).charges} time(s)")

# %% [markdown]
# The fix is a configuration change: raise the limit in the function's
# environment (on AWS, `UpdateFunctionConfiguration`, or a redeploy). Then move
# the DLQ's messages back to the queue with `edakit.redrive` (the console's
# "Start DLQ redrive" does the same). A redriven message starts again with a
# receive count of 0.

# %%
lambda_client = boto3.client("lambda")
name = cloud.physical_id("PaymentsFunction")
lambda_client.update_function_configuration(
    FunctionName=name, Environment={"Variables": {**variables, "PAYMENT_MAX_AMOUNT_CENTS": "1000000"}})
print(redrive(cloud.physical_id("PaymentsDLQ")))
cloud.run_until_idle()
print(f"carol: {status_of(carol.order_id)} after the redrive, charged {ledger.entry(carol.order_id).charges} time(s)")

# %% [markdown]
# ## Compensation: a declined card
#
# Dave's card is declined. That is a final answer, so retrying would be wrong:
# payments publishes `PaymentFailed`. The orders service cancels the order and
# publishes `OrderCancelled`, with the lines that were reserved. Inventory hears
# it and puts the stock back, in one DynamoDB transaction that also marks the
# reservation released, so a second `OrderCancelled` releases nothing.

# %%
[dave] = storefront.place_orders([Cart("declined-dave", [OrderLine(sku="BOOK-001", quantity=3, unit_price_cents=1500)])])
cloud.run_until_idle()
payment = ledger.entry(dave.order_id)
print(f"payment: {payment.status.value} ({payment.decline_reason}), charged {payment.charges} time(s)")
print(f"dave: {status_of(dave.order_id)}, stock back to {stock.stock_of('BOOK-001')}")
print("the events of dave's order, in order:",
      [json.loads(b)["detail-type"] for b in cloud.messages("AuditQueue") if dave.order_id in b])

# %% [markdown]
# ## A consumer outage
#
# A bad deploy stops the payments consumer: its event source mapping is disabled
# (`UpdateEventSourceMapping Enabled=False`). Orders keep coming. Their messages
# wait in `PaymentsQueue`: nobody receives them, so their receive counts do not
# grow, and none goes to the DLQ. When the consumer is back, it drains the queue.

# %%
[mapping] = lambda_client.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]
lambda_client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
waiting = storefront.place_orders([Cart(f"customer-{n}", [OrderLine(sku="MUG-001", quantity=1, unit_price_cents=900)])
                                   for n in range(3)])
cloud.run_for(10 * 60)
print("after 10 minutes of outage:", cloud.queue_depth("PaymentsQueue"),
      Counter(status_of(o.order_id) for o in waiting))
lambda_client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)
cloud.run_until_idle()
print("after the restart:", cloud.queue_depth("PaymentsQueue"), Counter(status_of(o.order_id) for o in waiting))

# %% [markdown]
# ## Everything at once
#
# Now a seeded chaos run: orders in waves, with declined cards, poison orders,
# duplicate `OrderPlaced` events, SQS redeliveries, the 30 % flaky gateway and an
# outage of the payments consumer in the middle. (`edakit.chaos.ChaosRun` is the
# same scenario the stage test runs with 500 orders; here it reseeds the stock and
# checks only its own orders.) Then the checks: no order lost, none charged twice,
# stock conserved.

# %%
lambda_client.update_function_configuration(FunctionName=name, Environment={"Variables": variables})  # limit back
run = ChaosRun(cloud, ChaosPlan(orders=8, wave_size=4, redeliveries=3, poison_share=0.15,
                                duplicate_share=0.25, seed=2020)).run()
print("orders:", dict(Counter(run.kinds.values())), f"duplicates: {run.duplicates}, redeliveries: {run.redelivered}")
print("before the redrive:", dict(Counter(run.outcomes().values())))
print(run.fix_and_redrive())
print("after the fix and the redrive:", dict(Counter(run.outcomes().values())))
problems = run.check()
print("broken properties:", "none" if not problems else problems)
print(f"charges: {run.charges()}, one per confirmed order")

# %%
seconds = [s.seconds / 60 for s in run.samples]
fig, ax = plt.subplots(figsize=(8, 3))
ax.step(seconds, [s.payments_queue for s in run.samples], where="post", label="PaymentsQueue", color="#1565c0")
ax.step(seconds, [s.payments_dlq for s in run.samples], where="post", label="PaymentsDLQ", color="#c62828")
stopped = [s.seconds / 60 for s in run.samples if not s.consumer_enabled]
if stopped:
    ax.axvspan(min(stopped) - 0.5, max(stopped), color="#ffe0b2", label="consumer stopped")
ax.set_xlabel("virtual minutes")
ax.set_ylabel("messages")
ax.set_title("Stage 7 under chaos: the backlog of the outage drains, the poison orders wait in the DLQ")
ax.legend(loc="upper right")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Summary
#
# - **Transient or permanent?** A timeout is retried; a declined card is not; a
#   request the gateway always refuses is a poison message. The DLQ keeps it
#   until the cause is fixed, and a redrive finishes it.
# - **Backoff** spreads retries out: the function sets the failed message's
#   visibility timeout from its `ApproximateReceiveCount`.
# - **Idempotency** is what makes retries, duplicates, redeliveries and replays
#   safe. The payments ledger is keyed on the order and written with conditions,
#   so an order is charged at most once.
# - **Compensation** undoes a step that cannot stand: `OrderCancelled` makes
#   inventory release the stock, once.
#
# ## Try this
#
# 1. Set `PAYMENT_FAILURE_RATE` to `0.9` in a copy of the template. How many
#    orders end in the DLQ? Which `maxReceiveCount` would you choose?
# 2. In `sam-app/src/shop/adapters/payments.py`, remove the `ConditionExpression`
#    of `claim` and run `tests/stages/test_stage_07.py -k Duplicates`. What breaks?
# 3. Replay the archive (`StartReplay`) over the whole run, to the payments rule
#    only. How many new charges do you expect?

# %%
cloud.stop()
