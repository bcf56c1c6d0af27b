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
# # 9. Security
#
# Each function's role should grant what the function does, and nothing more.
# "What the function does" is not a guess here: the local cloud records every AWS
# call a function's code makes while it runs. It adds the calls that the Lambda
# service makes with the same role (polling the queue, writing the logs, sending
# to the OnFailure queue) and the KMS calls behind each use of an encrypted
# resource. Then it decides each call against the role as deployed, the way IAM
# does: an explicit deny wins, then an allow, else the implicit deny.
#
# This notebook runs stage 9 (`chapters/09-security/template.yaml`): stage 5's
# shop with least-privilege roles, one customer managed KMS key for every queue,
# topic and table, and queue and topic policies that refuse plain HTTP.

# %%
import sys
from collections import Counter

import boto3
from IPython.display import Markdown, display

import edakit.paths
from edakit import LocalCloud, iam

if str(edakit.paths.SHOP_SRC) not in sys.path:
    sys.path.insert(0, str(edakit.paths.SHOP_SRC))  # the shop's code, shared by every stage

from shop.adapters.dynamodb import DynamoDBStockRepository
from shop.events import OrderLine
from shop.inventory import seed_stock
from shop.storefront import Cart, Storefront

stage = edakit.paths.chapter("09")
cloud = LocalCloud.from_template(stage)
cloud.start()
print(f"stage 9 is running: {len(cloud.deployment.physical_ids)} resources")

# %% [markdown]
# ## A day of the shop
#
# Alice's order is confirmed, Bob's is out of stock, and Carol's names a product
# the order service does not know yet: a poison order. It fails order processing
# three times and lands in `OrdersDLQ`; inventory fails it three times and sends
# the invocation record to `ConsumerFailuresQueue`. Every path of stage 5 runs.

# %%
def line(sku: str, quantity: int) -> OrderLine:
    return OrderLine(sku=sku, quantity=quantity, unit_price_cents=1500)


seed_stock(DynamoDBStockRepository(cloud.physical_id("StockTable"), cloud.physical_id("ReservationsTable")),
           {"BOOK-001": 5, "MUG-001": 1})
Storefront(cloud.outputs["EventBusName"]).place_orders(
    [Cart("alice", [line("BOOK-001", 2)]), Cart("bob", [line("MUG-001", 2)]), Cart("carol", [line("NEW-PRODUCT-001", 1)])])
cloud.run_until_idle()
print(Counter(i.function for i in cloud.invocations()))

# %% [markdown]
# ## Every call, and what allows it
#
# *by* says who made the call with the function's role: its **code** (recorded
# while it ran), **Lambda** (for its event source, its logs, its OnFailure
# destination), or **KMS** (the key calls that SQS, SNS and DynamoDB make for the
# caller, because the resource is encrypted with the shop's key). Log calls are left
# out of the table; every function makes the same three.

# %%
exceptions = iam.load_exceptions(stage / "least-privilege-exceptions.yaml")
report = iam.least_privilege(cloud, exceptions)
rows = ["| function | action | resource | by | decision |", "| --- | --- | --- | --- | --- |"]
for function, result in report.functions.items():
    code = cloud.call_recorder.calls.get(function, set())
    service = iam.lambda_service_calls(cloud, function)
    for action, resource in sorted(result.calls):
        if action.startswith("logs:"):
            continue
        by = "code" if (action, resource) in code else "Lambda" if (action, resource) in service else "KMS"
        decision = result.calls[(action, resource)]
        rows.append(f"| {function} | {action} | {report.name(resource)} | {by} | "
                    f"{'allowed' if decision.allowed else 'DENIED'} |")
display(Markdown("\n".join(rows)))

# %% [markdown]
# ## Grants nobody used
#
# A grant is one action of one policy statement. SAM's policy templates grant a
# fixed set of actions, so some are never called: each of those is listed, with
# its reason, in `chapters/09-security/least-privilege-exceptions.yaml`.

# %%
rows = ["| function | unused grant | why it stays |", "| --- | --- | --- |"]
for function, result in report.functions.items():
    for grant, why in result.excepted.items():
        if not result.grants[grant]:
            rows.append(f"| {function} | {grant.describe(report.names)} | {why[:90]}… |")
display(Markdown("\n".join(rows)))
denied = sum(len(r.denied) for r in report.functions.values())
unused = sum(len(r.unused) for r in report.functions.values())
print(f"{denied} calls denied, {unused} unused grants outside the exceptions")

# %% [markdown]
# ## Break it: a policy less
#
# What if the notifications function lost its `SNSPublishMessagePolicy` (SAM
# names it `NotificationFunctionRolePolicy0` in the translated template)? The same
# recorded calls, against the role without it:

# %%
without = iam.least_privilege(cloud, exceptions, without=("NotificationFunctionRolePolicy0",))
print("\n".join(p for p in without.problems() if "not allowed" in p))

# %% [markdown]
# ## Encryption at rest, TLS in transit
#
# Every queue, the topic and every table use the shop's customer managed key
# (rotated yearly). Every queue and topic policy denies any request whose
# `aws:SecureTransport` is `false`. EventBridge and SNS, which write into the
# encrypted queues on their own behalf, are allowed to by the key policy.

# %%
key = boto3.client("kms").describe_key(KeyId=cloud.physical_id("ShopKey"))["KeyMetadata"]
encrypted = Counter(kind for kind, arn in
                    [("queue", q.queue_arn) for q in cloud.sqs_backend.queues.values()]
                    + [("topic", t.arn) for t in cloud.sns_backend.topics.values()]
                    + [("table", f"arn:aws:dynamodb:{cloud.region}:{cloud.account_id}:table/{t}")
                       for t in cloud.dynamodb_backend.tables]
                    if iam.customer_managed_key(cloud, arn) == key["Arn"])
print(f"encrypted with ShopKey ({key['KeyManager'].lower()} managed): {dict(encrypted)}")
print(f"problems: {iam.security_problems(cloud) + iam.service_delivery_problems(cloud) or 'none'}")

# %%
cloud.stop()

# %% [markdown]
# ## Summary
#
# - Least privilege can be shown, not only claimed: record what each function
#   calls, add what Lambda and KMS call for it, and compare with what its role
#   grants. Both directions matter: a call not allowed fails in AWS; a grant not
#   used is an attack surface.
# - The execution role is used by more than the code: event source polling, logs,
#   DLQs and destinations, and the KMS calls behind encrypted queues, topics and tables.
# - A customer managed key encrypts at rest; its key policy must let the services
#   that write on their own behalf (EventBridge, SNS) use it.
# - A `Deny` on `aws:SecureTransport: "false"` makes TLS mandatory.
#
# ## Exercises
#
# 1. Replace `DynamoDBReadPolicy` of `OrderStatusFunction` by `DynamoDBCrudPolicy` and
#    run `pytest tests/stages/test_stage_09.py`: which grants does the test name?
# 2. Remove the key policy's statement for `sns.amazonaws.com`. Which deliveries
#    does `iam.service_delivery_problems(cloud)` report?
# 3. Write the idempotency table's permissions as one inline statement with the four
#    actions Powertools calls, and shorten the exceptions file.
