"""The control plane for tests: `/_shiftguard/...` over HTTP, so that tests in any language can set
the emulator up, play AWS's part and read what happened. Each module answers its own paths
(`control(method, path, body, query)`, None when the path is not its); every path and field is
listed in MODELLED.md ("Control paths")."""

from __future__ import annotations

from typing import Any

import alarms
import codedeploy
import conformance
import engine
import faults
import iam
import lambda_invocations
import lattice_targets
import sample
import sns
import stacks

#: Asked in this order; no two answer the same path.
MODULES = (engine, alarms, sns, conformance, lattice_targets, stacks, iam, faults, codedeploy, lambda_invocations, sample)


def control(method: str, path: str, body: Any, query: dict) -> tuple[int, Any]:
    if path == "/_shiftguard/health":
        return 200, {"ok": True}
    for module in MODULES:
        handled = module.control(method, path, body, query)
        if handled is not None:
            return handled
    return 404, {"message": f"unknown control path {path}"}
