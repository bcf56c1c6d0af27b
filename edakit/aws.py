"""Commands for the shop deployed on AWS: `make deploy`, `make smoke` and `make destroy`.

These talk to a real account with the caller's credentials (AWS_PROFILE, or the usual
environment variables). The kit's tests run them against the local cloud, with its
virtual clock in place of `time.sleep`.

- `preflight`: who the caller is, or a clear error when there are no credentials.
- `stack-exists`: exit 0 when the stack is deployed (`make deploy` then skips --guided).
- `smoke`: puts one order on the deployed bus and waits, with a timeout, until it is
  confirmed.
- `record` and `leftovers`: before `sam delete`, write down the stack's resources; after
  it, say which of them still exist (log groups that Lambda created, retained tables,
  KMS keys waiting out their deletion window).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from .errors import EdakitError
from .paths import SHOP_SRC

#: The stack `make deploy` creates (sam-app/samconfig.toml names it too).
DEFAULT_STACK = "edakit-shop"
#: The smoke order's product: one unit is added to its stock first, so the order can be confirmed.
SMOKE_SKU = "STICKER-001"
#: An order is settled when it reaches one of these statuses (shop.orders.OrderStatus).
SUCCESS = {"CONFIRMED"}
FAILURE = {"OUT_OF_STOCK", "CANCELLED"}


class AwsError(EdakitError):
    """A deployed-stack command cannot go on; the message says why and what to do."""


def _explain(error: Exception, doing: str) -> AwsError:
    if isinstance(error, NoCredentialsError):
        return AwsError(
            f"{doing}: no AWS credentials. Configure them first (`aws configure`, or set "
            "AWS_PROFILE / AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), then run the command again."
        )
    if isinstance(error, NoRegionError):
        return AwsError(f"{doing}: no AWS region. Set AWS_REGION (or AWS_DEFAULT_REGION), e.g. `export AWS_REGION=eu-west-1`.")
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        return AwsError(f"{doing}: AWS answered {info.get('Code', '?')}: {info.get('Message', error)}")
    return AwsError(f"{doing}: {error}")


def preflight(session: boto3.Session | None = None) -> str:
    """The caller's ARN; raises AwsError when there are no usable credentials."""
    session = session or boto3.Session()
    try:
        return str(session.client("sts").get_caller_identity()["Arn"])
    except (BotoCoreError, ClientError) as error:
        raise _explain(error, "checking your AWS credentials") from None


def stack_status(stack_name: str, session: boto3.Session | None = None) -> str | None:
    """The stack's status, or None when there is no such stack (or only a deleted one)."""
    session = session or boto3.Session()
    try:
        stacks = session.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise _explain(error, f"looking up stack {stack_name}") from None
    except BotoCoreError as error:
        raise _explain(error, f"looking up stack {stack_name}") from None
    status = str(stacks[0]["StackStatus"])
    # A stack that `sam deploy --guided` was interrupted in never had resources.
    return None if status in ("DELETE_COMPLETE", "REVIEW_IN_PROGRESS") else status


def stack_outputs(stack_name: str, session: boto3.Session | None = None) -> dict[str, str]:
    session = session or boto3.Session()
    try:
        stack = session.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]
    except (BotoCoreError, ClientError) as error:
        raise _explain(error, f"reading the outputs of stack {stack_name} (deploy it with `make deploy`)") from None
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


# --- smoke -------------------------------------------------------------------------------


@dataclass
class SmokeResult:
    order_id: str
    status: str
    waited_seconds: float
    statuses_seen: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in SUCCESS


def smoke(
    outputs: Mapping[str, str],
    *,
    timeout: float = 120.0,
    poll_every: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], float] = time.monotonic,
    session: boto3.Session | None = None,
) -> SmokeResult:
    """Put one order on the deployed shop and wait until its status settles.

    Adds one unit of SMOKE_SKU to stock first (so the order can be confirmed), places the
    order through the storefront, then reads the order's status from the orders table
    every `poll_every` seconds until it is settled or `timeout` seconds have passed.
    """
    missing = [key for key in ("EventBusName", "OrdersTableName", "StockTableName", "ReservationsTableName")
               if key not in outputs]
    if missing:
        raise AwsError(
            f"the stack has no output {', '.join(missing)}: is it the shop's stack (sam-app/template.yaml)? "
            "Check the stack name (STACK=...)."
        )
    if str(SHOP_SRC) not in sys.path:
        sys.path.insert(0, str(SHOP_SRC))
    from shop.adapters.dynamodb import DynamoDBStockRepository
    from shop.events import OrderLine
    from shop.storefront import Cart, Storefront

    session = session or boto3.Session()
    dynamodb = session.client("dynamodb")
    try:
        stock = DynamoDBStockRepository(outputs["StockTableName"], outputs["ReservationsTableName"], client=dynamodb)
        stock.set_stock(SMOKE_SKU, stock.stock_of(SMOKE_SKU) + 1)
        order_id = f"smoke-{uuid.uuid4()}"
        Storefront(outputs["EventBusName"], session.client("events")).place_orders(
            [Cart("smoke-test", [OrderLine(sku=SMOKE_SKU, quantity=1, unit_price_cents=250)],
                  correlation_id=order_id, order_id=order_id)]
        )
    except (BotoCoreError, ClientError) as error:
        raise _explain(error, "placing the smoke order") from None

    started = now()
    seen: list[str] = []
    status = "NOT_RECORDED"
    while True:
        try:
            item = dynamodb.get_item(TableName=outputs["OrdersTableName"], Key={"order_id": {"S": order_id}},
                                     ConsistentRead=True).get("Item")
        except (BotoCoreError, ClientError) as error:
            raise _explain(error, "reading the smoke order") from None
        status = item.get("status", {}).get("S", "RECORDED") if item else "NOT_RECORDED"
        if not seen or seen[-1] != status:
            seen.append(status)
        waited = now() - started
        if status in SUCCESS or status in FAILURE or waited >= timeout:
            return SmokeResult(order_id, status, waited, seen)
        sleep(min(poll_every, max(timeout - waited, 0.0)))


# --- what `sam delete` leaves behind -----------------------------------------------------


@dataclass(frozen=True)
class Resource:
    logical_id: str
    type: str
    physical_id: str


def stack_resources(stack_name: str, session: boto3.Session | None = None) -> list[Resource]:
    session = session or boto3.Session()
    client = session.client("cloudformation")
    try:
        pages = client.get_paginator("list_stack_resources").paginate(StackName=stack_name)
        return [Resource(r["LogicalResourceId"], r["ResourceType"], r.get("PhysicalResourceId", ""))
                for page in pages for r in page["StackResourceSummaries"]]
    except (BotoCoreError, ClientError) as error:
        raise _explain(error, f"listing the resources of stack {stack_name}") from None


def _exists(resource: Resource, session: boto3.Session) -> str | None:
    """What is left of `resource`, in words, or None when it is gone."""
    kind, pid = resource.type, resource.physical_id
    try:
        if kind == "AWS::DynamoDB::Table":
            session.client("dynamodb").describe_table(TableName=pid)
            return "table still exists (DeletionPolicy Retain?)"
        if kind == "AWS::SQS::Queue":
            session.client("sqs").get_queue_attributes(QueueUrl=pid, AttributeNames=["QueueArn"])
            return "queue still exists"
        if kind == "AWS::SNS::Topic":
            session.client("sns").get_topic_attributes(TopicArn=pid)
            return "topic still exists"
        if kind == "AWS::Kinesis::Stream":
            session.client("kinesis").describe_stream_summary(StreamName=pid)
            return "stream still exists (billed per shard hour)"
        if kind == "AWS::KMS::Key":
            state = session.client("kms").describe_key(KeyId=pid)["KeyMetadata"]["KeyState"]
            if state == "PendingDeletion":
                return "key is scheduled for deletion (7 to 30 days); it is not billed meanwhile"
            return f"key still exists ({state})"
        if kind == "AWS::Lambda::Function":
            session.client("lambda").get_function_configuration(FunctionName=pid)
            return "function still exists"
        if kind == "AWS::Events::EventBus":
            session.client("events").describe_event_bus(Name=pid)
            return "event bus still exists"
        if kind == "LogGroup":
            groups = session.client("logs").describe_log_groups(logGroupNamePrefix=pid)["logGroups"]
            if any(g["logGroupName"] == pid for g in groups):
                return ("log group still exists: Lambda created it, not the stack; delete it with "
                        f"`aws logs delete-log-group --log-group-name {pid}`")
            return None
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("ResourceNotFoundException", "AWS.SimpleQueueService.NonExistentQueue", "NotFound",
                    "NotFoundException", "QueueDoesNotExist"):
            return None
        raise _explain(error, f"checking {resource.logical_id}") from None
    return None


def record(stack_name: str, path: Path, session: boto3.Session | None = None) -> list[Resource]:
    """Write the stack's resources (and the log groups its functions write to) to `path`."""
    resources = stack_resources(stack_name, session)
    logs = [Resource(f"{r.logical_id} logs", "LogGroup", f"/aws/lambda/{r.physical_id}")
            for r in resources if r.type == "AWS::Lambda::Function"]
    everything = resources + logs
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"stack": stack_name, "resources": [r.__dict__ for r in everything]}, indent=1))
    return everything


def leftovers(path: Path, session: boto3.Session | None = None) -> list[tuple[Resource, str]]:
    """Which of the resources recorded in `path` still exist, and what to do about each."""
    if not path.exists():
        raise AwsError(f"{path} is missing: `make destroy` writes it before `sam delete`; "
                       "run `make destroy` rather than `sam delete` alone.")
    session = session or boto3.Session()
    recorded = json.loads(path.read_text())
    left = []
    for item in recorded["resources"]:
        resource = Resource(**item)
        if not resource.physical_id:
            continue
        what = _exists(resource, session)
        if what:
            left.append((resource, what))
    return left


# --- command line ------------------------------------------------------------------------


def main(argv: Iterable[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m edakit aws", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["preflight", "stack-exists", "smoke", "record", "leftovers"])
    parser.add_argument("--stack-name", default=DEFAULT_STACK)
    parser.add_argument("--timeout", type=float, default=120.0, help="smoke: seconds to wait for the order")
    parser.add_argument("--file", type=Path, default=Path("build/stack-resources.json"),
                        help="record/leftovers: where the resource list is kept")
    args = parser.parse_args(list(argv))
    try:
        if args.command == "preflight":
            print(f"AWS identity: {preflight()}")
            return 0
        if args.command == "stack-exists":
            status = stack_status(args.stack_name)
            print(f"stack {args.stack_name}: {status or 'not deployed'}")
            return 0 if status else 1
        if args.command == "smoke":
            outputs = stack_outputs(args.stack_name)
            print(f"Placing a smoke order on {outputs.get('EventBusName', '?')}; waiting up to {args.timeout:.0f} s...")
            result = smoke(outputs, timeout=args.timeout)
            print(f"  order {result.order_id}: {' -> '.join(result.statuses_seen)} after {result.waited_seconds:.1f} s")
            if result.ok:
                print("smoke test passed: the order was confirmed")
                return 0
            hint = ("it was never recorded: check the rules on the bus and the order processing function's logs "
                    f"(`sam logs --stack-name {args.stack_name} -n OrderProcessingFunction`)"
                    if result.status == "NOT_RECORDED" else
                    f"check `sam logs --stack-name {args.stack_name}` and the dead-letter queues")
            print(f"smoke test FAILED: the order is {result.status}; {hint}", file=sys.stderr)
            return 1
        if args.command == "record":
            resources = record(args.stack_name, args.file)
            print(f"recorded {len(resources)} resources of {args.stack_name} in {args.file}")
            return 0
        left = leftovers(args.file)
        if not left:
            print("nothing of the stack is left")
            return 0
        print(f"{len(left)} resource(s) of the stack are left:")
        for resource, what in left:
            print(f"  {resource.logical_id} ({resource.type}) {resource.physical_id}: {what}")
        return 0
    except AwsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
