"""CloudWatch alarms that evaluate the metrics the emulator records and notify through SNS, and SNS
delivering to Lambda functions bound to a Runtime API endpoint."""

from __future__ import annotations

import json
import re

import pytest
from conftest import bare_function, make_function, unique, wait_for


def subscribe_bound_function(emulator, clients, runtime_api, topic_arn):
    name = unique("rollback")
    bare_function(clients.lam, name)
    emulator.bind(name, runtime_api.endpoint, "rollback")
    arn = clients.lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    sub = clients.sns.subscribe(TopicArn=topic_arn, Protocol="lambda", Endpoint=arn)["SubscriptionArn"]
    return name, sub


def test_errors_alarm_fires_on_invocation_metrics_and_sns_delivers_the_notification(emulator, engine, clients, runtime_api):
    emulator.control("POST", "/_shiftguard/engine", {"timeScale": 60})  # a 60 s period -> 1 s
    fn, alarm = unique("checkout"), unique("checkout-errors")
    v1, v2 = make_function(clients.lam, fn)
    emulator.behaviour(fn, v1, function_error="Unhandled", response={"errorType": "Boom", "errorMessage": "boom"})
    topic = clients.sns.create_topic(Name=unique("alarms"))["TopicArn"]
    _, sub = subscribe_bound_function(emulator, clients, runtime_api, topic)
    dims = [{"Name": "FunctionName", "Value": fn}, {"Name": "Resource", "Value": f"{fn}:live"}, {"Name": "ExecutedVersion", "Value": v1}]
    clients.cw.put_metric_alarm(
        AlarmName=alarm, MetricName="Errors", Namespace="AWS/Lambda", Statistic="Sum", Period=60, EvaluationPeriods=1,
        Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold", Dimensions=dims, TreatMissingData="notBreaching",
        AlarmActions=[topic], OKActions=[topic],
    )
    for _ in range(3):
        clients.lam.invoke(FunctionName=fn, Qualifier="live", Payload=b"{}")
    try:
        wait_for(lambda: clients.cw.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["StateValue"] == "ALARM", what="ALARM")
    except AssertionError:
        raise AssertionError(f"{emulator.control('GET', f'/_shiftguard/cloudwatch/transitions?alarm={alarm}')} {emulator.control('GET', f'/_shiftguard/lambda/invocations?function={fn}')}")
    # (An OK notification may come first: the new alarm went INSUFFICIENT_DATA -> OK before the errors.)
    event = wait_for(lambda: next((r["payload"] for r in runtime_api.received if r["name"] == "rollback" and '"NewStateValue": "ALARM"' in r["payload"]["Records"][0]["Sns"]["Message"]), None), what="the ALARM notification")
    record = event["Records"][0]
    assert record["EventSource"] == "aws:sns" and record["EventVersion"] == "1.0"
    assert record["EventSubscriptionArn"] == sub
    sns = record["Sns"]
    assert sns["Type"] == "Notification" and sns["TopicArn"] == topic
    assert set(sns) >= {"MessageId", "Subject", "Message", "Timestamp", "SignatureVersion", "Signature", "SigningCertUrl", "UnsubscribeUrl", "MessageAttributes"}
    assert sns["Subject"] == f'ALARM: "{alarm}" in US East (N. Virginia)'
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", sns["Timestamp"])
    message = json.loads(sns["Message"])
    assert message["AlarmName"] == alarm and message["NewStateValue"] == "ALARM"
    assert message["AlarmDescription"] is None
    assert message["AWSAccountId"] == "123456789012"
    assert message["Region"] == "US East (N. Virginia)"
    assert message["AlarmArn"].startswith("arn:aws:cloudwatch:us-east-1:123456789012:alarm:")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", message["StateChangeTime"])
    assert message["NewStateReason"].startswith("Threshold Crossed")
    trigger = message["Trigger"]
    assert trigger["MetricName"] == "Errors" and trigger["Namespace"] == "AWS/Lambda"
    assert trigger["Dimensions"] == [{"value": d["Value"], "name": d["Name"]} for d in dims]
    assert trigger["Period"] == 60 and trigger["EvaluationPeriods"] == 1 and trigger["Threshold"] == 1.0
    assert trigger["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    # No more errors: the next periods are missing data treated as not breaching -> OK, notified too.
    wait_for(lambda: clients.cw.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["StateValue"] == "OK", what="OK")
    wait_for(lambda: any(json.loads(r["payload"]["Records"][0]["Sns"]["Message"])["NewStateValue"] == "OK" for r in runtime_api.received if r["name"] == "rollback"), what="the OK notification")
    transitions = emulator.control("GET", f"/_shiftguard/cloudwatch/transitions?alarm={alarm}")
    assert [t["newState"] for t in transitions][-2:] == ["ALARM", "OK"]


def test_alarm_on_a_version_ignores_other_versions(emulator, engine, clients):
    emulator.control("POST", "/_shiftguard/engine", {"timeScale": 60})
    fn, alarm = unique("checkout"), unique("v2-errors")
    v1, v2 = make_function(clients.lam, fn)
    emulator.behaviour(fn, v1, function_error="Unhandled")
    clients.cw.put_metric_alarm(
        AlarmName=alarm, MetricName="Errors", Namespace="AWS/Lambda", Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="notBreaching",
        Dimensions=[{"Name": "FunctionName", "Value": fn}, {"Name": "Resource", "Value": f"{fn}:live"}, {"Name": "ExecutedVersion", "Value": v2}],
    )
    for _ in range(3):
        clients.lam.invoke(FunctionName=fn, Qualifier="live", Payload=b"{}")  # all on v1
    wait_for(lambda: clients.cw.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["StateValue"] == "OK", what="OK")


def test_missing_data_treated_as_breaching_alarms_and_put_metric_data_counts(emulator, engine, clients):
    emulator.control("POST", "/_shiftguard/engine", {"timeScale": 60})
    breaching, custom = unique("breaching"), unique("custom")
    clients.cw.put_metric_alarm(AlarmName=breaching, MetricName="Nothing", Namespace="ShiftGuard/Test", Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold", TreatMissingData="breaching")
    clients.cw.put_metric_alarm(AlarmName=custom, MetricName="Latency", Namespace="ShiftGuard/Test", Statistic="Average", Period=60, EvaluationPeriods=2, DatapointsToAlarm=1, Threshold=500, ComparisonOperator="GreaterThanThreshold")
    # A new alarm starts INSUFFICIENT_DATA, as on CloudWatch.
    wait_for(lambda: clients.cw.describe_alarms(AlarmNames=[custom])["MetricAlarms"][0]["StateValue"] == "INSUFFICIENT_DATA", what="INSUFFICIENT_DATA")
    clients.cw.put_metric_data(Namespace="ShiftGuard/Test", MetricData=[{"MetricName": "Latency", "Value": 900.0, "Unit": "Milliseconds"}])
    wait_for(lambda: clients.cw.describe_alarms(AlarmNames=[breaching])["MetricAlarms"][0]["StateValue"] == "ALARM", what="breaching ALARM")
    wait_for(lambda: clients.cw.describe_alarms(AlarmNames=[custom])["MetricAlarms"][0]["StateValue"] == "ALARM", what="custom metric ALARM")


def test_an_alarm_on_statistic_sets_computes_its_statistic_from_them(emulator, engine, clients):
    """PutMetricData's StatisticValues: an alarm evaluates them as GetMetricData computes the
    statistic (cloudwatch_metrics.statistic), its Maximum the sets' Maximum."""
    emulator.control("POST", "/_shiftguard/engine", {"timeScale": 60})
    alarm, metric = unique("latency-sets"), unique("Latency")
    clients.cw.put_metric_alarm(AlarmName=alarm, MetricName=metric, Namespace="ShiftGuard/Test", Statistic="Maximum", Period=60, EvaluationPeriods=1, Threshold=500, ComparisonOperator="GreaterThanThreshold")
    wait_for(lambda: clients.cw.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["StateValue"] == "INSUFFICIENT_DATA", what="INSUFFICIENT_DATA")
    clients.cw.put_metric_data(Namespace="ShiftGuard/Test", MetricData=[
        {"MetricName": metric, "StatisticValues": {"SampleCount": 10, "Sum": 3000.0, "Minimum": 100.0, "Maximum": 900.0}, "Unit": "Milliseconds"}])
    got = wait_for(lambda: (lambda a: a if a["StateValue"] == "ALARM" else None)(clients.cw.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]), what="ALARM")
    assert json.loads(got["StateReasonData"])["recentDatapoints"] == [900.0], got


def test_set_alarm_state_notifies(emulator, engine, clients, runtime_api):
    emulator.control("POST", "/_shiftguard/engine", {"alarmEvaluation": False})
    alarm = unique("manual")
    topic = clients.sns.create_topic(Name=unique("alarms"))["TopicArn"]
    subscribe_bound_function(emulator, clients, runtime_api, topic)
    clients.cw.put_metric_alarm(AlarmName=alarm, MetricName="Errors", Namespace="AWS/Lambda", Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold", AlarmActions=[topic], AlarmDescription="checkout errors")
    clients.cw.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="by hand")
    event = wait_for(lambda: next((r["payload"] for r in runtime_api.received), None), what="delivery")
    message = json.loads(event["Records"][0]["Sns"]["Message"])
    assert message["NewStateValue"] == "ALARM" and message["NewStateReason"] == "by hand"
    assert message["AlarmDescription"] == "checkout errors"


def test_updating_an_alarm_leaves_its_state_unchanged(emulator, engine, clients):
    """PutMetricAlarm API reference: "When updating an existing alarm, its StateValue is left
    unchanged" — an alarm in ALARM must not be cleared by re-putting it (it would let a deployment
    that lists it in alarmConfiguration go ahead)."""
    emulator.control("POST", "/_shiftguard/engine", {"alarmEvaluation": False})
    alarm = unique("kept")
    put = dict(AlarmName=alarm, MetricName="Errors", Namespace="AWS/Lambda", Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold")
    clients.cw.put_metric_alarm(**put)
    assert clients.cw.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["StateValue"] == "INSUFFICIENT_DATA"
    clients.cw.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="by hand")
    clients.cw.put_metric_alarm(**{**put, "Threshold": 5})
    got = clients.cw.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]
    assert (got["StateValue"], got["Threshold"]) == ("ALARM", 5.0)
    transitions = emulator.control("GET", f"/_shiftguard/cloudwatch/transitions?alarm={alarm}")
    assert [t["newState"] for t in transitions] == ["ALARM"], transitions


def test_sns_publish_delivers_to_lambda_subscriptions_only_with_the_engine(emulator, engine, clients, runtime_api):
    topic = clients.sns.create_topic(Name=unique("plain"))["TopicArn"]
    subscribe_bound_function(emulator, clients, runtime_api, topic)
    clients.sns.publish(TopicArn=topic, Message="hello", Subject="greeting", MessageAttributes={"kind": {"DataType": "String", "StringValue": "test"}})
    event = wait_for(lambda: next((r["payload"] for r in runtime_api.received), None))
    sns = event["Records"][0]["Sns"]
    assert sns["Message"] == "hello" and sns["Subject"] == "greeting"
    assert sns["MessageAttributes"] == {"kind": {"Type": "String", "Value": "test"}}
    deliveries = emulator.control("GET", "/_shiftguard/sns/deliveries")
    assert any(d["topicArn"] == topic for d in deliveries)


def test_bound_function_runs_on_invoke_with_executed_version(emulator, engine, clients, runtime_api):
    fn = unique("bound")
    v1, v2 = make_function(clients.lam, fn)
    emulator.bind(fn, runtime_api.endpoint, "pre-traffic", qualifier=v2)
    runtime_api.handlers["pre-traffic"] = lambda payload: {"ran": payload}
    out = clients.lam.invoke(FunctionName=fn, Qualifier=v2, Payload=b'{"x": 1}')
    assert json.loads(out["Payload"].read()) == {"ran": {"x": 1}}
    assert out["ExecutedVersion"] == v2
    # Version 1 is not bound: moto's echo.
    out = clients.lam.invoke(FunctionName=fn, Qualifier=v1, Payload=b'{"x": 2}')
    assert out["ExecutedVersion"] == v1
    assert [r["payload"] for r in runtime_api.received] == [{"x": 1}]
    runtime_api.handlers["pre-traffic"] = lambda payload: (_ for _ in ()).throw(RuntimeError("boom"))
    out = clients.lam.invoke(FunctionName=fn, Qualifier=v2, Payload=b"{}")
    assert out["FunctionError"] == "Unhandled"
    assert json.loads(out["Payload"].read())["errorType"] == "RuntimeError"
    bindings = emulator.control("GET", "/_shiftguard/lambda/bindings")
    assert {"function": fn, "qualifier": v2, "endpoint": runtime_api.endpoint, "name": "pre-traffic"} in bindings
    for bad in ({"function": fn}, {"function": fn, "endpoint": "http://example.com:9000"}):
        with pytest.raises(AssertionError, match="400"):
            emulator.control("POST", "/_shiftguard/lambda/bindings", bad)
