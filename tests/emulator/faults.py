"""Faults armed by tests and the call log, both driven over HTTP (`/_shiftguard/faults`,
`/_shiftguard/calls`) so that tests in any language can use them. The server fires the armed
faults (`server.ShiftGuardEmulator._handle`) and logs every call (`__call__`)."""

from __future__ import annotations

from typing import Any

from state import LOCK, records_view


class Faults:
    """Faults armed by tests: each matches a service and operation and fires `count` times (-1: always),
    after letting `skip` matching calls through (default 0)."""

    def __init__(self) -> None:
        self.armed: list[dict] = []

    def arm(self, spec: dict) -> None:
        for key in ("service", "operation", "kind"):
            if not isinstance(spec.get(key), str):
                raise ValueError(f"fault needs a string '{key}'")
        if spec["kind"] not in ("throttle", "error500", "latency", "concurrent_alias_update", "error", "overwritten"):
            raise ValueError(f"unknown fault kind {spec['kind']!r}")
        spec.setdefault("count", 1)
        self.armed.append(spec)

    def take(self, service: str, operation: str) -> list[dict]:
        fired = []
        with LOCK:
            for spec in self.armed:
                if spec["service"] == service and spec["operation"] == operation and spec["count"] != 0:
                    # `skip`: let this many matching calls through first (e.g. fail the second read).
                    if spec.get("skip", 0) > 0:
                        spec["skip"] -= 1
                        continue
                    if spec["count"] > 0:
                        spec["count"] -= 1
                    fired.append(dict(spec))
            self.armed = [s for s in self.armed if s["count"] != 0]
        return fired


FAULTS = Faults()


CALLS: list[dict] = []


def control(method: str, path: str, body: Any, query: dict) -> tuple[int, Any] | None:
    if path == "/_shiftguard/faults":
        if method == "POST":
            specs = body if isinstance(body, list) else [body]
            for spec in specs:
                FAULTS.arm(spec)
            return 200, {"armed": len(FAULTS.armed)}
        if method == "DELETE":
            with LOCK:
                FAULTS.armed = []
            return 200, {"armed": 0}
        return 200, FAULTS.armed
    if path == "/_shiftguard/calls":
        return records_view(method, query, CALLS, "calls", {"service": "service", "operation": "operation"})
    return None
