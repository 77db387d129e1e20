"""tests/iam_report.py: an unused grant fails the report unless explained; a stale explanation
fails it; a performed action the policy in the function's guide (rollback/README.md, hooks/README.md)
does not list fails it."""

from __future__ import annotations

import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import iam_report  # noqa: E402

TEMPLATE = os.path.join(ROOT, "target", "cdk.out", "ShiftGuardRehearsal.template.json")


def run(tmp_path, usage: list[dict], explained: dict, monkeypatch) -> tuple[int, str]:
    if not os.path.exists(TEMPLATE):
        pytest.fail(f"{TEMPLATE} is missing: make cdk-synth")
    (tmp_path / "usage.jsonl").write_text("".join(json.dumps(u) + "\n" for u in usage))
    (tmp_path / "explained.json").write_text(json.dumps(explained))
    monkeypatch.setattr(sys, "argv", ["iam_report", "--usage", str(tmp_path / "usage.jsonl"), "--template", TEMPLATE,
                                      "--out", str(tmp_path / "report.md"), "--explained", str(tmp_path / "explained.json")])
    code = iam_report.main()
    return code, (tmp_path / "report.md").read_text()


def call(function: str, action: str, sid: str | None = None) -> dict:
    return {"stack": "ShiftGuardRehearsal", "function": function, "action": action, "resources": ["*"], "allowed": True,
            "statement": 0, "sid": sid}


def test_unused_grants_fail_unless_explained_and_stale_explanations_fail(tmp_path, monkeypatch):
    code, report = run(tmp_path, [call("checkout_rollback", "lambda:GetAlias")], {}, monkeypatch)
    assert code == 1
    assert "`lambda:UpdateAlias`: **unexplained**" in report
    code, report = run(tmp_path, [call("checkout_rollback", "lambda:GetAlias")],
                       {"checkout_rollback": {"lambda:GetAlias": "stale", "lambda:NotGranted": "stale"}}, monkeypatch)
    assert "lambda:GetAlias is explained as unused in tests/iam-unused.json but the suite performs it" in report
    assert "lambda:NotGranted is explained in tests/iam-unused.json but no longer granted" in report


def test_a_performed_action_missing_from_the_readme_policy_fails(tmp_path, monkeypatch):
    code, report = run(tmp_path, [call("checkout_rollback", "lambda:PublishVersion")], {}, monkeypatch)
    assert code == 1
    assert "rollback/README.md 'IAM permissions rollback needs' does not list lambda:PublishVersion" in report
