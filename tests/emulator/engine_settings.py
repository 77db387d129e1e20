"""The engine's switch and the emulated clock, read by every module that waits or schedules: whether
the engine runs deployments, alarms and SNS deliveries (`enabled`), the time scale, alarm
evaluation, the hook timeout, the tick; `COND`, which wakes whatever waits on any of them.

Opt-in (see `ENGINE_DEFAULT`): `POST /_shiftguard/engine {"enabled": true, "timeScale": 60}`, the
command-line flag `--engine`, or `SHIFTGUARD_ENGINE=1`.

Time scale: `timeScale` emulated seconds pass per real second. Every CodeDeploy and CloudWatch
interval (canary/linear intervals, the one-hour hook timeout, Lambda's async retry delays, alarm
periods) is divided by it: with `timeScale: 60` a Canary10Percent5Minutes deployment waits 5 s
between its two shifts and a hook that never reports fails the deployment after 60 s.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime

from state import LOCK, utc_now_naive


# Flip to True to make the engine the default (tests and the demo then only start things).
ENGINE_DEFAULT = False


# Wakes every waiter when something an engine run may be waiting for changes (a hook report, a
# stop request, an alarm state change, a setting).
COND = threading.Condition(LOCK)


def _env_flag(name: str) -> bool | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    return value.strip().lower() in ("1", "true", "yes", "on")


class Settings:
    def __init__(self) -> None:
        flag = _env_flag("SHIFTGUARD_ENGINE")
        self.enabled = ENGINE_DEFAULT if flag is None else flag
        self.time_scale = float(os.environ.get("SHIFTGUARD_TIME_SCALE") or 1.0)
        # CloudWatch alarms evaluate their metrics by themselves (when the engine is on). Off: alarm
        # state changes only by SetAlarmState, and still notifies.
        self.alarm_evaluation = True
        # CodeDeploy's Lambda hook timeout (emulated seconds): one hour on AWS.
        self.hook_timeout = 3600.0
        # Real seconds between two engine ticks (alarm evaluation, alarm polling).
        self.tick = 0.05

    def scaled(self, emulated_seconds: float) -> float:
        """Real seconds an emulated interval takes."""
        return float(emulated_seconds) / self.time_scale

    def to_json(self) -> dict:
        return {
            "enabled": self.enabled,
            "timeScale": self.time_scale,
            "alarmEvaluation": self.alarm_evaluation,
            "hookTimeoutSeconds": self.hook_timeout,
            "tickSeconds": self.tick,
        }

    def update(self, body: dict) -> None:
        # Checked before anything changes.
        if "enabled" in body and not isinstance(body["enabled"], bool):
            raise ValueError("enabled must be true or false")
        if "alarmEvaluation" in body and not isinstance(body["alarmEvaluation"], bool):
            raise ValueError("alarmEvaluation must be true or false")
        for key in ("timeScale", "hookTimeoutSeconds", "tickSeconds"):
            if key in body:
                value = body[key]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                    raise ValueError(f"{key} must be a positive number")
        unknown = sorted(set(body) - {"enabled", "timeScale", "alarmEvaluation", "hookTimeoutSeconds", "tickSeconds"})
        if unknown:
            raise ValueError(f"unknown engine setting {unknown[0]!r}")
        with COND:
            self.enabled = body.get("enabled", self.enabled)
            self.time_scale = float(body.get("timeScale", self.time_scale))
            self.alarm_evaluation = body.get("alarmEvaluation", self.alarm_evaluation)
            self.hook_timeout = float(body.get("hookTimeoutSeconds", self.hook_timeout))
            self.tick = float(body.get("tickSeconds", self.tick))
            COND.notify_all()


SETTINGS = Settings()


def notify() -> None:
    with COND:
        COND.notify_all()


def now_naive() -> datetime:
    return utc_now_naive()
