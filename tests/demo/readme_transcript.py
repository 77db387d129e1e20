"""The demo transcripts the documentation shows, compared with a real run's (`make test`, after the
demos): README.md's (the alias scenario, in full) and tests/README.md's ("The demo": excerpts).

`demo.py --transcript DIR/<scenario>.txt` writes what a run printed. A document marks each
transcript it shows with an HTML comment on the line before its ```text fence:

  <!-- demo transcript: alias -->
      The whole story, trimmed. Its step headings (`=== 1. …`, `=== Final state`) are the run's, all
      of them, in order; its final-state table is the run's, row for row; every other line it shows
      is one of the run's, in the run's order, numbers, deployment ids and timings aside (a line
      ending in `…` is a prefix of the run's).

  <!-- demo transcript excerpt: codedeploy-alarm -->
      An excerpt of a scenario whose race has more than one outcome by design (who stops the
      deployment, and so its final state, depends on timing): each heading and `[ok ]` check it
      shows is in the run; its other lines are not compared.

Usage: readme_transcript.py DIR [--readme FILE …] (default: README.md and tests/README.md). Exits 1,
saying which file, which line and why, when a document and a run differ, or when no document marks
a transcript.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"^<!-- demo transcript( excerpt)?: ([a-z-]+) -->\s*$")
HEADING = re.compile(r"^=== (\d+\.|Final state)")
ROW = re.compile(r"^    (\S.*?)\s{2,}(\S.*?)\s*$")
TIMING = re.compile(r"^\[\s*\d+(\.\d+)?s\]\s*")
DEPLOYMENT_ID = re.compile(r"\bd-[A-Z0-9]{6,}\b")
NUMBER = re.compile(r"\d+(\.\d+)?")


@dataclass
class Block:
    scenario: str
    excerpt: bool
    line: int  # the document's line of the fence
    lines: list[str]
    doc: str = "README.md"  # the document, as the messages name it


def readme_blocks(text: str, doc: str = "README.md") -> list[Block]:
    """Every marked ```text block of a document."""
    lines = text.splitlines()
    blocks = []
    for i, line in enumerate(lines):
        m = MARKER.match(line)
        if not m:
            continue
        if i + 1 >= len(lines) or lines[i + 1].strip() != "```text":
            raise SystemExit(f"{doc} line {i + 1}: {line.strip()} must be followed by a ```text fence")
        end = next((j for j in range(i + 2, len(lines)) if lines[j].strip() == "```"), None)
        if end is None:
            raise SystemExit(f"{doc} line {i + 2}: the ```text fence is not closed")
        blocks.append(Block(scenario=m.group(2), excerpt=bool(m.group(1)), line=i + 2, lines=lines[i + 2:end], doc=doc))
    return blocks


def headings(lines: list[str]) -> list[str]:
    return [line.rstrip() for line in lines if HEADING.match(line)]


def final_state(lines: list[str]) -> list[tuple[str, str]] | None:
    """The rows of the "Final state" table: (name, value), spaces collapsed; None without one."""
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("=== Final state"))
    except StopIteration:
        return None
    rows = []
    for line in lines[start + 1:]:
        m = ROW.match(line)
        if not m:
            break
        rows.append((" ".join(m.group(1).split()), " ".join(m.group(2).split())))
    return rows


def normalize(line: str) -> str:
    """A line with what changes from run to run taken out: its timing, deployment ids, numbers."""
    text = TIMING.sub("", line.strip())
    text = DEPLOYMENT_ID.sub("d-ID", text)
    return " ".join(NUMBER.sub("#", text).split())


def matches(readme_line: str, run_line: str) -> bool:
    want, got = normalize(readme_line), normalize(run_line)
    if want.endswith("…"):
        return got.startswith(want[:-1].rstrip())
    return want == got


def check_text(line: str) -> str | None:
    """An `[ok ]` line's check, without its detail (after ` — `); None for any other line."""
    text = line.strip()
    if not text.startswith("[ok ]"):
        return None
    return normalize(text.split(" — ", 1)[0])


def compare(block: Block, run: list[str]) -> list[str]:
    """What in `block` the run does not bear out, one sentence each (nothing: they agree)."""
    where = f"{block.doc} transcript of {block.scenario} (line {block.line})"
    problems = []
    shown = [line for line in block.lines if line.strip()]
    if block.excerpt:
        run_checks = {check_text(line) for line in run} - {None}
        run_headings = headings(run)
        for line in shown:
            if HEADING.match(line) and line.rstrip() not in run_headings:
                problems.append(f"{where}: the heading {line.strip()!r} is not one of the run's: {run_headings}")
            check = check_text(line)
            if check is not None and check not in run_checks:
                problems.append(f"{where}: the check {line.strip()!r} is not among the run's [ok ] checks")
        return problems
    if headings(block.lines) != headings(run):
        problems.append(f"{where}: step headings {headings(block.lines)} differ from the run's {headings(run)}")
    readme_table, run_table = final_state(block.lines), final_state(run)
    if readme_table != run_table:
        problems.append(f"{where}: the final state {readme_table} differs from the run's {run_table}")
    # Every line shown, in the run's order (headings and the table included, already compared above).
    at = 0
    for line in shown:
        found = next((j for j in range(at, len(run)) if matches(line, run[j])), None)
        if found is None:
            anywhere = next((j for j in range(len(run)) if matches(line, run[j])), None)
            if anywhere is not None:
                problems.append(f"{where}: {line.strip()!r} is in the run (line {anywhere + 1}), but not after {run[at - 1].strip()!r} (line {at}) as {block.doc} has it")
            else:
                problems.append(f"{where}: {line.strip()!r} is not in the run (as normalized: {normalize(line)!r})")
            continue
        at = found + 1
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("transcripts", type=Path, help="the directory of <scenario>.txt written by demo.py --transcript")
    parser.add_argument("--readme", type=Path, action="append", help="a document to read (repeatable; default: README.md and tests/README.md)")
    args = parser.parse_args()
    docs = args.readme or [ROOT / "README.md", ROOT / "tests" / "README.md"]
    blocks = []
    for doc in docs:
        name = doc.resolve().relative_to(ROOT).as_posix() if doc.resolve().is_relative_to(ROOT) else str(doc)
        blocks += readme_blocks(doc.read_text(encoding="utf-8"), name)
    if not blocks:
        print(f"{', '.join(map(str, docs))}: no demo transcript is marked (<!-- demo transcript: SCENARIO -->)")
        return 1
    problems = []
    for block in blocks:
        path = args.transcripts / f"{block.scenario}.txt"
        if not path.is_file():
            problems.append(f"{block.doc} transcript of {block.scenario} (line {block.line}): no run to compare with ({path} is missing)")
            continue
        found = compare(block, path.read_text(encoding="utf-8").splitlines())
        kind = "excerpt" if block.excerpt else "transcript"
        print(f"{'ok  ' if not found else 'FAIL'} {block.doc} {kind} of {block.scenario} (line {block.line}) against {path}")
        problems += found
    for p in problems:
        print(f"  - {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
