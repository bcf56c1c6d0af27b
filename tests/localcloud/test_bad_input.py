"""Bad input gets a clear error that names the culprit and says what to do, never a library traceback.

Each error is an EdakitError subclass raised on its own: no yaml, samtranslator,
moto or import exception escapes as its cause or context.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import boto3
import pytest

from edakit import (
    EdakitError,
    HandlerImportError,
    LocalCloud,
    TemplateError,
    UnsupportedResourceError,
)


def open_error(path: Path) -> EdakitError:
    """Open a cloud on the template that must fail; return the error, after checking it hides its origin."""
    with pytest.raises(EdakitError) as raised:
        with LocalCloud.from_template(path):
            pass  # pragma: no cover - opening must fail
    error = raised.value
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__, "a library exception shows through"
    return error


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "template.yaml"
    path.write_text(text)
    return path


def function(handler: str, extra: str = "") -> str:
    """Resources text for the `template` fixture: one function, Fn, with a handler in functions/."""
    return f"""
Fn:
  Type: AWS::Serverless::Function
  Properties:
    Handler: {handler}
{extra}"""


class TestTemplates:
    def test_invalid_yaml_is_a_template_error_with_its_line(self, tmp_path):
        """A template that is not YAML: the message gives the line to fix."""
        path = write(tmp_path, "Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n   Properties: [\n")

        error = open_error(path)

        assert type(error) is TemplateError
        assert str(path) in str(error)
        assert "not valid YAML at line 4" in str(error)
        assert "indentation" in str(error)

    def test_template_without_resources_is_a_template_error(self, tmp_path):
        """A CloudFormation template needs Resources.

        https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/template-anatomy.html
        """
        path = write(tmp_path, 'AWSTemplateFormatVersion: "2010-09-09"\nDescription: nothing yet\n')

        error = open_error(path)

        assert type(error) is TemplateError
        assert "'Resources'" in str(error) and "add one" in str(error)

    def test_unsupported_resource_type_names_the_logical_id_and_type(self, template):
        """A resource type the local cloud cannot deploy is refused before anything is created."""
        path = template("ShopApi:\n  Type: AWS::ApiGateway::RestApi\n")

        error = open_error(path)

        assert type(error) is UnsupportedResourceError
        assert (error.logical_id, error.resource_type) == ("ShopApi", "AWS::ApiGateway::RestApi")
        assert str(error).startswith("ShopApi (AWS::ApiGateway::RestApi): the local cloud cannot run this resource type.")
        assert "Remove it" in str(error) and "fidelity" in str(error)

    @pytest.mark.parametrize(("event", "advice"), [
        ("{Type: Api, Properties: {Path: /orders, Method: post}}", "invoke()"),
        ("{Type: Schedule, Properties: {Schedule: rate(1 minute)}}", "Schedules never fire offline"),
    ])
    def test_unsupported_event_source_names_the_function_event_and_type(self, template, event, advice):
        """SAM event sources other than SQS, SNS, EventBridge, Kinesis and DynamoDB are refused with advice.

        https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-property-function-eventsource.html
        """
        path = template(function("behaviours.succeed", f"    Events:\n      Trigger: {event}\n"))

        error = open_error(path)

        assert type(error) is UnsupportedResourceError
        assert error.logical_id == "Fn.Events.Trigger"
        assert "cannot run this event source" in str(error)
        assert advice in str(error)
        assert "EventBridgeRule" in str(error)  # what it can run

    def test_sam_transform_error_lists_the_causes(self, template):
        """An invalid SAM template: the transform's causes, with the event they concern.

        https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-property-function-sqs.html
        """
        path = template(function("behaviours.succeed", "    Events:\n      Orders: {Type: SQS, Properties: {BatchSize: 5}}\n"))

        error = open_error(path)

        assert type(error) is TemplateError
        assert "Missing required property 'Queue'" in str(error)
        assert "Fn.Events.Orders" in str(error)

    def test_non_python_runtime_is_unsupported(self, template):
        """Functions run in-process, so only Python runtimes run locally."""
        path = template(function("index.handler", "    Runtime: nodejs20.x\n"))

        error = open_error(path)

        assert type(error) is UnsupportedResourceError
        assert error.logical_id == "Fn"
        assert "nodejs20.x" in str(error) and "python3.12" in str(error)


class TestHandlers:
    def test_missing_handler_module_names_the_file_it_looked_for(self, template):
        """A Handler whose module does not exist under CodeUri fails at deployment, as a cold start would.

        https://docs.aws.amazon.com/lambda/latest/dg/python-handler.html
        """
        error = open_error(template(function("orders_missing.handler")))

        assert type(error) is HandlerImportError
        assert (error.logical_id, error.handler) == ("Fn", "orders_missing.handler")
        assert "no file orders_missing.py" in str(error)
        assert "Check the function's Handler" in str(error)

    def test_handler_module_that_raises_at_import_names_the_error_and_line(self, template):
        """A module that raises while imported (here ImportError): the error, its line, and what to do."""
        error = open_error(template(function("broken_import.handler")))

        assert type(error) is HandlerImportError
        assert "ModuleNotFoundError: No module named 'edakit_package_that_does_not_exist'" in str(error)
        assert "(broken_import.py, line 5)" in str(error)
        assert "add the package it needs" in str(error)

    def test_missing_handler_function_names_the_module_and_function(self, template):
        """A module without the function the Handler names."""
        error = open_error(template(function("broken_attribute.handler")))

        assert type(error) is HandlerImportError
        assert "module broken_attribute has no function handler" in str(error)

    def test_handler_that_raises_is_a_failed_invocation_and_the_run_goes_on(self, cloud_for):
        """A handler's exception is the invocation's error (as Lambda reports it); other events still run.

        https://docs.aws.amazon.com/lambda/latest/dg/python-exceptions.html
        """
        cloud = cloud_for("""
            Orders:
              Type: AWS::SQS::Queue
            Fn:
              Type: AWS::Serverless::Function
              Properties:
                Handler: behaviours.fail_when_told
                Events:
                  Orders: {Type: SQS, Properties: {Queue: !GetAtt Orders.Arn, BatchSize: 1}}
        """)
        sqs = boto3.client("sqs")
        sqs.send_message(QueueUrl=cloud.physical_id("Orders"), MessageBody=json.dumps({"fail": True}))
        sqs.send_message(QueueUrl=cloud.physical_id("Orders"), MessageBody=json.dumps({"order_id": "o-2"}))

        cloud.run_for(60)

        invocations = cloud.invocations("Fn")
        failed = [i for i in invocations if i.error]
        succeeded = [i for i in invocations if i.ok]
        assert failed and failed[0].error == "ValueError: told to fail"
        assert failed[0].result["errorType"] == "ValueError"
        assert [json.loads(i.event["Records"][0]["body"]) for i in succeeded] == [{"order_id": "o-2"}]


class TestOpening:
    def test_from_template_on_a_directory_reads_its_template_yaml(self, template):
        """A stage is a directory with template.yaml, as `sam build` expects by default.

        https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-cli-command-reference-sam-build.html
        """
        stage_dir = template("Orders:\n  Type: AWS::SQS::Queue\n").parent

        with LocalCloud.from_template(stage_dir) as cloud:
            assert "Orders" in cloud.physical_id("Orders")

    def test_directory_without_template_yaml_is_a_template_error(self, tmp_path):
        """The message names the file it looked for."""
        error = open_error(tmp_path)

        assert type(error) is TemplateError
        assert str(tmp_path / "template.yaml") in str(error)

    def test_opening_a_second_cloud_while_one_is_open_is_refused(self, template, tmp_path):
        """moto's state is global to the process: one local cloud at a time, and the first keeps working."""
        template("Orders:\n  Type: AWS::SQS::Queue\n")
        other = tmp_path / "other"
        other.mkdir()
        shutil.copy(tmp_path / "template.yaml", other / "template.yaml")

        with LocalCloud.from_template(tmp_path) as first:
            error = open_error(other)
            url = first.physical_id("Orders")
            boto3.client("sqs").send_message(QueueUrl=url, MessageBody="still here")
            assert first.messages("Orders") == ["still here"]

        assert type(error) is EdakitError
        assert str(tmp_path) in str(error) and "already open" in str(error)
        assert "leave its `with` block" in str(error)
