"""Stage 10: scaling for peak. The knobs of a spike are the template's parameters, and each
moves its own curve: MaximumConcurrency the backlog, reserved concurrency the throttles,
the shard count the stream's iterator age.

Run `python tests/stages/test_stage_10.py` to regenerate the README's template diff.
"""

from __future__ import annotations

import functools
import json
import random
from pathlib import Path

import boto3
import pytest

from edakit import LocalCloud
from edakit.chapters import check_readme, stage_diff, write_readme
from edakit.errors import DeploymentError
from edakit.paths import CHAPTERS, NOTEBOOKS
from edakit.scenarios import carts, seed_every_product
from edakit.spike import SPIKE_FILE, Durations, Spike, SpikeResult, as_document, chapter_runs, run_spike

STAGE = "10-scale"
PREVIOUS_STAGE = "09-security"
NOTEBOOK = NOTEBOOKS / "10-scale.py"
NOTEBOOK_SECONDS = 10


def mapping_of(cloud: LocalCloud) -> dict:
    [mapping] = boto3.client("lambda").list_event_source_mappings(
        FunctionName=cloud.physical_id("OrderProcessingFunction"))["EventSourceMappings"]
    return mapping


class TestTheKnobs:
    def test_the_defaults_keep_stage_9s_settings(self, stage_dir: Path) -> None:
        """Without overrides, CloudFormation uses each parameter's Default: MaximumConcurrency 5,
        no reserved concurrency (the property is left out with AWS::NoValue), 2 shards.

        https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/parameters-section-structure.html
        https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/pseudo-parameter-reference.html#cfn-pseudo-param-novalue
        """
        with LocalCloud.from_template(stage_dir) as cloud:
            function = boto3.client("lambda").get_function(FunctionName=cloud.physical_id("OrderProcessingFunction"))
            shards = boto3.client("kinesis").describe_stream_summary(StreamName=cloud.outputs["AnalyticsStreamName"])
            assert mapping_of(cloud)["ScalingConfig"] == {"MaximumConcurrency": 5}
        assert "Concurrency" not in function
        assert shards["StreamDescriptionSummary"]["OpenShardCount"] == 2

    def test_each_parameter_sets_its_knob(self, stage_dir: Path) -> None:
        """`sam deploy --parameter-overrides` values reach the mapping's ScalingConfig, the function's
        ReservedConcurrentExecutions and the stream's ShardCount.

        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
        https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html
        https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-kinesis-stream.html
        """
        parameters = {"OrdersMaximumConcurrency": 3, "OrderProcessingReservedConcurrency": 7, "AnalyticsShardCount": 4}
        with LocalCloud.from_template(stage_dir, parameters=parameters) as cloud:
            function = boto3.client("lambda").get_function(FunctionName=cloud.physical_id("OrderProcessingFunction"))
            shards = boto3.client("kinesis").describe_stream_summary(StreamName=cloud.outputs["AnalyticsStreamName"])
            assert mapping_of(cloud)["ScalingConfig"] == {"MaximumConcurrency": 3}
        assert function["Concurrency"] == {"ReservedConcurrentExecutions": 7}
        assert shards["StreamDescriptionSummary"]["OpenShardCount"] == 4

    def test_the_throttles_alarm_fires_when_the_reservation_is_below_the_pollers(self, stage_dir: Path) -> None:
        """With one execution reserved and five pollers, a burst of orders is throttled: Throttles
        counts it and OrderProcessingThrottlesAlarm goes to ALARM at the end of the minute, and
        tells the alarm topic.

        https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html
        https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html
        """
        with LocalCloud.from_template(stage_dir, parameters={"OrderProcessingReservedConcurrency": 1}) as cloud:
            run_spike(cloud, Spike(orders=20, seconds=2, seed=3), durations=Durations(order_processing=5.0))
            states = [change.new_state for change in cloud.alarm_history("OrderProcessingThrottlesAlarm")]
            emails = [n for n in cloud.notifications if "OrderProcessingThrottlesAlarm" in n.message]
            assert cloud.throttles("OrderProcessingFunction") > 0
        assert "ALARM" in states, states
        assert emails, "the alarm topic was not told"

    def test_an_unknown_parameter_is_named(self, stage_dir: Path) -> None:
        """A misspelled override fails the deploy with the template's parameter names, as
        CloudFormation refuses parameters the template does not declare.

        https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateStack.html
        """
        with pytest.raises(DeploymentError, match="no parameter ShardCount.*AnalyticsShardCount"):
            LocalCloud.from_template(stage_dir, parameters={"ShardCount": 4}).start()


class ThrottlingEvents:
    """An EventBridge client at its PutEvents quota: the first call refuses every other entry
    with ThrottlingException (as a successful call with FailedEntryCount), the rest go through."""

    def __init__(self) -> None:
        self.client = boto3.client("events")
        self.calls: list[int] = []

    def put_events(self, *, Entries):
        self.calls.append(len(Entries))
        if len(self.calls) > 1:
            return self.client.put_events(Entries=Entries)
        accepted = self.client.put_events(Entries=Entries[::2])["Entries"]
        refused = {"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}
        results = [accepted[i // 2] if i % 2 == 0 else refused for i in range(len(Entries))]
        return {"FailedEntryCount": len(Entries) // 2, "Entries": results}


class TestTheStorefront:
    def test_entries_throttled_at_the_put_events_quota_are_put_again_and_every_order_confirmed(
            self, stage_dir: Path) -> None:
        """Past the PutEvents quota, a call can succeed and refuse single entries
        (FailedEntryCount, ErrorCode ThrottlingException): the storefront puts those, and only
        those, again after a wait. Every order is then confirmed, once.

        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevents.html
        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html
        """
        from shop.storefront import Storefront

        waits: list[float] = []
        with LocalCloud.from_template(stage_dir) as cloud:
            seed_every_product(cloud, 1000)
            events = ThrottlingEvents()
            placed = Storefront(cloud.physical_id("ShopBus"), events, wait=waits.append).place_orders(
                carts(random.Random(4), 8))
            cloud.run_until_idle()
            table = boto3.resource("dynamodb").Table(cloud.physical_id("OrdersTable"))
            statuses = {item["order_id"]: item["status"] for item in table.scan()["Items"]}
        assert events.calls == [8, 4] and waits == [0.1]
        assert sorted(statuses) == sorted(o.order_id for o in placed)
        assert set(statuses.values()) == {"CONFIRMED"}


@functools.cache
def chapter_spikes(stage: Path) -> dict[str, SpikeResult]:
    """The chapter's four spikes, run once per test process (a few minutes)."""
    return chapter_runs(stage=stage)


@pytest.fixture
def spikes(request: pytest.FixtureRequest) -> dict[str, SpikeResult]:
    """The chapter's four spikes (200 orders in a virtual minute each), on fresh stage-10 clouds."""
    override = request.config.getoption("--stage-dir")
    return chapter_spikes(Path(override).resolve() if override else CHAPTERS / STAGE)


class TestTheSpike:
    def test_no_order_is_lost_each_one_is_finished_or_waits_in_a_dlq(self, spikes: dict[str, SpikeResult]) -> None:
        """A spike loses no order: each one is confirmed (or cancelled, a declined card), or its
        message waits in OrdersDLQ or PaymentsDLQ (a payment that failed every retry of the flaky
        gateway), where a redrive finishes it.

        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html
        """
        for label, result in spikes.items():
            assert len(result.placed_at) == Spike().orders, label
            assert result.unfinished <= result.dead_lettered, (label, result.unfinished, result.dead_lettered)
            assert result.unfinished <= Spike().orders // 100, (label, result.unfinished)

    def test_maximum_concurrency_moves_the_backlog_the_age_and_the_latency_not_the_throttles(
            self, spikes: dict[str, SpikeResult]) -> None:
        """MaximumConcurrency caps the batches in flight: the backlog waits in the queue, its oldest
        message ages, and orders take longer; no invocation is throttled.

        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
        """
        baseline, capped = spikes["baseline"], spikes["MaximumConcurrency 2"]
        assert capped.peak_concurrency == 2 < baseline.peak_concurrency
        assert capped.peak_backlog > 2 * baseline.peak_backlog
        assert capped.peak_age > 2 * baseline.peak_age
        assert capped.latency(0.99) > 2 * baseline.latency(0.99)
        assert capped.throttles == baseline.throttles == 0

    def test_reserved_concurrency_below_the_pollers_moves_the_throttles(self, spikes: dict[str, SpikeResult]) -> None:
        """Event source mappings do not account for reserved concurrency: with 2 reserved and up to
        10 pollers, Lambda throttles the batches it cannot run, and the concurrency stays at 2.

        https://repost.aws/knowledge-center/lambda-sqs-scaling
        """
        reserved, baseline = spikes["reserved concurrency 2"], spikes["baseline"]
        assert reserved.peak_concurrency == 2
        assert reserved.throttles > 0 == baseline.throttles
        assert reserved.latency(0.5) > baseline.latency(0.5)

    def test_the_shard_count_moves_the_iterator_age_and_not_the_queue(self, spikes: dict[str, SpikeResult]) -> None:
        """The stream's consumer reads one batch per shard at a time: fewer shards, an older iterator.
        The order path does not read the stream, so OrdersQueue's curves do not change.

        https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html
        https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html
        """
        one, baseline = spikes["1 shard"], spikes["baseline"]
        assert one.peak_iterator_age > 1.5 * baseline.peak_iterator_age
        assert one.peak_backlog == pytest.approx(baseline.peak_backlog, rel=0.2)
        assert one.latency(0.5) == pytest.approx(baseline.latency(0.5), rel=0.2)

    @pytest.mark.usefixtures("chapter_only")
    def test_the_chapters_spike_file_is_current(self, spikes: dict[str, SpikeResult]) -> None:
        """The series the notebook plots are those the spikes give now (the runs are seeded and in
        virtual time): `python -m edakit spike --write` rewrites them.

        https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/working_with_metrics.html
        """
        fresh = json.loads(as_document(spikes, Spike()))
        assert json.loads(SPIKE_FILE.read_text()) == fresh, (
            "chapters/10-scale/spike.json is stale: run `python -m edakit spike --write`")


def readme_diffs() -> dict[str, str]:
    """The README's template diff, from stage 9's template to stage 10's: what this chapter changes."""
    return {"template diff": stage_diff(PREVIOUS_STAGE, STAGE)}


@pytest.mark.usefixtures("chapter_only")
class TestChapter:
    def test_the_readme_shows_the_template_diff_from_the_previous_stage(self) -> None:
        """https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-specification.html"""
        check_readme(STAGE, readme_diffs(), __file__)

    @pytest.mark.notebook
    def test_the_notebook_runs_in_seconds_and_shows_the_spikes_the_lesson_and_the_model(self) -> None:
        """https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html"""
        from edakit.notebooks import execute_notebook, outputs_of, text_of

        notebook, seconds = execute_notebook(NOTEBOOK)
        outputs = outputs_of(notebook)
        text = text_of(outputs)
        assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2, "the notebook draws the knobs and the model"
        assert "1,000,000 orders in one hour" in text and "breaks first" in text, text[-2000:]
        assert any("mermaid" in o["data"].get("text/markdown", "") + o["data"].get("text/html", "")
                   for o in outputs if "data" in o), "no drawing of which knob moves which curve"
        assert seconds < NOTEBOOK_SECONDS, f"the notebook took {seconds:.1f} s"


if __name__ == "__main__":
    print(write_readme(STAGE, readme_diffs(), __file__))
