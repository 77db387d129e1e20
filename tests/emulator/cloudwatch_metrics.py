"""CloudWatch GetMetricData per period, as the API reference documents it (moto 5.2.5 gets it wrong).

`install()` replaces moto's `CloudWatchBackend.get_metric_data` for `MetricStat` queries; both wire
protocols use it (the JSON one boto3 speaks, and Smithy RPC v2 CBOR, the AWS SDK for Rust's, served
by `cloudwatch_cbor` below). What moto did wrong, and what this does instead:

* periods started at StartTime as given (seconds and all): CloudWatch rounds StartTime down (to
  the minute when it is less than 15 days ago, 5 minutes up to 63 days, the hour beyond; to even
  5/10/20/30-second divisions for those periods) and periods follow from there;
* a query with dimensions matched data of any namespace, and a query without dimensions matched
  every dimension set: a metric is its namespace, name and exact set of dimensions;
* dimension sets were compared through `sorted()` of moto's `Dimension`, whose ordering is broken
  (`self.value < other.name`): the same set sent in another order could fail to match;
* a period whose statistic moto could not compute (percentiles) still answered a timestamp, with a
  null value the CBOR layer then dropped, leaving Timestamps and Values out of step;
* percentiles from statistic sets: CloudWatch computes them only when the set is one repeated value
  (SampleCount 1, or Min = Max and Sum = Min x SampleCount); never from negative values.

Queries with an `Expression` (metric math, Metrics Insights) are still answered by moto as before.

`cloudwatch_cbor` serves PutMetricData, GetMetricData, PutMetricAlarm, SetAlarmState and
DescribeAlarms over Smithy RPC v2 CBOR (moto speaks query/JSON only).
What is documented and what is guessed: `MODELLED.md` ("CloudWatch GetMetricData").
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from state import DEFAULT_ACCOUNT

PERCENTILE = re.compile(r"^p(\d{1,2}(\.\d+)?|100)$")


def naive_utc(value: datetime) -> datetime:
    return value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value


def rounded_start(start: datetime, period: int, now: datetime | None = None) -> datetime:
    """StartTime as CloudWatch rounds it (GetMetricData API reference, StartTime)."""
    now = now or datetime.now(timezone.utc).replace(tzinfo=None)
    start = start.replace(microsecond=0)
    if period in (1, 5, 10, 20, 30):
        # "rounded down to the nearest time that corresponds to even 5-, 10-, 20-, or 30-second
        # divisions of a minute" (1: whole seconds).
        return start.replace(second=start.second - start.second % period)
    age = now - start
    if age < timedelta(days=15):
        return start.replace(second=0)
    if age < timedelta(days=63):
        return start.replace(second=0, minute=start.minute - start.minute % 5)
    return start.replace(second=0, minute=0)


def statistic(stat: str, data: list[Any]) -> float | None:
    """The statistic over one period's data points (moto `MetricDatum`s: raw values, each value
    of a Values/Counts array expanded Count times; `MetricAggregatedDatum`s: statistic sets)."""
    from moto.cloudwatch.models import MetricAggregatedDatum, MetricDatum

    raw = [float(d.value) for d in data if isinstance(d, MetricDatum)]
    sets = [d for d in data if isinstance(d, MetricAggregatedDatum)]
    count = len(raw) + sum(float(s.sample_count) for s in sets)
    if count <= 0:
        return None
    total = sum(raw) + sum(float(s.sum) for s in sets)
    if stat == "SampleCount":
        return count
    if stat == "Sum":
        return total
    if stat == "Average":
        return total / count
    if stat == "Minimum":
        return min(raw + [float(s.min) for s in sets])
    if stat == "Maximum":
        return max(raw + [float(s.max) for s in sets])
    match = PERCENTILE.match(stat)
    if match:
        values = list(raw)
        for s in sets:
            n = float(s.sample_count)
            lo, hi, sm = float(s.min), float(s.max), float(s.sum)
            # PutMetricData: percentiles from a statistic set only if "the SampleCount value of the
            # statistic set is 1 and Min, Max, and Sum are all equal" or "the Min and Max are
            # equal, and Sum is equal to Min multiplied by SampleCount".
            if lo == hi and math.isclose(sm, lo * n, rel_tol=1e-9, abs_tol=1e-9) and n == int(n):
                values.extend([lo] * int(n))
            else:
                return None
        if not values or any(v < 0 for v in values):
            # "Percentile statistics are not available for metrics when any of the metric values
            # are negative numbers."
            return None
        ordered = sorted(values)
        # A guess: nearest rank (CloudWatch does not document its percentile estimator).
        rank = max(1, math.ceil(float(match.group(1)) * len(ordered) / 100.0))
        return ordered[min(rank, len(ordered)) - 1]
    return None  # other extended statistics (TM99, IQM, ...): not modelled, no data point


def metric_stat_result(backend: Any, query: dict, start: datetime, end: datetime, scan_by: str) -> dict:
    stat_spec = query["MetricStat"]
    metric = stat_spec["Metric"]
    namespace, name = metric.get("Namespace"), metric["MetricName"]
    wanted = {(d["Name"], d["Value"]) for d in metric.get("Dimensions") or []}
    period = int(stat_spec["Period"])
    stat = stat_spec["Stat"]
    unit = stat_spec.get("Unit")
    first = rounded_start(start, period)
    buckets: dict[int, list[Any]] = {}
    for datum in list(backend.get_all_metrics()):
        if datum.namespace != namespace or datum.name != name:
            continue
        # CloudWatch identifies a metric by namespace, name and its exact set of dimensions.
        if {(d.name, d.value) for d in datum.dimensions} != wanted:
            continue
        if unit and datum.unit != unit:
            continue
        ts = naive_utc(datum.timestamp)
        # StartTime inclusive, EndTime exclusive (API reference).
        if ts < first or ts >= end:
            continue
        buckets.setdefault(int((ts - first).total_seconds()) // period, []).append(datum)
    timestamps, values = [], []
    for index in sorted(buckets):
        value = statistic(stat, buckets[index])
        if value is None:
            continue  # no data point for the period (timestamps and values stay in step)
        timestamps.append(first + timedelta(seconds=index * period))
        values.append(value)
    if scan_by != "TimestampAscending":
        # "If you omit this parameter, the default of TimestampDescending is used."
        timestamps.reverse()
        values.reverse()
    return {
        "id": query["Id"],
        # moto's default label, kept (AWS does not document the default label).
        "label": query.get("Label") or f"{name} {stat}",
        "values": values,
        "timestamps": timestamps,
        "status_code": "Complete",
    }


def install() -> None:
    from moto.cloudwatch import models
    from moto.cloudwatch.exceptions import ValidationError

    original = models.CloudWatchBackend.get_metric_data
    if getattr(original, "shiftguard", False):
        return

    def get_metric_data(self: Any, queries: list[dict], start_time: datetime, end_time: datetime, scan_by: str = "TimestampDescending") -> list[dict]:
        if any("Expression" in q for q in queries):
            return original(self, queries, start_time, end_time, scan_by)
        start, end = naive_utc(start_time), naive_utc(end_time)
        if start > end:
            raise ValidationError("The parameter EndTime must be greater than StartTime.")
        if start == end:
            raise ValidationError("The parameter StartTime must not equal parameter EndTime.")
        return [metric_stat_result(self, q, start, end, scan_by) for q in queries if q.get("ReturnData", True) is not False]

    get_metric_data.shiftguard = True  # type: ignore[attr-defined]
    models.CloudWatchBackend.get_metric_data = get_metric_data


# ---------------------------------------------------------------------------------------------
# CloudWatch over Smithy RPC v2 CBOR (what the AWS SDK for Rust sends; moto speaks query/JSON)
# ---------------------------------------------------------------------------------------------


def _naive_utc(value: Any) -> Any:
    """moto keeps naive UTC datetimes; CBOR timestamps decode as aware ones."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, dict):
        return {k: _naive_utc(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_naive_utc(v) for v in value]
    return value


def _aware_utc(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value
    if isinstance(value, list):
        return [_aware_utc(v) for v in value]
    return value


def cloudwatch_cbor(region: str, operation: str, body: bytes) -> tuple[int, dict, bytes]:
    import cbor2
    from moto.cloudwatch.models import cloudwatch_backends

    backend = cloudwatch_backends[DEFAULT_ACCOUNT][region]
    headers = {"smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor"}

    def reply(status: int, payload: dict) -> tuple[int, dict, bytes]:
        out = dict(headers)
        if status >= 400:
            # CloudWatch is awsQueryCompatible: over JSON and CBOR its errors also carry the query
            # protocol's code and fault in `x-amzn-query-error` (`Code;Sender`), which SDKs read
            # for the error code (the Rust SDK: aws_query_compatible_errors).
            code = str(payload.get("__type", "")).rsplit("#", 1)[-1]
            out["x-amzn-query-error"] = f"{code};{'Sender' if status < 500 else 'Receiver'}"
        return status, out, cbor2.dumps(payload, datetime_as_timestamp=True, timezone=timezone.utc)

    try:
        req = _naive_utc(cbor2.loads(body)) if body else {}
        if operation == "PutMetricData":
            backend.put_metric_data(req["Namespace"], req.get("MetricData", []))
            return reply(200, {})
        if operation == "GetMetricData":
            results = backend.get_metric_data(
                queries=req.get("MetricDataQueries", []),
                start_time=req["StartTime"],
                end_time=req["EndTime"],
                scan_by=req.get("ScanBy") or "TimestampDescending",
            )
            return reply(
                200,
                {
                    "MetricDataResults": [
                        {
                            "Id": r["id"],
                            "Label": r["label"],
                            # Timestamps[x] is Values[x]: a period without a value has neither.
                            "Timestamps": _aware_utc([t for t, v in zip(r["timestamps"], r["values"]) if v is not None]),
                            "Values": [float(v) for v in r["values"] if v is not None],
                            "StatusCode": r["status_code"],
                        }
                        for r in results
                    ],
                    "Messages": [],
                },
            )
        if operation == "PutMetricAlarm":
            # The members shift's tests and users' own scripts send; metric-math alarms
            # (`Metrics`) are served over JSON only.
            if req.get("Metrics"):
                return reply(400, {"__type": "com.amazonaws.cloudwatch#UnknownOperationException", "message": "PutMetricAlarm with Metrics is served over JSON only by this emulator"})
            backend.put_metric_alarm(
                name=req["AlarmName"], namespace=req.get("Namespace"), metric_name=req.get("MetricName"),
                comparison_operator=req["ComparisonOperator"], evaluation_periods=req["EvaluationPeriods"],
                period=req.get("Period"), threshold=req.get("Threshold"), statistic=req.get("Statistic"),
                description=req.get("AlarmDescription"), dimensions=[{"Name": d["Name"], "Value": d["Value"]} for d in req.get("Dimensions", [])],
                alarm_actions=req.get("AlarmActions", []), datapoints_to_alarm=req.get("DatapointsToAlarm"),
                extended_statistic=req.get("ExtendedStatistic"), ok_actions=req.get("OKActions", []),
                insufficient_data_actions=req.get("InsufficientDataActions", []), unit=req.get("Unit"),
                actions_enabled=req.get("ActionsEnabled", True), treat_missing_data=req.get("TreatMissingData"),
            )
            return reply(200, {})
        if operation == "SetAlarmState":
            if req["AlarmName"] not in backend.alarms:
                return reply(404, {"__type": "com.amazonaws.cloudwatch#ResourceNotFound", "message": f"Alarm {req['AlarmName']} not found"})
            backend.set_alarm_state(req["AlarmName"], req["StateReason"], req.get("StateReasonData"), req["StateValue"])
            return reply(200, {})
        if operation == "DescribeAlarms":
            # AlarmNames (up to 100) or every alarm; AlarmTypes defaults to metric alarms only, as
            # documented. Composite alarms are not modelled: asked for, none is returned.
            names = req.get("AlarmNames")
            alarms = list(backend.get_alarms_by_alarm_names(names) if names else backend.describe_alarms())
            if req.get("StateValue"):
                alarms = [a for a in alarms if a.state_value == req["StateValue"]]
            types = req.get("AlarmTypes") or ["MetricAlarm"]
            metric = []
            for a in alarms if "MetricAlarm" in types else []:
                item = {
                    "AlarmName": a.name, "AlarmArn": a.alarm_arn, "StateValue": a.state_value,
                    "StateReason": a.state_reason or "", "ActionsEnabled": bool(a.actions_enabled),
                    "AlarmActions": list(a.alarm_actions or []), "OKActions": list(a.ok_actions or []),
                    "InsufficientDataActions": list(a.insufficient_data_actions or []),
                    "ComparisonOperator": a.comparison_operator, "EvaluationPeriods": int(a.evaluation_periods),
                    "Dimensions": [{"Name": d.name, "Value": d.value} for d in (a.dimensions or [])],
                }
                for key, value in (("MetricName", a.metric_name), ("Namespace", a.namespace), ("Statistic", a.statistic),
                                   ("Period", a.period), ("Threshold", a.threshold), ("AlarmDescription", a.description)):
                    if value is not None:
                        item[key] = value
                if a.state_updated_timestamp is not None:
                    item["StateUpdatedTimestamp"] = _aware_utc(a.state_updated_timestamp)
                metric.append(item)
            return reply(200, {"MetricAlarms": metric, "CompositeAlarms": []})
        return reply(400, {"__type": "com.amazonaws.cloudwatch#UnknownOperationException", "message": f"{operation} is not served over CBOR by this emulator"})
    except KeyError as exc:
        # A guess at the code for a missing member (a validation error any operation may answer).
        return reply(400, {"__type": "com.amazonaws.cloudwatch#ValidationError", "message": f"1 validation error detected: Value null at {exc} failed to satisfy constraint: Member must not be null"})
    except Exception as exc:  # moto's validation errors carry AWS codes
        code = getattr(exc, "error_type", None) or getattr(exc, "code", None) or "InvalidParameterValue"
        return reply(400, {"__type": f"com.amazonaws.cloudwatch#{code}", "message": str(getattr(exc, "message", exc))})
