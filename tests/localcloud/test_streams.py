"""Kinesis and DynamoDB Streams event source mappings, with Lambda's documented semantics.

https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html
https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from decimal import Decimal
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamModel, KinesisDataStreamModel

from edakit.errors import StillBusyError

#: ExplicitHashKey values that land in the first and the second shard of a two-shard stream.
SHARD_HASH = {0: "0", 1: str(2**127)}

KINESIS_STAGE = """
    Stream:
      Type: AWS::Kinesis::Stream
      Properties: {{ShardCount: {shards}}}
    FailureQueue:
      Type: AWS::SQS::Queue
    Fn:
      Type: AWS::Serverless::Function
      Properties:
        Handler: streams_consumers.{handler}
        Events:
          Records: {{Type: Kinesis, Properties: {properties}}}
"""

DYNAMODB_STAGE = """
    Table:
      Type: AWS::DynamoDB::Table
      Properties:
        AttributeDefinitions: [{{AttributeName: pk, AttributeType: S}}]
        KeySchema: [{{AttributeName: pk, KeyType: HASH}}]
        BillingMode: PAY_PER_REQUEST
        StreamSpecification: {{StreamViewType: NEW_AND_OLD_IMAGES}}
    FailureQueue:
      Type: AWS::SQS::Queue
    Fn:
      Type: AWS::Serverless::Function
      Properties:
        Handler: streams_consumers.{handler}
        Events:
          Changes: {{Type: DynamoDB, Properties: {properties}}}
"""

ON_FAILURE = {"OnFailure": {"Destination": {"Fn::GetAtt": ["FailureQueue", "Arn"]}}}


def kinesis_stage(handler: str, shards: int = 1, **mapping: Any) -> str:
    """Resources: a stream, a failure queue, and function Fn reading the stream with these mapping properties."""
    properties = {"Stream": {"Fn::GetAtt": ["Stream", "Arn"]}, "StartingPosition": "TRIM_HORIZON", **mapping}
    return KINESIS_STAGE.format(shards=shards, handler=handler, properties=json.dumps(properties))


def dynamodb_stage(handler: str, **mapping: Any) -> str:
    """Resources: a table with a stream, a failure queue, and function Fn reading the stream."""
    properties = {"Stream": {"Fn::GetAtt": ["Table", "StreamArn"]}, "StartingPosition": "TRIM_HORIZON", **mapping}
    return DYNAMODB_STAGE.format(handler=handler, properties=json.dumps(properties))


def put(cloud: Any, *payloads: Any, shard: int = 0, stream: str = "Stream") -> list[str]:
    """Put JSON payloads into one shard; return their sequence numbers."""
    kinesis = boto3.client("kinesis")
    return [
        kinesis.put_record(StreamName=cloud.physical_id(stream), Data=json.dumps(p).encode(),
                           PartitionKey="key", ExplicitHashKey=SHARD_HASH[shard])["SequenceNumber"]
        for p in payloads
    ]


def payloads(invocation: Any) -> list[Any]:
    return [json.loads(base64.b64decode(r["kinesis"]["data"])) for r in invocation.event["Records"]]


def sequences(invocation: Any) -> list[str]:
    return [r["kinesis"]["sequenceNumber"] for r in invocation.event["Records"]]


def sequences_of(event: dict[str, Any]) -> list[str]:
    return [r["kinesis"]["sequenceNumber"] for r in event["Records"]]


def failures(cloud: Any) -> list[dict[str, Any]]:
    return [json.loads(body) for body in cloud.messages("FailureQueue")]


class TestReadingShards:
    def test_records_of_a_shard_arrive_in_order_one_batch_at_a_time(self, cloud_for):
        """Lambda reads each shard in order; shards are processed in parallel.

        https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html#kinesis-polling-and-batching
        """
        cloud = cloud_for(kinesis_stage("succeed", shards=2, BatchSize=2))
        for n in range(1, 6):
            put(cloud, {"n": n}, shard=0)
            put(cloud, {"n": 100 + n}, shard=1)

        cloud.run_until_idle()

        by_shard: dict[str, list[Any]] = {}
        for invocation in cloud.invocations("Fn"):
            shard_id = invocation.event["Records"][0]["eventID"].split(":")[0]
            assert all(r["eventID"].startswith(shard_id) for r in invocation.event["Records"])
            by_shard.setdefault(shard_id, []).append(invocation)
        first, second = (by_shard[s] for s in sorted(by_shard))
        assert [p["n"] for i in first for p in payloads(i)] == [1, 2, 3, 4, 5]
        assert [p["n"] for i in second for p in payloads(i)] == [101, 102, 103, 104, 105]
        for shard in (first, second):  # the next batch of a shard starts when the previous one ends
            assert all(later.time - earlier.time >= earlier.duration - 1e-6 for earlier, later in zip(shard, shard[1:]))
        assert first[0].time == second[0].time

    def test_batch_size_caps_the_records_in_an_invocation(self, cloud_for):
        """BatchSize is the largest number of records Lambda sends in one batch.

        https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-parameters.html
        """
        cloud = cloud_for(kinesis_stage("succeed", BatchSize=2))
        put(cloud, *({"n": n} for n in range(5)))

        cloud.run_until_idle()

        assert [len(i.event["Records"]) for i in cloud.invocations("Fn")] == [2, 2, 1]

    def test_batching_window_gathers_records_before_invoking(self, cloud_for):
        """MaximumBatchingWindowInSeconds: Lambda waits for a full batch or the end of the window.

        https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html#kinesis-polling-and-batching
        """
        cloud = cloud_for(kinesis_stage("succeed", BatchSize=10, MaximumBatchingWindowInSeconds=5))
        started = cloud.clock.now()
        put(cloud, {"n": 1}, {"n": 2})
        cloud.clock.advance(2)
        put(cloud, {"n": 3})

        cloud.run_until_idle()

        [invocation] = cloud.invocations("Fn")
        assert invocation.time - started == pytest.approx(5)
        assert [p["n"] for p in payloads(invocation)] == [1, 2, 3]

    def test_starting_position_decides_where_a_new_mapping_starts_reading(self, cloud_for):
        """TRIM_HORIZON starts at the oldest record, LATEST after the newest, AT_TIMESTAMP at a time.

        https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html#lambda-CreateEventSourceMapping-request-StartingPosition
        """
        cloud = cloud_for("""
            Stream:
              Type: AWS::Kinesis::Stream
              Properties: {ShardCount: 1}
            Oldest:
              Type: AWS::Serverless::Function
              Properties: {Handler: streams_consumers.succeed}
            Latest:
              Type: AWS::Serverless::Function
              Properties: {Handler: streams_consumers.succeed}
            FromTimestamp:
              Type: AWS::Serverless::Function
              Properties: {Handler: streams_consumers.succeed}
        """)
        put(cloud, {"n": "early"})
        cloud.clock.advance(10)
        put(cloud, {"n": "later"})
        stream = boto3.client("kinesis").describe_stream(StreamName=cloud.physical_id("Stream"))["StreamDescription"]
        awslambda = boto3.client("lambda")
        for function, position in (("Oldest", "TRIM_HORIZON"), ("Latest", "LATEST"), ("FromTimestamp", "AT_TIMESTAMP")):
            awslambda.create_event_source_mapping(
                FunctionName=cloud.function(function).name, EventSourceArn=stream["StreamARN"], StartingPosition=position,
                StartingPositionTimestamp=cloud.clock.start + dt.timedelta(seconds=5))
        cloud.run_until_idle()  # the new mappings start polling
        put(cloud, {"n": "new"})

        cloud.run_until_idle()

        def received(function: str) -> list[str]:
            return [p["n"] for i in cloud.invocations(function) for p in payloads(i)]

        assert received("Oldest") == ["early", "later", "new"]
        assert received("Latest") == ["new"]
        assert received("FromTimestamp") == ["later", "new"]

    def test_starting_position_latest_in_the_template_reads_records_written_after_deployment(self, cloud_for):
        """A mapping deployed with the stage polls from then on: records written after deployment reach it.

        https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html#lambda-CreateEventSourceMapping-request-StartingPosition
        """
        cloud = cloud_for(kinesis_stage("succeed", StartingPosition="LATEST"))
        put(cloud, {"n": 1})

        cloud.run_until_idle()

        assert [p["n"] for i in cloud.invocations("Fn") for p in payloads(i)] == [1]

    def test_filter_criteria_skip_records_whose_data_does_not_match(self, cloud_for):
        """Kinesis records are filtered on their data, parsed as JSON; the others are never sent.

        https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis-filtering.html
        """
        pattern = json.dumps({"data": {"kind": ["order"]}})
        cloud = cloud_for(kinesis_stage("succeed", FilterCriteria={"Filters": [{"Pattern": pattern}]}))
        put(cloud, {"kind": "order", "n": 1}, {"kind": "click", "n": 2})
        boto3.client("kinesis").put_record(StreamName=cloud.physical_id("Stream"), Data=b"not json", PartitionKey="key")
        put(cloud, {"kind": "order", "n": 3})

        cloud.run_until_idle()

        [invocation] = cloud.invocations("Fn")
        assert [p["n"] for p in payloads(invocation)] == [1, 3]
        assert cloud.run_until_idle() == 0  # nothing left behind: skipped records count as processed


class TestFailedBatches:
    def test_failing_batch_blocks_its_shard_until_retries_are_spent(self, cloud_for):
        """A failed batch is retried, holding back later records, until MaximumRetryAttempts is spent.

        The OnFailure destination then gets the batch's metadata (not its records) and
        the shard moves on.
        https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html
        """
        cloud = cloud_for(kinesis_stage("fail_on_poison", BatchSize=1, MaximumRetryAttempts=2,
                                        DestinationConfig=ON_FAILURE))
        [poison, good] = put(cloud, {"poison": True, "secret": "s3cr3t"}, {"n": 2})

        cloud.run_until_idle()

        invocations = cloud.invocations("Fn")
        assert [sequences(i) for i in invocations] == [[poison]] * 3 + [[good]]
        assert [i.ok for i in invocations] == [False, False, False, True]
        [record] = failures(cloud)
        assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
        assert record["requestContext"]["approximateInvokeCount"] == 3
        assert record["requestContext"]["functionArn"] == cloud.function("Fn").arn
        assert record["responseContext"]["functionError"] == "Unhandled"
        assert set(record) == {"requestContext", "responseContext", "version", "timestamp", "KinesisBatchInfo"}
        info = record["KinesisBatchInfo"]
        assert info == {
            "shardId": "shardId-000000000000",
            "startSequenceNumber": poison,
            "endSequenceNumber": poison,
            "approximateArrivalOfFirstRecord": "2025-11-28T09:00:00.000Z",
            "approximateArrivalOfLastRecord": "2025-11-28T09:00:00.000Z",
            "batchSize": 1,
            "streamArn": f"arn:aws:kinesis:us-east-1:123456789012:stream/{cloud.physical_id('Stream')}",
        }
        assert "s3cr3t" not in cloud.messages("FailureQueue")[0]

    def test_retries_wait_longer_each_time(self, cloud_for):
        """Failed batches are retried with a growing delay (the kit's choice: 1 s, doubling, at most 60 s).

        AWS does not document the interval; see edakit/sources/streams.py.
        https://docs.aws.amazon.com/lambda/latest/dg/invocation-retries.html
        """
        cloud = cloud_for(kinesis_stage("fail_on_poison", MaximumRetryAttempts=3))
        put(cloud, {"poison": True})

        cloud.run_until_idle()

        times = [i.time for i in cloud.invocations("Fn")]
        gaps = [round(later - earlier, 3) for earlier, later in zip(times, times[1:])]
        assert gaps == [1.1, 2.1, 4.1]  # 0.1 s invocation plus 1, 2 and 4 s

    def test_timed_out_invocation_fails_the_batch(self, cloud_for):
        """An invocation that times out is a function error: the batch is retried.

        https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html
        """
        cloud = cloud_for(kinesis_stage("succeed", MaximumRetryAttempts=1, DestinationConfig=ON_FAILURE))
        cloud.function("Fn").duration = 11.0  # the stage's Timeout is 10 s
        put(cloud, {"n": 1})

        cloud.run_until_idle()

        assert [i.error for i in cloud.invocations("Fn")] == ["Task timed out after 10.00 seconds"] * 2
        assert failures(cloud)[0]["requestContext"]["condition"] == "RetryAttemptsExhausted"

    def test_records_older_than_maximum_record_age_are_discarded(self, cloud_for):
        """MaximumRecordAgeInSeconds ends the retries of a batch whose records are too old.

        https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-parameters.html
        """
        cloud = cloud_for(kinesis_stage("fail_on_poison", BatchSize=1, MaximumRecordAgeInSeconds=60,
                                        DestinationConfig=ON_FAILURE))
        started = cloud.clock.now()
        [poison] = put(cloud, {"poison": True})
        cloud.clock.advance(30)
        [good] = put(cloud, {"n": 2})

        cloud.run_until_idle()

        invocations = cloud.invocations("Fn")
        attempts = [i for i in invocations if sequences(i) == [poison]]
        assert len(attempts) > 3 and all(i.time - started <= 60 for i in attempts)
        assert sequences(invocations[-1]) == [good] and invocations[-1].time - started == pytest.approx(60)
        [record] = failures(cloud)
        assert record["requestContext"]["condition"] == "RecordAgeExceeded"
        assert record["requestContext"]["approximateInvokeCount"] == len(attempts)

    def test_by_default_a_failing_batch_is_retried_until_its_records_expire(self, cloud_for):
        """MaximumRetryAttempts and MaximumRecordAgeInSeconds default to -1: retry until the records expire.

        A Kinesis stream keeps records for 24 hours unless RetentionPeriodHours says otherwise.
        https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-parameters.html
        """
        cloud = cloud_for(kinesis_stage("fail_on_poison", DestinationConfig=ON_FAILURE))
        put(cloud, {"poison": True})

        took = cloud.run_until_idle()

        assert took == pytest.approx(24 * 3600)
        [record] = failures(cloud)
        assert record["requestContext"]["condition"] == "RecordAgeExceeded"
        assert record["requestContext"]["approximateInvokeCount"] == len(cloud.invocations("Fn")) > 1000

    def test_bisect_batch_on_function_error_isolates_the_bad_record_without_spending_retries(self, cloud_for):
        """BisectBatchOnFunctionError splits a failed batch in two; splitting spends no retry.

        https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html
        """
        cloud = cloud_for(kinesis_stage("fail_on_poison", BatchSize=4, MaximumRetryAttempts=0,
                                        BisectBatchOnFunctionError=True, DestinationConfig=ON_FAILURE))
        [one, two, poison, four] = put(cloud, {"n": 1}, {"n": 2}, {"poison": True}, {"n": 4})

        cloud.run_until_idle()

        tried = [(sequences(i), i.ok) for i in cloud.invocations("Fn")]
        assert tried == [
            ([one, two, poison, four], False),
            ([one, two], True),
            ([poison, four], False),
            ([poison], False),
            ([four], True),
        ]
        [record] = failures(cloud)
        info = record["KinesisBatchInfo"]
        assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (poison, poison, 1)
        assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"

    def test_report_batch_item_failures_checkpoints_at_the_lowest_failed_sequence_number(self, cloud_for):
        """With ReportBatchItemFailures, records before the lowest reported one are done; the rest retry.

        https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-batchfailurereporting.html
        """
        cloud = cloud_for(kinesis_stage("report_poison", BatchSize=4, MaximumRetryAttempts=1,
                                        FunctionResponseTypes=["ReportBatchItemFailures"],
                                        DestinationConfig=ON_FAILURE))
        [one, poison, three, poison_too, five] = put(
            cloud, {"n": 1}, {"poison": True}, {"n": 3}, {"poison": True}, {"n": 5})

        cloud.run_until_idle()

        assert [sequences(i) for i in cloud.invocations("Fn")] == [
            [one, poison, three, poison_too],
            [poison, three, poison_too],  # retried from the checkpoint
            [five],  # the failed records went to the destination; the shard moved on
        ]
        info = failures(cloud)[0]["KinesisBatchInfo"]
        assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (poison, poison_too, 3)

    def test_invalid_item_identifier_fails_the_whole_batch(self, cloud_for):
        """An itemIdentifier that is no sequence number of the batch makes the whole batch a failure.

        https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-batchfailurereporting.html
        """
        cloud = cloud_for(kinesis_stage("report_unknown_record", MaximumRetryAttempts=1,
                                        FunctionResponseTypes=["ReportBatchItemFailures"],
                                        DestinationConfig=ON_FAILURE))
        batch = put(cloud, {"n": 1}, {"n": 2})

        cloud.run_until_idle()

        invocations = cloud.invocations("Fn")
        assert [sequences(i) for i in invocations] == [batch, batch]
        assert all("batchItemFailures" in (i.error or "") for i in invocations)
        assert failures(cloud)[0]["KinesisBatchInfo"]["batchSize"] == 2

    def test_shard_blocked_by_a_failing_batch_is_reported_when_the_run_gives_up(self, cloud_for):
        """By default a failing batch is retried until its records expire, blocking the shard.

        https://docs.aws.amazon.com/lambda/latest/dg/invocation-retries.html
        """
        cloud = cloud_for(kinesis_stage("fail_on_poison"))
        put(cloud, {"poison": True}, {"n": 2})

        with pytest.raises(StillBusyError, match="blocked by a failing batch"):
            cloud.run_until_idle(max_seconds=600)


class TestTumblingWindows:
    def test_tumbling_window_passes_state_between_invocations_and_ends_with_a_final_invocation(self, cloud_for):
        """Each invocation of a window gets the state the previous one returned; the last has isFinalInvokeForWindow.

        https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-windows.html
        """
        cloud = cloud_for(kinesis_stage("count_in_window", BatchSize=2, TumblingWindowInSeconds=60))
        put(cloud, {"amount": 1}, {"amount": 2}, {"amount": 3})
        cloud.run_until_idle()
        put(cloud, {"amount": 10})
        cloud.run_until_idle()

        events = [i.event for i in cloud.invocations("Fn")]
        assert [(len(e["Records"]), e["state"], e["isFinalInvokeForWindow"]) for e in events] == [
            (2, {}, False),
            (1, {"records": 2, "amount": 3}, False),
            (0, {"records": 3, "amount": 6}, True),
            (1, {}, False),  # a new window starts with a fresh state
            (0, {"records": 1, "amount": 10}, True),
        ]
        assert [e["window"] for e in events] == [{"start": "2025-11-28T09:00:00Z", "end": "2025-11-28T09:01:00Z"}] * 3 + [
            {"start": "2025-11-28T09:01:00Z", "end": "2025-11-28T09:02:00Z"}] * 2
        assert {(e["shardId"], e["isWindowTerminatedEarly"]) for e in events} == {("shardId-000000000000", False)}
        assert all(e["eventSourceARN"].endswith(cloud.physical_id("Stream")) for e in events)
        assert cloud.invocations("Fn")[2].result == {"total": {"records": 3, "amount": 6}}
        assert cloud.invocations("Fn")[2].time == dt.datetime(2025, 11, 28, 9, 1, tzinfo=dt.timezone.utc).timestamp()

    def test_tumbling_window_response_without_state_is_a_failure(self, cloud_for):
        """With tumbling windows, a response without a state property is a failed invocation.

        https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-windows.html
        """
        cloud = cloud_for(kinesis_stage("forget_state", TumblingWindowInSeconds=60, MaximumRetryAttempts=0,
                                        DestinationConfig=ON_FAILURE))
        put(cloud, {"amount": 1})

        cloud.run_until_idle()

        assert "state" in (cloud.invocations("Fn")[0].error or "")
        assert failures(cloud)[0]["requestContext"]["condition"] == "RetryAttemptsExhausted"


    def test_tumbling_window_response_may_report_batch_item_failures_with_the_state(self, cloud_for):
        """A TimeWindowEventResponse carries the state and batchItemFailures: the state of the records
        before the checkpoint is kept, and the batch is retried from the reported record.

        https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-windows.html
        https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-batchfailurereporting.html
        """
        cloud = cloud_for(kinesis_stage("count_in_window_until_poison", TumblingWindowInSeconds=60,
                                        FunctionResponseTypes=["ReportBatchItemFailures"],
                                        MaximumRetryAttempts=1, DestinationConfig=ON_FAILURE))
        [_, _, poison, four] = put(cloud, {"amount": 1}, {"amount": 2}, {"poison": True}, {"amount": 4})

        cloud.run_until_idle()

        events = [i.event for i in cloud.invocations("Fn")]
        assert [(sequences_of(e), e["state"], e["isFinalInvokeForWindow"]) for e in events] == [
            (sequences_of(events[0]), {}, False),
            ([poison, four], {"records": 2, "amount": 3}, False),  # retried from the checkpoint, with the kept state
            ([], {"records": 2, "amount": 3}, True),
        ]
        info = failures(cloud)[0]["KinesisBatchInfo"]
        assert (info["startSequenceNumber"], info["batchSize"]) == (poison, 2)


class TestDynamoDBStreams:
    def test_dynamodb_stream_records_describe_inserts_modifications_and_removals(self, cloud_for):
        """Each write to the table becomes a stream record: INSERT, MODIFY or REMOVE, with its images.

        https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html
        """
        cloud = cloud_for(dynamodb_stage("succeed"))
        dynamodb, table = boto3.client("dynamodb"), cloud.physical_id("Table")
        dynamodb.put_item(TableName=table, Item={"pk": {"S": "o-1"}, "status": {"S": "PLACED"}})
        dynamodb.update_item(TableName=table, Key={"pk": {"S": "o-1"}}, UpdateExpression="SET #s = :s",
                             ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues={":s": {"S": "PAID"}})
        dynamodb.delete_item(TableName=table, Key={"pk": {"S": "o-1"}})

        cloud.run_until_idle()

        [invocation] = cloud.invocations("Fn")
        records = invocation.event["Records"]
        assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
        assert [r["dynamodb"].get("NewImage", {}).get("status") for r in records] == [{"S": "PLACED"}, {"S": "PAID"}, None]
        assert [r["dynamodb"].get("OldImage", {}).get("status") for r in records] == [None, {"S": "PLACED"}, {"S": "PAID"}]
        stream_arn = boto3.client("dynamodb").describe_table(TableName=table)["Table"]["LatestStreamArn"]
        assert {(r["eventSourceARN"], r["eventVersion"], r["eventSource"], r["awsRegion"]) for r in records} == {
            (stream_arn, "1.1", "aws:dynamodb", cloud.region)}
        assert all(r["dynamodb"]["ApproximateCreationDateTime"] == cloud.clock.start.timestamp() for r in records)

    def test_dynamodb_stream_has_one_record_per_change_of_an_item(self, cloud_for):
        """An upsert through UpdateItem is one INSERT; a write that changes nothing writes no record.

        (moto writes two INSERTs and a MODIFY here; the local cloud reads them as DynamoDB writes them.)
        https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html
        """
        cloud = cloud_for(dynamodb_stage("succeed"))
        dynamodb, table = boto3.client("dynamodb"), cloud.physical_id("Table")
        dynamodb.update_item(TableName=table, Key={"pk": {"S": "o-1"}}, UpdateExpression="SET #s = :s",
                             ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues={":s": {"S": "PLACED"}})
        dynamodb.put_item(TableName=table, Item={"pk": {"S": "o-1"}, "status": {"S": "PLACED"}})

        cloud.run_until_idle()

        [invocation] = cloud.invocations("Fn")
        [record] = invocation.event["Records"]
        assert record["eventName"] == "INSERT"
        assert record["dynamodb"]["NewImage"] == {"pk": {"S": "o-1"}, "status": {"S": "PLACED"}}

    def test_dynamodb_failed_batch_sends_ddb_stream_batch_info_to_on_failure(self, cloud_for):
        """A discarded DynamoDB Streams batch reaches OnFailure as DDBStreamBatchInfo, without its records.

        https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html
        """
        cloud = cloud_for(dynamodb_stage("fail_on_poison", MaximumRetryAttempts=1, DestinationConfig=ON_FAILURE))
        boto3.client("dynamodb").put_item(TableName=cloud.physical_id("Table"),
                                          Item={"pk": {"S": "o-1"}, "poison": {"S": "yes"}})

        cloud.run_until_idle()

        assert len(cloud.invocations("Fn")) == 2
        [record] = failures(cloud)
        info = record["DDBStreamBatchInfo"]
        sequence = cloud.invocations("Fn")[0].event["Records"][0]["dynamodb"]["SequenceNumber"]
        assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (sequence, sequence, 1)
        assert "/stream/" in info["streamArn"]
        assert "o-1" not in cloud.messages("FailureQueue")[0]


class TestEventShapes:
    def test_kinesis_events_parse_with_the_powertools_model(self, cloud_for):
        """Every Kinesis event, tumbling-window ones included, parses as KinesisDataStreamModel.

        https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html#services-kinesis-event-example
        """
        cloud = cloud_for(kinesis_stage("count_in_window", TumblingWindowInSeconds=30))
        [sequence] = put(cloud, {"amount": 5})

        cloud.run_until_idle()

        events = [i.event for i in cloud.invocations("Fn")]
        parsed = [KinesisDataStreamModel.model_validate(e) for e in events]
        record = parsed[0].Records[0]
        assert json.loads(record.kinesis.data) == {"amount": 5}
        assert record.kinesis.sequenceNumber == sequence
        assert record.eventID == f"shardId-000000000000:{sequence}"
        assert record.invokeIdentityArn.startswith("arn:aws:iam::")
        assert record.kinesis.approximateArrivalTimestamp == cloud.clock.start.timestamp()
        assert [e["isFinalInvokeForWindow"] for e in events] == [False, True]

    def test_dynamodb_events_parse_with_the_powertools_model(self, cloud_for):
        """Every DynamoDB Streams event parses as DynamoDBStreamModel.

        https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html#services-ddb-event-example
        """
        cloud = cloud_for(dynamodb_stage("succeed"))
        dynamodb, table = boto3.client("dynamodb"), cloud.physical_id("Table")
        dynamodb.put_item(TableName=table, Item={"pk": {"S": "o-1"}, "total": {"N": "12.5"}})
        dynamodb.delete_item(TableName=table, Key={"pk": {"S": "o-1"}})

        cloud.run_until_idle()

        [parsed] = [DynamoDBStreamModel.model_validate(i.event) for i in cloud.invocations("Fn")]
        inserted, removed = parsed.Records
        assert inserted.dynamodb.NewImage == {"pk": "o-1", "total": Decimal("12.5")}
        assert removed.eventName == "REMOVE" and removed.dynamodb.Keys == {"pk": "o-1"}
        assert inserted.dynamodb.ApproximateCreationDateTime == cloud.clock.start


RULE_TO_STREAM = """
    Bus:
      Type: AWS::Events::EventBus
      Properties: {{Name: shop}}
    Stream:
      Type: AWS::Kinesis::Stream
      Properties: {{ShardCount: 2}}
    ToStream:
      Type: AWS::Events::Rule
      Properties:
        EventBusName: {{"Fn::GetAtt": [Bus, Name]}}
        EventPattern: {{source: [shop.storefront]}}
        Targets:
          - {target}
"""


def rule_to_stream(**target: Any) -> str:
    """Resources: a bus, a two-shard stream, and a rule that sends shop.storefront events to the stream."""
    properties = {"Id": "Stream", "Arn": {"Fn::GetAtt": ["Stream", "Arn"]}, **target}
    return RULE_TO_STREAM.format(target=json.dumps(properties))


def stream_records(cloud: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """Every record of the stream as (shard id, partition key, data as JSON), shard by shard."""
    kinesis = boto3.client("kinesis")
    name = cloud.physical_id("Stream")
    found = []
    for shard in kinesis.list_shards(StreamName=name)["Shards"]:
        iterator = kinesis.get_shard_iterator(StreamName=name, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        for record in kinesis.get_records(ShardIterator=iterator)["Records"]:
            found.append((shard["ShardId"], record["PartitionKey"], json.loads(record["Data"])))
    return found


def put_orders(cloud: Any, *customers: str) -> list[str]:
    """One event per customer on the bus; returns their event ids."""
    response = boto3.client("events").put_events(Entries=[
        {"EventBusName": "shop", "Source": "shop.storefront", "DetailType": "OrderPlaced",
         "Detail": json.dumps({"customer_id": customer, "n": n})} for n, customer in enumerate(customers)])
    return [entry["EventId"] for entry in response["Entries"]]


class TestEventBridgeToKinesis:
    def test_partition_key_path_takes_the_partition_key_from_the_event(self, cloud_for):
        """KinesisParameters.PartitionKeyPath: the JSON path in the event whose value is the record's
        partition key, so one customer's events share a shard, in the order they were put.

        https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_KinesisParameters.html
        """
        cloud = cloud_for(rule_to_stream(KinesisParameters={"PartitionKeyPath": "$.detail.customer_id"}))
        customers = ["alice", "bob", "carol", "dave", "alice", "bob", "carol", "dave"]
        put_orders(cloud, *customers)

        records = stream_records(cloud)

        assert sorted(key for _, key, _ in records) == sorted(customers)
        assert all(key == data["detail"]["customer_id"] for _, key, data in records)
        shard_of = {key: {shard for shard, k, _ in records if k == key} for key in customers}
        assert all(len(shards) == 1 for shards in shard_of.values()), shard_of
        assert len({shard for shard, _, _ in records}) == 2  # and the customers spread over both shards
        for customer in set(customers):  # per shard, a customer's events are in the order they were put
            assert [d["detail"]["n"] for _, k, d in records if k == customer] == [
                n for n, c in enumerate(customers) if c == customer]
        # the record's data is the event as EventBridge delivers it
        assert {data["detail-type"] for _, _, data in records} == {"OrderPlaced"}

    def test_without_partition_key_path_the_event_id_is_the_partition_key(self, cloud_for):
        """"If you do not include this parameter, the default is to use the eventId as the partition key."

        https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_KinesisParameters.html
        """
        cloud = cloud_for(rule_to_stream())
        event_ids = put_orders(cloud, "alice", "alice", "alice")

        records = stream_records(cloud)

        assert sorted(key for _, key, _ in records) == sorted(event_ids)
        assert all(key == data["id"] for _, key, data in records)
