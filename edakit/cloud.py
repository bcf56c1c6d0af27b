"""The local cloud: a stage's SAM template deployed into moto, with the Lambda service played in-process."""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import os
import sys
import warnings
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import boto3

from . import patches
from .clock import DEFAULT_START, VirtualClock
from .cloudwatch import CloudWatch
from .deploy import Deployment, deploy
from .errors import EdakitError, StillBusyError
from .iam import CallRecorder
from .runtime import Function, FunctionOutput, Invocation
from .sources.asynchronous import AsyncInvocationQueue
from .sources.sqs import SqsEventSource
from .template import Stage, load_stage

ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"
#: Lambda's default concurrency quota per account and Region.
ACCOUNT_CONCURRENCY = 1000
#: run_until_idle() gives up after this much virtual time: longer than any scenario
#: in the kit, shorter than SQS's default 4-day retention, so a message that fails
#: forever without a DLQ ends in a clear StillBusyError instead of days of retries.
DEFAULT_HORIZON = 2 * 24 * 3600.0

#: Credentials and settings for moto, set only while a cloud is open.
_MOTO_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    # DynamoDB Streams reads fail with account-id endpoints under moto.
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "MOTO_ACCOUNT_ID": ACCOUNT_ID,
}


@dataclass(order=True)
class _Completion:
    time: float
    sequence: int
    callback: Callable[[], None]


class LocalCloud:
    """Runs one stage of the system offline, on moto, in virtual time.

    Use it as a context manager (or call start() and stop(), as notebooks do):

    ```python
    with LocalCloud.from_template("sam-app/template.yaml") as cloud:
        boto3.client("events").put_events(...)
        cloud.run_until_idle()
    ```
    """

    def __init__(self, template: str | os.PathLike[str], *, region: str = DEFAULT_REGION,
                 stack_name: str = "shop", start: Any = DEFAULT_START,
                 parameters: dict[str, Any] | None = None) -> None:
        self.template_path = Path(template)
        #: Parameter values, as `sam deploy --parameter-overrides` gives them; the rest keep their Default.
        self.parameters = {name: str(value) for name, value in (parameters or {}).items()}
        self.region = region
        self.account_id = ACCOUNT_ID
        self.stack_name = stack_name
        self.clock = VirtualClock(start)
        self.functions: dict[str, Function] = {}
        self.deployment: Deployment | None = None
        self.stage: Stage | None = None
        self.account_concurrency = ACCOUNT_CONCURRENCY
        self.warnings: list[str] = []
        self.routes: Counter[tuple[str, str]] = Counter()
        #: Every email, email-json, SMS and mobile push delivery that SNS made, in order:
        #: recorded, never sent (the subscription's filter policy applied first).
        self.notifications: list[patches.Notification] = []
        self._invocations: list[Invocation] = []
        self._running: Counter[str] = Counter()
        self._completions: list[_Completion] = []
        self._sequence = itertools.count()
        self._sources: dict[str, Any] = {}
        self._exit: ExitStack | None = None
        self.async_queue = AsyncInvocationQueue(self)
        #: Metrics, alarms and traces (edakit/cloudwatch.py).
        self.cloudwatch = CloudWatch(self)

    @classmethod
    def from_template(cls, path: str | os.PathLike[str], **options: Any) -> "LocalCloud":
        """A cloud for the stage whose SAM template is at ``path`` (a file or its directory)."""
        return cls(path, **options)

    # -- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> "LocalCloud":
        stack = ExitStack()
        try:
            self.stage = load_stage(self.template_path, self.region)
            saved_env = {k: os.environ.get(k) for k in [*_MOTO_ENVIRONMENT, "AWS_DEFAULT_REGION"]}
            stack.callback(_restore_environment, saved_env)
            os.environ.update(_MOTO_ENVIRONMENT)
            os.environ["AWS_DEFAULT_REGION"] = self.region
            boto3.DEFAULT_SESSION = None  # clients made inside the cloud use its region and credentials

            from moto import mock_aws

            stack.enter_context(self.clock)
            stack.enter_context(mock_aws())
            patches.install(self)
            stack.callback(patches.uninstall)
            # Every AWS call a function's code makes, for the least-privilege check (edakit.iam).
            self.call_recorder = stack.enter_context(CallRecorder(self.region, self.account_id).recording())
            self._route_output(stack)
            self.deployment = deploy(self.stage, self.stack_name, self.region, self.account_id, self.parameters)
            self._load_functions()
            stack.callback(self._unload_functions)
            self.cloudwatch.install()
            stack.callback(self.cloudwatch.uninstall)
            self._exit = stack
        except EdakitError:
            stack.close()
            raise
        except BaseException:
            stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._exit is not None:
            self._exit.close()
            self._exit = None

    def start(self) -> "LocalCloud":
        """Open the cloud without a `with` block (a notebook spreads it over cells); stop() closes it."""
        return self.__enter__()

    def stop(self) -> None:
        """Close a cloud opened with start(): moto's state, virtual time and the hooks go away."""
        self.__exit__(None, None, None)

    def _route_output(self, stack: ExitStack) -> None:
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = FunctionOutput(sys.stdout), FunctionOutput(sys.stderr)

        def restore() -> None:
            sys.stdout, sys.stderr = saved

        stack.callback(restore)

    def _load_functions(self) -> None:
        assert self.stage is not None and self.deployment is not None
        client = boto3.client("lambda", region_name=self.region)
        for logical_id, source in self.stage.functions.items():
            name = self.deployment.physical_ids[logical_id]
            config = client.get_function_configuration(FunctionName=name)
            function = Function(
                logical_id=logical_id,
                name=name,
                arn=config["FunctionArn"],
                handler=config["Handler"],
                code_dir=source.code_dir,
                environment=(config.get("Environment") or {}).get("Variables", {}),
                timeout=float(config.get("Timeout", 3)),
                memory=int(config.get("MemorySize", 128)),
                region=self.region,
                dead_letter_arn=(config.get("DeadLetterConfig") or {}).get("TargetArn"),
            )
            function.load()
            self.functions[logical_id] = function
        # The template's event source mappings start polling now, at deployment: a stream
        # mapping's StartingPosition LATEST means records written after this point.
        for _ in self._event_sources():
            pass

    def _unload_functions(self) -> None:
        for function in self.functions.values():
            function.unload()

    def _detach_moto_pollers(self) -> None:
        """moto's own event source mappings delete SQS messages unprocessed without Docker.

        The kit keeps the mappings (so list_event_source_mappings shows them) but
        detaches moto's pollers; this cloud's sources do the polling instead.
        """
        for queue in self.sqs_backend.queues.values():
            queue.lambda_event_source_mappings.clear()
        for stream in self.kinesis_backend.streams.values():
            stream.lambda_event_source_mappings.clear()
        for table in self.dynamodb_backend.tables.values():
            table.lambda_event_source_mappings.clear()

    # -- moto backends (the emulator's state) -----------------------------------------

    def _backend(self, module: str, name: str) -> Any:
        backends = getattr(__import__(f"moto.{module}.models", fromlist=[name]), name)
        return backends[self.account_id][self.region]

    @property
    def sqs_backend(self) -> Any:
        return self._backend("sqs", "sqs_backends")

    @property
    def sns_backend(self) -> Any:
        return self._backend("sns", "sns_backends")

    @property
    def kinesis_backend(self) -> Any:
        return self._backend("kinesis", "kinesis_backends")

    @property
    def dynamodb_backend(self) -> Any:
        return self._backend("dynamodb", "dynamodb_backends")

    @property
    def lambda_backend(self) -> Any:
        from moto.awslambda.utils import get_backend

        return get_backend(self.account_id, self.region)

    @property
    def events_backend(self) -> Any:
        return self._backend("events", "events_backends")

    # -- names --------------------------------------------------------------------------

    def physical_id(self, logical_id: str) -> str:
        """What CloudFormation's Ref returns: a queue URL, topic ARN, stream, bus or function name."""
        if self.deployment is None:
            raise EdakitError("the cloud is not open: use `with LocalCloud.from_template(...) as cloud:`")
        try:
            return self.deployment.physical_ids[logical_id]
        except KeyError:
            known = ", ".join(sorted(self.deployment.physical_ids))
            raise EdakitError(f"no resource {logical_id!r} in the stack; resources: {known}") from None

    @property
    def outputs(self) -> dict[str, str]:
        assert self.deployment is not None
        return dict(self.deployment.outputs)

    def function(self, logical_id: str) -> Function:
        try:
            return self.functions[logical_id]
        except KeyError:
            raise EdakitError(f"no function {logical_id!r}; functions: {', '.join(sorted(self.functions))}") from None

    def find_function(self, name_or_arn: str) -> Function | None:
        name = name_or_arn.split(":function:")[-1].split(":")[0] if ":function:" in name_or_arn else name_or_arn
        return next((f for f in self.functions.values() if f.name == name or f.logical_id == name), None)

    def function_by_arn(self, arn: str) -> Function:
        function = self.find_function(arn)
        if function is None:
            raise EdakitError(f"{arn} is not a function of this stack")
        return function

    # -- invoking ----------------------------------------------------------------------------

    def free_concurrency(self, function: Function) -> int:
        """Concurrent executions the function may still start now."""
        account_free = self.account_concurrency - sum(self._running.values())
        # Read live, so that put_function_concurrency takes effect at once, as on AWS.
        reserved = self.lambda_backend.get_function(function.name).reserved_concurrency
        if reserved is not None:
            return min(account_free, int(reserved) - self._running[function.logical_id])
        return account_free

    def start_invocation(self, function: Function, event: Any, *, trigger: str,
                         on_done: Callable[[Invocation], None] | None = None) -> Invocation:
        """Run the handler now; its execution slot stays busy for its virtual duration."""
        with self.cloudwatch.running(function, event, trigger), _output_to_functions():
            invocation = function.run(event, self.clock.now, trigger)
        self._invocations.append(invocation)
        self._write_logs(function, invocation)
        self._running[function.logical_id] += 1
        self.cloudwatch.invoked(function, invocation)

        def finish() -> None:
            self._running[function.logical_id] -= 1
            if on_done is not None:
                on_done(invocation)

        heapq.heappush(self._completions, _Completion(invocation.time + min(invocation.duration, function.timeout), next(self._sequence), finish))
        return invocation

    def invoke_now(self, function: Function, event: Any) -> Invocation:
        """A synchronous (RequestResponse) invocation, as `lambda.invoke` makes."""
        return self.start_invocation(function, event, trigger="sync")

    def invoke_async(self, function_arn: str, event: Any) -> None:
        """Queue an event for asynchronous invocation (as EventBridge and SNS do)."""
        self.async_queue.enqueue(self.function_by_arn(function_arn), event)

    def event_invoke_config(self, function: Function) -> dict[str, Any]:
        """The function's EventInvokeConfig (retries, event age, destinations), or {} for defaults."""
        configs = self.lambda_backend.get_function(function.name).event_invoke_config
        # moto appends on every put and reads the first; the latest put is what AWS keeps.
        return dict(configs[-1].config) if configs else {}

    def concurrency(self, logical_id: str) -> int:
        """The function's executions running now (what ConcurrentExecutions samples)."""
        self.function(logical_id)
        return self._running[logical_id]

    def throttles(self, logical_id: str) -> int:
        """The function's throttled invocation requests so far (what Throttles sums)."""
        self.function(logical_id)
        return self.cloudwatch.lambda_metrics.throttle_count(logical_id)

    def invocations(self, logical_id: str | None = None) -> list[Invocation]:
        """Every invocation so far, of one function or of all, in the order they ran."""
        if logical_id is not None:
            self.function(logical_id)
        return [i for i in self._invocations if logical_id is None or i.function == logical_id]

    def invocations_since(self, count: int) -> list[Invocation]:
        """The invocations (of every function) after the first `count`, in the order they ran:
        for a caller that polls, without copying all of them each time."""
        return self._invocations[count:]

    def aws_calls(self, logical_id: str) -> set[tuple[str, str]]:
        """Every (action, resource ARN) made with the function's role: by its code, by the Lambda
        service for it (polling, logs, DLQ, destinations), and the KMS calls behind them (edakit.iam)."""
        from .iam import aws_calls

        self.function(logical_id)
        return aws_calls(self, logical_id)

    def _write_logs(self, function: Function, invocation: Invocation) -> None:
        """Lambda sends a function's output to CloudWatch Logs, framed by START/END/REPORT."""
        from moto.logs.models import logs_backends

        logs = logs_backends[self.account_id][self.region]
        if function.log_group not in logs.groups:
            logs.create_log_group(function.log_group, {})
        group = logs.groups[function.log_group]
        if function.log_stream not in group.streams:
            logs.create_log_stream(function.log_group, function.log_stream)
        millis = int(invocation.time * 1000)
        lines = [f"START RequestId: {invocation.request_id} Version: $LATEST", *invocation.logs,
                 f"END RequestId: {invocation.request_id}",
                 f"REPORT RequestId: {invocation.request_id}\tDuration: {invocation.duration * 1000:.2f} ms\t"
                 f"Billed Duration: {max(1, round(invocation.duration * 1000))} ms\tMemory Size: {function.memory} MB"]
        logs.put_log_events(function.log_group, function.log_stream, [{"timestamp": millis, "message": line} for line in lines])

    # -- delivering ----------------------------------------------------------------------------

    def record_route(self, rule_name: str, target_arn: str) -> None:
        self.routes[(rule_name, target_arn)] += 1
        self.cloudwatch.tracer.route(rule_name, target_arn)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        warnings.warn(message, stacklevel=2)

    def deliver_to_queue(self, queue_name: str, payload: Any, *, group_id: str | None = None,
                         attributes: dict[str, str | int] | None = None, from_service: str = "") -> None:
        queue = self.sqs_backend.get_queue(queue_name)
        body = payload if isinstance(payload, str) else json.dumps(payload)
        kwargs: dict[str, Any] = {}
        if queue.fifo_queue:
            if queue.attributes.get("ContentBasedDeduplication") != "true":
                # AWS rejects the delivery; the kit says so instead of dropping it silently.
                self.warn(f"{from_service or 'a service'} cannot send to FIFO queue {queue_name} without "
                          "ContentBasedDeduplication: the event was not delivered")
                return
            kwargs["group_id"] = group_id or "default"
        # The SQS API's own shape: moto computes MD5OfMessageAttributes from DataType and StringValue.
        message_attributes = {k: {"DataType": _attribute_type(v), "StringValue": str(v)} for k, v in (attributes or {}).items()}
        self.sqs_backend.send_message(queue_name, body, message_attributes=message_attributes, **kwargs)

    def send_to_destination(self, arn: str, payload: Any, *, source: Function,
                            attributes: dict[str, str | int] | None = None) -> None:
        """Deliver an invocation record (or a dead-lettered event) to SQS, SNS, Lambda or EventBridge."""
        service = arn.split(":")[2]
        body = json.dumps(payload)
        if service == "sqs":
            self.deliver_to_queue(arn.rsplit(":", 1)[-1], body, attributes=attributes, from_service="Lambda")
        elif service == "sns":
            sns_attributes = {k: {"Type": _attribute_type(v), "Value": str(v)} for k, v in (attributes or {}).items()}
            self.sns_backend.publish(body, arn=arn, message_attributes=sns_attributes)
        elif service == "lambda":
            self.invoke_async(arn, payload)
        elif service == "events":
            condition = payload.get("requestContext", {}).get("condition") if isinstance(payload, dict) else None
            outcome = "Success" if condition == "Success" else "Failure"
            self.events_backend.put_events([{
                "Source": "lambda",
                "DetailType": f"Lambda Function Invocation Result - {outcome}",
                "Detail": body,
                "Resources": [arn, f"{source.arn}:$LATEST"],  # the bus and the function, as Lambda sends
                "EventBusName": arn.rsplit("/", 1)[-1],
            }])
        else:
            self.warn(f"{source.logical_id}: destination {arn} is not a service Lambda delivers to")

    # -- the scheduler -----------------------------------------------------------------------------

    def _event_sources(self) -> Iterator[Any]:
        """Every source with work to offer: one per enabled mapping, plus the async queue."""
        for mapping in list(self.lambda_backend._event_source_mappings.values()):
            if self.find_function(mapping.function_arn) is None:
                continue
            source = self._sources.get(mapping.uuid)
            if source is None:
                source = self._make_source(mapping)
                self._sources[mapping.uuid] = source
            if source is not None:
                yield source
        yield self.async_queue

    def _make_source(self, mapping: Any) -> Any:
        service = mapping.event_source_arn.split(":")[2]
        if service == "sqs":
            return SqsEventSource(self, mapping)
        from .sources import streams

        return streams.source_for(self, mapping)

    def step(self) -> bool:
        """Do everything due at the current virtual time; return whether anything happened."""
        now = self.clock.now()
        progressed = False
        while self._completions and self._completions[0].time <= now:
            heapq.heappop(self._completions).callback()
            progressed = True
        for source in self._event_sources():
            due = source.next_due(now)
            if due is not None and due <= now and source.run(now):
                progressed = True
        return progressed

    def next_time(self) -> float | None:
        """The earliest virtual time at which something is due, or None when idle."""
        now = self.clock.now()
        candidates = [c.time for c in self._completions[:1]]
        for source in self._event_sources():
            due = source.next_due(now)
            if due is not None:
                candidates.append(due)
        return min(candidates) if candidates else None

    def run_until(self, until: float) -> None:
        """Process everything due up to the virtual epoch time ``until``, then stop there."""
        while True:
            while self.step():
                pass
            when = self.next_time()
            if when is None or when > until:
                break
            if when <= self.clock.now():
                when = self.clock.now() + 0.001  # a source promised work it could not start now
            self.clock.advance_to(when)
        self.clock.advance_to(until)

    def run_for(self, seconds: float) -> None:
        """Process everything due in the next ``seconds`` of virtual time."""
        self.run_until(self.clock.now() + seconds)

    def run_until_idle(self, max_seconds: float = DEFAULT_HORIZON) -> float:
        """Deliver, invoke and retry until nothing is left to do; return the virtual seconds it took.

        Time jumps straight to the next thing AWS would do (a visibility timeout
        ending, a retry delay, a batching window closing), so hours of retries take
        no wall time. Raises StillBusyError if work remains after ``max_seconds``.
        """
        started = self.clock.now()
        deadline = started + max_seconds
        while True:
            while self.step():
                pass
            when = self.next_time()
            if when is None:
                return self.clock.now() - started
            if when > deadline:
                pending = "; ".join(filter(None, (s.describe_pending() for s in self._event_sources())))
                raise StillBusyError(
                    f"still busy after {max_seconds:.0f} virtual seconds: {pending or 'work pending'}. "
                    "A message that always fails and has no DLQ (RedrivePolicy) is retried until it expires."
                )
            self.clock.advance_to(max(when, self.clock.now() + 0.001) if when <= self.clock.now() else when)

    # -- reading state -------------------------------------------------------------------------------

    def queue_depth(self, logical_id: str) -> dict[str, int]:
        """ApproximateNumberOfMessages(Visible|NotVisible|Delayed) of a queue, as SQS reports them."""
        queue = self.sqs_backend.get_queue(self.physical_id(logical_id).rsplit("/", 1)[-1])
        return {
            "visible": queue.approximate_number_of_messages,
            "in_flight": queue.approximate_number_of_messages_not_visible,
            "delayed": queue.approximate_number_of_messages_delayed,
        }

    def messages(self, logical_id: str) -> list[str]:
        """Bodies of every message in a queue (a DLQ, usually), without receiving them."""
        queue = self.sqs_backend.get_queue(self.physical_id(logical_id).rsplit("/", 1)[-1])
        return [m.body for m in queue._messages]

    def logs(self, logical_id: str) -> list[str]:
        """The lines the function wrote to CloudWatch Logs."""
        from moto.logs.models import logs_backends

        function = self.function(logical_id)
        group = logs_backends[self.account_id][self.region].groups.get(function.log_group)
        if group is None:
            return []
        return [e.message for s in group.streams.values() for e in s.events]


    # -- observing (edakit/cloudwatch.py) ---------------------------------------------------------

    def metric(self, namespace: str, name: str, dimensions: dict[str, str] | None = None, *,
               stat: str = "Sum", period: int = 60) -> list[tuple[Any, float]]:
        """A CloudWatch metric's statistic per period, in virtual time: [(period start, value)]."""
        return self.cloudwatch.store.series(namespace, name, dimensions, stat=stat, period=period)

    def alarm_state(self, name: str) -> str:
        """An alarm's state now (OK, ALARM or INSUFFICIENT_DATA), by its name or its logical id."""
        return self.cloudwatch.alarms.state(name)

    def alarm_history(self, name: str | None = None) -> list[Any]:
        """Every alarm state change so far (of one alarm, or of all), in order."""
        if name is not None:
            self.alarm_state(name)
            name = self.cloudwatch.alarms.name_of(name)
        return [c for c in self.cloudwatch.alarms.history if name is None or c.alarm == name]

    def trace(self, correlation_id: str, exclude: tuple[str, ...] = ()) -> str:
        """The hops of the events carrying ``correlation_id``, as a mermaid sequence diagram
        (without the hops from or to the resources named in ``exclude``)."""
        from .trace import sequence_diagram

        hops = self.cloudwatch.tracer.trace(correlation_id, exclude)
        return sequence_diagram(hops, f"correlation id {correlation_id[:8]}")


@contextlib.contextmanager
def _output_to_functions() -> Iterator[None]:
    """A handler's print() reaches its log even when sys.stdout was swapped after the cloud
    opened (pytest's output capture does so between a fixture's setup and the test)."""
    saved = sys.stdout, sys.stderr
    if not isinstance(sys.stdout, FunctionOutput):
        sys.stdout = FunctionOutput(sys.stdout)
    if not isinstance(sys.stderr, FunctionOutput):
        sys.stderr = FunctionOutput(sys.stderr)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def _attribute_type(value: str | int) -> str:
    """SQS/SNS message attribute DataType: Lambda's DLQ sends ErrorCode as a Number."""
    return "Number" if isinstance(value, (int, float)) else "String"


def _restore_environment(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    boto3.DEFAULT_SESSION = None
