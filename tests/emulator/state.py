"""State the extension keeps beside moto's backends, shared by every module (so that none of them
imports another for it): the account, the lock, the emulator's own URL, time helpers, moto's
backends, the control-plane view of a module's records (`records_view`), CodeDeploy hook executions
and the Lattice rule bookkeeping (`State`)."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timezone
from typing import Any

DEFAULT_ACCOUNT = "123456789012"
#: Where this emulator serves (set once serving): modules that set state up through the API use it.
SELF_URL = ""
LOCK = threading.RLock()


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def utc_now_naive() -> datetime:
    """moto keeps deployment times as naive UTC datetimes (and compares them with
    `createTimeRange`): every time the extension stores on a moto object is one too."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def epoch_seconds(value: datetime) -> float:
    # `.timestamp()` on a naive datetime would read it as local time; moto's are UTC.
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()


def parse_time(value: Any) -> datetime:
    """A time a test sends: epoch seconds, or ISO 8601 (without an offset: UTC). Naive UTC."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), timezone.utc).replace(tzinfo=None)
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        return parsed.astimezone(timezone.utc).replace(tzinfo=None) if parsed.tzinfo else parsed
    raise ValueError(f"a time must be epoch seconds or an ISO 8601 string, not {value!r}")


def records_view(method: str, query: dict, records: list, name: str, filters: dict[str, str] | None = None) -> tuple[int, Any]:
    """A control-plane endpoint over one of the extension's records (calls, invocations, SNS
    deliveries, alarm transitions): DELETE empties it and answers `{name: 0}`; anything else lists
    it, keeping the records whose field equals each query parameter given (`filters`: query
    parameter -> field)."""
    if method == "DELETE":
        with LOCK:
            records.clear()
        return 200, {name: 0}
    with LOCK:
        out = list(records)
    for param, field in (filters or {}).items():
        if param in query:
            out = [r for r in out if r[field] == query[param][0]]
    return 200, out


def codedeploy_backend(region: str):
    from moto.codedeploy.models import codedeploy_backends

    return codedeploy_backends[DEFAULT_ACCOUNT][region]


def lambda_backend(region: str):
    # With `use_docker: false` moto keeps Lambda state in a different backend: ask moto which.
    from moto.awslambda.utils import get_backend

    return get_backend(DEFAULT_ACCOUNT, region)


def lattice_backend(region: str):
    from moto.vpclattice.models import vpclattice_backends

    return vpclattice_backends[DEFAULT_ACCOUNT][region]


class HookExecution:
    def __init__(self, deployment_id: str, lifecycle_event: str) -> None:
        self.id = str(uuid.uuid4())
        self.deployment_id = deployment_id
        self.lifecycle_event = lifecycle_event
        self.status = "Pending"
        # Reports CodeDeploy accepted (at most one) and those it refused as already completed.
        self.reports: list[dict] = []
        self.rejected: list[dict] = []


class State:
    def __init__(self) -> None:
        # deployment id -> {"auto_rollback": bool, "rollback_delay": float}
        self.codedeploy_behaviour: dict[str, dict] = {}
        self.hook_executions: dict[str, HookExecution] = {}
        self.default_rule_ids: dict[str, str] = {}
        self.rule_times: dict[str, tuple[str, str]] = {}
        self.stopped: list[dict] = []

    def default_rule_id(self, listener_id: str) -> str:
        with LOCK:
            if listener_id not in self.default_rule_ids:
                self.default_rule_ids[listener_id] = f"rule-{uuid.uuid4().hex[:17]}"
            return self.default_rule_ids[listener_id]


STATE = State()
