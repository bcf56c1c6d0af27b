"""Deploying a translated stage into moto, with a named shim for each gap in moto's CloudFormation."""

from __future__ import annotations

import copy
import functools
import json
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import boto3
from botocore.exceptions import ClientError

from .errors import DeploymentError
from .template import CODE_PLACEHOLDER, Stage

#: moto's CloudFormation skips these types (it warns and creates nothing), so the
#: kit creates them itself with boto3 once the rest of the stack exists.
DEFERRED_TYPES = (
    "AWS::SNS::Subscription",
    "AWS::SQS::QueuePolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::CloudWatch::Alarm",
)


@dataclass
class Deployment:
    """What the stack became: physical ids and the resources the shims created."""

    stack_name: str
    physical_ids: dict[str, str] = field(default_factory=dict)
    resource_types: dict[str, str] = field(default_factory=dict)
    shims_applied: list[str] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)


# --- shims on the template, before create_stack ---------------------------------


def shim_event_bus_ref(template: dict[str, Any]) -> dict[str, Any]:
    """`{"Ref": Bus}` breaks moto's stack creation; GetAtt Name is what Ref returns on AWS.

    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-events-eventbus.html#aws-resource-events-eventbus-return-values
    """
    buses = {k for k, r in template.get("Resources", {}).items() if r.get("Type") == "AWS::Events::EventBus"}

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            if set(node) == {"Ref"} and node["Ref"] in buses:
                return {"Fn::GetAtt": [node["Ref"], "Name"]}
            if set(node) == {"Fn::Sub"} and isinstance(node["Fn::Sub"], str):
                for bus in buses:
                    node = {"Fn::Sub": node["Fn::Sub"].replace("${" + bus + "}", "${" + bus + ".Name}")}
                return node
            return {k: rewrite(v) for k, v in node.items()}
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        return node

    return rewrite(template)


def shim_archive_event_pattern(template: dict[str, Any]) -> dict[str, Any]:
    """moto's CloudFormation passes an Archive's EventPattern on as an object where its
    backend expects JSON text (as the API carries it); CloudFormation takes either.

    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-events-archive.html
    """
    document = copy.deepcopy(template)
    for resource in document.get("Resources", {}).values():
        props = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::Events::Archive" and isinstance(props.get("EventPattern"), dict):
            props["EventPattern"] = json.dumps(props["EventPattern"])
    return document


def split_deferred(template: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Take out the resources moto's CloudFormation skips; drop DependsOn that point at them."""
    stack = copy.deepcopy(template)
    deferred = {k: r for k, r in stack["Resources"].items() if r.get("Type") in DEFERRED_TYPES}
    for logical_id in deferred:
        del stack["Resources"][logical_id]
    for resource in stack["Resources"].values():
        depends = resource.get("DependsOn")
        if isinstance(depends, str) and depends in deferred:
            del resource["DependsOn"]
        elif isinstance(depends, list):
            resource["DependsOn"] = [d for d in depends if d not in deferred]
    return stack, deferred


# --- shims after create_stack ------------------------------------------------------


def _resolve(properties: Any, stack_name: str, region: str, account_id: str) -> Any:
    """Resolve Ref/GetAtt/Sub in a deferred resource's properties with moto's own resolver."""
    from moto.cloudformation.parsing import clean_json

    return clean_json(copy.deepcopy(properties), _stack(stack_name, region, account_id).resource_map)


def _stack(stack_name: str, region: str, account_id: str) -> Any:
    from moto.cloudformation.models import cloudformation_backends

    backend = cloudformation_backends[account_id][region]
    return next(s for s in backend.stacks.values() if s.name == stack_name and s.status != "DELETE_COMPLETE")


def create_sns_subscription(props: dict[str, Any], region: str) -> str:
    """AWS::SNS::Subscription, with its FilterPolicy, FilterPolicyScope and RawMessageDelivery."""
    attributes = {}
    for name in ("FilterPolicy", "FilterPolicyScope", "RawMessageDelivery", "RedrivePolicy", "DeliveryPolicy"):
        if name in props:
            value = props[name]
            attributes[name] = json.dumps(value) if isinstance(value, dict) else str(value).lower() if isinstance(value, bool) else str(value)
    response = boto3.client("sns", region_name=region).subscribe(
        TopicArn=props["TopicArn"], Protocol=props["Protocol"], Endpoint=props["Endpoint"],
        Attributes=attributes, ReturnSubscriptionArn=True,
    )
    return response["SubscriptionArn"]


def create_queue_policy(props: dict[str, Any], region: str) -> str:
    """AWS::SQS::QueuePolicy: set the Policy attribute on every queue listed."""
    sqs = boto3.client("sqs", region_name=region)
    for url in props["Queues"]:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(props["PolicyDocument"])})
    return ",".join(props["Queues"])


def create_topic_policy(props: dict[str, Any], region: str) -> str:
    """AWS::SNS::TopicPolicy: set the Policy attribute on every topic listed (moto's
    CloudFormation skips the type).

    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-sns-topicpolicy.html
    """
    sns = boto3.client("sns", region_name=region)
    for arn in props["Topics"]:
        sns.set_topic_attributes(TopicArn=arn, AttributeName="Policy", AttributeValue=json.dumps(props["PolicyDocument"]))
    return ",".join(props["Topics"])


def create_event_invoke_config(props: dict[str, Any], region: str) -> str:
    """AWS::Lambda::EventInvokeConfig: retries, event age and destinations of async invocation."""
    kwargs: dict[str, Any] = {"FunctionName": props["FunctionName"]}
    for name in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds"):
        if name in props:
            kwargs[name] = int(props[name])
    destinations = props.get("DestinationConfig") or {}
    config = {k: v for k, v in destinations.items() if v and v.get("Destination")}
    if config:
        kwargs["DestinationConfig"] = config
    boto3.client("lambda", region_name=region).put_function_event_invoke_config(**kwargs)
    return props["FunctionName"]


def create_alarm(props: dict[str, Any], region: str) -> str:
    """AWS::CloudWatch::Alarm, stored in moto (which never evaluates it)."""
    kwargs = {k: v for k, v in props.items() if k not in ("Tags",)}
    for number in ("EvaluationPeriods", "Period", "DatapointsToAlarm"):
        if number in kwargs:
            kwargs[number] = int(kwargs[number])
    if "Threshold" in kwargs:
        kwargs["Threshold"] = float(kwargs["Threshold"])
    if "Dimensions" in kwargs:
        kwargs["Dimensions"] = [{"Name": d["Name"], "Value": str(d["Value"])} for d in kwargs["Dimensions"]]
    boto3.client("cloudwatch", region_name=region).put_metric_alarm(**kwargs)
    return kwargs["AlarmName"]


DEFERRED_SHIMS: dict[str, Callable[[dict[str, Any], str], str]] = {
    "AWS::SNS::Subscription": create_sns_subscription,
    "AWS::SQS::QueuePolicy": create_queue_policy,
    "AWS::SNS::TopicPolicy": create_topic_policy,
    "AWS::Lambda::EventInvokeConfig": create_event_invoke_config,
    "AWS::CloudWatch::Alarm": create_alarm,
}


#: Types moto lists with an empty physical id, whose Ref is their name on AWS.
NAMED_BY_REF = ("AWS::Events::EventBus", "AWS::Events::Archive")


def shim_empty_physical_ids(deployment: Deployment, stack_name: str, region: str, account_id: str) -> None:
    """moto lists an EventBus or an Archive with an empty physical id; Ref gives its name on AWS.

    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-events-archive.html#aws-resource-events-archive-return-values
    """
    stack_map = _stack(stack_name, region, account_id).resource_map
    for logical_id, resource_type in deployment.resource_types.items():
        if resource_type in NAMED_BY_REF and not deployment.physical_ids.get(logical_id):
            deployment.physical_ids[logical_id] = stack_map[logical_id].name
    deployment.shims_applied.append("shim_empty_physical_ids")


def shim_ref_outputs(deployment: Deployment, template: dict[str, Any]) -> None:
    """An Output whose Value is the Ref of a bus or an archive shows moto's object, not the name."""
    for key, output in (template.get("Outputs") or {}).items():
        value = output.get("Value") if isinstance(output, dict) else None
        if isinstance(value, dict) and set(value) == {"Ref"} and deployment.resource_types.get(value["Ref"]) in NAMED_BY_REF:
            deployment.outputs[key] = deployment.physical_ids[value["Ref"]]
    deployment.shims_applied.append("shim_ref_outputs")


def shim_fifo_queue_names(template: dict[str, Any], stack_name: str) -> dict[str, Any]:
    """moto refuses a FIFO queue without QueueName; CloudFormation names it, ending in .fifo.

    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-sqs-queue.html#cfn-sqs-queue-queuename
    """
    document = copy.deepcopy(template)
    for logical_id, resource in document.get("Resources", {}).items():
        props = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::SQS::Queue" and str(props.get("FifoQueue")).lower() == "true" and "QueueName" not in props:
            props["QueueName"] = f"{stack_name}-{logical_id}"[:75] + ".fifo"
            resource["Properties"] = props
    return document


def shim_dead_letter_config(deployment: Deployment, template: dict[str, Any], stack_name: str,
                            region: str, account_id: str) -> None:
    """moto's Lambda drops a function's DeadLetterConfig; keep it on the function, as Lambda does.

    The kit's hook on moto's get_configuration shows it to boto3 again, and the
    asynchronous queue sends discarded events there.
    https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html#invocation-dlq
    """
    from moto.awslambda.utils import get_backend

    backend = get_backend(account_id, region)
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        config = (resource.get("Properties") or {}).get("DeadLetterConfig")
        if not config or not config.get("TargetArn"):
            continue
        resolved = _resolve(config, stack_name, region, account_id)
        backend.get_function(deployment.physical_ids[logical_id]).dead_letter_config = {"TargetArn": resolved["TargetArn"]}
    deployment.shims_applied.append("shim_dead_letter_config")


def shim_kms_key_policy(deployment: Deployment, account_id: str, region: str) -> None:
    """moto's CloudFormation keeps an AWS::KMS::Key's KeyPolicy as an object, so GetKeyPolicy
    returns no JSON text; store it as the JSON document the API returns.

    https://docs.aws.amazon.com/kms/latest/APIReference/API_GetKeyPolicy.html
    """
    from moto.kms.models import kms_backends

    backend = kms_backends[account_id][region]
    for logical_id, resource_type in deployment.resource_types.items():
        if resource_type == "AWS::KMS::Key":
            key = backend.keys[deployment.physical_ids[logical_id]]
            if not isinstance(key.policy, str):
                key.policy = json.dumps(key.policy)
    deployment.shims_applied.append("shim_kms_key_policy")


def shim_dynamodb_sse(deployment: Deployment, template: dict[str, Any], stack_name: str,
                      region: str, account_id: str) -> None:
    """moto's CloudFormation passes a table's SSESpecification on as written (SSEEnabled),
    where its backend reads the API's field (Enabled): the table would show no encryption.
    Keep it in the API's shape, with the key's ARN, as DescribeTable's SSEDescription shows it.

    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-dynamodb-table-ssespecification.html
    https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_SSEDescription.html
    """
    from moto.dynamodb.models import dynamodb_backends
    from moto.kms.models import kms_backends

    tables = dynamodb_backends[account_id][region].tables
    keys = kms_backends[account_id][region]
    for logical_id, resource in template.get("Resources", {}).items():
        spec = (resource.get("Properties") or {}).get("SSESpecification")
        if resource.get("Type") != "AWS::DynamoDB::Table" or not spec:
            continue
        resolved = _resolve(spec, stack_name, region, account_id)
        table = tables[deployment.physical_ids[logical_id]]
        enabled = str(resolved.get("SSEEnabled")).lower() == "true"
        if not enabled:
            table.sse_specification = None
            continue
        key_id = resolved.get("KMSMasterKeyId")
        key_arn = keys.keys[keys.get_key_id(key_id)].arn if key_id else None
        table.sse_specification = {"Enabled": True, "SSEType": resolved.get("SSEType", "KMS"),
                                   **({"KMSMasterKeyId": key_arn} if key_arn else {})}
    deployment.shims_applied.append("shim_dynamodb_sse")


def shim_kinesis_stream_encryption(deployment: Deployment, template: dict[str, Any], stack_name: str,
                                   region: str, account_id: str) -> None:
    """moto's CloudFormation ignores an AWS::Kinesis::Stream's StreamEncryption: start the
    encryption as the API does, so DescribeStream shows EncryptionType KMS and the key.

    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-kinesis-stream-streamencryption.html
    """
    kinesis = boto3.client("kinesis", region_name=region)
    for logical_id, resource in template.get("Resources", {}).items():
        encryption = (resource.get("Properties") or {}).get("StreamEncryption")
        if resource.get("Type") != "AWS::Kinesis::Stream" or not encryption:
            continue
        resolved = _resolve(encryption, stack_name, region, account_id)
        kinesis.start_stream_encryption(StreamName=deployment.physical_ids[logical_id],
                                        EncryptionType=resolved["EncryptionType"], KeyId=resolved["KeyId"])
    deployment.shims_applied.append("shim_kinesis_stream_encryption")


@functools.cache
def _aws_managed_policies() -> dict[str, Any]:
    """The AWS managed policies' documents that moto ships (4.7 MB of JSON: read once)."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    return json.loads(aws_managed_policies_data)


def shim_role_managed_policies(deployment: Deployment, template: dict[str, Any], stack_name: str,
                               region: str, account_id: str) -> None:
    """moto's CloudFormation drops an AWS::IAM::Role's ManagedPolicyArns (SAM attaches
    AWSLambdaBasicExecutionRole, and AWSLambdaSQSQueueExecutionRole for an SQS event), and
    moto knows AWS managed policies only when told to load them all: attach them, with the
    documents moto ships, so that the role as deployed is the role as written.

    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-iam-role.html#cfn-iam-role-managedpolicyarns
    """
    from moto.iam.models import AWSManagedPolicy, iam_backends

    backend = iam_backends[account_id]["global"]
    known = _aws_managed_policies()
    for logical_id, resource in template.get("Resources", {}).items():
        arns = (resource.get("Properties") or {}).get("ManagedPolicyArns")
        if resource.get("Type") != "AWS::IAM::Role" or not arns:
            continue
        role_name = deployment.physical_ids[logical_id]
        for arn in _resolve(arns, stack_name, region, account_id):
            name = arn.rsplit("/", 1)[-1]
            if arn not in backend.managed_policies and arn.startswith("arn:aws:iam::aws:policy/") and name in known:
                backend.managed_policies[arn] = AWSManagedPolicy.from_data(name, account_id, region, known[name])
            try:
                backend.attach_role_policy(arn, role_name)
            except Exception as exc:  # moto's NotFoundException: a managed policy it does not know
                raise DeploymentError(f"{logical_id}: cannot attach the managed policy {arn}: {exc}") from None
    deployment.shims_applied.append("shim_role_managed_policies")


def _create_code_bucket(region: str) -> None:
    """moto's Lambda reads Code.S3Bucket/S3Key at creation: give it a placeholder object."""
    bucket, key = CODE_PLACEHOLDER[len("s3://"):].split("/", 1)
    s3 = boto3.client("s3", region_name=region)
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)
    s3.put_object(Bucket=bucket, Key=key, Body=b"PK\x05\x06" + b"\x00" * 18)


def import_moto_cloudformation() -> None:
    """Import moto's CloudFormation without EC2's catalogue of instance types, offerings and AMIs.

    moto's CloudFormation imports every service it models, EC2 too, and EC2 decompresses
    and parses its catalogue at import: a quarter of a second of every notebook's start.
    No stage has an EC2 resource (the deploy refuses types it does not know), so the
    catalogue is loaded empty. Later imports are free.
    """
    import sys

    if "moto.cloudformation.parsing" in sys.modules:
        return
    import moto.utilities.utils as moto_utils

    load_resource = moto_utils.load_resource

    def without_ec2_catalogue(resource: str) -> Any:
        if resource.startswith("ec2/resources/"):
            return {} if resource.endswith("instance_types.json") else []
        return load_resource(resource)

    moto_utils.load_resource = without_ec2_catalogue
    try:
        import moto.cloudformation.parsing  # noqa: F401
    finally:
        moto_utils.load_resource = load_resource


def deploy(stage: Stage, stack_name: str, region: str, account_id: str,
           parameters: dict[str, str] | None = None) -> Deployment:
    """Create the stage's stack in moto and apply every shim; return the physical ids."""
    import_moto_cloudformation()
    declared = stage.cloudformation.get("Parameters", {})
    unknown = sorted(set(parameters or {}) - set(declared))
    if unknown:
        raise DeploymentError(
            f"the template has no parameter {', '.join(unknown)}; its parameters are: "
            f"{', '.join(sorted(declared)) or 'none'}. Check the name in `parameters=`.")
    deployment = Deployment(stack_name)
    template = shim_event_bus_ref(stage.cloudformation)
    deployment.shims_applied.append("shim_event_bus_ref")
    template = shim_archive_event_pattern(template)
    deployment.shims_applied.append("shim_archive_event_pattern")
    template = shim_fifo_queue_names(template, stack_name)
    deployment.shims_applied.append("shim_fifo_queue_names")
    stack_template, deferred = split_deferred(template)
    _create_code_bucket(region)

    cloudformation = boto3.client("cloudformation", region_name=region)
    with warnings.catch_warnings():
        # moto warns once per type it does not know; the deferred shims cover those.
        warnings.filterwarnings("ignore", message="No Moto CloudFormation support")
        try:
            cloudformation.create_stack(
                StackName=stack_name,
                TemplateBody=json.dumps(stack_template),
                Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()],
                Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
            )
        except ClientError as exc:
            raise DeploymentError(f"creating the stack failed: {exc.response['Error']['Message']}") from None
        except Exception as exc:  # moto raises plain exceptions on templates it cannot handle
            raise DeploymentError(
                f"creating the stack in the emulator failed ({type(exc).__name__}: {exc}). "
                "Check the template's references and property names."
            ) from None

    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        raise DeploymentError(f"stack {stack_name} ended in {stack['StackStatus']}: {stack.get('StackStatusReason', '')}")
    deployment.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    paginator = cloudformation.get_paginator("list_stack_resources")
    for page in paginator.paginate(StackName=stack_name):
        for summary in page["StackResourceSummaries"]:
            deployment.physical_ids[summary["LogicalResourceId"]] = summary["PhysicalResourceId"]
            deployment.resource_types[summary["LogicalResourceId"]] = summary["ResourceType"]

    shim_empty_physical_ids(deployment, stack_name, region, account_id)
    shim_ref_outputs(deployment, template)
    shim_dead_letter_config(deployment, template, stack_name, region, account_id)
    shim_kms_key_policy(deployment, account_id, region)
    shim_role_managed_policies(deployment, template, stack_name, region, account_id)
    shim_dynamodb_sse(deployment, template, stack_name, region, account_id)
    shim_kinesis_stream_encryption(deployment, template, stack_name, region, account_id)
    for logical_id, resource in deferred.items():
        shim = DEFERRED_SHIMS[resource["Type"]]
        props = _resolve(resource.get("Properties", {}), stack_name, region, account_id)
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            # CloudFormation names an unnamed alarm after the stack and the logical id.
            props.setdefault("AlarmName", f"{stack_name}-{logical_id}")
        try:
            deployment.physical_ids[logical_id] = shim(props, region)
        except ClientError as exc:
            raise DeploymentError(f"{logical_id} ({resource['Type']}): {exc.response['Error']['Message']}") from None
        except KeyError as exc:
            raise DeploymentError(f"{logical_id} ({resource['Type']}): missing property {exc}") from None
        deployment.resource_types[logical_id] = resource["Type"]
        deployment.shims_applied.append(shim.__name__)
    return deployment
