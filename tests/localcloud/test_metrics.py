"""CloudWatch metrics in the local cloud: the embedded metric format, AWS/Lambda and AWS/SQS,
all in virtual time."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Callable

import boto3
import pytest

from edakit import LocalCloud
from edakit.errors import EdakitError
from edakit.metrics import parse_emf

WRITER = """
Writer:
  Type: AWS::Serverless::Function
  Properties:
    Handler: observed.write_lines
"""


def emf(cloud: LocalCloud, **members: Any) -> str:
    """An EMF document at the cloud's virtual time: Shop / Orders, dimension service."""
    document = {
        "_aws": {"Timestamp": int(cloud.clock.now() * 1000),
                 "CloudWatchMetrics": [{"Namespace": "Shop", "Dimensions": [["service"]],
                                        "Metrics": [{"Name": "Orders", "Unit": "Count"}]}]},
        "service": "orders", "Orders": 1,
    }
    document.update(members)
    return json.dumps(document)


def write(cloud: LocalCloud, *lines: str, fail: bool = False) -> None:
    boto3.client("lambda").invoke(FunctionName=cloud.physical_id("Writer"),
                                  Payload=json.dumps({"lines": list(lines), "fail": fail}))
    cloud.run_until_idle()


def statistics(namespace: str, name: str, dimensions: dict[str, str], stat: str = "Sum",
               period: int = 60) -> list[dict[str, Any]]:
    """What boto3's GetMetricStatistics returns from moto, oldest first."""
    start = dt.datetime(2025, 11, 28, tzinfo=dt.timezone.utc)
    response = boto3.client("cloudwatch").get_metric_statistics(
        Namespace=namespace, MetricName=name, Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
        StartTime=start, EndTime=start + dt.timedelta(days=2), Period=period, Statistics=[stat])
    return sorted(response["Datapoints"], key=lambda d: d["Timestamp"])


class TestEmbeddedMetricFormat:
    def test_an_emf_log_line_becomes_metric_data_at_its_own_timestamp(self, cloud_for: Callable[..., LocalCloud]) -> None:
        """CloudWatch Logs extracts each metric of an EMF document, with its namespace, dimensions
        and unit, at the document's _aws.Timestamp (not the time the line was logged).
        https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
        """
        cloud = cloud_for(WRITER)
        an_hour_ago = int((cloud.clock.now() - 3600) * 1000)
        write(cloud, emf(cloud, Orders=3), emf(cloud, _aws={**json.loads(emf(cloud))["_aws"], "Timestamp": an_hour_ago}))
        [(start, value)] = [p for p in cloud.metric("Shop", "Orders", {"service": "orders"})
                            if p[0] >= cloud.clock.datetime() - dt.timedelta(minutes=1)]
        assert value == 3
        [earlier] = [p for p in cloud.metric("Shop", "Orders", {"service": "orders"}) if p[0] < start]
        assert earlier == (dt.datetime(2025, 11, 28, 8, 0, tzinfo=dt.timezone.utc), 1)
        # moto holds the same data: plain boto3 reads it back, with its unit
        datapoints = statistics("Shop", "Orders", {"service": "orders"})
        assert [d["Sum"] for d in datapoints] == [1, 3]
        assert {d["Unit"] for d in datapoints} == {"Count"}

    def test_each_dimension_set_gives_a_metric_of_its_own(self, cloud_for: Callable[..., LocalCloud]) -> None:
        """A directive's Dimensions is a list of dimension sets; each set (the empty one too)
        gives one metric. Dimension values are read from the root by name.
        https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
        """
        cloud = cloud_for(WRITER)
        directive = {"Namespace": "Shop", "Dimensions": [["service"], ["service", "channel"], []],
                     "Metrics": [{"Name": "Orders"}]}
        write(cloud, emf(cloud, channel="web", _aws={"Timestamp": int(cloud.clock.now() * 1000),
                                                     "CloudWatchMetrics": [directive]}))
        assert sorted(map(str, (m for m in cloud.cloudwatch.store.metrics() if m[0] == "Shop"))) == sorted(map(str, [
            ("Shop", "Orders", {}), ("Shop", "Orders", {"channel": "web", "service": "orders"}),
            ("Shop", "Orders", {"service": "orders"})]))
        assert cloud.metric("Shop", "Orders", {"service": "orders", "channel": "web"})[0][1] == 1

    def test_an_array_of_values_gives_one_sample_each(self, cloud_for: Callable[..., LocalCloud]) -> None:
        """A target member may be an array of up to 100 numbers: each is a value of the metric.
        https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
        """
        cloud = cloud_for(WRITER)
        write(cloud, emf(cloud, Orders=[1, 2, 6]))
        assert cloud.metric("Shop", "Orders", {"service": "orders"}, stat="SampleCount")[0][1] == 3
        assert cloud.metric("Shop", "Orders", {"service": "orders"}, stat="Average")[0][1] == 3
        assert cloud.metric("Shop", "Orders", {"service": "orders"}, stat="Maximum")[0][1] == 6

    @pytest.mark.parametrize("broken, reason", [
        ({"service": 7}, "dimension 'service'"),
        ({"Orders": "one"}, "metric 'Orders' needs a number"),
        ({"_aws": {"CloudWatchMetrics": []}}, "Timestamp"),
        ({"_aws": {"Timestamp": 0, "CloudWatchMetrics": [{"Namespace": "Shop", "Dimensions": [[]],
                                                         "Metrics": [{"Name": "Orders", "Unit": "Orders"}]}]}},
         "not a CloudWatch unit"),
        ({"_aws": {"Timestamp": 0, "CloudWatchMetrics": [{"Dimensions": [[]], "Metrics": []}]}}, "Namespace"),
    ])
    def test_an_invalid_emf_document_gives_no_metric_and_stays_in_the_log(
        self, cloud_for: Callable[..., LocalCloud], broken: dict[str, Any], reason: str
    ) -> None:
        """A log event that breaks the specification is stored as a log, and no metric is extracted.
        https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
        """
        cloud = cloud_for(WRITER)
        line = emf(cloud, **broken)
        write(cloud, line)
        assert cloud.cloudwatch.store.metrics() == [] or all(
            ns != "Shop" for ns, _, _ in cloud.cloudwatch.store.metrics())
        assert line in cloud.logs("Writer")
        [(group, _, why)] = cloud.cloudwatch.store.emf_errors
        assert group == cloud.function("Writer").log_group and reason in why

    def test_lines_that_are_not_emf_documents_are_just_logs(self) -> None:
        """Only a JSON object with an _aws member is an EMF document; other lines are ordinary logs.
        https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
        """
        for line in ["START RequestId: 1", '{"level": "INFO", "message": "hello"}', "[1, 2]", "{not json"]:
            assert parse_emf(line) is None

    def test_emf_sent_with_put_log_events_is_extracted_too(self, cloud_for: Callable[..., LocalCloud]) -> None:
        """EMF works for any log event CloudWatch Logs receives, not only Lambda's.
        https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Generation_PutLogEvents.html
        """
        cloud = cloud_for(WRITER)
        logs = boto3.client("logs")
        logs.create_log_group(logGroupName="/shop/batch")
        logs.create_log_stream(logGroupName="/shop/batch", logStreamName="run")
        logs.put_log_events(logGroupName="/shop/batch", logStreamName="run",
                            logEvents=[{"timestamp": int(cloud.clock.now() * 1000), "message": emf(cloud, Orders=4)}])
        assert cloud.metric("Shop", "Orders", {"service": "orders"})[0][1] == 4


class TestLambdaMetrics:
    def test_each_invocation_counts_once_with_its_errors_and_duration(self, cloud_for: Callable[..., LocalCloud]) -> None:
        """Invocations counts every invocation, Errors the failed ones, Duration is the
        virtual time the handler ran, in milliseconds; the dimension is FunctionName.
        https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html
        """
        cloud = cloud_for(WRITER)
        cloud.function("Writer").duration = 0.25
        write(cloud)
        write(cloud, fail=True)
        write(cloud)
        dims = {"FunctionName": cloud.physical_id("Writer")}
        assert cloud.metric("AWS/Lambda", "Invocations", dims) == [(cloud.metric("AWS/Lambda", "Invocations", dims)[0][0], 3)]
        assert cloud.metric("AWS/Lambda", "Errors", dims)[0][1] == 1
        assert cloud.metric("AWS/Lambda", "Duration", dims, stat="Maximum")[0][1] == 250
        assert statistics("AWS/Lambda", "Invocations", dims)[0]["Sum"] == 3  # in moto too

    def test_concurrent_executions_counts_the_invocations_running_at_once(self, cloud_for: Callable[..., LocalCloud]) -> None:
        """ConcurrentExecutions: the number of function instances processing events (its Maximum is the peak).
        https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html
        """
        cloud = cloud_for(WRITER)
        cloud.function("Writer").duration = 5
        for _ in range(3):
            boto3.client("lambda").invoke(FunctionName=cloud.physical_id("Writer"), InvocationType="Event", Payload="{}")
        cloud.run_until_idle()
        dims = {"FunctionName": cloud.physical_id("Writer")}
        assert cloud.metric("AWS/Lambda", "ConcurrentExecutions", dims, stat="Maximum")[0][1] == 3
        assert cloud.metric("AWS/Lambda", "ConcurrentExecutions", None, stat="Maximum")[0][1] == 3

    def test_a_throttled_asynchronous_event_counts_in_throttles(self, cloud_for: Callable[..., LocalCloud]) -> None:
        """With reserved concurrency 1, the second and third events wait (throttled) until the
        first invocation ends: Throttles counts them.
        https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html
        """
        cloud = cloud_for(WRITER)
        cloud.function("Writer").duration = 5
        boto3.client("lambda").put_function_concurrency(FunctionName=cloud.physical_id("Writer"),
                                                        ReservedConcurrentExecutions=1)
        for _ in range(3):
            boto3.client("lambda").invoke(FunctionName=cloud.physical_id("Writer"), InvocationType="Event", Payload="{}")
        cloud.run_until_idle()
        dims = {"FunctionName": cloud.physical_id("Writer")}
        assert len(cloud.invocations("Writer")) == 3
        assert sum(v for _, v in cloud.metric("AWS/Lambda", "Throttles", dims)) >= 2
        assert cloud.metric("AWS/Lambda", "ConcurrentExecutions", dims, stat="Maximum")[0][1] == 1

    def test_iterator_age_is_the_age_of_the_last_record_of_a_stream_batch(self, cloud_for: Callable[..., LocalCloud]) -> None:
        """IteratorAge (stream event sources): from when the batch's last record was written to
        the stream to when Lambda hands the batch over.
        https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html
        """
        cloud = cloud_for(WRITER + """
Clicks:
  Type: AWS::Kinesis::Stream
  Properties:
    ShardCount: 1
Reader:
  Type: AWS::Serverless::Function
  Properties:
    Handler: observed.write_lines
    Events:
      Clicks:
        Type: Kinesis
        Properties:
          Stream: !GetAtt Clicks.Arn
          StartingPosition: TRIM_HORIZON
          BatchSize: 10
""")
        boto3.client("kinesis").put_record(StreamName=cloud.physical_id("Clicks"), Data=b"{}", PartitionKey="a")
        cloud.clock.advance(30)  # nobody polls meanwhile: the record waits 30 s
        cloud.run_until_idle()
        ages = cloud.metric("AWS/Lambda", "IteratorAge", {"FunctionName": cloud.physical_id("Reader")}, stat="Maximum")
        assert [round(v / 1000) for _, v in ages] == [30]
        with pytest.raises(EdakitError, match="no data for AWS/Lambda IteratorAge"):
            cloud.metric("AWS/Lambda", "IteratorAge", {"FunctionName": cloud.physical_id("Writer")})


QUEUE = """
Orders:
  Type: AWS::SQS::Queue
  Properties:
    VisibilityTimeout: 120
"""


class TestSqsMetrics:
    def test_queue_gauges_are_sampled_once_a_minute(self, cloud_for: Callable[..., LocalCloud]) -> None:
        """SQS sends ApproximateNumberOfMessagesVisible and NotVisible to CloudWatch once a minute.
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html
        """
        cloud = cloud_for(QUEUE)
        sqs, url = boto3.client("sqs"), cloud.physical_id("Orders")
        for n in range(3):
            sqs.send_message(QueueUrl=url, MessageBody=str(n))
        cloud.run_for(150)  # two minute boundaries
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)
        cloud.run_for(60)
        dims = {"QueueName": url.rsplit("/", 1)[-1]}
        visible = cloud.metric("AWS/SQS", "ApproximateNumberOfMessagesVisible", dims, stat="Maximum")
        in_flight = cloud.metric("AWS/SQS", "ApproximateNumberOfMessagesNotVisible", dims, stat="Maximum")
        assert [v for _, v in visible] == [3, 3, 2]
        assert [v for _, v in in_flight] == [0, 0, 1]
        assert [t.second for t, _ in visible] == [0, 0, 0]  # on minute boundaries

    def test_age_of_oldest_message_grows_while_it_waits(self, cloud_for: Callable[..., LocalCloud]) -> None:
        """ApproximateAgeOfOldestMessage: the age of the oldest message in the queue, in seconds.
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html
        """
        cloud = cloud_for(QUEUE)
        cloud.clock.advance(60 - cloud.clock.now() % 60 - 10)  # 10 s before a minute boundary
        boto3.client("sqs").send_message(QueueUrl=cloud.physical_id("Orders"), MessageBody="x")
        cloud.run_for(200)
        ages = cloud.metric("AWS/SQS", "ApproximateAgeOfOldestMessage",
                            {"QueueName": cloud.physical_id("Orders").rsplit("/", 1)[-1]}, stat="Maximum")
        assert [round(v) for _, v in ages] == [10, 70, 130, 190]

    def test_sent_received_and_deleted_messages_are_counted(self, cloud_for: Callable[..., LocalCloud]) -> None:
        """NumberOfMessagesSent, NumberOfMessagesReceived and NumberOfMessagesDeleted count the API's work.
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html
        """
        cloud = cloud_for(QUEUE)
        sqs, url = boto3.client("sqs"), cloud.physical_id("Orders")
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(n), "MessageBody": str(n)} for n in range(4)])
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=3)["Messages"]
        sqs.delete_message(QueueUrl=url, ReceiptHandle=received[0]["ReceiptHandle"])
        dims = {"QueueName": url.rsplit("/", 1)[-1]}
        total = {name: sum(v for _, v in cloud.metric("AWS/SQS", name, dims))
                 for name in ("NumberOfMessagesSent", "NumberOfMessagesReceived", "NumberOfMessagesDeleted")}
        assert total == {"NumberOfMessagesSent": 4, "NumberOfMessagesReceived": 3, "NumberOfMessagesDeleted": 1}

    def test_sampling_never_keeps_the_cloud_busy(self, cloud_for: Callable[..., LocalCloud]) -> None:
        """Metrics are sampled as virtual time passes, so a cloud with nothing to do is idle at once
        (a queue without a consumer is no work for the local cloud).
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html
        """
        cloud = cloud_for(QUEUE)
        boto3.client("sqs").send_message(QueueUrl=cloud.physical_id("Orders"), MessageBody="x")
        assert cloud.run_until_idle() == 0

    def test_an_empty_idle_queue_stops_being_sampled_after_six_hours(self, cloud_for: Callable[..., LocalCloud]) -> None:
        """An inactive queue (no messages, no calls) stops sending metrics after six hours.
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html
        """
        cloud = cloud_for(QUEUE)
        cloud.clock.advance(12 * 3600)
        samples = cloud.metric("AWS/SQS", "ApproximateNumberOfMessagesVisible",
                               {"QueueName": cloud.physical_id("Orders").rsplit("/", 1)[-1]})
        assert 6 * 60 - 1 <= len(samples) <= 6 * 60 + 1
