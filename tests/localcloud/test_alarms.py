"""CloudWatch alarms in the local cloud: evaluated at the end of each period, in virtual time,
with their state in moto and their notifications published to SNS."""

from __future__ import annotations

import json
import textwrap
from typing import Any, Callable

import boto3
import pytest

from edakit import LocalCloud
from edakit.errors import EdakitError

def alarm_template(**properties: Any) -> str:
    """A topic with an email subscription, and an alarm on Shop/Orders that tells it."""
    alarm = {"Namespace": "Shop", "MetricName": "Orders", "Statistic": "Sum", "Period": 60,
             "EvaluationPeriods": 1, "Threshold": 5, "ComparisonOperator": "GreaterThanThreshold",
             "AlarmActions": [{"Ref": "Alerts"}], "OKActions": [{"Ref": "Alerts"}], **properties}
    return """
Alerts:
  Type: AWS::SNS::Topic
Operator:
  Type: AWS::SNS::Subscription
  Properties:
    TopicArn: !Ref Alerts
    Protocol: email
    Endpoint: ops@example.com
TooManyOrders:
  Type: AWS::CloudWatch::Alarm
  Properties:
""" + textwrap.indent(json.dumps({k: v for k, v in alarm.items() if v is not None}, indent=2), "    ")


def orders(cloud: LocalCloud, *per_minute: float | None) -> None:
    """Put one Orders datapoint in each of the next minutes (None: no data that minute), then let the
    last minute end."""
    cloud.clock.advance((61 - round(cloud.clock.now() % 60, 3)) % 60)  # to 1 s after a minute boundary
    for value in per_minute:
        if value is not None:
            boto3.client("cloudwatch").put_metric_data(Namespace="Shop", MetricData=[
                {"MetricName": "Orders", "Value": value, "Unit": "Count"}])
        cloud.run_for(60)


def states(cloud: LocalCloud) -> list[str]:
    return [change.new_state for change in cloud.alarm_history("TooManyOrders")]


class TestEvaluation:
    def test_an_alarm_starts_in_insufficient_data_and_changes_at_the_end_of_a_period(
        self, cloud_for: Callable[..., LocalCloud]
    ) -> None:
        """A new alarm is INSUFFICIENT_DATA; at the end of the period whose datapoint breaches, ALARM.
        https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-evaluation.html
        """
        cloud = cloud_for(alarm_template())
        assert cloud.alarm_state("TooManyOrders") == "INSUFFICIENT_DATA"
        orders(cloud, 2)
        assert cloud.alarm_state("TooManyOrders") == "OK"
        orders(cloud, 9)
        assert cloud.alarm_state("TooManyOrders") == "ALARM"
        alarm = boto3.client("cloudwatch").describe_alarms(AlarmNames=[cloud.physical_id("TooManyOrders")])["MetricAlarms"][0]
        assert alarm["StateValue"] == "ALARM"
        assert alarm["StateReason"].startswith("Threshold Crossed: 1 out of the last 1 datapoint [9.0 (")
        assert json.loads(alarm["StateReasonData"])["recentDatapoints"] == [9.0]

    def test_m_out_of_n_datapoints_must_breach(self, cloud_for: Callable[..., LocalCloud]) -> None:
        """With DatapointsToAlarm 2 and EvaluationPeriods 3, two breaching datapoints of the last three alarm.
        https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-evaluation.html
        """
        cloud = cloud_for(alarm_template(EvaluationPeriods=3, DatapointsToAlarm=2))
        orders(cloud, 9, 1, 1, 9)
        assert cloud.alarm_state("TooManyOrders") == "OK"
        orders(cloud, 1, 9)
        assert cloud.alarm_state("TooManyOrders") == "ALARM"
        assert states(cloud) == ["OK", "ALARM"]

    @pytest.mark.parametrize("treat, expected", [
        ("missing", "INSUFFICIENT_DATA"), ("notBreaching", "OK"), ("breaching", "ALARM"), ("ignore", "ALARM"),
    ])
    def test_missing_data_counts_as_treat_missing_data_says(
        self, cloud_for: Callable[..., LocalCloud], treat: str, expected: str
    ) -> None:
        """After an ALARM, three periods with no data: missing -> INSUFFICIENT_DATA, notBreaching -> OK,
        breaching -> stays ALARM, ignore -> keeps the current state.
        https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarms-and-missing-data.html
        """
        cloud = cloud_for(alarm_template(TreatMissingData=treat))
        orders(cloud, 9, None, None, None)
        assert cloud.alarm_state("TooManyOrders") == expected

    def test_an_extended_statistic_is_a_percentile(self, cloud_for: Callable[..., LocalCloud]) -> None:
        """ExtendedStatistic p90 alarms on the 90th percentile of the period's values.
        https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Statistics-definitions.html
        """
        cloud = cloud_for(alarm_template(Statistic=None, ExtendedStatistic="p90", Threshold=50))
        cloud.clock.advance(60 - cloud.clock.now() % 60 + 1)
        boto3.client("cloudwatch").put_metric_data(Namespace="Shop", MetricData=[
            {"MetricName": "Orders", "Values": [10, 100], "Counts": [9, 1]}])  # p90 is 10: no alarm
        cloud.run_for(60)
        assert cloud.alarm_state("TooManyOrders") == "OK"
        boto3.client("cloudwatch").put_metric_data(Namespace="Shop", MetricData=[
            {"MetricName": "Orders", "Values": [10, 100], "Counts": [8, 2]}])  # p90 is 100
        cloud.run_for(60)
        assert cloud.alarm_state("TooManyOrders") == "ALARM"

    def test_metric_math_alarms_on_an_expression(self, cloud_for: Callable[..., LocalCloud]) -> None:
        """An alarm on a metric math expression: 100 * FILL(failed, 0) / orders above 20 (%).
        https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Create-alarm-on-metric-math-expression.html
        """
        def stat(query_id: str, name: str) -> dict[str, Any]:
            return {"Id": query_id, "ReturnData": False, "MetricStat": {
                "Metric": {"Namespace": "Shop", "MetricName": name}, "Period": 60, "Stat": "Sum"}}

        cloud = cloud_for(alarm_template(
            Namespace=None, MetricName=None, Statistic=None, Period=None, Threshold=20,
            Metrics=[stat("failed", "Failed"), stat("all", "Orders"),
                     {"Id": "rate", "Expression": "100 * FILL(failed, 0) / all", "ReturnData": True}]))
        cloudwatch = boto3.client("cloudwatch")
        orders(cloud, 10)
        assert cloud.alarm_state("TooManyOrders") == "OK"  # no Failed datapoint: FILL makes it 0 %
        orders(cloud)  # to the start of the next period
        cloudwatch.put_metric_data(Namespace="Shop", MetricData=[{"MetricName": "Failed", "Value": 3}])
        orders(cloud, 10)
        assert cloud.alarm_state("TooManyOrders") == "ALARM"
        assert "[30.0 (" in cloud.alarm_history("TooManyOrders")[-1].reason

    def test_metric_math_the_local_cloud_cannot_evaluate_is_a_clear_error(
        self, cloud_for: Callable[..., LocalCloud]
    ) -> None:
        """Metric math functions other than FILL are not emulated: the error names the alarm and the expression.
        https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html
        """
        cloud = cloud_for(alarm_template(
            Namespace=None, MetricName=None, Statistic=None, Period=None,
            Metrics=[{"Id": "m", "ReturnData": False, "MetricStat": {
                "Metric": {"Namespace": "Shop", "MetricName": "Orders"}, "Period": 60, "Stat": "Sum"}},
                {"Id": "e", "Expression": "RATE(m)", "ReturnData": True}]))
        with pytest.raises(EdakitError, match=r"TooManyOrders.*\+ - \* / and FILL.*'RATE\(m\)'"):
            cloud.run_for(120)

    def test_alarms_never_keep_the_cloud_busy(self, cloud_for: Callable[..., LocalCloud]) -> None:
        """Alarms are evaluated as virtual time passes: with no work left, run_until_idle returns at once.
        https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-evaluation.html
        """
        cloud = cloud_for(alarm_template())
        assert cloud.run_until_idle() == 0


class TestActions:
    def test_a_state_change_publishes_the_alarm_notification_to_the_topic(self, cloud_for: Callable[..., LocalCloud]) -> None:
        """AlarmActions on ALARM, OKActions on OK: SNS gets the alarm's JSON notification, and the
        email subscriber gets it with the subject "ALARM: "<name>" in <Region>".
        https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html
        """
        cloud = cloud_for(alarm_template())
        orders(cloud, 9, 1)
        name = cloud.physical_id("TooManyOrders")
        assert [n.subject for n in cloud.notifications] == [
            f'ALARM: "{name}" in US East (N. Virginia)', f'OK: "{name}" in US East (N. Virginia)']
        alarm, ok = (json.loads(n.message) for n in cloud.notifications)
        assert (alarm["OldStateValue"], alarm["NewStateValue"], ok["NewStateValue"]) == ("INSUFFICIENT_DATA", "ALARM", "OK")
        assert alarm["AlarmName"] == name and alarm["AWSAccountId"] == cloud.account_id
        assert alarm["Trigger"]["MetricName"] == "Orders" and alarm["Trigger"]["Threshold"] == 5
        assert alarm["Trigger"]["Statistic"] == "SUM" and alarm["Trigger"]["Period"] == 60
        assert set(alarm) >= {"AlarmDescription", "NewStateReason", "StateChangeTime", "Region", "AlarmArn",
                              "AlarmActions", "OKActions", "InsufficientDataActions"}

    def test_no_action_runs_while_actions_are_disabled(self, cloud_for: Callable[..., LocalCloud]) -> None:
        """DisableAlarmActions: the state still changes, nothing is published.
        https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DisableAlarmActions.html
        """
        cloud = cloud_for(alarm_template())
        boto3.client("cloudwatch").disable_alarm_actions(AlarmNames=[cloud.physical_id("TooManyOrders")])
        orders(cloud, 9)
        assert cloud.alarm_state("TooManyOrders") == "ALARM"
        assert cloud.notifications == []

    def test_an_unknown_alarm_is_a_clear_error(self, cloud_for: Callable[..., LocalCloud]) -> None:
        """https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html"""
        cloud = cloud_for(alarm_template())
        with pytest.raises(EdakitError, match="no alarm 'Nope'; alarms: shop-TooManyOrders"):
            cloud.alarm_state("Nope")
