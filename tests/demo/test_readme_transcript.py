"""tests/demo/readme_transcript.py: what it lets through (another run's numbers, ids and timings, a
trimmed line, lines left out) and what it refuses (a final state, a heading, a line or an order the
run does not have)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import readme_transcript as rt  # noqa: E402

RUN = """\
=== Building the functions (debug; the first build takes a few minutes on a cold machine)
[   0.2s]   Finished `dev` profile [unoptimized + debuginfo] target(s) in 0.19s

=== 1. The sample application
[   9.6s] live -> v1 100%
         [ok ] rollback ignores the OK notification and touches nothing

=== 2. Version 3 fails under real traffic: rolled back
[  11.5s] CreateDeployment d-ADRDKBEGN: 1 -> 3
[  11.9s] alarm checkout-canary-errors: OK -> ALARM (evaluation): Threshold Crossed: 1 out of the last 1 datapoints [3.0 (04/12/26)]
[  12.2s] rollback: stop-deployment -> restored-by-code-deploy (stopped deployment d-ADRDKBEGN; rolled back after 226 ms)
         [ok ] CodeDeploy made exactly one rollback deployment, of this deployment — 1

=== Final state
    alias live                                 v1 100%
    deployment 1 -> 3                          Stopped (MANUAL_STOP)
    deployment 3 -> 1 (CodeDeploy's rollback)  Succeeded
         [ok ] every call was allowed — 127 calls judged

Demo (alias) passed: every step went as the story says (20s; the scenario itself 18.4s).
""".splitlines()

README = """\
=== 1. The sample application
[   3.1s] live -> v1 100%

=== 2. Version 3 fails under real traffic: rolled back
[   4.0s] CreateDeployment d-244PC6MZC: 1 -> 3
[   4.4s] alarm checkout-canary-errors: OK -> ALARM (evaluation): Threshold Crossed: 1 out of …
[   4.7s] rollback: stop-deployment -> restored-by-code-deploy (stopped deployment d-244PC6MZC; rolled back after 250 ms)
         [ok ] CodeDeploy made exactly one rollback deployment, of this deployment — 1

=== Final state
    alias live                                 v1 100%
    deployment 1 -> 3                          Stopped (MANUAL_STOP)
    deployment 3 -> 1 (CodeDeploy's rollback)  Succeeded

Demo (alias) passed: every step went as the story says (14s; the scenario itself 12.8s).
"""


def block(text: str, excerpt: bool = False) -> rt.Block:
    return rt.Block(scenario="alias", excerpt=excerpt, line=1, lines=text.splitlines())


def test_another_runs_numbers_ids_and_timings_a_trimmed_line_and_lines_left_out_agree():
    assert rt.compare(block(README), RUN) == []


@pytest.mark.parametrize("before, after, why", [
    ("deployment 3 -> 1 (CodeDeploy's rollback)  Succeeded", "deployment 3 -> 1 (CodeDeploy's rollback)  Failed (HOOK_EXECUTION_FAILURE)", "the final state"),
    ("    alias live                                 v1 100%\n", "", "the final state"),
    ("=== 1. The sample application\n", "", "step headings"),
    ("Version 3 fails under real traffic", "Version 3 is stopped by pre-traffic", "step headings"),
    ("(stopped deployment d-244PC6MZC;", "(stopped deployment d-244PC6MZC, alarm;", "is not in the run"),
    ("[ok ] CodeDeploy made exactly one", "[FAIL] CodeDeploy made exactly one", "is not in the run"),
])
def test_what_the_run_does_not_bear_out_is_named(before, after, why):
    assert before in README
    problems = rt.compare(block(README.replace(before, after)), RUN)
    assert problems and any(why in p for p in problems), problems


def test_a_line_out_of_the_runs_order_is_refused():
    lines = README.splitlines()
    create = next(i for i, line in enumerate(lines) if "CreateDeployment" in line)
    lines.insert(create, lines.pop(create + 2))  # the rollback line before the deployment it stopped
    problems = rt.compare(block("\n".join(lines)), RUN)
    assert any("but not after" in p for p in problems), problems


def test_an_excerpt_checks_its_headings_and_ok_checks_only():
    excerpt = """\
[   5.1s] rollback: await-code-deploy-rollback -> already-stable (a race the scenario allows)
         [ok ] CodeDeploy made exactly one rollback deployment, of this deployment — 1
"""
    assert rt.compare(block(excerpt, excerpt=True), RUN) == []
    assert rt.compare(block(excerpt.replace("exactly one", "two"), excerpt=True), RUN)
    assert rt.compare(block("=== 9. Not a step of the run\n", excerpt=True), RUN)


def test_readme_markers_name_the_scenario_and_the_fenced_block():
    text = "intro\n<!-- demo transcript: alias -->\n```text\n=== Final state\n```\n<!-- demo transcript excerpt: codedeploy-alarm -->\n```text\nx\n```\n"
    blocks = rt.readme_blocks(text)
    assert [(b.scenario, b.excerpt, b.lines) for b in blocks] == [("alias", False, ["=== Final state"]), ("codedeploy-alarm", True, ["x"])]
    with pytest.raises(SystemExit, match="must be followed by a ```text fence"):
        rt.readme_blocks("<!-- demo transcript: alias -->\nno fence\n")


def test_the_readme_marks_the_alias_transcript_in_full():
    blocks = rt.readme_blocks((rt.ROOT / "README.md").read_text(encoding="utf-8"))
    full = [b for b in blocks if not b.excerpt]
    assert [b.scenario for b in full] == ["alias"]
    assert rt.final_state(full[0].lines), "the README's alias transcript shows the final state"


def test_the_demo_guide_marks_the_codedeploy_alarm_excerpt():
    blocks = rt.readme_blocks((rt.ROOT / "tests" / "README.md").read_text(encoding="utf-8"), "tests/README.md")
    assert [(b.scenario, b.excerpt, b.doc) for b in blocks] == [("codedeploy-alarm", True, "tests/README.md")]
