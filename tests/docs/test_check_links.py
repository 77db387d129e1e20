"""tests/docs/check_links.py: the repository's documentation has no broken link, and the check
does fail on one (a missing file, a missing anchor, a stale `README.md#<anchor>` in a source)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_links as cl  # noqa: E402


def test_every_link_in_the_repository_resolves():
    problems = cl.check()
    assert problems == [], "\n".join(problems)


def test_the_guides_are_all_checked():
    checked = {p.relative_to(cl.ROOT).as_posix() for p in cl.documents(cl.ROOT)}
    assert {"README.md", "cdk/README.md", "hooks/README.md", "rollback/README.md", "rollback/shift/README.md",
            "tests/README.md", "examples/sam/README.md", "examples/sam/shiftguard/README.md"} <= checked


@pytest.mark.parametrize("heading, anchor", [
    ("Progressive rollouts: `shift`", "progressive-rollouts-shift"),
    ("Emergency bypass: `[shiftguard skip]`", "emergency-bypass-shiftguard-skip"),
    ("Decision metrics (CloudWatch Embedded Metric Format)", "decision-metrics-cloudwatch-embedded-metric-format"),
    ("protect(fn): a canary deployment with checks and rollback", "protectfn-a-canary-deployment-with-checks-and-rollback"),
    ("The repository's CDK app", "the-repositorys-cdk-app"),
    ("Failures and their `errorType`", "failures-and-their-errortype"),
    ("Doctor: does the safety net work?", "doctor-does-the-safety-net-work"),
    ("snake_case and a [link](x.md)", "snake_case-and-a-link"),
])
def test_github_slugs(heading, anchor):
    assert cl.slug(heading) == anchor


def tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


GOOD = {
    "README.md": "# Top\n\n## Try it\n\n## Try it\n\nSee [guide](rollback/README.md#what-it-does) and [again](#try-it-1).\n",
    "rollback/README.md": "# rollback\n\n## What it does\n\n<a id=\"custom\"></a>\n\n[up](../README.md#try-it), [here](#custom)\n",
    "rollback/src/lib.rs": "//! Rules: rollback/README.md#what-it-does\n",
}


def test_a_tree_whose_links_all_resolve_passes(tmp_path):
    assert cl.check(tree(tmp_path, GOOD)) == []


@pytest.mark.parametrize("file, text, expected", [
    ("README.md", "\n[gone](missing.md)\n", "missing.md: no such file or directory"),
    ("README.md", "\n[gone](rollback/README.md#what-it-did)\n", "#what-it-did: no such heading in rollback/README.md"),
    ("README.md", "\n[gone](#try-it-2)\n", "#try-it-2: no such heading in README.md"),
    ("hooks/README.md", "# hooks\n\n[gone](../tests/README.md)\n", "../tests/README.md: no such file or directory"),
    ("examples/sam/README.md", "# sam\n\n[ref]: ../../nowhere.md\n", "../../nowhere.md: no such file or directory"),
    ("rollback/src/lib.rs", "/// documented in rollback/README.md#what-it-did\n", "#what-it-did: no such heading in rollback/README.md"),
    ("cdk/lib/x.ts", "// see hooks/README.md#checks\n", "hooks/README.md: no such file or directory"),
    ("Makefile", "# README.md#nope\n", "#nope: no such heading in README.md"),
])
def test_a_broken_link_fails_naming_the_file_the_line_and_why(tmp_path, file, text, expected):
    root = tree(tmp_path, {**GOOD, file: GOOD.get(file, "") + text})
    problems = cl.check(root)
    assert len(problems) == 1 and problems[0].startswith(f"{file}:") and problems[0].endswith(expected), problems
    assert cl.main(["check_links", str(root)]) == 1


def test_code_is_not_a_link_and_the_web_is_not_checked(tmp_path):
    text = ("# Top\n\n```md\n[not a link](nowhere.md)\n## Not a heading\n```\n\n"
            "`[also not](nowhere.md)` and [the web](https://example.com/x#y) and [mail](mailto:a@b.c)\n")
    root = tree(tmp_path, {**GOOD, "README.md": GOOD["README.md"] + text})
    assert cl.check(root) == []
    assert "not-a-heading" not in cl.anchors(root / "README.md")
