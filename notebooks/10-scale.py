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
# # 10. Scaling for peak
#
# Black Friday. For weeks the storefront took a few orders a minute; at nine it
# takes hundreds. The shop was built for this: the bus routes each order, the queue
# **buffers** what order processing cannot take yet, and every consumer scales on
# its own. Three knobs decide how it absorbs the spike:
#
# - **MaximumConcurrency** of order processing's SQS event source: at most this many
#   batches at once, whatever the backlog;
# - **reserved concurrency** of the order processing function: at most this many
#   executions, but Lambda's SQS pollers do not look at it;
# - the **shard count** of the analytics stream: one batch in flight per shard.
#
# Stage 10 (`chapters/10-scale/template.yaml`) makes them parameters. This notebook
# shows what each one moves: first the chapter's four spikes of 200 orders in a
# virtual minute on the local cloud, then a capacity model for a day far bigger than
# one machine can replay. The spikes take minutes of wall time (a wall second for
# every six orders or so), so this notebook reads them from
# `chapters/10-scale/spike.json`: `python -m edakit spike --write` (or `make spike`)
# ran them on the local cloud, and the stage test runs them again and checks the
# file. To run one yourself, `edakit.spike.run_spike(cloud, Spike(...), Knobs(...))`
# on a `LocalCloud.from_template("chapters/10-scale")`.

# %%
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from edakit.capacity import ANSWER_FILE as capacity_answer
from edakit.capacity import simulate
from edakit.diagrams import show
from edakit.spike import SPIKE_DURATIONS, Knobs, Spike, load

runs = load()  # label -> SpikeResult, as the spikes on the local cloud gave them
rows = ["| spike | peak backlog | oldest message | concurrency | throttles | iterator age | latency p50 / p99 | in the DLQ |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |"]
for label, run in runs.items():
    rows.append(f"| {label} | {run.peak_backlog} | {run.peak_age:.0f} s | {run.peak_concurrency} | "
                f"{run.throttles} | {run.peak_iterator_age:.0f} s | "
                f"{run.latency(0.5):.0f} s / {run.latency(0.99):.0f} s | {run.dead_lettered} |")
display(Markdown("\n".join(rows)))

# %% [markdown]
# ## Which knob moves which curve
#
# Each column turns one knob down from the baseline (MaximumConcurrency 10, no
# reservation, 4 shards; grey, hidden where the curves are the same); each row is a
# graph CloudWatch would draw, the last one each order's end-to-end latency, placed
# at the second the order was placed. Order
# processing takes 4 s a batch of up to 10 messages, and each order puts three
# messages in `OrdersQueue` (the order, inventory's answer, the payment's outcome).

# %%
COLUMNS = ["MaximumConcurrency 2", "reserved concurrency 2", "1 shard"]
ROWS = [  # each sample's (what CloudWatch graphs at one virtual second) value on the row
    ("OrdersQueue messages", lambda s: s.visible + s.in_flight),
    ("oldest message (s)", lambda s: s.oldest_age),
    ("concurrent executions", lambda s: s.concurrency),
    ("throttles (cumulative)", lambda s: s.throttles),
    ("iterator age (s)", lambda s: s.iterator_age),
]


def curve(ax, run, pick, **style):
    points = [(s.second, pick(s)) for s in run.samples if pick(s) is not None]
    ax.plot([x for x, _ in points], [y for _, y in points], **style)


fig, axes = plt.subplots(len(ROWS) + 1, len(COLUMNS), figsize=(11, 11), sharex="col", dpi=72)
for column, label in enumerate(COLUMNS):
    axes[0][column].set_title(label)
    for row, (name, pick) in enumerate(ROWS):
        ax = axes[row][column]
        curve(ax, runs["baseline"], pick, color="#9e9e9e", label="baseline")
        curve(ax, runs[label], pick, color="#c62828", label=label)
        if column == 0:
            ax.set_ylabel(name)
    ax = axes[len(ROWS)][column]
    for run, color in ((runs["baseline"], "#9e9e9e"), (runs[label], "#c62828")):
        ax.scatter([p for p, _ in run.latencies], [v for _, v in run.latencies], s=4, color=color)
    ax.set_xlabel("virtual seconds since the spike began")
    ax.set_xlim(0, 300)
    if column == 0:
        ax.set_ylabel("latency (s), at placement")
axes[0][0].legend(loc="upper right", fontsize=8)
fig.suptitle("Stage 10: 200 orders in a virtual minute, one knob turned down per column")
fig.tight_layout()
plt.show()

# %% [markdown]
# Read the columns:
#
# - **MaximumConcurrency 2** moves the **backlog**, the **age of the oldest message**
#   and the **latency**: orders wait in the queue, which is what a buffer is for, and
#   drain after the spike. Nothing is throttled and no receive is wasted.
# - **Reserved concurrency 2** caps the executions too, but **throttles**: up to 10
#   pollers receive batches that 2 executions cannot run. Lambda retries them while
#   their messages are invisible; when the visibility timeout passes first, the
#   messages go back to the queue with a receive spent. To cap an SQS consumer, use
#   MaximumConcurrency, and if you also reserve, reserve at least as much.
# - **1 shard** leaves the queue alone and moves the **iterator age**: the analytics
#   consumer reads one batch per shard at a time, so the clickstream waits in the
#   stream. More shards, more parallel batches (and 0.015 USD an hour each).

# %% [markdown]
# ## The lesson, drawn from the numbers
#
# A knob "moves" a curve when its peak is at least one and a half times the
# baseline's (or, for throttles, above zero where the baseline has none).

# %%
def peaks(run):
    return {"backlog": run.peak_backlog, "oldest message": run.peak_age, "throttles": run.throttles,
            "iterator age": run.peak_iterator_age, "latency p50": run.latency(0.5)}


base = peaks(runs["baseline"])
lines = ["flowchart LR"]
for number, label in enumerate(COLUMNS):
    turned = peaks(runs[label])
    lines.append(f'    K{number}["{label}"]')
    for metric, value in turned.items():
        if (base[metric] == 0 and value > 0) or (base[metric] > 0 and value >= 1.5 * base[metric]):
            lines.append(f'    K{number} --> M{metric.replace(" ", "_")}["{metric}"]')
show("\n".join(lines))

# %% [markdown]
# ## The capacity model
#
# One machine replays hundreds of orders, not millions. `edakit.capacity` is a
# discrete-event simulation (SimPy) of the same path with AWS's documented quotas
# and scaling rates: the SQS pollers' ramp, MaximumConcurrency, reserved and account
# concurrency, Lambda's scaling rate, Kinesis's per-shard limits and the PutEvents
# quota. It is calibrated against the local cloud: given the same orders at the same
# instants, both draw the same backlog (`tests/capacity/test_calibration.py` states
# the tolerance). Here it replays the chapter's turned-down spikes in a fraction of a
# second, then a spike five times as big, which only the model can run in seconds.
# Change the knobs and rerun the cell.

# %%
fig, axes = plt.subplots(1, 3, figsize=(11, 3), dpi=72)
for ax, label in zip(axes[:2], ("MaximumConcurrency 2", "reserved concurrency 2")):
    run = runs[label]
    model = simulate(run.placed_at, run.knobs, run.durations)  # the same orders, knobs and durations
    ax.plot([s.second for s in run.samples], [s.visible + s.in_flight for s in run.samples],
            color="#c62828", label="local cloud")
    ax.plot([s.second for s in model.samples], [s.visible + s.in_flight for s in model.samples],
            color="#1565c0", linestyle="--", label="capacity model")
    ax.set_title(label)
    ax.set_xlim(0, 300)
    ax.set_xlabel("virtual seconds")
axes[0].set_ylabel("OrdersQueue messages")
axes[0].legend()
# Beyond the local cloud: a spike five times as big, in the model only.
bigger = Spike(orders=1000, seconds=60, seed=7).arrivals()
for cap, color in ((2, "#c62828"), (10, "#9e9e9e"), (50, "#2e7d32")):
    model = simulate(bigger, Knobs(maximum_concurrency=cap, shard_count=4), SPIKE_DURATIONS)
    axes[2].plot([s.second for s in model.samples], [s.visible + s.in_flight for s in model.samples],
                 color=color, label=f"MaximumConcurrency {cap}")
axes[2].set_title("1,000 orders in a minute (model)")
axes[2].set_xlim(0, 900)
axes[2].set_xlabel("virtual seconds")
axes[2].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## One million orders in an hour
#
# The model's answer, simulated batch by batch (6 s a run, too long for this page;
# `python -m edakit capacity --write` wrote it, and a test checks it is current): with
# the shop as deployed, then with order processing's cap raised for the peak. The
# backlog, the latency, the quota that breaks first and what the hour costs.

# %%
display(Markdown(capacity_answer.read_text()))

# %% [markdown]
# Read it as an operator before the day:
#
# - **As deployed, order processing is the bottleneck.** Five batches at once, of 10
#   messages each, cannot take three messages for each of 278 orders a second: the
#   backlog grows for the whole hour and orders wait half an hour: the
#   **MaximumConcurrency** knob is doing exactly its job.
# - **Raised to 50, OrdersQueue keeps up,** and the next cap shows: payments, whose
#   mapping is held at 5 batches (and whose gateway fails 30 % of the calls). A peak is
#   a chain: each consumer's capacity must be raised, or the backlog moves downstream.
# - **The first quota to break is the FIFO status queue's.** OrderPlaced,
#   InventoryReserved and OrderConfirmed each go to OrderStatusQueue, one SendMessage
#   apiece: 750 to 820 a second at the peak, against a FIFO queue's 300. Its consumer
#   is slower still. A rule target gives every message the same MessageGroupId, so the
#   queue has one message group, handled one message at a time: about 36,000 of the
#   3 million in the hour. The status history falls days behind. High throughput does
#   not help, because its quota applies per message group. Per-order groups would, and
#   a rule target cannot set them: it takes something between the bus and the queue.
# - **The SMS spend limit breaks too:** a new account may spend 1 USD a month on SMS,
#   about 172 confirmations. Raise it with AWS Support weeks before the day. The other
#   rate quotas (PutEvents, rule invocations, Kinesis shards, DynamoDB on-demand, the
#   account's concurrency) stay below their limits.
# - **The cost is SMS.** About 5,880 USD for the hour, 99 % of it text messages; the
#   serverless part (events, queues, functions, tables, the stream) costs a few USD.

# %% [markdown]
# ## Summary
#
# - A queue in front of a consumer turns a spike into a backlog: nothing is lost, and
#   what the spike costs is **latency**, read as the age of the oldest message.
# - **MaximumConcurrency** is the knob for "at most N batches at once" on an SQS
#   consumer: the backlog waits in the queue. **Reserved concurrency** below the
#   pollers gives the same cap with **throttles**, wasted receives and, at worst,
#   orders in the DLQ that never ran.
# - The **shard count** sets a stream consumer's parallelism: one batch in flight per
#   shard. Its symptom is the **iterator age**, not the queue.
# - A peak is a chain: raise one consumer's cap and the backlog moves to the next
#   (payments, here). A model built on the documented quotas says where, before the
#   day: here, the FIFO status queue's 300 sends a second and a new account's SMS
#   spend limit.
#
# ## Try this
#
# 1. On a `LocalCloud.from_template("chapters/10-scale")`, run
#    `run_spike(cloud, Spike(orders=30, seconds=5), Knobs(maximum_concurrency=2, reserved_concurrency=1))`:
#    how many throttles, and does any order reach `OrdersDLQ`?
# 2. In the model cell, make order processing faster (`dataclasses.replace(SPIKE_DURATIONS,
#    order_processing=1.0)`): which MaximumConcurrency does the 1,000-order spike need now?
# 3. Run `million_orders_an_hour(Knobs(maximum_concurrency=50), Durations(payments=0.05))`
#    (from `edakit.capacity` and `edakit.spike`; 6 s): does the latency follow the
#    faster payments? Which quota is now the busiest?
