"""`make doctor` (tests/byhand/doctor.py): rollback's doctor against the emulator seeded with the
sample application, strict IAM (rollback's role from the synthesized rehearsal stack: `make
cdk-synth`). The sample is sound; the same world with its alarm rewritten on a dimension Lambda
never publishes is not, and doctor says so, having only read. Run by `make test`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import boto3
import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
import doctor  # noqa: E402


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(HERE / "doctor.py"), *args], cwd=ROOT, capture_output=True, text=True, timeout=900)


def findings(out: str) -> list[list[str]]:
    """The finding lines: [severity, check, subject, message]."""
    rows = []
    for line in out.splitlines():
        if line.startswith("  "):
            severity, check, rest = line.split(None, 2)
            subject, _, message = rest.partition(": ")
            rows.append([severity, check, subject, message])
    return rows


def test_the_sample_application_is_sound() -> None:
    # Exactly what `make doctor` runs: an emulator and a watch of its own.
    done = run()
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("doctor: rollback ") and "2 alarm(s), 2 target(s) checked" in line for line in lines), done.stdout
    assert [f[0] for f in findings(done.stdout)] == ["warning"] * len(findings(done.stdout)), done.stdout
    assert lines[-1].startswith("healthy: no serious finding"), done.stdout


@pytest.fixture(scope="module")
def emulator():
    em = doctor.Emulator()
    try:
        yield em
    finally:
        em.stop()


def role_calls(url: str) -> list[dict]:
    with urllib.request.urlopen(f"{url}/_shiftguard/calls") as resp:
        calls = json.loads(resp.read())
    return [c for c in calls if ":assumed-role/shiftguard-byhand/" in ((c.get("iam") or {}).get("principal") or "")]


def test_an_alarm_on_a_dimension_lambda_never_publishes_is_serious(emulator) -> None:
    cw = boto3.client("cloudwatch", endpoint_url=emulator.url, region_name="us-east-1", aws_access_key_id="local", aws_secret_access_key="local")
    topic = "arn:aws:sns:us-east-1:123456789012:shiftguard-alarms"  # the sample's (tests/emulator/sample.py)
    # The sample's canary alarm, rewritten as people write it by mistake: on the alias, by an
    # `Alias` dimension (Lambda publishes Resource = checkout:live, never Alias).
    cw.put_metric_alarm(AlarmName="checkout-canary-errors", Namespace="AWS/Lambda", MetricName="Errors", Statistic="Sum",
                        Dimensions=[{"Name": "FunctionName", "Value": "checkout"}, {"Name": "Alias", "Value": "live"}],
                        Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
                        TreatMissingData="notBreaching", AlarmActions=[topic])
    before = len(role_calls(emulator.url))
    done = run("--emulator", emulator.url)
    assert done.returncode == 1, done.stdout + done.stderr
    rows = findings(done.stdout)
    # Serious first, and this one is the only serious finding.
    assert rows[0][:3] == ["serious", "alarm-dimensions", "checkout-canary-errors"], done.stdout
    assert "dimension Alias is not one Lambda publishes" in rows[0][3], done.stdout
    assert [r[0] for r in rows[1:]] == ["warning"] * (len(rows) - 1), done.stdout
    assert done.stdout.splitlines()[-1].startswith("NOT HEALTHY: 1 serious"), done.stdout
    # doctor only read, each read granted to rollback's role by the construct (strict IAM).
    calls = role_calls(emulator.url)[before:]
    assert calls, "rollback made no call as its role"
    denied = [c for c in calls if c["iam"]["decision"] != "allowed"]
    assert not denied, json.dumps(denied)[:1000]
    writes = sorted({c["iam"]["action"] for c in calls if not c["iam"]["action"].split(":")[1].startswith(("Describe", "List", "Get", "BatchGet"))})
    assert not writes, writes


def test_render_puts_serious_findings_first() -> None:
    report = {"functionArn": "arn:aws:lambda:us-east-1:123456789012:function:checkout_rollback", "alarmsChecked": 2, "targetsChecked": 1, "serious": 1,
              "findings": [{"severity": "warning", "check": "alarm-data", "subject": "a", "message": "no data"},
                           {"severity": "serious", "check": "alarm-exists", "subject": "b", "message": "no alarm matches b"}]}
    lines = doctor.render(report, "Rollback.DoctorFoundProblems")
    assert lines[0] == "doctor: rollback arn:aws:lambda:us-east-1:123456789012:function:checkout_rollback: 2 alarm(s), 1 target(s) checked"
    assert findings("\n".join(lines)) == [["serious", "alarm-exists", "b", "no alarm matches b"], ["warning", "alarm-data", "a", "no data"]]
    assert lines[-1].startswith("NOT HEALTHY: 1 serious, 1 warning(s) (Rollback.DoctorFoundProblems)")


def test_nothing_to_ask() -> None:
    done = run("--watch", f"http://127.0.0.1:{doctor.free_port()}")
    assert done.returncode == doctor.CANNOT_RUN
    assert "doctor could not run: nothing answers at" in done.stderr
