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
# # 5. Fan-out with SNS
#
# When an order is confirmed, or cannot be fulfilled, several parties want to
# know. The customer wants an email, and a text message when the order ships.
# Shipping wants the confirmed orders, customer service the failed ones, and
# tomorrow some team we have not heard of yet will want them too.
#
# The notifications function does not call any of them. It publishes **one**
# message per status change to an SNS topic, `OrderStatusTopic`. SNS delivers a
# copy to every **subscription** whose **filter policy** matches the message's
# attributes. That is **fan-out**. People are reached through
# *application-to-person* (A2P) subscriptions, here email and SMS. Services are
# reached through *application-to-application* (A2A) subscriptions, here SQS queues.
#
# This notebook runs stage 5 (`chapters/05-fanout/template.yaml`) on the local
# cloud. The local cloud never sends an email or a text message: it records each one
# in `cloud.notifications`, after the subscription's filter policy, just as SNS
# would have delivered it.

# %%
import json
import re
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

cloud = LocalCloud.from_template(edakit.paths.chapter("05"))
cloud.start()
storefront = Storefront(cloud.outputs["EventBusName"])
topic_arn = cloud.physical_id("OrderStatusTopic")
print(f"stage 5 is running: {len(cloud.deployment.physical_ids)} resources, topic {topic_arn.rsplit(':', 1)[-1]}")

# %% [markdown]
# ## The stage, as deployed
#
# The picture is read back from the running system. Stage 4 is still all there.
# The new part is on the right: `NotificationFunction` publishes to
# `OrderStatusTopic`, and each arrow out of the topic is a subscription, labelled
# with its filter policy.

# %%
show(architecture(cloud))

# %% [markdown]
# ## The subscriptions and their filter policies
#
# Every message on the topic carries **message attributes**: `order_status`,
# `event_type`, and when the event says them, `customer_id` and `total_cents`
# (a *Number*). Each subscription's filter policy is matched against them. A
# subscription without a filter policy would get everything.

# %%
sns, sqs = boto3.client("sns"), boto3.client("sqs")
queue_names = {sqs.get_queue_attributes(QueueUrl=cloud.physical_id(q), AttributeNames=["QueueArn"])
               ["Attributes"]["QueueArn"]: q for q in ("ShippingQueue", "CustomerServiceQueue", "LoyaltyQueue")}
rows = ["| protocol | endpoint | filter policy | raw delivery |", "| --- | --- | --- | --- |"]
for subscription in sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]:
    attributes = sns.get_subscription_attributes(SubscriptionArn=subscription["SubscriptionArn"])["Attributes"]
    endpoint = queue_names.get(subscription["Endpoint"], subscription["Endpoint"])
    rows.append(f"| {subscription['Protocol']} | {endpoint} | `{attributes.get('FilterPolicy', '')}` "
                f"| {attributes['RawMessageDelivery']} |")
display(Markdown("\n".join(rows)))

# %% [markdown]
# ## Two orders
#
# There are books in stock, and one mug. Alice orders two books (30.00 EUR). Bob
# orders two mugs. The rest of the chain is stage 4's: inventory reserves or
# refuses, order processing confirms, and the notifications function hears
# `OrderConfirmed` and `OutOfStock` through its own EventBridge rules.


# %%
def line(sku: str, quantity: int, unit_price_cents: int = 1500) -> OrderLine:
    return OrderLine(sku=sku, quantity=quantity, unit_price_cents=unit_price_cents)


def status_of(order_id: str) -> str:
    item = boto3.client("dynamodb").get_item(
        TableName=cloud.physical_id("OrdersTable"), Key={"order_id": {"S": order_id}}).get("Item")
    return item["status"]["S"] if item else "not recorded"


stock = DynamoDBStockRepository(cloud.physical_id("StockTable"), cloud.physical_id("ReservationsTable"))
seed_stock(stock, {"BOOK-001": 10, "MUG-001": 1})
alice, bob = storefront.place_orders([Cart("alice", [line("BOOK-001", 2)]), Cart("bob", [line("MUG-001", 2)])])
cloud.run_until_idle()
customers = {alice.order_id: "alice", bob.order_id: "bob"}
for order in (alice, bob):
    print(f"{customers[order.order_id]}: {status_of(order.order_id)}")

# %% [markdown]
# ## One publish, many deliveries
#
# The notifications function ran once per status change and published once each
# time. It does not know who listens. SNS made the copies:

# %%
for invocation in cloud.invocations("NotificationFunction"):
    result = invocation.result
    print(f"{customers[result['order_id']]}: published {result['order_status']} (message {result['message_id'][:8]})")
deliveries = len(cloud.notifications) + sum(len(cloud.messages(q)) for q in queue_names.values())
print(f"1 publish per status change, {deliveries} deliveries")

# %% [markdown]
# ## The customer's inbox and phone
#
# Email and SMS are application-to-person protocols. Each one got its own text
# from the same message: the function publishes with `MessageStructure: json`,
# with an `email` text, a short `sms` text, and a `default` (the shop event)
# for every other protocol. Bob gets no text message: the SMS subscription's filter
# policy takes `CONFIRMED` only.

# %%
rows = ["| protocol | endpoint | subject | message |", "| --- | --- | --- | --- |"]
for notification in cloud.notifications:
    first_line = notification.message.replace("\n\n", " ").splitlines()[0][:70]
    rows.append(f"| {notification.protocol} | {notification.endpoint} | {notification.subject or ''} | {first_line}… |")
display(Markdown("\n".join(rows)))

# %% [markdown]
# This is Alice's email as SNS would have sent it. The local cloud kept it and
# sent nothing:

# %%
email = next(n for n in cloud.notifications if n.protocol == "email" and alice.order_id in n.message)
print(f"To: {email.endpoint}\nSubject: {email.subject}\n\n{email.message}")
print(f"\nnothing was sent: {len(cloud.notifications)} notifications recorded in cloud.notifications")

# %% [markdown]
# ## What each service got
#
# The queues are subscribed with **raw message delivery**, so a message body
# is the shop event itself, without SNS's JSON envelope. A service reads it with
# the same channel adapter as an event from the bus. Shipping got the
# confirmed order, customer service the failed one, and loyalty the confirmed
# order, because it is over 20.00 EUR.

# %%
def service_deliveries() -> dict[str, list[str]]:
    return {queue: [f"{json.loads(body)['detail-type']} ({customers.get(json.loads(body)['detail']['order_id'], '?')})"
                    for body in cloud.messages(queue)] for queue in queue_names.values()}


for queue, got in service_deliveries().items():
    print(f"{queue}: {', '.join(got) or 'nothing'}")

# %% [markdown]
# ## Filter policies at work: a number
#
# Loyalty's filter policy has two conditions, and both must match:
# `order_status` is `CONFIRMED`, and `total_cents` is a number of at least 2000.
# Carol orders one book for 15.00 EUR. Her order is confirmed, so she gets the
# email and the text message, and shipping gets the order. Loyalty does not.

# %%
[carol] = storefront.place_orders([Cart("carol", [line("BOOK-001", 1)])])
cloud.run_until_idle()
customers[carol.order_id] = "carol"
print(f"carol: {status_of(carol.order_id)}")
for queue, got in service_deliveries().items():
    print(f"{queue}: {', '.join(got) or 'nothing'}")
print("carol's texts:", [n.message for n in cloud.notifications if n.protocol == "sms" and carol.order_id[:8] in n.message])

# %% [markdown]
# ## Deliveries per subscriber
#
# Every copy SNS made, per subscription and per status:

# %%
per_subscriber: Counter[tuple[str, str]] = Counter()
for notification in cloud.notifications:
    per_subscriber[(notification.protocol, notification.message_attributes["order_status"]["Value"])] += 1
for queue in queue_names.values():
    for body in cloud.messages(queue):
        status = {"OrderConfirmed": "CONFIRMED", "OutOfStock": "OUT_OF_STOCK"}[json.loads(body)["detail-type"]]
        per_subscriber[(queue, status)] += 1
subscribers = ["email", "sms", *queue_names.values()]
fig, ax = plt.subplots(figsize=(7, 2.8))
left = [0] * len(subscribers)
for status, colour in (("CONFIRMED", "#2e7d32"), ("OUT_OF_STOCK", "#c62828")):
    counts = [per_subscriber[(s, status)] for s in subscribers]
    ax.barh(subscribers, counts, left=left, color=colour, label=status)
    left = [a + b for a, b in zip(left, counts)]
ax.invert_yaxis()
ax.set_xlabel("deliveries")
ax.set_title("Stage 5: what each subscription received (3 orders)")
ax.legend(loc="lower right")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## A new consumer, and no producer changes
#
# The loyalty queue is this chapter's *new consumer*. Adding it took three
# resources: a queue, a subscription with its filter policy, and a queue policy
# that lets the topic send to it. It also took one output. Nothing else in the
# template changed: not the topic, not the function, not the shop's code. These are
# the lines that add it, marked in the template:

# %%
template_text = (edakit.paths.chapter("05") / "template.yaml").read_text()
blocks = re.findall(r"^  # >>> new consumer: loyalty.*?^  # <<< new consumer: loyalty\n", template_text, re.M | re.S)
display(Markdown("```yaml\n" + "\n".join(blocks) + "```"))
print(f"{sum(len(b.splitlines()) for b in blocks)} lines added; 0 lines of any producer changed")

# %% [markdown]
# The chapter's README shows the same thing as a diff. The stage test deploys
# the stage with and without these lines and runs the same orders through both.
# The producers do the same work, and every other subscriber gets the same
# messages. Only the new queue gets more.
#
# ## Summary
#
# - **Fan-out:** a producer publishes once to a topic. SNS delivers a copy to
#   every subscription. A new consumer subscribes, and no producer changes.
# - **Filter policies** choose what each subscription gets, from the message
#   attributes: exact strings (`order_status`), numbers (`total_cents >= 2000`).
#   A message that matches no policy is delivered to nobody.
# - **Application-to-person** subscriptions (email, SMS) reach people.
#   `MessageStructure: json` gives each protocol its own text. On AWS, an email
#   subscription must be confirmed by its owner before it receives anything.
#   Offline, the local cloud records the deliveries and sends nothing.
# - **Application-to-application** subscriptions (SQS) reach services. Raw
#   message delivery hands them the shop event without SNS's envelope. A queue
#   policy with `aws:SourceArn` lets only the topic send to the queue.
#
# ## Try this
#
# 1. A message without attributes: who gets it? Predict, then run.

# %%
before = len(cloud.notifications)
sns.publish(TopicArn=topic_arn, Subject="Hello", Message="A message with no attributes")
cloud.run_until_idle()
print("notifications recorded:", len(cloud.notifications) - before)

# %% [markdown]
# 2. Subscribe a new consumer yourself, while the system runs. This one is an
#    analytics queue for confirmed orders of 50.00 EUR or more. Then place an
#    order of 60.00 EUR and one of 15.00 EUR. No producer is redeployed.

# %%
big_orders_url = sqs.create_queue(QueueName="big-orders")["QueueUrl"]
big_orders_arn = sqs.get_queue_attributes(QueueUrl=big_orders_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=big_orders_arn, ReturnSubscriptionArn=True,
              Attributes={"RawMessageDelivery": "true",
                          "FilterPolicy": json.dumps({"total_cents": [{"numeric": [">=", 5000]}]})})
dave, erin = storefront.place_orders([Cart("dave", [line("BOOK-001", 4)]), Cart("erin", [line("BOOK-001", 1)])])
cloud.run_until_idle()
received = [json.loads(m["Body"])["detail"]["order_id"] for m in sqs.receive_message(
    QueueUrl=big_orders_url, MaxNumberOfMessages=10).get("Messages", [])]
print("big-orders got:", ["dave" if r == dave.order_id else "erin" if r == erin.order_id else r for r in received])

# %% [markdown]
# 3. In a copy of the template (`LocalCloud.from_template("my-stage/template.yaml")`,
#    with `CodeUri` still pointing at `sam-app/src/`), send text messages for
#    out-of-stock orders too. Which one line changes? Place Bob's order again and
#    look at `cloud.notifications`.
# 4. In your copy, change the email subscription's protocol to `email-json`.
#    What does the recipient get now? (Hint: `json.loads(notification.message)`.)
# 5. Remove `RawMessageDelivery` from the shipping subscription and read a
#    message from the queue. Where is the shop event now?
#
# When you are done, stop the local cloud (its state lives in this kernel):

# %%
cloud.stop()
