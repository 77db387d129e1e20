#!/usr/bin/env python3
"""The least-privilege report: what each ShiftGuard function was granted against what it did.

Every end-to-end test runs the binaries as their roles from the synthesized rehearsal stack
(`cdk/lib/rehearsal.ts`), strict IAM on; each emulator appends every call a stack role made, with
the statement that allowed it, to `$SHIFTGUARD_IAM_USAGE` (`make test` sets it). This script reads
that log and the template and writes `target/iam-report.md`:

* per function, each statement (as synthesized, references shown symbolically) with the actions
  performed through it and the distinct resources they touched;
* **unused grants**: actions the function is granted but never performed anywhere in the suite.
  Each must be explained in `tests/iam-unused.json` (`{"function": {"action": "why it stays"}}`),
  or the script fails; an explanation for an action that is now used, or no longer granted, fails
  too (it would hide the next finding);
* statements whose actions were all allowed by earlier statements (duplicates), and wildcard
  resources with what was actually touched under them (where a narrower grant could serve);
* **the guides**: every action a function performed must appear in the IAM policy its guide gives
  (rollback/README.md "IAM permissions rollback needs", hooks/README.md "IAM permissions the hooks
  need"), or the script fails.

Usage: `.venv/bin/python tests/iam_report.py [--usage FILE] [--template FILE] [--out FILE]`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "emulator"))

STACK = "ShiftGuardRehearsal"
#: The ShiftGuard functions of the rehearsal stack, and the guide and section that document each one's IAM.
FUNCTIONS = {
    "CodeDeployHook_checkout_pre_traffic": ("hooks/README.md", "IAM permissions the hooks need"),
    "CodeDeployHook_checkout_post_traffic": ("hooks/README.md", "IAM permissions the hooks need"),
    "checkout_rollback": ("rollback/README.md", "IAM permissions rollback needs"),
    "checkout_shift": None,
}


def symbolic_statements(template: dict) -> dict[str, list[dict]]:
    """Each function's statements with references kept as `${Logical.Attr}` (what the construct
    wrote, whatever world resolves it), in the order the emulator numbers them (their `Sid`)."""
    import stacks  # tests/emulator/stacks.py (imports the emulator module, not a server)

    class Symbolic(stacks.Resolver):
        def attr(self, logical: str, attr: str):  # type: ignore[override]
            if logical not in self.res:
                return super().attr(logical, attr)
            r = self.res[logical]
            # Names the template states literally resolve to themselves; the rest stay symbolic.
            try:
                if r["Type"] in ("AWS::Lambda::Function", "AWS::CloudWatch::Alarm", "AWS::CodeDeploy::Application",
                                 "AWS::CodeDeploy::DeploymentGroup", "AWS::Lambda::Alias", "AWS::Logs::LogGroup"):
                    return super().attr(logical, attr)
            except stacks.Unresolvable:
                pass
            return "${" + logical + ("" if attr == "Ref" else "." + attr) + "}"

    resolver = Symbolic(template, STACK, "REGION", "ACCOUNT")
    return {f["function"]: f["statements"] for f in stacks.function_roles(template, resolver)}


def actions_of(statement: dict) -> list[str]:
    a = statement.get("Action")
    return a if isinstance(a, list) else [a]


def readme_actions(readme: str) -> dict[str, set[str]]:
    """The actions in the first JSON policy under each `## IAM permissions …` heading (any level)."""
    out: dict[str, set[str]] = {}
    for m in re.finditer(r"^#{2,4} (IAM permissions[^\n]*)\n(.*?)```json\n(.*?)```", readme, re.S | re.M):
        out[m.group(1).strip()] = set(re.findall(r'"([a-z0-9-]+:[A-Za-z*]+)"', m.group(3)))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--usage", default=os.environ.get("SHIFTGUARD_IAM_USAGE") or str(ROOT / "target" / "iam-usage.jsonl"))
    parser.add_argument("--template", default=str(ROOT / "target" / "cdk.out" / f"{STACK}.template.json"))
    parser.add_argument("--out", default=str(ROOT / "target" / "iam-report.md"))
    parser.add_argument("--explained", default=str(ROOT / "tests" / "iam-unused.json"))
    args = parser.parse_args()

    for path, what in ((args.usage, "the usage log (run the suite with SHIFTGUARD_IAM_USAGE set: make test does)"),
                       (args.template, "the rehearsal template (make cdk-synth)")):
        if not os.path.exists(path):
            print(f"iam_report: {path} is missing: {what}", file=sys.stderr)
            return 2
    template = json.loads(Path(args.template).read_text())
    statements = symbolic_statements(template)
    usage = [json.loads(line) for line in Path(args.usage).read_text().splitlines() if line.strip()]
    usage = [u for u in usage if u["stack"] == STACK and u["function"] in FUNCTIONS]
    explained: dict[str, dict[str, str]] = json.loads(Path(args.explained).read_text())
    guides = {guide: readme_actions((ROOT / guide).read_text())
              for guide in sorted({f[0] for f in FUNCTIONS.values() if f is not None})}

    problems: list[str] = []
    lines = ["# Least-privilege report", "",
             f"Generated by `tests/iam_report.py` from {len(usage)} calls the ShiftGuard binaries made in the suite, "
             f"each judged by the emulator against its role from `{STACK}` (strict IAM).", ""]
    for function, documented_in in FUNCTIONS.items():
        granted = statements.get(function)
        if granted is None:
            problems.append(f"{function}: not in the template")
            continue
        calls = [u for u in usage if u["function"] == function]
        by_sid: dict[str, list[dict]] = defaultdict(list)
        for u in calls:
            if u["allowed"]:
                by_sid[u["sid"]].append(u)
        denied = [u for u in calls if not u["allowed"]]
        performed = {u["action"] for u in calls if u["allowed"]}
        granted_actions = {a for s in granted for a in actions_of(s)}
        lines += [f"## {function}", "", f"{len(calls)} calls ({len(denied)} denied, each by a test that removes a grant on purpose or expects the denial).", "",
                  "| statement | actions | resources | performed through it |", "|---|---|---|---|"]
        for s in granted:
            used = by_sid.get(s["Sid"], [])
            counts = defaultdict(set)
            for u in used:
                counts[u["action"]].update(u["resources"])
            resources = s.get("Resource")
            shown = ", ".join(f"`{r}`" for r in (resources if isinstance(resources, list) else [resources]))
            through = "; ".join(f"{a} ({len(rs)} resource{'s' if len(rs) != 1 else ''})" for a, rs in sorted(counts.items())) or "**nothing**"
            if not used and all(a in performed for a in actions_of(s)):
                through += " — its actions were performed only through other statements"
            lines.append(f"| {s['Sid']} | {', '.join(actions_of(s))} | {shown} | {through} |")
            if "*" in json.dumps(resources) and counts:
                touched = sorted({r for rs in counts.values() for r in rs})
                lines.append(f"| | | wildcard: touched {len(touched)}: {', '.join(f'`{t}`' for t in touched[:4])}{' …' if len(touched) > 4 else ''} | |")
        unused = sorted(granted_actions - performed)
        reasons = explained.get(function, {})
        lines += ["", "Granted, never performed in the suite:" if unused else "Every granted action was performed in the suite.", ""]
        for action in unused:
            why = reasons.get(action)
            lines.append(f"- `{action}`: {why or '**unexplained**'}")
            if not why:
                problems.append(f"{function}: {action} is granted but never performed in the suite, and tests/iam-unused.json does not say why it stays")
        for action in sorted(reasons):
            if action in performed:
                problems.append(f"{function}: {action} is explained as unused in tests/iam-unused.json but the suite performs it: remove the entry")
            elif action not in granted_actions:
                problems.append(f"{function}: {action} is explained in tests/iam-unused.json but no longer granted: remove the entry")
        if documented_in is not None:
            guide, section = documented_in
            documented = guides[guide].get(section)
            if documented is None:
                problems.append(f"{guide}: no '## {section}' policy")
            else:
                missing = sorted(performed - documented)
                lines += ["", f"{guide} \"{section}\": " + ("lists every action performed." if not missing else "missing " + ", ".join(missing))]
                problems += [f"{guide} '{section}' does not list {a}, which {function} performs" for a in missing]
        else:
            lines += ["", "No IAM section in a guide of its own (the construct is the reference)."]
        lines.append("")
    if problems:
        lines += ["## Problems", ""] + [f"- {p}" for p in problems]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"iam_report: {args.out} ({len(usage)} calls)")
    for p in problems:
        print(f"iam_report: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
