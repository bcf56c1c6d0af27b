"""CloudWatch alarms, evaluated in virtual time: moto stores alarms but never evaluates them.

At the end of each alarm's period (virtual time), the alarm looks at its last
EvaluationPeriods datapoints, decides OK, ALARM or INSUFFICIENT_DATA, records a change
in moto (SetAlarmState) and in `history`, and publishes the alarm notification to the
SNS topics of its actions.
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-evaluation.html
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import operator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from .errors import EdakitError
from .metrics import MetricStore, statistic

if TYPE_CHECKING:
    from .cloud import LocalCloud

OK, ALARM, INSUFFICIENT_DATA = "OK", "ALARM", "INSUFFICIENT_DATA"

#: https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html
COMPARISONS: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "GreaterThanThreshold": (operator.gt, "greater than"),
    "GreaterThanOrEqualToThreshold": (operator.ge, "greater than or equal to"),
    "LessThanThreshold": (operator.lt, "less than"),
    "LessThanOrEqualToThreshold": (operator.le, "less than or equal to"),
}
#: The Region's name as alarm notifications spell it.
REGION_NAMES = {"us-east-1": "US East (N. Virginia)", "us-east-2": "US East (Ohio)", "us-west-2": "US West (Oregon)",
                "eu-west-1": "Europe (Ireland)", "eu-central-1": "Europe (Frankfurt)"}


@dataclass(frozen=True)
class AlarmStateChange:
    """One state change of an alarm, as its history shows it."""

    time: float
    alarm: str
    old_state: str
    new_state: str
    reason: str
    reason_data: str

    @property
    def when(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.time, dt.timezone.utc)


def _iso(when: float) -> str:
    return dt.datetime.fromtimestamp(when, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _short(when: float) -> str:
    """How a state reason names a datapoint's time: (28/11/25 09:03:00)."""
    return dt.datetime.fromtimestamp(when, dt.timezone.utc).strftime("%d/%m/%y %H:%M:%S")


class MetricMath:
    """The arithmetic part of metric math: + - * / on query ids and numbers, and FILL(m, value).

    https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html
    """

    _OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}

    def __init__(self, alarm_name: str, expression: str) -> None:
        self.alarm_name = alarm_name
        self.expression = expression
        try:
            self.tree = ast.parse(expression, mode="eval").body
        except SyntaxError:
            raise self._unsupported() from None

    def _unsupported(self) -> EdakitError:
        return EdakitError(
            f"alarm {self.alarm_name}: the local cloud evaluates metric math with + - * / and FILL(m, value) "
            f"only, not {self.expression!r}. Rewrite the expression, or alarm on a single metric.")

    def value(self, variables: dict[str, float | None]) -> float | None:
        return self._eval(self.tree, variables)

    def _eval(self, node: ast.AST, variables: dict[str, float | None]) -> float | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id not in variables:
                raise EdakitError(f"alarm {self.alarm_name}: {self.expression!r} names {node.id!r}, "
                                  f"which is not the Id of a query ({', '.join(sorted(variables))})")
            return variables[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            inner = self._eval(node.operand, variables)
            return None if inner is None else -inner
        if isinstance(node, ast.BinOp) and type(node.op) in self._OPERATORS:
            left, right = self._eval(node.left, variables), self._eval(node.right, variables)
            if left is None or right is None:
                return None  # a missing operand: no datapoint for this period
            if isinstance(node.op, ast.Div) and right == 0:
                return None
            return self._OPERATORS[type(node.op)](left, right)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "FILL"
                and len(node.args) == 2):
            value = self._eval(node.args[0], variables)
            return self._eval(node.args[1], variables) if value is None else value
        raise self._unsupported()


class AlarmEvaluator:
    """Evaluates every alarm in moto's CloudWatch at the end of each of its periods."""

    def __init__(self, cloud: "LocalCloud", store: MetricStore) -> None:
        self.cloud = cloud
        self.store = store
        self.history: list[AlarmStateChange] = []
        self._known: set[str] = set()

    @property
    def backend(self) -> Any:
        return self.store.backend

    def _adopt(self, alarm: Any) -> None:
        """A new alarm starts in INSUFFICIENT_DATA (moto says OK), and no action runs for that."""
        if alarm.name in self._known:
            return
        self._known.add(alarm.name)
        alarm.state_value = INSUFFICIENT_DATA
        alarm.state_reason = "Unchecked: Initial alarm creation"
        alarm.state_updated_timestamp = self.cloud.clock.datetime().replace(tzinfo=None)

    def boundary(self, at: float) -> None:
        """Virtual time reached the minute boundary ``at``: evaluate the alarms whose period ends there."""
        for alarm in list(self.backend.alarms.values()):
            if getattr(alarm, "rule", None):
                continue  # a composite alarm: see the fidelity page
            self._adopt(alarm)
            period = self._period(alarm)
            if int(at) % period == 0:
                self.evaluate(alarm, at)

    @staticmethod
    def _period(alarm: Any) -> int:
        if alarm.metric_data_queries:
            return max(int(q.metric_stat.period) for q in alarm.metric_data_queries if q.metric_stat)
        return int(alarm.period)

    # -- datapoints ------------------------------------------------------------------------

    def _metric_value(self, namespace: str, name: str, dimensions: list[Any], stat: str,
                      start: float, end: float) -> float | None:
        dims = {d.name: d.value for d in dimensions}
        values = self.store.values(namespace, name, dims, start, end)
        return statistic(stat, values) if values else None

    def datapoint(self, alarm: Any, start: float, end: float) -> float | None:
        """The alarm's datapoint for the period [start, end), or None when data is missing."""
        if not alarm.metric_data_queries:
            stat = alarm.extended_statistic or alarm.statistic
            return self._metric_value(alarm.namespace, alarm.metric_name, alarm.dimensions, stat, start, end)
        variables: dict[str, float | None] = {}
        returned = None
        expressions = []
        for query in alarm.metric_data_queries:
            if query.metric_stat is not None:
                metric = query.metric_stat.metric
                variables[query.id] = self._metric_value(metric.namespace, metric.metric_name, metric.dimensions,
                                                         query.metric_stat.stat, start, end)
            else:
                expressions.append(query)
            if str(query.return_data).lower() != "false" and query.return_data is not None:
                returned = query
        for query in expressions:
            variables[query.id] = MetricMath(alarm.name, query.expression).value(variables)
        if returned is None:
            raise EdakitError(f"alarm {alarm.name}: one query of Metrics needs ReturnData: true")
        return variables[returned.id]

    # -- evaluation --------------------------------------------------------------------------

    def evaluate(self, alarm: Any, end: float) -> None:
        """Decide the alarm's state from its last EvaluationPeriods periods, ending at ``end``.

        M out of N: ALARM when at least DatapointsToAlarm of them breach. Missing
        datapoints count as TreatMissingData says.
        https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-evaluation.html
        """
        if alarm.comparison_operator not in COMPARISONS:
            raise EdakitError(f"alarm {alarm.name}: the local cloud evaluates {', '.join(COMPARISONS)}, "
                              f"not {alarm.comparison_operator} (anomaly detection bands are not emulated)")
        compare, words = COMPARISONS[alarm.comparison_operator]
        period = self._period(alarm)
        n = int(alarm.evaluation_periods)
        m = int(alarm.datapoints_to_alarm or n)
        starts = [end - (n - i) * period for i in range(n)]
        points = [(start, self.datapoint(alarm, start, start + period)) for start in starts]
        present = [(start, value) for start, value in points if value is not None]
        missing = n - len(present)
        breaching = sum(1 for _, value in present if compare(value, alarm.threshold))
        treat = alarm.treat_missing_data or "missing"
        if treat == "breaching":
            breaching += missing
        old = alarm.state_value
        if breaching >= m:
            new = ALARM
        elif present or treat in ("breaching", "notBreaching"):
            new = OK
        elif treat == "ignore":
            return  # every datapoint missing: the alarm keeps its state
        else:
            new = INSUFFICIENT_DATA
        if new == old:
            return
        stat = alarm.extended_statistic or alarm.statistic
        shown = ", ".join(f"{value} ({_short(start)})" for start, value in reversed(present))
        if new == INSUFFICIENT_DATA:
            reason = (f"Insufficient Data: {n} datapoint{'s were' if n > 1 else ' was'} unknown.")
        else:
            count = breaching if new == ALARM else (n - breaching if treat == "notBreaching" else len(present) - breaching)
            relation = words if new == ALARM else f"not {words}"
            reason = (f"Threshold Crossed: {count} out of the last {n} datapoint{'s' if n > 1 else ''} "
                      f"[{shown}] {'were' if count != 1 else 'was'} {relation} the threshold ({alarm.threshold}) "
                      f"(minimum {m} datapoint{'s' if m > 1 else ''} for {old} -> {new} transition).")
        reason_data = json.dumps({
            "version": "1.0", "queryDate": _iso(end), "startDate": _iso(starts[0]),
            **({"statistic": stat} if stat and not alarm.metric_data_queries else {}),
            "period": period, "recentDatapoints": [value for _, value in present],
            "threshold": alarm.threshold,
            "evaluatedDatapoints": [{"timestamp": _iso(start), "value": value} for start, value in reversed(present)],
        })
        self._change(alarm, old, new, reason, reason_data, end)

    def _change(self, alarm: Any, old: str, new: str, reason: str, reason_data: str, at: float) -> None:
        self.backend.set_alarm_state(alarm.name, reason, reason_data, new)
        self.history.append(AlarmStateChange(at, alarm.name, old, new, reason, reason_data))
        if not alarm.actions_enabled:
            return
        actions = {ALARM: alarm.alarm_actions, OK: alarm.ok_actions,
                   INSUFFICIENT_DATA: alarm.insufficient_data_actions}[new] or []
        for arn in actions:
            if arn.split(":")[2] != "sns":
                self.cloud.warn(f"alarm {alarm.name}: the local cloud runs SNS alarm actions only, not {arn}")
                continue
            message = self.notification(alarm, old, new, reason, at)
            subject = f'{new}: "{alarm.name}" in {self._region_name()}'
            self.cloud.sns_backend.publish(json.dumps(message), arn=arn, subject=subject[:100])

    def _region_name(self) -> str:
        return REGION_NAMES.get(self.cloud.region, self.cloud.region)

    def notification(self, alarm: Any, old: str, new: str, reason: str, at: float) -> dict[str, Any]:
        """The JSON message an alarm action publishes to SNS.

        https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html
        """
        trigger: dict[str, Any] = {
            "Period": self._period(alarm), "EvaluationPeriods": int(alarm.evaluation_periods),
            "ComparisonOperator": alarm.comparison_operator, "Threshold": alarm.threshold,
            "TreatMissingData": alarm.treat_missing_data or "missing",
            "EvaluateLowSampleCountPercentile": alarm.evaluate_low_sample_count_percentile or "",
        }
        if alarm.datapoints_to_alarm:
            trigger["DatapointsToAlarm"] = int(alarm.datapoints_to_alarm)
        if alarm.metric_data_queries:
            trigger["Metrics"] = [{"Id": q.id, "Expression": q.expression} if q.expression else
                                  {"Id": q.id, "MetricStat": {"Metric": {
                                      "Namespace": q.metric_stat.metric.namespace,
                                      "MetricName": q.metric_stat.metric.metric_name,
                                      "Dimensions": [{"value": d.value, "name": d.name}
                                                     for d in q.metric_stat.metric.dimensions]},
                                      "Period": int(q.metric_stat.period), "Stat": q.metric_stat.stat}}
                                  for q in alarm.metric_data_queries]
        else:
            trigger.update({
                "MetricName": alarm.metric_name, "Namespace": alarm.namespace,
                "StatisticType": "ExtendedStatistic" if alarm.extended_statistic else "Statistic",
                "Statistic": (alarm.extended_statistic or alarm.statistic or "").upper(),
                "Unit": alarm.unit, "Dimensions": [{"value": d.value, "name": d.name} for d in alarm.dimensions],
            })
        return {
            "AlarmName": alarm.name,
            "AlarmDescription": alarm.description,
            "AWSAccountId": self.cloud.account_id,
            "AlarmConfigurationUpdatedTimestamp": alarm.configuration_updated_timestamp.strftime(
                "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000",
            "NewStateValue": new,
            "NewStateReason": reason,
            "StateChangeTime": dt.datetime.fromtimestamp(at, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
            + "+0000",
            "Region": self._region_name(),
            "AlarmArn": alarm.alarm_arn,
            "OldStateValue": old,
            "OKActions": list(alarm.ok_actions or []),
            "AlarmActions": list(alarm.alarm_actions or []),
            "InsufficientDataActions": list(alarm.insufficient_data_actions or []),
            "Trigger": trigger,
        }

    # -- reading -----------------------------------------------------------------------------

    def name_of(self, name_or_logical_id: str) -> str:
        """An alarm's name, from its name or from its logical id in the template."""
        deployment = self.cloud.deployment
        if deployment is not None and deployment.resource_types.get(name_or_logical_id) == "AWS::CloudWatch::Alarm":
            return deployment.physical_ids[name_or_logical_id]
        return name_or_logical_id

    def state(self, name: str) -> str:
        name = self.name_of(name)
        alarm = self.backend.alarms.get(name)
        if alarm is None:
            raise EdakitError(f"no alarm {name!r}; alarms: {', '.join(sorted(self.backend.alarms)) or 'none'}")
        self._adopt(alarm)
        return alarm.state_value
