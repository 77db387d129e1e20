"""`make bench-sizes`: what fills each function's binary (and so its zip), by crate and by kind of code.

The shipped builds are stripped; this reads the same code built with its symbols (profile
`bench-sizes`: the release profile, not stripped) and attributes every function symbol's size
(`nm -S`) to the crate its demangled name starts with (`<T as Trait>::f` counts under the first
crate path in it) and to a kind (deserialisers, async state machines, drops, Debug, sorts, the
rest). Section sizes (`size -A`) say what is not code: unwind tables, read-only data, relocations
(`.text.hot` is the code linked first: `make hot-code`).
Printed, and written to target/bench/sizes.json. Not timed, no budgets: the zip budgets are
`make bench`'s.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ["rollback", "pre-traffic", "post-traffic", "shift"]
SECTIONS = [".text.hot", ".text", ".eh_frame", ".rodata", ".rela.dyn", ".data.rel.ro", ".gcc_except_table", ".data"]
CRATE = re.compile(r"([a-z_][a-z0-9_]*)::")


def kind(name: str) -> str:
    if "as core::fmt::Debug>::fmt" in name:
        return "Debug"
    if "drop_in_place" in name:
        return "drops"
    if "slice::sort" in name:
        return "sorts"
    if "protocol_serde" in name or "Deserializer" in name or "deserialize" in name:
        return "(de)serialisers"
    if "{{closure}}" in name:
        return "async fns and closures"
    return "other"


def attribute(binary: Path) -> dict:
    symbols = subprocess.run(["nm", "-S", "--size-sort", "-C", str(binary)], capture_output=True, text=True,
                             check=True).stdout
    by_crate: collections.Counter = collections.Counter()
    by_kind: collections.Counter = collections.Counter()
    for line in symbols.splitlines():
        fields = line.split(" ", 3)
        if len(fields) < 4 or fields[2] not in ("t", "T", "w", "W"):
            continue
        size, name = int(fields[1], 16), fields[3]
        crate = CRATE.search(name)
        by_crate[crate.group(1) if crate else "(unnamed)"] += size
        by_kind[kind(name)] += size
    sections = {}
    for line in subprocess.run(["size", "-A", str(binary)], capture_output=True, text=True, check=True).stdout.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] in SECTIONS:
            sections[fields[0]] = int(fields[1])
    kb = lambda n: round(n / 1024, 1)
    return {
        "sections_kb": {s: kb(sections.get(s, 0)) for s in SECTIONS},
        "code_by_crate_kb": {c: kb(n) for c, n in by_crate.most_common(25)},
        "code_by_kind_kb": {k: kb(n) for k, n in by_kind.most_common()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=str(ROOT / "target/lambda-sizes"),
                        help="where the unstripped binaries are, <dir>/<function>/bootstrap (cargo lambda build --profile bench-sizes)")
    args = parser.parse_args()
    results = {}
    for name in FUNCTIONS:
        binary = Path(args.dir) / name / "bootstrap"
        if not binary.exists():
            raise SystemExit(f"{binary} is missing: `make bench-sizes` builds it (profile bench-sizes)")
        results[name] = attribute(binary)
    out = ROOT / "target/bench/sizes.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print("sections, KB: " + " ".join(f"{s:>18}" for s in SECTIONS))
    for name, r in results.items():
        print(f"{name:<13} " + " ".join(f"{r['sections_kb'][s]:>18}" for s in SECTIONS))
    for name, r in results.items():
        print(f"\n{name}: code by kind, KB: " + ", ".join(f"{k} {v}" for k, v in r["code_by_kind_kb"].items()))
        print(f"{name}: code by crate, KB (largest 25): " + ", ".join(f"{c} {v}" for c, v in r["code_by_crate_kb"].items()))
    print(f"\n(written to {out.relative_to(ROOT)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
