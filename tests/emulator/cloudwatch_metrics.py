"""CloudWatch GetMetricData per period, as the API reference documents it (moto 5.2.5 gets it wrong).

`install()` replaces moto's `CloudWatchBackend.get_metric_data` for `MetricStat` queries; both wire
protocols use it (the JSON one boto3 speaks, and Smithy RPC v2 CBOR, the AWS SDK for Rust's, served
by `cloudwatch_cbor` in `shiftguard_emulator.py`). What moto did wrong, and what this does instead:

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
What is documented and what is guessed: `MODELLED.md` ("CloudWatch GetMetricData").
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from typing import Any

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
