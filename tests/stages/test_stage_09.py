"""Stage 9, security: every function's role grants what the function uses and no more (proven
by recording every AWS call while the scenario runs), one customer managed KMS key encrypts
every queue, topic and table at rest, every queue and topic policy refuses requests without
TLS, and checkov passes on the translated template with each skip justified.

The same tests check a learner's workspace: `pytest tests/stages/test_stage_09.py --stage-dir workspace/`.
Run this file (`python tests/stages/test_stage_09.py`) to rewrite the diff in the chapter's README.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from edakit import LocalCloud, verify
from edakit.chapters import check_readme, stage_diff, write_readme
from edakit.errors import EdakitError
from edakit.iam import least_privilege, load_exceptions, security_problems, service_delivery_problems
from edakit.paths import CHAPTERS, NOTEBOOKS, SHOP_SRC
from edakit.scenarios import a_day_of_the_shop
from edakit.template import load_stage, read_template

if str(SHOP_SRC) not in sys.path:
    sys.path.insert(0, str(SHOP_SRC))

from shop.adapters.dynamodb import DynamoDBStockRepository  # noqa: E402
from shop.events import OrderPlaced  # noqa: E402

STAGE = "09-security"
PREVIOUS_STAGE = "08-observability"
NOTEBOOK = NOTEBOOKS / "09-security.py"
NOTEBOOK_SECONDS = 10
CHECKOV = Path(__file__).resolve().parents[2] / ".venv-checkov" / "bin" / "checkov"
#: What stage 9 adds: the key, its alias, and a policy for each queue or topic that had none.
ADDED_IN_STAGE_9 = ["ShopKey", "ShopKeyAlias", "ConsumerFailuresQueuePolicy", "OrdersDLQPolicy",
                    "OrderStatusDLQPolicy", "OrderStatusTopicPolicy", "AnalyticsFailuresQueuePolicy",
                    "PaymentsDLQPolicy", "AlarmTopicPolicy"]



def exceptions_file(stage_dir: Path) -> Path:
    return stage_dir / "least-privilege-exceptions.yaml"


def run_scenario(cloud: LocalCloud) -> list[OrderPlaced]:
    """A day of every function (edakit.scenarios, which the notebook runs too): confirmed orders
    (paid, some after a transient gateway failure), an out-of-stock one, a declined payment (the
    order is cancelled and its stock released), a poison order that fails order processing three
    times (then the DLQ) and inventory three times (then OnFailure), and the clickstream."""
    day = a_day_of_the_shop(cloud)
    alice, erin, frank = day.confirmed
    return [alice, day.out_of_stock, day.poison, day.declined, erin, frank]


@pytest.fixture
def cloud(stage_dir: Path) -> Iterator[LocalCloud]:
    with LocalCloud.from_template(stage_dir) as cloud:
        yield cloud


@pytest.fixture
def after_scenario(cloud: LocalCloud) -> tuple[LocalCloud, list[OrderPlaced]]:
    return cloud, run_scenario(cloud)


def deployable_copy(stage_dir: Path, text: str, directory: Path) -> Path:
    """`text` written in `directory`, with a relative CodeUri made absolute so the code is still found."""
    base = (stage_dir / "template.yaml").resolve().parent

    def absolute(match: re.Match[str]) -> str:
        path = Path(match.group(2))
        return match.group(1) + str(path if path.is_absolute() else (base / path).resolve())

    path = directory / "template.yaml"
    path.write_text(re.sub(r"^(\s*CodeUri:\s*)(\S+)\s*$", absolute, text, flags=re.M))
    return path


def least_privilege_problems(template: Path, exceptions: Path) -> list[str]:
    with LocalCloud.from_template(template) as cloud:
        run_scenario(cloud)
        return least_privilege(cloud, load_exceptions(exceptions)).problems()


class TestScenario:
    def test_the_shop_runs_as_in_stage_5_with_its_data_encrypted(
        self, after_scenario: tuple[LocalCloud, list[OrderPlaced]]
    ) -> None:
        """Encryption at rest and the TLS rules change nothing the shop does.
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-server-side-encryption.html
        """
        cloud, (alice, bob, poison, dave, erin, frank) = after_scenario
        statuses = {i.result["order_id"]: i.result["order_status"] for i in cloud.invocations("NotificationFunction")}
        assert statuses == {alice.order_id: "CONFIRMED", bob.order_id: "OUT_OF_STOCK",
                            erin.order_id: "CONFIRMED", frank.order_id: "CONFIRMED"}
        recorded = boto3.client("dynamodb").get_item(TableName=cloud.outputs["OrdersTableName"],
                                                     Key={"order_id": {"S": dave.order_id}})["Item"]
        assert recorded["status"]["S"] == "CANCELLED"
        stock = DynamoDBStockRepository(cloud.physical_id("StockTable"), cloud.physical_id("ReservationsTable"))
        assert stock.stock_of("BOOK-001") == 20 - 2 - 1 - 1  # dave's book went back
        assert [json.loads(m)["detail"]["order_id"] for m in cloud.messages("OrdersDLQ")] == [poison.order_id]
        [failure] = [json.loads(m) for m in cloud.messages("ConsumerFailuresQueue")]
        assert failure["requestPayload"]["detail"]["order_id"] == poison.order_id
        customer = [n.protocol for n in cloud.notifications if n.topic_arn == cloud.physical_id("OrderStatusTopic")]
        assert sorted(customer) == ["email"] * 4 + ["sms"] * 3
        assert boto3.client("dynamodb").scan(TableName=cloud.outputs["AnalyticsTableName"])["Items"]


class TestLeastPrivilege:
    """Every call allowed; every grant used, or listed with its reason.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/best-practices.html#grant-least-privilege"""

    def test_every_call_of_every_function_is_allowed_and_every_grant_is_used_or_excepted(
        self, after_scenario: tuple[LocalCloud, list[OrderPlaced]], stage_dir: Path
    ) -> None:
        """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html"""
        cloud, _ = after_scenario
        report = least_privilege(cloud, load_exceptions(exceptions_file(stage_dir)))
        assert report.problems() == []
        assert report.not_evaluated() == []
        assert set(report.functions) == {"OrderProcessingFunction", "InventoryFunction", "OrderStatusFunction",
                                         "NotificationFunction", "AnalyticsFunction", "PaymentsFunction"}

    def test_every_exception_still_covers_an_unused_grant(
        self, after_scenario: tuple[LocalCloud, list[OrderPlaced]], stage_dir: Path
    ) -> None:
        """An exception whose grant is gone or used is stale: remove it."""
        cloud, _ = after_scenario
        exceptions = load_exceptions(exceptions_file(stage_dir))
        report = least_privilege(cloud, exceptions)
        excepted = {(g.function, g.action) for r in report.functions.values() for g in r.excepted
                    if not r.grants[g]}
        stale = [(e.function, a) for e in exceptions for a in e.actions if (e.function, a) not in excepted]
        assert stale == []

    def test_the_calls_lambda_makes_with_the_role_are_counted(
        self, after_scenario: tuple[LocalCloud, list[OrderPlaced]]
    ) -> None:
        """Polling the queue, sending to the OnFailure queue, and KMS for each encrypted resource.
        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html
        https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html
        https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html
        """
        cloud, _ = after_scenario
        key = boto3.client("kms").describe_key(KeyId=cloud.physical_id("ShopKey"))["KeyMetadata"]["Arn"]
        orders_queue = cloud.sqs_backend.get_queue(cloud.physical_id("OrdersQueue").rsplit("/", 1)[-1]).queue_arn
        failures = cloud.sqs_backend.get_queue(cloud.physical_id("ConsumerFailuresQueue").rsplit("/", 1)[-1]).queue_arn
        processing, inventory = cloud.aws_calls("OrderProcessingFunction"), cloud.aws_calls("InventoryFunction")
        assert {("sqs:ReceiveMessage", orders_queue), ("sqs:DeleteMessage", orders_queue),
                ("sqs:GetQueueAttributes", orders_queue), ("kms:Decrypt", key)} <= processing
        assert {("sqs:SendMessage", failures), ("kms:GenerateDataKey", key)} <= inventory
        notification = cloud.aws_calls("NotificationFunction")
        assert {("sns:Publish", cloud.physical_id("OrderStatusTopic")), ("kms:GenerateDataKey", key),
                ("kms:Decrypt", key)} <= notification

    def test_removing_a_policy_the_function_needs_fails_naming_the_function_and_the_action(
        self, stage_dir: Path, tmp_path: Path
    ) -> None:
        """Break (a): without SNSPublishMessagePolicy, NotificationFunction's sns:Publish is not allowed.
        https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
        """
        text = (stage_dir / "template.yaml").read_text()
        broken = re.sub(r"        - SNSPublishMessagePolicy:.*\n            TopicName: .*\n", "", text)
        assert broken != text, "the seeded mistake must change the template"
        problems = least_privilege_problems(deployable_copy(stage_dir, broken, tmp_path), exceptions_file(stage_dir))
        assert [p for p in problems if "not allowed" in p] == [
            "NotificationFunction: sns:Publish on OrderStatusTopic is not allowed by its role "
            "(no statement allows it (implicit deny)); add a policy that grants it"]

    def test_a_broader_grant_than_needed_fails_naming_the_unused_grant(self, stage_dir: Path, tmp_path: Path) -> None:
        """Break (b): DynamoDBCrudPolicy where DynamoDBReadPolicy suffices grants DeleteItem, never used.
        https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/serverless-policy-template-list.html
        """
        text = (stage_dir / "template.yaml").read_text()
        broken = text.replace("        - DynamoDBReadPolicy:  # GetItem", "        - DynamoDBCrudPolicy:  # GetItem", 1)
        assert broken != text, "the seeded mistake must change the template"
        problems = least_privilege_problems(deployable_copy(stage_dir, broken, tmp_path), exceptions_file(stage_dir))
        assert "OrderStatusFunction: grant never used: dynamodb:DeleteItem on OrderHistoryTable " \
               "(OrderStatusFunctionRolePolicy1); remove it, or list it with a reason in " \
               "least-privilege-exceptions.yaml" in problems
        assert not [p for p in problems if "not allowed" in p]

    def test_an_exception_without_a_reason_is_refused(self, stage_dir: Path, tmp_path: Path) -> None:
        document = yaml.safe_load(exceptions_file(stage_dir).read_text())
        document["exceptions"][0]["why"] = " "
        path = tmp_path / "least-privilege-exceptions.yaml"
        path.write_text(yaml.safe_dump(document))
        with pytest.raises(EdakitError, match=r"exception 1 .* has no 'why'"):
            load_exceptions(path)

    def test_no_role_grants_a_whole_service_or_everything(self, cloud: LocalCloud) -> None:
        """https://docs.aws.amazon.com/IAM/latest/UserGuide/best-practices.html#grant-least-privilege"""
        report = least_privilege(cloud, [])
        assert [g for r in report.functions.values() for g in r.wildcards] == []


class TestEncryption:
    def test_every_queue_topic_and_table_uses_the_customer_managed_key_and_refuses_plain_http(
        self, cloud: LocalCloud
    ) -> None:
        """https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-security-best-practices.html
        https://docs.aws.amazon.com/sns/latest/dg/sns-security-best-practices.html
        https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/EncryptionAtRest.html
        """
        assert security_problems(cloud) == []
        key = boto3.client("kms").describe_key(KeyId=cloud.physical_id("ShopKey"))["KeyMetadata"]
        assert key["KeyManager"] == "CUSTOMER"
        table = boto3.client("dynamodb").describe_table(TableName=cloud.physical_id("OrdersTable"))["Table"]
        assert table["SSEDescription"] == {"Status": "ENABLED", "SSEType": "KMS", "KMSMasterKeyArn": key["Arn"]}
        topic = boto3.client("sns").get_topic_attributes(TopicArn=cloud.physical_id("OrderStatusTopic"))["Attributes"]
        assert topic["KmsMasterKeyId"] == key["KeyId"]
        assert json.loads(topic["Policy"])["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}

    def test_a_queue_without_the_key_or_the_tls_rule_is_named(self, cloud: LocalCloud) -> None:
        """A seeded queue, unencrypted and without a policy, fails with what to set."""
        boto3.client("sqs").create_queue(QueueName="plain-queue")
        assert security_problems(cloud) == [
            "queue plain-queue is not encrypted with a customer managed KMS key: set its KmsMasterKeyId to the shop's key",
            'queue plain-queue accepts requests without TLS: add a Deny statement on aws:SecureTransport "false" '
            "to its queue policy"]

    def test_the_key_rotates_and_lets_exactly_eventbridge_sns_and_cloudwatch_use_it(self, cloud: LocalCloud) -> None:
        """EventBridge and SNS encrypt what they deliver to the encrypted queues; CloudWatch what its
        alarms publish to the encrypted alarm topic.
        https://docs.aws.amazon.com/kms/latest/developerguide/rotate-keys.html
        https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html
        https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html
        """
        kms = boto3.client("kms")
        key_id = cloud.physical_id("ShopKey")
        assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True
        policy = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
        principals = [s["Principal"] for s in policy["Statement"]]
        assert principals == [{"AWS": f"arn:aws:iam::{cloud.account_id}:root"},
                              {"Service": "events.amazonaws.com"}, {"Service": "sns.amazonaws.com"},
                              {"Service": "cloudwatch.amazonaws.com"}]

    def test_eventbridge_and_sns_may_send_to_every_encrypted_queue_they_deliver_to(self, cloud: LocalCloud) -> None:
        """The queue policy lets the service send; the key policy lets it encrypt for the queue.
        https://docs.aws.amazon.com/sns/latest/dg/sns-enable-encryption-for-topic-sqs-queue-subscriptions.html
        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-troubleshooting.html
        """
        assert service_delivery_problems(cloud) == []

    def test_a_key_policy_without_sns_fails_naming_the_subscriptions(self, cloud: LocalCloud) -> None:
        kms = boto3.client("kms")
        key_id = cloud.physical_id("ShopKey")
        policy = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
        policy["Statement"] = [s for s in policy["Statement"] if s["Principal"] != {"Service": "sns.amazonaws.com"}]
        kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(policy))
        problems = service_delivery_problems(cloud)
        assert len(problems) == 6  # three queues subscribed, two actions each
        assert ("OrderStatusTopic -> ShippingQueue: the queue is encrypted with ShopKey, whose key policy does not "
                "let sns.amazonaws.com call kms:GenerateDataKey (no statement allows it (implicit deny))") in problems


def checkov_failures(template: Path, tmp_path: Path) -> list[tuple[str, str]]:
    """(check id, logical id) of every failed checkov check on the translated template."""
    return verify.checkov_failures(verify.translated(template, tmp_path))


def load_skips(stage_dir: Path) -> list[verify.Skip]:
    return verify.load_skips(stage_dir / "checkov-skips.yaml")


unexplained = verify.unexplained


@pytest.mark.skipif(not CHECKOV.exists(), reason="checkov is not installed: run `make checkov-env` (make test does)")
class TestCheckov:
    """https://www.checkov.io/2.Basics/CLI%20Command%20Reference.html"""

    def test_checkov_finds_nothing_but_the_listed_skips_each_with_a_reason(self, stage_dir: Path, tmp_path: Path) -> None:
        skips = load_skips(stage_dir)  # refuses a skip without a reason
        failures = checkov_failures(stage_dir / "template.yaml", tmp_path)
        assert unexplained(failures, skips) == []
        assert verify.stale(failures, skips) == [], "a skip no longer needed"

    def test_a_skip_without_a_reason_is_refused(self, stage_dir: Path, tmp_path: Path) -> None:
        document = yaml.safe_load((stage_dir / "checkov-skips.yaml").read_text())
        document["CKV_AWS_117"] = " "
        (tmp_path / "checkov-skips.yaml").write_text(yaml.safe_dump(document))
        with pytest.raises(EdakitError, match="the skip of CKV_AWS_117 has no reason"):
            load_skips(tmp_path)

    def test_an_unencrypted_queue_is_a_failed_check(self, stage_dir: Path, tmp_path: Path) -> None:
        """The check can fail: the orders queue without its key is refused (CKV_AWS_27)."""
        text = (stage_dir / "template.yaml").read_text()
        broken = text.replace("    Type: AWS::SQS::Queue\n    Properties:\n      KmsMasterKeyId: !Ref ShopKey"
                              "  # security: encrypted at rest with the shop's key\n      # At least 6",
                              "    Type: AWS::SQS::Queue\n    Properties:\n      # At least 6", 1)
        assert broken != text, "the seeded mistake must change the template"
        skips = load_skips(stage_dir)
        failures = checkov_failures(deployable_copy(stage_dir, broken, tmp_path), tmp_path)
        assert unexplained(failures, skips) == [("CKV_AWS_27", "OrdersQueue")]


class TestResources:
    def test_every_resource_of_stage_8_is_kept_and_only_the_security_resources_are_added(self, stage_dir: Path) -> None:
        """https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/template-anatomy.html"""
        base = read_template(CHAPTERS / PREVIOUS_STAGE / "template.yaml")
        current = read_template(stage_dir / "template.yaml")
        assert sorted(set(current["Resources"]) - set(base["Resources"])) == sorted(ADDED_IN_STAGE_9)
        assert set(base["Resources"]) <= set(current["Resources"])

    def test_every_function_names_its_kms_use_and_no_policy_uses_a_wildcard_action(self, stage_dir: Path) -> None:
        """https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/serverless-policy-template-list.html"""
        current = read_template(stage_dir / "template.yaml")
        for logical_id, resource in current["Resources"].items():
            if resource["Type"] != "AWS::Serverless::Function":
                continue
            policies = json.dumps(resource["Properties"]["Policies"])
            assert "KMSDecryptPolicy" in policies, logical_id
            assert not re.search(r'"(\*|[a-z0-9-]+:\*)"', policies), logical_id


# -- the chapter's own pages (not a learner's workspace) ---------------------------------------------


def readme_diffs() -> dict[str, str]:
    """The README's template diff, from the previous stage's template to stage 9's: what this chapter changes."""
    return {"template diff": stage_diff(PREVIOUS_STAGE, STAGE)}


@pytest.mark.usefixtures("chapter_only")
class TestChapter:
    def test_the_readme_shows_the_template_diff_from_the_previous_stage(self) -> None:
        """https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-specification.html"""
        check_readme(STAGE, readme_diffs(), __file__)

    @pytest.mark.notebook
    def test_the_notebook_runs_in_seconds_and_shows_each_functions_calls_against_its_grants(self) -> None:
        """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html"""
        from edakit.notebooks import execute_notebook, outputs_of, text_of

        notebook, seconds = execute_notebook(NOTEBOOK)
        outputs = outputs_of(notebook)
        text = text_of(outputs)
        assert "| NotificationFunction | sns:Publish | OrderStatusTopic | code | allowed |" in text
        assert "| OrderProcessingFunction | sqs:ReceiveMessage | OrdersQueue | Lambda | allowed |" in text
        assert "0 calls denied, 0 unused grants outside the exceptions" in text
        assert "NotificationFunction: sns:Publish on OrderStatusTopic is not allowed" in text
        assert seconds < NOTEBOOK_SECONDS, f"the notebook took {seconds:.1f} s"


if __name__ == "__main__":
    print(write_readme(STAGE, readme_diffs(), __file__))
