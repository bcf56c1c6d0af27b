"""Reading a stage's EventBridge rules from its translated template (edakit.template.event_rules):
the docs' event catalogue and the capacity model both route events with them."""

from __future__ import annotations

from edakit.template import cloudformation_of, event_rules, logical_id_of

SAM = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Transform": "AWS::Serverless-2016-10-31",
    "Resources": {
        "Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": "shop"}},
        "Queue": {"Type": "AWS::SQS::Queue"},
        "ToQueue": {"Type": "AWS::Events::Rule", "Properties": {
            "EventBusName": {"Fn::GetAtt": "Bus.Name"}, "State": "DISABLED",
            "EventPattern": {"source": ["shop.orders"]},
            "Targets": [{"Id": "q", "Arn": {"Fn::GetAtt": ["Queue", "Arn"]}},
                        {"Id": "elsewhere", "Arn": "arn:aws:sqs:us-east-1:123456789012:other"}]}},
        "Nightly": {"Type": "AWS::Events::Rule", "Properties": {"ScheduleExpression": "rate(1 day)"}},
        "Fn": {"Type": "AWS::Serverless::Function", "Properties": {
            "Runtime": "python3.12", "Handler": "app.handler", "CodeUri": ".",
            "Events": {"Placed": {"Type": "EventBridgeRule", "Properties": {
                "EventBusName": {"Ref": "Bus"}, "Pattern": {"detail-type": ["OrderPlaced"]}}}}}},
    },
}


def test_logical_id_of_reads_ref_and_both_forms_of_get_att() -> None:
    """https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference-getatt.html"""
    assert logical_id_of({"Ref": "Bus"}) == "Bus"
    assert logical_id_of({"Fn::GetAtt": ["Queue", "Arn"]}) == "Queue"
    assert logical_id_of({"Fn::GetAtt": "Queue.Arn"}) == "Queue"
    assert logical_id_of("arn:aws:sqs:us-east-1:123456789012:other") is None
    assert logical_id_of({"Fn::Sub": "${Queue}"}) is None


def test_event_rules_include_the_rules_sam_makes_and_leave_out_schedules() -> None:
    """A function's EventBridgeRule event becomes an AWS::Events::Rule whose one target is the
    function; a scheduled rule has no pattern and routes no event; State DISABLED is kept.
    https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-property-function-eventbridgerule.html
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-events-rule.html
    """
    rules = {rule.logical_id: rule for rule in event_rules(cloudformation_of(SAM, "us-east-1")["Resources"])}

    assert set(rules) == {"ToQueue", "FnPlaced"}
    assert rules["ToQueue"].targets == ["Queue", "arn:aws:sqs:us-east-1:123456789012:other"]
    assert (rules["ToQueue"].bus, rules["ToQueue"].enabled) == ("Bus", False)
    assert rules["FnPlaced"].targets == ["Fn"] and rules["FnPlaced"].bus == "Bus" and rules["FnPlaced"].enabled
    assert rules["FnPlaced"].pattern == {"detail-type": ["OrderPlaced"]}
