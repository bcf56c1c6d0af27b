"""Channels: unwrap whichever envelope brought shop events to a Lambda function, and call
one domain-level function per shop event. The business logic never sees the channel:

- an EventBridge rule invokes the function with the EventBridge event itself;
- SQS hands it a batch whose bodies are EventBridge events (failures reported per message);
- SNS hands it records whose Message is an EventBridge event;
- Kinesis hands it a batch whose data are EventBridge events (failures reported per record).

https://docs.aws.amazon.com/lambda/latest/dg/lambda-services.html
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, Literal

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import (
    KinesisStreamRecord,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.typing import LambdaContext

from shop.events import EventEnvelope, InvalidEvent, any_from_eventbridge
from shop.observability import EventMetrics, log_keys

Channel = Literal["eventbridge", "sqs", "sns", "kinesis"]
#: A domain-level function: takes one shop event; what it returns must be JSON
#: (Lambda returns it, and Idempotency saves it for redeliveries).
EventHandler = Callable[[Any], object]

IDEMPOTENCY_TABLE_VARIABLE = "IDEMPOTENCY_TABLE_NAME"
#: How long a handled event_id is remembered: longer than a redelivery can come late.
#: Lambda keeps an asynchronous event up to 6 hours; EventBridge retries a target for 24.
#: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-retry-policy.html
REMEMBER_EVENTS_FOR_SECONDS = 24 * 3600


class UnknownChannel(ValueError):
    """The invocation event is none of the envelopes this adapter unwraps."""


class NoRoute(InvalidEvent):
    """A shop event this function has no domain function for (the rule sends more than it handles)."""


def channel_of(event: Any) -> Channel:
    """Which service delivered `event`, from the shape Lambda documents for each."""
    if isinstance(event, Mapping):
        if "detail-type" in event and "detail" in event:
            return "eventbridge"
        records = event.get("Records")
        if isinstance(records, list) and records and isinstance(records[0], Mapping):
            source = records[0].get("eventSource") or records[0].get("EventSource")
            if source == "aws:sqs":
                return "sqs"
            if source == "aws:sns":
                return "sns"
            if source == "aws:kinesis":
                return "kinesis"
    shape = sorted(event)[:5] if isinstance(event, Mapping) else type(event).__name__
    raise UnknownChannel(
        f"not an EventBridge event, nor an SQS, SNS or Kinesis batch (got {shape})"
    )


class IdempotentEvents:
    """Powertools Idempotency for each shop event, keyed on its event_id.

    Delivery is at least once: the same event can arrive twice (a retry, a redelivery,
    a producer that put it twice). The first delivery runs and its result is saved;
    a later one with the same event_id gets the saved result, and nothing runs again.
    The key is the producer's event_id, not the envelope of a channel, so it holds
    whichever channel brings the event. Records are kept per function.
    https://docs.powertools.aws.dev/lambda/python/latest/utilities/idempotency/
    """

    def __init__(self, persistence_store: BasePersistenceLayer | None = None) -> None:
        self.config = IdempotencyConfig(
            event_key_jmespath="event_id",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=REMEMBER_EVENTS_FOR_SECONDS,
        )
        self._store = persistence_store
        self._run_once: Callable[..., object] | None = None

    @property
    def persistence_store(self) -> BasePersistenceLayer:
        # Made on first use from the function's environment, so importing a handler
        # needs no table and no credentials.
        if self._store is None:
            table_name = os.environ.get(IDEMPOTENCY_TABLE_VARIABLE)
            if not table_name:
                raise RuntimeError(
                    f"{IDEMPOTENCY_TABLE_VARIABLE} is not set: the function's Environment "
                    "in the SAM template names the idempotency table"
                )
            self._store = DynamoDBPersistenceLayer(table_name=table_name)
        return self._store

    def register_lambda_context(self, context: LambdaContext) -> None:
        """An event still in progress when the invocation times out may run again after it."""
        self.config.register_lambda_context(context)

    def run(self, handler: EventHandler, event: EventEnvelope) -> object:
        if self._run_once is None:
            self._run_once = idempotent_function(
                _run,
                data_keyword_argument="event",
                persistence_store=self.persistence_store,
                config=self.config,
            )
        return self._run_once(event=event, handler=handler)


def _run(*, event: EventEnvelope, handler: EventHandler) -> object:
    return handler(event)


class Consumer:
    """A function's routes (the domain-level function for each shop event it handles),
    callable with whatever event Lambda hands the function."""

    def __init__(
        self,
        routes: Mapping[type[EventEnvelope], EventHandler],
        logger: Logger,
        idempotency: IdempotentEvents | None = None,
    ) -> None:
        self.routes = dict(routes)
        self.logger = logger
        self.idempotency = idempotency
        self.metrics = EventMetrics()
        self._in_invocation = False
        self._sqs_batch = BatchProcessor(event_type=EventType.SQS)
        self._kinesis_batch = BatchProcessor(event_type=EventType.KinesisDataStreams)

    def __call__(
        self, event: Mapping[str, Any], context: LambdaContext
    ) -> object | PartialItemFailureResponse:
        """Handle every shop event in `event`; the return value is the function's response.

        The invocation's metrics are flushed at its end, whatever happened (one EMF line).
        """
        self._in_invocation = True
        try:
            return self._dispatch(event, context)
        finally:
            self._in_invocation = False
            self.metrics.flush()

    def _dispatch(
        self, event: Mapping[str, Any], context: LambdaContext
    ) -> object | PartialItemFailureResponse:
        if self.idempotency is not None:
            self.idempotency.register_lambda_context(context)
        channel = channel_of(event)
        if channel == "sqs":
            # A failed message returns to the queue alone; the others are done.
            return process_partial_response(
                event=dict(event), record_handler=self.sqs_record,
                processor=self._sqs_batch, context=context,
            )
        if channel == "kinesis":
            return process_partial_response(
                event=dict(event), record_handler=self.kinesis_record,
                processor=self._kinesis_batch, context=context,
            )
        if channel == "sns":
            # An error fails the invocation, and Lambda retries it (asynchronous invocation).
            return [
                self.handle(record["Sns"]["Message"], sns_message_id=record["Sns"]["MessageId"])
                for record in event["Records"]
            ]
        return self.handle(event, eventbridge_id=event.get("id"))

    def sqs_record(self, record: SQSRecord) -> object:
        return self.handle(record.body, message_id=record.message_id)

    def kinesis_record(self, record: KinesisStreamRecord) -> object:
        return self.handle(
            record.kinesis.data_as_text(), sequence_number=record.kinesis.sequence_number
        )

    def handle(self, eventbridge_event: Mapping[str, Any] | str, **where: Any) -> object:
        """One EventBridge event (or its JSON text): parse the shop event, call its route.

        `where` names the event in its channel (message id...) for the log.
        """
        try:
            shop_event = any_from_eventbridge(eventbridge_event)
            handler = self.routes.get(type(shop_event))
            if handler is None:
                raise NoRoute(
                    f"{shop_event.detail_type} has no route here; this function handles "
                    f"{sorted(model.detail_type for model in self.routes)}"
                )
        except InvalidEvent as error:
            self.logger.warning("Invalid event", extra={**where, "reason": str(error)})
            raise
        # Every line logged while this event is handled carries its correlation id (and its
        # order's id): one search in CloudWatch Logs follows an order across functions.
        keys = log_keys(shop_event)
        self.logger.append_keys(**keys)
        try:
            self.logger.info(f"Handling {shop_event.detail_type}", extra=where)
            if self.idempotency is None:
                result = handler(shop_event)
            else:
                result = self.idempotency.run(handler, shop_event)
        except Exception:
            self.metrics.count(shop_event, "failed")
            self.logger.exception(f"{shop_event.detail_type} failed")
            raise
        else:
            self.metrics.count(shop_event, "handled")
            return result
        finally:
            self.logger.remove_keys(keys)
            if not self._in_invocation:
                # A handler that calls sqs_record (or handle) itself: flush per event.
                self.metrics.flush()
