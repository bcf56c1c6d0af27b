"""The execution environment the local cloud gives a handler: environment, context, logs and errors."""

from __future__ import annotations

import json
import os
from typing import Any

import boto3

from edakit import LocalCloud


def invoke(cloud: LocalCloud, function: str, event: Any = None) -> dict[str, Any]:
    """A synchronous invocation through boto3, as `aws lambda invoke` makes it."""
    response = boto3.client("lambda").invoke(
        FunctionName=cloud.physical_id(function), Payload=json.dumps(event or {}).encode()
    )
    return {"error": response.get("FunctionError"), "payload": json.loads(response["Payload"].read() or b"null")}


def test_environment_variables_are_visible_to_the_handler_and_at_import(cloud_for):
    """The template's Environment Variables are set when Lambda imports the handler and while it runs.

    Each function imports its own copy of the module, so two functions sharing
    one module each read their own variables at import.
    https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html
    """
    cloud = cloud_for("""
        English:
          Type: AWS::Serverless::Function
          Properties:
            Handler: runtime_environment.handler
            Environment: {Variables: {GREETING: hello}}
        French:
          Type: AWS::Serverless::Function
          Properties:
            Handler: runtime_environment.handler
            Environment: {Variables: {GREETING: bonjour}}
    """)

    english, french = invoke(cloud, "English")["payload"], invoke(cloud, "French")["payload"]

    assert english == {
        "at_import": "hello", "at_call": "hello", "function_name_variable": cloud.physical_id("English"),
    }
    assert french["at_import"] == french["at_call"] == "bonjour"
    assert "GREETING" not in os.environ  # the function's environment is its own, not the test's


def test_context_has_the_function_name_and_remaining_time_from_timeout(cloud_for):
    """The LambdaContext names the function, and get_remaining_time_in_millis counts down from Timeout.

    https://docs.aws.amazon.com/lambda/latest/dg/python-context.html
    """
    cloud = cloud_for("""
        Reader:
          Type: AWS::Serverless::Function
          Properties:
            Handler: runtime_context.handler
            Timeout: 7
            MemorySize: 256
    """)

    context = invoke(cloud, "Reader")["payload"]

    [invocation] = cloud.invocations("Reader")
    assert context == {
        "function_name": cloud.physical_id("Reader"),
        "remaining_ms": 7000,  # virtual time does not move while the handler runs
        "aws_request_id": invocation.request_id,
        "log_group_name": f"/aws/lambda/{cloud.physical_id('Reader')}",
        "memory_limit_in_mb": 256,
    }


def test_function_output_goes_to_its_log_group_framed_by_start_end_and_report(cloud_for, capsys):
    """print and Powertools Logger lines go to /aws/lambda/<name>, between START, END and REPORT lines.

    Lambda sends the output to CloudWatch Logs, not to the caller's terminal.
    https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs.html
    https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html
    """
    cloud = cloud_for("""
        Logger:
          Type: AWS::Serverless::Function
          Properties:
            Handler: runtime_logging.handler
    """)

    invoke(cloud, "Logger", {"order_id": "o-1"})

    [invocation] = cloud.invocations("Logger")
    lines = cloud.logs("Logger")
    assert lines[0] == f"START RequestId: {invocation.request_id} Version: $LATEST"
    assert lines[1] == "printed by the handler"
    structured = json.loads(lines[2])
    assert structured["message"] == "logged by Powertools"
    assert (structured["level"], structured["order_id"]) == ("INFO", "o-1")
    assert lines[3] == f"END RequestId: {invocation.request_id}"
    assert lines[4].startswith(f"REPORT RequestId: {invocation.request_id}\tDuration: ")
    name = cloud.physical_id("Logger")
    events = boto3.client("logs").filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
    assert [e["message"] for e in events] == lines
    assert "printed by the handler" not in capsys.readouterr().out


def test_a_handler_that_raises_is_a_failed_invocation_and_the_run_goes_on(cloud_for):
    """An unhandled exception fails that invocation only; the error type and message are recorded and logged.

    https://docs.aws.amazon.com/lambda/latest/dg/python-exceptions.html
    """
    cloud = cloud_for("""
        Queue:
          Type: AWS::SQS::Queue
          Properties: {VisibilityTimeout: 30}
        Failing:
          Type: AWS::Serverless::Function
          Properties:
            Handler: runtime_errors.raise_value_error
            Events:
              Orders: {Type: SQS, Properties: {Queue: !GetAtt Queue.Arn}}
        Healthy:
          Type: AWS::Serverless::Function
          Properties:
            Handler: behaviours.succeed
    """)
    boto3.client("sqs").send_message(QueueUrl=cloud.physical_id("Queue"), MessageBody="{}")

    cloud.run_for(1)
    response = invoke(cloud, "Healthy")

    [failed] = cloud.invocations("Failing")
    assert failed.error == "ValueError: order None has no items"
    assert failed.result["errorType"] == "ValueError"
    assert failed.result["errorMessage"] == "order None has no items"
    assert any("ValueError: order None has no items" in line for line in cloud.logs("Failing"))
    assert response["error"] is None and response["payload"]["ok"] is True


def test_an_unhandled_error_is_returned_to_a_synchronous_caller_as_a_function_error(cloud_for):
    """The Invoke response carries FunctionError: Unhandled and the error as its payload.

    https://docs.aws.amazon.com/lambda/latest/dg/python-exceptions.html
    https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html
    """
    cloud = cloud_for("""
        Failing:
          Type: AWS::Serverless::Function
          Properties:
            Handler: runtime_errors.raise_value_error
    """)

    response = invoke(cloud, "Failing", {"order_id": "o-1"})

    assert response["error"] == "Unhandled"
    assert response["payload"]["errorType"] == "ValueError"
    assert response["payload"]["errorMessage"] == "order o-1 has no items"


def test_a_return_value_that_is_not_json_serialisable_is_an_error(cloud_for):
    """Lambda serialises the return value to JSON; what cannot be serialised fails the invocation.

    https://docs.aws.amazon.com/lambda/latest/dg/python-handler.html
    """
    cloud = cloud_for("""
        Setter:
          Type: AWS::Serverless::Function
          Properties:
            Handler: runtime_errors.return_a_set
    """)

    response = invoke(cloud, "Setter")

    [invocation] = cloud.invocations("Setter")
    assert response["error"] == "Unhandled"
    assert response["payload"]["errorType"] == "Runtime.MarshalError"
    assert response["payload"]["errorMessage"].startswith("Unable to marshal response: ")
    assert invocation.error is not None and "not JSON serializable" in invocation.error


def test_an_invocation_longer_than_the_timeout_is_task_timed_out(cloud_for):
    """When a function runs past its Timeout, Lambda stops it and the invocation fails.

    https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html
    """
    cloud = cloud_for("""
        Slow:
          Type: AWS::Serverless::Function
          Properties:
            Handler: behaviours.succeed
            Timeout: 3
    """)
    cloud.function("Slow").duration = 5.0

    response = invoke(cloud, "Slow")

    [invocation] = cloud.invocations("Slow")
    assert invocation.error == "Task timed out after 3.00 seconds"
    assert response["error"] == "Unhandled"
    assert response["payload"]["errorMessage"] == "Task timed out after 3.00 seconds"


def test_functions_sharing_a_handler_module_keep_separate_module_state(cloud_for):
    """Each function has its own execution environment, so module-level state is never shared.

    https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html
    """
    cloud = cloud_for("""
        First:
          Type: AWS::Serverless::Function
          Properties: {Handler: runtime_state.handler}
        Second:
          Type: AWS::Serverless::Function
          Properties: {Handler: runtime_state.handler}
    """)

    counts = [invoke(cloud, name)["payload"] for name in ("First", "First", "Second", "First")]

    assert counts == [1, 2, 1, 3]


def test_output_outside_an_invocation_reaches_the_real_stream_and_its_methods():
    """Outside an invocation, the stand-in for sys.stdout is the real stream: writes and any
    other method (Jupyter's kernel calls set_parent() before each cell) reach it."""
    from edakit.runtime import FunctionOutput

    class KernelStream:
        def __init__(self) -> None:
            self.parent, self.text = None, ""

        def write(self, text: str) -> int:
            self.text += text
            return len(text)

        def flush(self) -> None:
            pass

        def set_parent(self, parent: dict) -> None:
            self.parent = parent

    real = KernelStream()
    stand_in = FunctionOutput(real)
    stand_in.set_parent({"msg_id": "cell-2"})
    stand_in.write("hello")
    assert real.parent == {"msg_id": "cell-2"}
    assert real.text == "hello"
