#!/usr/bin/env python3
"""Every link in the documentation resolves (`make test`, before anything is built).

Checked: the relative links of `README.md` and every Markdown file under `hooks/`, `rollback/`,
`tests/` and `examples/`, and `cdk/README.md` — the file (or directory) exists, and a `#anchor`
names a heading of the Markdown file it points into (GitHub's slugs: lowercase, punctuation but
`-` and `_` dropped, each space a `-`, a repeated heading `-1`, `-2`, …) or an explicit
`<a id=…>`/`<a name=…>`. Links inside code (fenced blocks, `spans`) are not links; `http(s):` and
`mailto:` ones are not checked. And the sources: every `…README.md#<anchor>` a Rust, TypeScript or
Python file (or the Makefile) names — a doc comment, an error message — resolves the same way,
its path taken from the repository's root or from the file's own directory.

Usage: `python3 tests/docs/check_links.py [ROOT]`. Prints one line per broken link
(`file:line: link: why`) and exits 1 when there is one.
"""

from __future__ import annotations

import re
import sys
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[2]

#: Where documentation lives (relative to the root): files, and directories searched for *.md.
DOC_FILES = ["README.md", "cdk/README.md"]
DOC_DIRS = ["hooks", "rollback", "tests", "examples"]
#: Sources whose `README.md#<anchor>` mentions are checked.
SOURCE_SUFFIXES = {".rs", ".ts", ".py"}
SOURCE_NAMES = {"Makefile"}
SOURCE_DIRS = ["common", "hooks", "rollback", "tests", "cdk", "examples"]
#: Not sources: this check and its tests (whose broken links are fixtures).
SOURCE_SKIP = ["tests/docs"]
#: Never searched: build output, dependencies, virtualenvs.
SKIP_PARTS = {"node_modules", "target", "dist", ".venv", ".venv-sam", "__pycache__", ".git", "cdk.out", ".pytest_cache"}

FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
# [text](target) or [text](target "title"); the text may hold one level of brackets.
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'][^\"']*[\"'])?\s*\)")
REFERENCE_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s+<?(\S+?)>?(?:\s+.*)?$")
HTML_ANCHOR = re.compile(r"<a\s+[^>]*(?:id|name)\s*=\s*[\"']([^\"']+)[\"']", re.I)
SOURCE_MENTION = re.compile(r"((?:[\w.-]+/)*README\.md)#([\w-]+)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text, before duplicates are numbered."""
    text = CODE_SPAN.sub(lambda m: m.group(2), heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link: its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def outside_code(text: str) -> list[tuple[int, str]]:
    """(line number, line) of every line outside fenced code blocks."""
    lines, fence = [], None
    for number, line in enumerate(text.splitlines(), 1):
        m = FENCE.match(line)
        if m:
            marker = m.group(1)
            if fence is None:
                fence = marker[0] * len(marker)
            elif marker.startswith(fence) and not line.strip()[len(marker):].strip():
                fence = None
            continue
        if fence is None:
            lines.append((number, line))
    return lines


@lru_cache(maxsize=None)
def anchors(path: Path) -> frozenset[str]:
    """Every anchor a Markdown file has: its headings' slugs (numbered when repeated) and HTML ids."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in outside_code(path.read_text(encoding="utf-8")):
        m = HEADING.match(line)
        if m:
            base = slug(m.group(2))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
        found.update(a for a in HTML_ANCHOR.findall(line))
    return frozenset(found)


def links(path: Path) -> list[tuple[int, str]]:
    """(line, target) of every link in a Markdown file, code left out."""
    out = []
    for number, line in outside_code(path.read_text(encoding="utf-8")):
        # A code span is not a link; keep the line's length so nothing else moves.
        plain = CODE_SPAN.sub(lambda m: "x" * len(m.group(0)), line)
        out += [(number, m.group(1)) for m in LINK.finditer(plain)]
        m = REFERENCE_DEF.match(plain)
        if m:
            out.append((number, m.group(1)))
    return out


def resolve(source: Path, target: str, root: Path, base: Path | None = None) -> str | None:
    """Why `target`, linked from the file `source` (relative paths from `base`, by default the
    file's directory), does not resolve; None when it does."""
    base = source.parent if base is None else base
    if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("//"):
        return None  # http:, https:, mailto: …: not ours to check
    path_part, _, anchor = target.partition("#")
    path_part = unquote(path_part)
    if path_part.startswith("/"):
        return f"{path_part} is absolute (GitHub resolves it from the repository's root only on its own pages; link relatively)"
    dest = (base / path_part).resolve() if path_part else None
    if dest is not None:
        try:
            dest.relative_to(root.resolve())
        except ValueError:
            return f"{path_part} is outside the repository"
        if not dest.exists():
            return f"{path_part}: no such file or directory"
    if not anchor:
        return None
    doc = dest if dest is not None else source.resolve()  # `#anchor` alone: this very file
    if doc.is_dir() or doc.suffix.lower() != ".md":
        return None  # an anchor into a non-Markdown file (a line, say): GitHub's, not ours
    if anchor not in anchors(doc):
        return f"#{anchor}: no such heading in {doc.relative_to(root.resolve())}"
    return None


def skipped(path: Path, root: Path) -> bool:
    return any(part in SKIP_PARTS for part in path.relative_to(root).parts)


def documents(root: Path) -> list[Path]:
    found = [root / f for f in DOC_FILES if (root / f).is_file()]
    for d in DOC_DIRS:
        if (root / d).is_dir():
            found += [p for p in sorted((root / d).rglob("*.md")) if not skipped(p, root)]
    return sorted(set(found))


def sources(root: Path) -> list[Path]:
    found = [root / n for n in SOURCE_NAMES if (root / n).is_file()]
    for d in SOURCE_DIRS:
        if (root / d).is_dir():
            found += [p for p in sorted((root / d).rglob("*"))
                      if p.is_file() and (p.suffix in SOURCE_SUFFIXES or p.name in SOURCE_NAMES) and not skipped(p, root)
                      and not any(p.relative_to(root).as_posix().startswith(s + "/") for s in SOURCE_SKIP)]
    return sorted(set(found))


def check_document(path: Path, root: Path) -> list[str]:
    rel = path.relative_to(root)
    problems = []
    for number, target in links(path):
        why = resolve(path, target, root)
        if why:
            problems.append(f"{rel}:{number}: {target}: {why}")
    return problems


def check_source(path: Path, root: Path) -> list[str]:
    """`…README.md#<anchor>` mentions in a source file: from the root, else from the file's directory."""
    rel = path.relative_to(root)
    problems = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return []
    for number, line in enumerate(text.splitlines(), 1):
        for m in SOURCE_MENTION.finditer(line):
            target = f"{m.group(1)}#{m.group(2)}"
            whys = [resolve(path, target, root, base) for base in (root, path.parent)]
            if all(whys):
                problems.append(f"{rel}:{number}: {target}: {whys[0]}")
    return problems


def check(root: Path = ROOT) -> list[str]:
    """Every broken link under `root`, one line each."""
    anchors.cache_clear()
    problems = []
    for doc in documents(root):
        problems += check_document(doc, root)
    for src in sources(root):
        problems += check_source(src, root)
    return problems


def main(argv: list[str]) -> int:
    root = Path(argv[1]).resolve() if len(argv) > 1 else ROOT
    problems = check(root)
    for p in problems:
        print(p)
    docs, srcs = len(documents(root)), len(sources(root))
    print(f"check_links: {docs} documents and {srcs} sources, {len(problems)} broken link(s)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
