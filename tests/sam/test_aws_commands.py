"""`make smoke`, `make destroy` and `make deploy`'s checks (edakit/aws.py), run against the finished
system on the local cloud instead of an AWS account. The smoke test's wait is the local cloud's
virtual clock, so a two-minute timeout costs no wall time."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from edakit import LocalCloud
from edakit.aws import AwsError, leftovers, preflight, record, smoke, stack_status
from edakit.paths import SAM_APP


@pytest.fixture(scope="module")
def shop():
    with LocalCloud.from_template(SAM_APP / "template.yaml") as cloud:
        yield cloud


def _virtual(cloud: LocalCloud) -> dict:
    return {"sleep": cloud.run_for, "now": lambda: cloud.clock.elapsed}


def test_smoke_order_is_confirmed_on_the_deployed_shop(shop: LocalCloud) -> None:
    """The smoke order goes through the storefront, the bus, the orders queue, inventory and
    order processing, and is confirmed well within the timeout.
    https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html"""
    result = smoke(shop.outputs, timeout=120, **_virtual(shop))
    assert result.ok, result
    assert result.status == "CONFIRMED"
    assert result.statuses_seen[-1] == "CONFIRMED"
    assert result.waited_seconds < 120
    # The smoke order is a real order in the table, with its own id.
    item = boto3.client("dynamodb").get_item(TableName=shop.outputs["OrdersTableName"],
                                             Key={"order_id": {"S": result.order_id}})["Item"]
    assert item["customer_id"]["S"] == "smoke-test"


def test_smoke_times_out_when_orders_do_not_reach_the_orders_queue(shop: LocalCloud) -> None:
    """With the rule that sends OrderPlaced to the orders queue disabled, the order is never
    recorded: smoke gives up at its timeout and says so, rather than waiting forever.
    https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_DisableRule.html"""
    events = boto3.client("events")
    bus = shop.outputs["EventBusName"]
    rule = shop.physical_id("OrderPlacedToOrdersQueue").split("|")[-1]
    events.disable_rule(Name=rule, EventBusName=bus)
    try:
        start = shop.clock.elapsed
        result = smoke(shop.outputs, timeout=30, poll_every=5, **_virtual(shop))
    finally:
        events.enable_rule(Name=rule, EventBusName=bus)
    assert not result.ok
    assert result.status == "NOT_RECORDED"
    assert 30 <= result.waited_seconds <= 31
    assert 30 <= shop.clock.elapsed - start <= 31


def test_smoke_names_missing_outputs() -> None:
    with pytest.raises(AwsError, match="no output OrdersTableName, StockTableName, ReservationsTableName"):
        smoke({"EventBusName": "bus"}, timeout=1, sleep=lambda s: None)


def test_record_then_leftovers_reports_lambda_log_groups(shop: LocalCloud, tmp_path: Path) -> None:
    """Deleting a stack deletes what the stack created. Lambda creates each function's log group
    itself on first run, so `sam delete` leaves them: `make destroy` lists them with the command
    that removes them.
    https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs.html"""
    smoke(shop.outputs, timeout=120, **_virtual(shop))  # every function in the order's path runs
    path = tmp_path / "stack-resources.json"
    recorded = record(shop.deployment.stack_name, path)
    assert {r.type for r in recorded} >= {"AWS::DynamoDB::Table", "AWS::SQS::Queue", "LogGroup"}
    ran = {i.function for i in shop.invocations()}
    # CloudFormation detaches a role's managed policies when it deletes the role; moto's
    # delete_stack refuses (DeleteConflict), so detach them first, as CloudFormation would.
    iam = boto3.client("iam")
    for r in recorded:
        if r.type == "AWS::IAM::Role":
            for policy in iam.list_attached_role_policies(RoleName=r.physical_id)["AttachedPolicies"]:
                iam.detach_role_policy(RoleName=r.physical_id, PolicyArn=policy["PolicyArn"])
    boto3.client("cloudformation").delete_stack(StackName=shop.deployment.stack_name)
    left = leftovers(path)
    left_groups = {r.physical_id for r, _ in left if r.type == "LogGroup"}
    assert left_groups == {f"/aws/lambda/{shop.physical_id(fn)}" for fn in ran}
    assert all("aws logs delete-log-group" in what for r, what in left if r.type == "LogGroup")
    # The stack's own tables and queues went with it.
    assert not [r for r, _ in left if r.type in ("AWS::DynamoDB::Table", "AWS::SQS::Queue")]
    assert stack_status(shop.deployment.stack_name) is None


def test_leftovers_without_a_record_says_to_use_make_destroy(tmp_path: Path) -> None:
    with pytest.raises(AwsError, match="run `make destroy`"):
        leftovers(tmp_path / "missing.json")


def test_preflight_without_credentials_says_how_to_configure_them(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with pytest.raises(AwsError, match="no AWS credentials.*aws configure"):
        preflight(boto3.Session())


@pytest.mark.parametrize("command", [["preflight"], ["smoke", "--timeout", "1"], ["record"]])
def test_commands_without_credentials_explain_and_exit_2(command: list[str], tmp_path: Path) -> None:
    """`make deploy`, `make smoke` and `make destroy` start with these: no traceback, exit 2."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true", AWS_DEFAULT_REGION="us-east-1")
    done = subprocess.run([sys.executable, "-m", "edakit", "aws", *command], capture_output=True, text=True,
                          env=env, timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no AWS credentials" in done.stderr and "Traceback" not in done.stderr
