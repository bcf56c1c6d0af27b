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
# This notebook runs stage 9 (`chapters/09-security/template.yaml`, the finished
# system in `sam-app/`): stage 8's shop with least-privilege roles, one customer
# managed KMS key for every queue, topic, table and stream, and queue and topic
# policies that refuse plain HTTP.

# %%
import sys
from collections import Counter

import boto3
from IPython.display import Markdown, display

import edakit.paths
from edakit import LocalCloud, iam

if str(edakit.paths.SHOP_SRC) not in sys.path:
    sys.path.insert(0, str(edakit.paths.SHOP_SRC))  # the shop's code, shared by every stage

from edakit.diagrams import architecture, show
from edakit.scenarios import a_day_of_the_shop

stage = edakit.paths.chapter("09")
cloud = LocalCloud.from_template(stage)
cloud.start()
print(f"stage 9 is running: {len(cloud.deployment.physical_ids)} resources, {len(cloud.functions)} functions")
show(architecture(cloud))

# %% [markdown]
# ## A day of the shop
#
# Every function has work to do, so that every path a deployed shop takes in a
# normal day is recorded. Alice's, Erin's and Frank's orders are paid (the
# simulated gateway fails now and then, and payments retries) and confirmed; Bob's
# is out of stock; Dave's card is declined, so his order is cancelled and its stock
# released; Carol's names a product the order service does not know yet, a poison
# order that ends in `OrdersDLQ` and `ConsumerFailuresQueue`. Meanwhile the
# storefront's clickstream goes to the analytics stream. The stage test runs the
# same day (`edakit/scenarios.py`).

# %%
day = a_day_of_the_shop(cloud)
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
# its reason, in `sam-app/least-privilege-exceptions.yaml` (the chapter links to it).
# Where a template grants much more than the code calls, stage 9 writes the one
# statement it needs instead: the payments ledger and the analytics results.

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
# Every queue, topic, table and the stream use the shop's customer managed key
# (rotated yearly). Every queue and topic policy denies any request whose
# `aws:SecureTransport` is `false`. EventBridge and SNS, which write into the
# encrypted queues on their own behalf, and CloudWatch, which publishes alarms to
# the encrypted alarm topic, are allowed to by the key policy.

# %%
key = boto3.client("kms").describe_key(KeyId=cloud.physical_id("ShopKey"))["KeyMetadata"]
encrypted = Counter(kind for kind, arn in
                    [("queue", q.queue_arn) for q in cloud.sqs_backend.queues.values()]
                    + [("topic", t.arn) for t in cloud.sns_backend.topics.values()]
                    + [("table", f"arn:aws:dynamodb:{cloud.region}:{cloud.account_id}:table/{t}")
                       for t in cloud.dynamodb_backend.tables]
                    + [("stream", s.arn) for s in cloud.kinesis_backend.streams.values()]
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
#   that write on their own behalf (EventBridge, SNS, CloudWatch) use it.
# - A `Deny` on `aws:SecureTransport: "false"` makes TLS mandatory.
#
# ## Try this
#
# 1. Replace `DynamoDBReadPolicy` of `OrderStatusFunction` by `DynamoDBCrudPolicy` and
#    run `pytest tests/stages/test_stage_09.py`: which grants does the test name?
# 2. Remove the key policy's statement for `sns.amazonaws.com`. Which deliveries
#    does `iam.service_delivery_problems(cloud)` report?
# 3. Write the idempotency table's permissions as one inline statement with the four
#    actions Powertools calls, and shorten the exceptions file.
