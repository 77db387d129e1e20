#!/usr/bin/env python3
"""The shape of the Rust code (issue 23): no source file over MAX_LINES outside tests, and no
circle between files.

A file depends on another when it names it by a `crate::` path (`use crate::plan::Decision`,
`crate::truth::STALE_AFTER_MS`), resolved to the deepest file that exists (`crate::checks::compare::X`
→ `checks/compare.rs`). Not counted: the crate root (`lib.rs`, which declares every module and
holds the crate's shared handles), `pub use` re-exports (a facade names a path, it does not use
it), a module's own submodules reaching their parent with `super::` (one module split into
files), comments, and `#[cfg(test)]` code. Exit 1 with the offending files or circles.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CRATES = ["common/src", "hooks/src", "rollback/src", "rollback/shift/src", "tests/harness/src", "tests/schema/src"]
MAX_LINES = 700
PATH = re.compile(r"\bcrate::((?:[a-z_][a-z0-9_]*::)*[A-Za-z_][A-Za-z0-9_]*|\{)")


def is_test_file(rel: str) -> bool:
    base = os.path.basename(rel)
    return base.endswith("_tests.rs") or base == "tests.rs"


def code_lines(text: str, comments: bool = False) -> list[str]:
    """The lines outside `#[cfg(test)]` items (and comments, unless `comments`)."""
    out, depth, skipping, armed = [], 0, False, False
    for line in text.split("\n"):
        stripped = line.strip()
        if not skipping and stripped == "#[cfg(test)]":
            armed = True
            continue
        if armed and not skipping:
            if stripped.startswith("#["):
                continue
            if stripped.endswith(";"):  # `mod tests;` in its own file
                armed = False
                continue
            skipping, depth, armed = True, 0, False
        if skipping:
            depth += line.count("{") - line.count("}")
            if depth <= 0 and "}" in line:
                skipping = False
            continue
        if stripped.startswith("//") and not comments:
            continue
        out.append(line)
    return out


def module_file(src: str, parts: list[str]) -> str | None:
    """The deepest file a module path names (`["checks", "compare", "X"]` → checks/compare.rs)."""
    best = None
    for n in range(1, len(parts) + 1):
        base = os.path.join(src, *parts[:n])
        for candidate in (base + ".rs", os.path.join(base, "mod.rs")):
            if os.path.isfile(candidate):
                best = candidate
                break
        else:
            break
    return best


def graph(src: str) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for dirpath, _, files in os.walk(src):
        for f in files:
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, src)
            if not f.endswith(".rs") or is_test_file(rel) or rel in ("lib.rs", "main.rs") or rel.startswith("bin"):
                continue
            deps = edges.setdefault(path, set())
            text = "\n".join(code_lines(open(path, encoding="utf-8").read()))
            # `use crate::{a::X, b::Y}` and multi-line groups: flatten the statement first.
            for stmt in re.findall(r"(?:^|\n)\s*((?:pub(?:\([a-z]+\))?\s+)?use\s+crate::[^;]*;)", text):
                if stmt.startswith("pub"):
                    continue
                body = re.sub(r"\s+", "", stmt.split("crate::", 1)[1].rstrip(";"))
                for target in expand(body):
                    hit = module_file(src, target.split("::"))
                    if hit and hit != path:
                        deps.add(hit)
            for m in PATH.finditer(re.sub(r"(?:^|\n)\s*(?:pub(?:\([a-z]+\))?\s+)?use\s+crate::[^;]*;", "\n", text)):
                if m.group(1) == "{":
                    continue
                hit = module_file(src, m.group(1).split("::"))
                if hit and hit != path:
                    deps.add(hit)
    return edges


def expand(body: str) -> list[str]:
    """`a::{b::X, c}` → [`a::b::X`, `a::c`]."""
    if "{" not in body:
        return [body]
    head, rest = body.split("{", 1)
    inner = rest.rsplit("}", 1)[0]
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    parts.append(cur)
    return [x for p in parts if p for x in expand(head + p)]


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    found, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(edges.get(node, ())):
            if state.get(dep) == 1:
                found.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    return found


def main() -> int:
    problems = []
    for crate in CRATES:
        src = os.path.join(ROOT, crate)
        for dirpath, _, files in os.walk(src):
            for f in files:
                path = os.path.join(dirpath, f)
                if f.endswith(".rs") and not is_test_file(path):
                    n = len(code_lines(open(path, encoding="utf-8").read(), comments=True))
                    if n > MAX_LINES:
                        problems.append(f"{os.path.relpath(path, ROOT)}: {n} lines outside tests (at most {MAX_LINES}): split it by responsibility")
        for circle in circles(graph(src)):
            problems.append("circle: " + " → ".join(os.path.relpath(p, ROOT) for p in circle))
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
