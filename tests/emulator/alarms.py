"""CloudWatch metric alarms that evaluate themselves and notify.

Active while the engine is on (`engine_settings.SETTINGS.enabled`). Every engine tick:

* each metric alarm (one metric, a statistic, no metric math) is evaluated once per period
  (scaled by the time scale) on the data points moto's CloudWatch backend holds: Lambda's
  Invocations/Errors/Duration the emulator emits for every invocation, and anything PutMetricData
  wrote. Data points count when their dimension set equals the alarm's (CloudWatch identifies a
  metric by namespace, name and the exact set of dimensions);
* any state change (by evaluation or by SetAlarmState) runs the alarm's actions for the new state:
  SNS topics get CloudWatch's notification JSON, Lambda function ARNs get the direct alarm-action
  event. The CodeDeploy engine reads alarm states when it polls a deployment's alarms.

SNS topics deliver to `lambda` subscriptions with the SNS Lambda event envelope (`sns.py`).
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from cloudwatch_metrics import naive_utc, statistic
from engine_settings import SETTINGS, notify
from lambda_invocations import invoke_async
from state import DEFAULT_ACCOUNT, LOCK, records_view, utc_now_naive

# Every alarm state change the emulator saw: {"alarmName", "oldState", "newState", "reason", "time",
# "actions", "by"}.
TRANSITIONS: list[dict] = []
# alarm ARN -> (state at the last evaluation, real time of the last evaluation)
_SEEN: dict[str, tuple[str, float]] = {}

# CloudWatch writes the region's long name into `Region` of SNS notifications.
REGION_NAMES = {
    "us-east-1": "US East (N. Virginia)",
    "us-east-2": "US East (Ohio)",
    "us-west-1": "US West (N. California)",
    "us-west-2": "US West (Oregon)",
    "eu-west-1": "EU (Ireland)",
    "eu-west-2": "EU (London)",
    "eu-west-3": "EU (Paris)",
    "eu-central-1": "EU (Frankfurt)",
    "eu-north-1": "EU (Stockholm)",
    "ap-northeast-1": "Asia Pacific (Tokyo)",
    "ap-southeast-1": "Asia Pacific (Singapore)",
    "ap-southeast-2": "Asia Pacific (Sydney)",
}

COMPARE = {
    "GreaterThanOrEqualToThreshold": (lambda v, t: v >= t, "greater than or equal to"),
    "GreaterThanThreshold": (lambda v, t: v > t, "greater than"),
    "LessThanThreshold": (lambda v, t: v < t, "less than"),
    "LessThanOrEqualToThreshold": (lambda v, t: v <= t, "less than or equal to"),
}


def cw_backends() -> dict:
    from moto.cloudwatch.models import cloudwatch_backends

    return cloudwatch_backends[DEFAULT_ACCOUNT]


def datapoints(region: str, alarm: Any, now: datetime, since_last: float | None = None) -> list[tuple[datetime, float | None]]:
    """The alarm's last EvaluationPeriods periods, newest first: (period start, statistic or None).
    `since_last`: seconds since the previous evaluation. Evaluations come a little more than a
    period apart (the ticker's granularity), so each period is stretched to reach back to the
    previous evaluation: no datapoint falls between two windows unseen (CloudWatch's aligned
    periods leave no such gap)."""
    period = timedelta(seconds=max(SETTINGS.scaled(alarm.period), since_last or 0.0))
    periods = int(alarm.evaluation_periods or 1)
    oldest = now - period * periods
    want = {(d.name, d.value) for d in alarm.dimensions}
    buckets: list[list[Any]] = [[] for _ in range(periods)]
    backend = cw_backends()[region]
    for datum in list(backend.metric_data):
        if datum.namespace != alarm.namespace or datum.name != alarm.metric_name:
            continue
        if {(d.name, d.value) for d in datum.dimensions} != want:
            continue
        ts = naive_utc(datum.timestamp)
        if ts < oldest or ts > now:
            continue
        buckets[min(periods - 1, int((now - ts) / period))].append(datum)
    stat = alarm.statistic or alarm.extended_statistic or "Average"
    # The statistic as GetMetricData computes it (raw values and statistic sets alike).
    return [(now - period * (i + 1), statistic(stat, buckets[i])) for i in range(periods)]


def evaluate(region: str, alarm: Any, now: datetime, since_last: float | None = None) -> tuple[str, str, dict] | None:
    """The state the alarm's data says (state, reason, reasonData), or None to keep it."""
    compare = COMPARE.get(alarm.comparison_operator)
    if compare is None or not alarm.metric_name or alarm.metric_data_queries or alarm.rule:
        return None  # metric math, anomaly detection, composite: not evaluated here
    points = datapoints(region, alarm, now, since_last)
    treat = alarm.treat_missing_data or "missing"
    needed = int(alarm.datapoints_to_alarm or alarm.evaluation_periods or 1)
    present = [(t, v) for t, v in points if v is not None]
    test, words = compare
    threshold = float(alarm.threshold)
    if not present:
        state = {"breaching": "ALARM", "notBreaching": "OK", "ignore": None, "missing": "INSUFFICIENT_DATA"}.get(treat, "INSUFFICIENT_DATA")
        if state is None:
            return None
        reason = f"Insufficient Data: {len(points)} datapoint{'s' if len(points) != 1 else ''} were unknown." if state == "INSUFFICIENT_DATA" else f"Missing data treated as {treat}."
        return state, reason, {"version": "1.0", "queryDate": now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000", "statistic": alarm.statistic, "period": alarm.period, "recentDatapoints": [], "threshold": threshold}
    breaches = sum(1 for _, v in present if test(v, threshold))
    if treat == "breaching":
        breaches += len(points) - len(present)
    state = "ALARM" if breaches >= needed else "OK"
    shown = ", ".join(f"{v} ({t.strftime('%d/%m/%y %H:%M:%S')})" for t, v in present)
    considered = len(points) if treat in ("breaching", "notBreaching") else len(present)
    if state == "ALARM":
        reason = f"Threshold Crossed: {breaches} out of the last {considered} datapoints [{shown}] {'was' if breaches == 1 else 'were'} {words} the threshold ({threshold}) (minimum {needed} datapoint{'s' if needed != 1 else ''} for OK -> ALARM transition)."
    else:
        reason = f"Threshold Crossed: {considered - breaches} out of the last {considered} datapoints [{shown}] {'was' if considered - breaches == 1 else 'were'} not {words} the threshold ({threshold}) (minimum 1 datapoint for ALARM -> OK transition)."
    data = {
        "version": "1.0",
        "queryDate": now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000",
        "startDate": points[-1][0].strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000",
        "statistic": alarm.statistic,
        "period": alarm.period,
        "recentDatapoints": [v for _, v in present],
        "threshold": threshold,
        "evaluatedDatapoints": [{"timestamp": t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000", "sampleCount": 1.0, "value": v} for t, v in present],
    }
    return state, reason, data


def cloudwatch_time(value: datetime) -> str:
    """`2021-02-15T14:57:14.419+0000`, the format of StateChangeTime in notifications."""
    return naive_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def notification(region: str, alarm: Any, old_state: str, new_state: str) -> dict:
    """The JSON CloudWatch publishes to SNS for a metric alarm's state change."""
    trigger: dict[str, Any] = {
        "MetricName": alarm.metric_name,
        "Namespace": alarm.namespace,
        "StatisticType": "ExtendedStatistic" if alarm.extended_statistic else "Statistic",
        # AWS writes the statistic in upper case in notifications ("SUM", "AVERAGE").
        "Statistic": (alarm.statistic or "").upper() if not alarm.extended_statistic else None,
        "Unit": alarm.unit,
        "Dimensions": [{"value": d.value, "name": d.name} for d in alarm.dimensions],
        "Period": alarm.period,
        "EvaluationPeriods": alarm.evaluation_periods,
        "ComparisonOperator": alarm.comparison_operator,
        "Threshold": float(alarm.threshold) if alarm.threshold is not None else None,
        # Seen on AWS both as the bare value and as "- TreatMissingData: <value>": the bare value here.
        "TreatMissingData": alarm.treat_missing_data or "missing",
        "EvaluateLowSampleCountPercentile": alarm.evaluate_low_sample_count_percentile or "",
    }
    if alarm.extended_statistic:
        trigger["ExtendedStatistic"] = alarm.extended_statistic
        trigger.pop("Statistic")
    if alarm.datapoints_to_alarm:
        trigger["DatapointsToAlarm"] = alarm.datapoints_to_alarm
    if alarm.metric_data_queries:
        trigger = {"Period": alarm.period, "EvaluationPeriods": alarm.evaluation_periods, "ComparisonOperator": alarm.comparison_operator, "Threshold": alarm.threshold, "TreatMissingData": alarm.treat_missing_data or "missing", "EvaluateLowSampleCountPercentile": "", "Metrics": [q.__dict__ for q in alarm.metric_data_queries]}
    return {
        "AlarmName": alarm.name,
        "AlarmDescription": alarm.description or None,
        "AWSAccountId": DEFAULT_ACCOUNT,
        "AlarmConfigurationUpdatedTimestamp": cloudwatch_time(alarm.configuration_updated_timestamp),
        "NewStateValue": new_state,
        "NewStateReason": alarm.state_reason,
        "StateChangeTime": cloudwatch_time(alarm.state_updated_timestamp),
        "Region": REGION_NAMES.get(region, region),
        "AlarmArn": alarm.alarm_arn,
        "OldStateValue": old_state,
        "OKActions": list(alarm.ok_actions or []),
        "AlarmActions": list(alarm.alarm_actions or []),
        "InsufficientDataActions": list(alarm.insufficient_data_actions or []),
        "Trigger": trigger,
    }


def lambda_action_event(region: str, alarm: Any, old_state: str, old_reason: str, old_time: datetime) -> dict:
    """The event CloudWatch sends to a Lambda function that is an alarm action (CloudWatch user
    guide, *Lambda alarm actions*)."""
    metrics = [
        {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, alarm.alarm_arn)),
            "metricStat": {
                "metric": {"namespace": alarm.namespace, "name": alarm.metric_name, "dimensions": {d.name: d.value for d in alarm.dimensions}},
                "period": alarm.period,
                "stat": alarm.statistic or alarm.extended_statistic,
            },
            "returnData": True,
        }
    ]
    return {
        "source": "aws.cloudwatch",
        "alarmArn": alarm.alarm_arn,
        "accountId": DEFAULT_ACCOUNT,
        "time": cloudwatch_time(alarm.state_updated_timestamp),
        "region": region,
        "alarmData": {
            "alarmName": alarm.name,
            "state": {"value": alarm.state_value, "reason": alarm.state_reason, "reasonData": alarm.state_reason_data, "timestamp": cloudwatch_time(alarm.state_updated_timestamp)},
            "previousState": {"value": old_state, "reason": old_reason, "timestamp": cloudwatch_time(old_time)},
            "configuration": {"description": alarm.description or "", "metrics": metrics},
        },
    }


def run_actions(region: str, alarm: Any, old_state: str, old_reason: str, old_time: datetime) -> list[str]:
    if not alarm.actions_enabled:
        return []
    actions = {"ALARM": alarm.alarm_actions, "OK": alarm.ok_actions, "INSUFFICIENT_DATA": alarm.insufficient_data_actions}.get(alarm.state_value) or []
    done = []
    for action in actions:
        try:
            if action.startswith("arn:aws:sns:"):
                from moto.sns.models import sns_backends

                topic_region = action.split(":")[3]
                subject = f'{alarm.state_value}: "{alarm.name}" in {REGION_NAMES.get(region, region)}'
                message = json.dumps(notification(region, alarm, old_state, alarm.state_value))
                sns_backends[DEFAULT_ACCOUNT][topic_region].publish(message, arn=action, subject=subject[:100])
                done.append(action)
            elif action.startswith("arn:aws:lambda:"):
                payload = json.dumps(lambda_action_event(region, alarm, old_state, old_reason, old_time)).encode()
                invoke_async(region, action, None, payload, f"cloudwatch alarm action {alarm.name}")
                done.append(action)
        except Exception as exc:  # an action that fails does not stop evaluation (as on AWS)
            print(f"alarm action {action} of {alarm.name} failed: {exc!r}", file=sys.stderr)
    return done


def tick(now_real: float) -> None:
    """Evaluate every alarm that is due (once per scaled period)."""
    if not SETTINGS.alarm_evaluation:
        return
    now = utc_now_naive()
    for region, backend in list(cw_backends().items()):
        for alarm in list(backend.alarms.values()):
            last = _SEEN.get(alarm.alarm_arn)
            if last is not None and now_real - last[1] < SETTINGS.scaled(alarm.period or 60):
                continue
            _SEEN[alarm.alarm_arn] = (alarm.state_value, now_real)
            result = evaluate(region, alarm, now, None if last is None else now_real - last[1])
            if result is not None and result[0] != alarm.state_value:
                alarm.shiftguard_by = "evaluation"
                alarm.update_state(result[1], json.dumps(result[2]), result[0])


def _state_changed(alarm: Any, old_state: str, old_reason: str, old_time: datetime) -> None:
    """Every state change (evaluation or SetAlarmState: AWS documents that SetAlarmState sends
    notifications and runs actions) runs the new state's actions and wakes the engine."""
    region = alarm.alarm_arn.split(":")[3]
    by = getattr(alarm, "shiftguard_by", None) or "SetAlarmState"
    alarm.shiftguard_by = None
    # The time of the change, taken before its actions run: a delivery it causes comes after it.
    changed_at = time.time()
    actions = run_actions(region, alarm, old_state, old_reason, old_time)
    with LOCK:
        TRANSITIONS.append({"alarmName": alarm.name, "region": region, "oldState": old_state, "newState": alarm.state_value, "reason": alarm.state_reason, "time": changed_at, "actions": actions, "by": by})
    notify()


def _patch_alarms() -> None:
    from moto.cloudwatch import models

    if getattr(models.Alarm.update_state, "shiftguard", False):
        return
    original_update = models.Alarm.update_state
    original_init = models.Alarm.__init__

    def update_state(self: Any, reason: str, reason_data: str, state_value: str) -> None:
        old = (self.state_value, self.state_reason, self.state_updated_timestamp)
        original_update(self, reason, reason_data, state_value)
        if SETTINGS.enabled and old[0] != self.state_value:
            _state_changed(self, *old)

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        if SETTINGS.enabled:
            # CloudWatch starts a new alarm in INSUFFICIENT_DATA (moto: OK).
            self.state_value = "INSUFFICIENT_DATA"

    original_put = models.CloudWatchBackend.put_metric_alarm

    def put_metric_alarm(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        # "When updating an existing alarm, its StateValue is left unchanged" (PutMetricAlarm API
        # reference); moto builds a new Alarm object, which would start over.
        existing = self.alarms.get(name)
        kept = None if existing is None else (existing.state_value, existing.state_reason, existing.state_reason_data, existing.state_updated_timestamp)
        alarm = original_put(self, name, *args, **kwargs)
        if kept is not None:
            alarm.state_value, alarm.state_reason, alarm.state_reason_data, alarm.state_updated_timestamp = kept
        return alarm

    update_state.shiftguard = True  # type: ignore[attr-defined]
    models.Alarm.update_state = update_state
    models.Alarm.__init__ = init
    models.CloudWatchBackend.put_metric_alarm = put_metric_alarm


def tick_forever() -> None:
    while True:
        if SETTINGS.enabled:
            try:
                tick(time.time())
            except Exception as exc:  # keep ticking
                print(f"alarm evaluation failed: {exc!r}", file=sys.stderr)
        time.sleep(SETTINGS.tick)


def install() -> None:
    _patch_alarms()


def control(method: str, path: str, body: Any, query: dict) -> tuple[int, Any] | None:
    if path == "/_shiftguard/cloudwatch/transitions":
        return records_view(method, query, TRANSITIONS, "transitions", {"alarm": "alarmName"})
    return None
