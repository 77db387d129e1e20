"""CloudWatch GetMetricData per period over Smithy RPC v2 CBOR (the AWS SDK for Rust's protocol),
with boto3 made to speak it, for AWS/Lambda Duration/Invocations/Errors data put with backdated
timestamps: one value per 60-second period that had data, newest first by default."""

from __future__ import annotations

import copy
import json
import math
import os
from datetime import datetime, timedelta, timezone

import boto3
import botocore.session
import pytest
from botocore.config import Config
from conftest import unique

STATS = ("Average", "p50", "p90", "Sum", "SampleCount")


def cbor_client(emulator, root, **config):
    """A boto3 CloudWatch client whose model offers only smithy-rpc-v2-cbor (botocore otherwise
    prefers the JSON protocol): the same wire protocol as the AWS SDK for Rust."""
    reader = botocore.session.Session().get_component("data_loader")
    api_version = reader.determine_latest_version("cloudwatch", "service-2")
    model = copy.deepcopy(reader.load_service_model("cloudwatch", "service-2", api_version))
    model["metadata"]["protocol"] = "smithy-rpc-v2-cbor"
    model["metadata"]["protocols"] = ["smithy-rpc-v2-cbor"]
    os.makedirs(root / "cloudwatch" / api_version, exist_ok=True)
    (root / "cloudwatch" / api_version / "service-2.json").write_text(json.dumps(model))
    session = botocore.session.Session()  # a fresh loader: nothing cached yet
    session.get_component("data_loader").search_paths.insert(0, str(root))
    client = boto3.Session(botocore_session=session).client(
        "cloudwatch",
        endpoint_url=emulator.url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, **config),
    )
    assert client.meta.service_model.resolved_protocol == "smithy-rpc-v2-cbor"
    return client


@pytest.fixture(scope="module")
def cbor_cw(emulator, tmp_path_factory):
    return cbor_client(emulator, tmp_path_factory.mktemp("models"))


def lambda_dims(fn, alias="live", version="2"):
    return {
        "fn": [{"Name": "FunctionName", "Value": fn}],
        "resource": [{"Name": "FunctionName", "Value": fn}, {"Name": "Resource", "Value": f"{fn}:{alias}"}],
        "executed": [{"Name": "FunctionName", "Value": fn}, {"Name": "Resource", "Value": f"{fn}:{alias}"}, {"Name": "ExecutedVersion", "Value": version}],
    }


def nearest_rank(values, p):
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p * len(ordered) / 100.0)) - 1]


def expected(points, start, end, stat):
    """Documented semantics, independently: periods of 60 s from StartTime rounded down to the
    minute, EndTime exclusive, one value per period with data, newest first."""
    first = start.replace(second=0, microsecond=0)
    buckets = {}
    for ts, value in points:
        if first <= ts < end:
            buckets.setdefault(first + timedelta(seconds=60 * ((ts - first) // timedelta(seconds=60))), []).append(value)
    out = []
    for period in sorted(buckets, reverse=True):
        values = buckets[period]
        out.append((period, {
            "Sum": sum(values),
            "SampleCount": float(len(values)),
            "Average": sum(values) / len(values),
            "p50": nearest_rank(values, 50),
            "p90": nearest_rank(values, 90),
        }[stat]))
    return out


def put_backdated(client, namespace, name, dims, points, unit):
    # PutMetricData takes up to 1000 metrics per call; one datum per point, each with its Timestamp.
    client.put_metric_data(Namespace=namespace, MetricData=[
        {"MetricName": name, "Dimensions": dims, "Timestamp": ts, "Value": value, "Unit": unit} for ts, value in points
    ])


def query(i, namespace, name, dims, stat, period=60):
    return {"Id": f"q{i}", "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": name, "Dimensions": dims}, "Period": period, "Stat": stat}, "ReturnData": True}


def as_pairs(result):
    assert len(result["Timestamps"]) == len(result["Values"])
    return [(t.astimezone(timezone.utc).replace(tzinfo=None), v) for t, v in zip(result["Timestamps"], result["Values"])]


def test_per_period_series_over_cbor_for_lambda_metrics(emulator, cbor_cw, clients):
    fn = unique("checkout")
    dims = lambda_dims(fn)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    # Spread over the last 30 minutes, several points in most minutes, some minutes empty.
    duration, invocations, errors = [], [], []
    for minute in range(1, 30):
        if minute % 7 == 0:
            continue  # a minute without data: no data point for that period
        for k in range(1 + minute % 4):
            ts = now - timedelta(minutes=minute) + timedelta(seconds=5 + 11 * k)
            duration.append((ts, float(10 * minute + 3 * k + (k * k) % 5)))
            invocations.append((ts, 1.0))
            errors.append((ts, 1.0 if (minute + k) % 3 == 0 else 0.0))
    for key in ("fn", "resource", "executed"):
        put_backdated(cbor_cw, "AWS/Lambda", "Duration", dims[key], duration, "Milliseconds")
        put_backdated(cbor_cw, "AWS/Lambda", "Invocations", dims[key], invocations, "Count")
        put_backdated(cbor_cw, "AWS/Lambda", "Errors", dims[key], errors, "Count")
    # Noise that must not count: another namespace, another version, a superset of dimensions.
    put_backdated(cbor_cw, "ShiftGuard/Other", "Duration", dims["executed"], duration, "Milliseconds")
    put_backdated(cbor_cw, "AWS/Lambda", "Duration", lambda_dims(fn, version="1")["executed"], [(t, 9999.0) for t, _ in duration], "Milliseconds")
    put_backdated(cbor_cw, "AWS/Lambda", "Duration", dims["executed"] + [{"Name": "Extra", "Value": "x"}], [(t, 9999.0) for t, _ in duration], "Milliseconds")

    start, end = now - timedelta(minutes=30, seconds=17), now
    queries, wanted = [], {}
    for key in ("fn", "resource", "executed"):
        query_dims = list(reversed(dims[key]))  # the order of dimensions does not matter
        for stat in STATS:
            queries.append(query(len(queries), "AWS/Lambda", "Duration", query_dims, stat))
            wanted[queries[-1]["Id"]] = expected(duration, start, end, stat)
        for name, points in (("Invocations", invocations), ("Errors", errors)):
            for stat in ("Sum", "SampleCount", "Average"):
                queries.append(query(len(queries), "AWS/Lambda", name, query_dims, stat))
                wanted[queries[-1]["Id"]] = expected(points, start, end, stat)
    out = cbor_cw.get_metric_data(MetricDataQueries=queries, StartTime=start, EndTime=end)
    results = {r["Id"]: r for r in out["MetricDataResults"]}
    assert set(results) == set(wanted)
    for qid, want in wanted.items():
        got = as_pairs(results[qid])
        assert 20 <= len(got) == len(want), qid  # one per minute with data (4 minutes have none)
        assert all(t.second == 0 and t.microsecond == 0 for t, _ in got), qid
        assert [t for t, _ in got] == [t for t, _ in want], qid
        for (_, g), (_, w) in zip(got, want):
            assert g == pytest.approx(w), qid
        assert results[qid]["StatusCode"] == "Complete"
    # The request really went over CBOR.
    calls = emulator.control("GET", "/_shiftguard/calls?service=monitoring&operation=GetMetricData")
    assert calls and calls[-1]["path"] == "/service/GraniteServiceVersion20100801/operation/GetMetricData"

    # ScanBy=TimestampAscending: the same series, oldest first.
    asc = cbor_cw.get_metric_data(MetricDataQueries=[query(0, "AWS/Lambda", "Duration", dims["executed"], "p90")], StartTime=start, EndTime=end, ScanBy="TimestampAscending")
    assert as_pairs(asc["MetricDataResults"][0]) == list(reversed(expected(duration, start, end, "p90")))
    # The JSON protocol (boto3's default) answers the same.
    assert clients.cw.meta.service_model.resolved_protocol == "json"
    via_json = as_pairs(clients.cw.get_metric_data(MetricDataQueries=[query(0, "AWS/Lambda", "Duration", dims["resource"], "Average")], StartTime=start, EndTime=end)["MetricDataResults"][0])
    want = expected(duration, start, end, "Average")
    assert [t for t, _ in via_json] == [t for t, _ in want]
    assert [v for _, v in via_json] == pytest.approx([v for _, v in want])


def test_values_counts_arrays_and_statistic_sets(cbor_cw):
    fn = unique("arrays")
    dims = lambda_dims(fn)["executed"]
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    minute = (now - timedelta(minutes=10)).replace(second=20, microsecond=0)
    # Values/Counts: 5 occurs 3 times, 100 once (PutMetricData's arrays).
    cbor_cw.put_metric_data(Namespace="AWS/Lambda", MetricData=[
        {"MetricName": "Duration", "Dimensions": dims, "Timestamp": minute, "Values": [5.0, 100.0], "Counts": [3.0, 1.0], "Unit": "Milliseconds"},
        # A statistic set of one repeated value: percentiles still available.
        {"MetricName": "Duration", "Dimensions": dims, "Timestamp": minute + timedelta(seconds=5), "StatisticValues": {"SampleCount": 2, "Sum": 14, "Minimum": 7, "Maximum": 7}, "Unit": "Milliseconds"},
        # A minute later, a statistic set of different values: no percentile for that period.
        {"MetricName": "Duration", "Dimensions": dims, "Timestamp": minute + timedelta(minutes=1), "StatisticValues": {"SampleCount": 4, "Sum": 40, "Minimum": 1, "Maximum": 20}, "Unit": "Milliseconds"},
    ])
    start, end = now - timedelta(minutes=20), now
    out = cbor_cw.get_metric_data(MetricDataQueries=[query(i, "AWS/Lambda", "Duration", dims, s) for i, s in enumerate(("SampleCount", "Sum", "Average", "p50", "p90", "Minimum", "Maximum"))], StartTime=start, EndTime=end)
    got = {r["Id"]: [v for _, v in as_pairs(r)] for r in out["MetricDataResults"]}
    # Newest period first: [minute+1, minute].
    assert got["q0"] == [4.0, 6.0]
    assert got["q1"] == [40.0, 129.0]
    assert got["q2"] == pytest.approx([10.0, 129.0 / 6])
    assert got["q3"] == [5.0]  # nearest rank in [5, 5, 5, 7, 7, 100]; the later period has none
    assert got["q4"] == [100.0]
    assert got["q5"] == [1.0, 5.0] and got["q6"] == [20.0, 100.0]
    times = [t for t, _ in as_pairs(out["MetricDataResults"][3])]
    assert times == [minute.replace(second=0)]


def test_get_metric_data_documented_errors(cbor_cw):
    now = datetime.now(timezone.utc)
    q = [query(0, "AWS/Lambda", "Duration", [], "Sum")]
    with pytest.raises(cbor_cw.exceptions.ClientError):
        cbor_cw.get_metric_data(MetricDataQueries=q, StartTime=now, EndTime=now - timedelta(minutes=1))
    assert cbor_cw.get_metric_data(MetricDataQueries=q, StartTime=now - timedelta(minutes=5), EndTime=now)["MetricDataResults"][0]["Values"] == []


def test_gzip_compressed_put_metric_data(emulator, cbor_cw, tmp_path):
    """SDKs gzip PutMetricData bodies above a size (request compression): such a body is read too."""
    gzipping = cbor_client(emulator, tmp_path, request_min_compression_size_bytes=1)
    dims = lambda_dims(unique("gzip"))["executed"]
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    gzipping.put_metric_data(Namespace="AWS/Lambda", MetricData=[{"MetricName": "Invocations", "Dimensions": dims, "Timestamp": now - timedelta(minutes=3), "Value": 7.0, "Unit": "Count"}])
    out = cbor_cw.get_metric_data(MetricDataQueries=[query(0, "AWS/Lambda", "Invocations", dims, "Sum")], StartTime=now - timedelta(minutes=10), EndTime=now)
    assert out["MetricDataResults"][0]["Values"] == [7.0]


def test_alarms_over_cbor_put_set_and_describe(cbor_cw):
    """What `shift` and the Rust tests send: PutMetricAlarm, SetAlarmState and DescribeAlarms over
    CBOR. DescribeAlarms lists metric alarms only unless AlarmTypes asks for composites (documented
    default); unknown names are left out; StateUpdatedTimestamp is a CBOR timestamp."""
    name = unique("cbor-alarm")
    cbor_cw.put_metric_alarm(AlarmName=name, Namespace="AWS/Lambda", MetricName="Errors", Statistic="Sum",
                             Period=60, EvaluationPeriods=1, Threshold=1.0,
                             ComparisonOperator="GreaterThanOrEqualToThreshold",
                             Dimensions=[{"Name": "FunctionName", "Value": "checkout"}])
    cbor_cw.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="test")
    out = cbor_cw.describe_alarms(AlarmNames=[name, unique("missing")], AlarmTypes=["MetricAlarm", "CompositeAlarm"])
    assert [a["AlarmName"] for a in out["MetricAlarms"]] == [name]
    alarm = out["MetricAlarms"][0]
    assert (alarm["StateValue"], alarm["MetricName"], alarm["Dimensions"]) == ("ALARM", "Errors", [{"Name": "FunctionName", "Value": "checkout"}])
    assert isinstance(alarm["StateUpdatedTimestamp"], datetime)
    assert out["CompositeAlarms"] == []
    # Updating the alarm keeps its state (PutMetricAlarm API reference).
    cbor_cw.put_metric_alarm(AlarmName=name, Namespace="AWS/Lambda", MetricName="Errors", Statistic="Sum",
                             Period=60, EvaluationPeriods=2, Threshold=1.0,
                             ComparisonOperator="GreaterThanOrEqualToThreshold")
    again = cbor_cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
    assert (again["StateValue"], again["EvaluationPeriods"]) == ("ALARM", 2)
    with pytest.raises(cbor_cw.exceptions.ClientError) as err:
        cbor_cw.set_alarm_state(AlarmName=unique("nope"), StateValue="OK", StateReason="x")
    assert err.value.response["Error"]["Code"] == "ResourceNotFound"


def test_errors_over_cbor_carry_the_query_compatible_code(cbor_cw):
    """CloudWatch is awsQueryCompatible: an error over CBOR carries `x-amzn-query-error:
    Code;Sender` beside its `__type`, which the SDKs read for the error code."""
    with pytest.raises(cbor_cw.exceptions.ResourceNotFound) as raised:
        cbor_cw.set_alarm_state(AlarmName="no-such-alarm", StateValue="ALARM", StateReason="test")
    headers = raised.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amzn-query-error"] == "ResourceNotFound;Sender"
