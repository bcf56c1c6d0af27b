"""The capacity model (edakit.capacity) follows AWS's documented quotas and scaling rates.

Each test names the AWS page whose numbers it checks.
"""

from __future__ import annotations

import math
import time

import pytest

from edakit.capacity import (
    Q_KINESIS_RECORDS,
    Q_POLLERS,
    Q_PUT_EVENTS,
    Q_SMS,
    SHOP,
    Durations,
    Knobs,
    million_orders_an_hour,
    simulate,
)

#: Orders placed at once: a backlog far larger than the pollers can take.
BIG_BACKLOG = [0.0] * 60_000


class TestSqsPollers:
    def test_concurrency_starts_at_five_and_adds_at_most_300_a_minute_up_to_1000(self) -> None:
        """Lambda starts five concurrent batches, adds up to 300 a minute while messages
        remain, and processes at most 1,000 batches at once.
        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html"""
        # given a long backlog and slow batches, MaximumConcurrency at its highest and no reservation
        result = simulate(BIG_BACKLOG, Knobs(maximum_concurrency=1000), Durations(order_processing=8.0), horizon=400)
        concurrency = [s.concurrency for s in result.samples]
        # then it starts at 5 (once inventory's burst leaves it any concurrency) ...
        assert 0 < next(c for c in concurrency if c) <= 5
        # ... never more than 5 plus 300 a minute since the messages came ...
        for sample in result.samples:
            assert sample.concurrency <= 5 + 300 * sample.second / 60
        # ... and the mapping reaches 1,000 batches at once, never more (the function gets
        # nearly all of them: payments and inventory share the account's 1,000)
        assert result.quota_use[Q_POLLERS] == 1.0
        assert 950 <= max(concurrency) <= 1000


class TestConcurrencyKnobs:
    def test_maximum_concurrency_caps_batches_without_throttles(self) -> None:
        """ScalingConfig MaximumConcurrency limits the concurrent batches the SQS mapping invokes.
        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html"""
        result = simulate(BIG_BACKLOG[:2000], Knobs(maximum_concurrency=3), Durations(order_processing=2.0),
                          horizon=120)
        assert max(s.concurrency for s in result.samples) == 3
        assert result.throttles == 0

    def test_reserved_concurrency_below_the_pollers_throttles_then_dead_letters(self) -> None:
        """Event source mappings don't account for reserved concurrency: pollers receive
        batches the function cannot run, which are throttled, retried while their visibility
        timeout lasts, and returned with a receive spent; after maxReceiveCount they go to the DLQ.
        https://repost.aws/knowledge-center/lambda-sqs-scaling
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html"""
        # given 20 pollers (MaximumConcurrency 20) and 1 reserved execution, for a long overload
        knobs = Knobs(maximum_concurrency=20, reserved_concurrency=1)
        result = simulate([0.0] * 3000, knobs, Durations(order_processing=5.0), horizon=900)
        assert result.throttles > 0
        assert max(s.concurrency for s in result.samples) == 1
        # a message is received maxReceiveCount times before SQS dead-letters it
        assert SHOP.orders_max_receive_count == 3
        assert result.dead_lettered > 0
        # without the reservation, nothing is dead-lettered (a throttle or two at the start:
        # inventory's 3,000 asynchronous events take the account's concurrency for a moment)
        calm = simulate([0.0] * 3000, Knobs(maximum_concurrency=20), Durations(order_processing=5.0), horizon=900)
        assert calm.dead_lettered == 0 and calm.throttles <= 5 < result.throttles


class TestKinesis:
    def test_writes_above_1000_records_a_second_per_shard_are_refused_and_retried(self) -> None:
        """A shard takes 1,000 records (1 MiB) a second of writes; the rest is refused
        (ProvisionedThroughputExceeded) and the producer retries it.
        https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html"""
        # 1,500 orders a second for 5 seconds: 1,500 OrderPlaced records a second on one shard
        arrivals = [second + i / 1500 for second in range(5) for i in range(1500)]
        result = simulate(arrivals, Knobs(maximum_concurrency=1000, shard_count=1), horizon=60)
        assert result.quota_use[Q_KINESIS_RECORDS] >= 1.5
        assert result.kinesis_refused > 0
        # two shards take the same load without refusing any
        wider = simulate(arrivals, Knobs(maximum_concurrency=1000, shard_count=2), horizon=60)
        assert wider.kinesis_refused == 0

    def test_more_shards_lower_the_iterator_age(self) -> None:
        """The Kinesis consumer processes one batch per shard at a time: more shards, more
        batches in parallel, fresher records (IteratorAge).
        https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html
        https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html"""
        arrivals = [i / 20 for i in range(2400)]  # 20 orders a second for two minutes
        slow = Durations(analytics=5.0)
        ages = {shards: max(s.iterator_age for s in simulate(arrivals, Knobs(shard_count=shards), slow).samples)
                for shards in (1, 4)}
        # one shard reads 100 records per 5 s and falls behind; four keep up (the 5 s batching window remains)
        assert ages[1] > 60
        assert ages[4] <= 10


class TestQuotaChecks:
    def test_put_events_requests_show_in_quota_use(self) -> None:
        """PutEvents: 10,000 requests a second in us-east-1 (10 entries each at most).
        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html"""
        # 3,000 checkouts in one second: 3,000 storefront requests, plus the functions' own
        result = simulate([0.5] * 3000, Knobs(maximum_concurrency=1000), horizon=5)
        assert result.quota_use[Q_PUT_EVENTS] >= 0.3
        busier = simulate([0.5] * 12_000, Knobs(maximum_concurrency=1000), horizon=5)
        assert busier.quota_use[Q_PUT_EVENTS] > 1.0
        assert Q_PUT_EVENTS in busier.broken_at

    def test_the_sms_spend_quota_of_a_new_account_breaks_after_about_172_confirmations(self) -> None:
        """A new account may spend 1.00 USD a month on SMS; one US text costs 0.00581 USD.
        https://docs.aws.amazon.com/sns/latest/dg/channels-sms-awssupport-spend-threshold.html"""
        few = simulate([i * 0.1 for i in range(150)], Knobs(maximum_concurrency=10))
        assert few.quota_use[Q_SMS] < 1 and few.breaks_first() is None
        many = simulate([i * 0.1 for i in range(200)], Knobs(maximum_concurrency=10))
        assert many.breaks_first() == Q_SMS


class TestMillionOrdersAnHour:
    def test_it_answers_with_finite_numbers_a_quota_and_a_cost_in_seconds(self) -> None:
        """One million orders in an hour: backlog, latency, the first quota to break, the cost."""
        started = time.perf_counter()
        answer = million_orders_an_hour()
        wall = time.perf_counter() - started
        assert answer.peak_backlog > 0
        assert math.isfinite(answer.p50_latency) and math.isfinite(answer.p99_latency)
        assert answer.p50_latency <= answer.p99_latency
        assert answer.breaks_first in answer.quota_use and answer.breaks_first_use > 1
        assert answer.cost_usd == pytest.approx(answer.cost_per_1000_orders * 1000)
        assert answer.confirmed > 999_000
        assert "| quota | peak use |" in answer.table()
        assert wall < 30, f"the million-order model took {wall:.1f} s"
