"""`make hot-code`: the linker scripts that put the code a function runs first in its binary.

The kernel maps a binary's code 64 KB around every page touched (fault-around), and the code a
function runs — start-up and an invocation, about 1.3–1.5 MB of 4.3–5.4 MB — is spread all over
`.text`: so nearly all of it was resident. Linked first, together, the rest stays on disk.

Input: callgrind reports of the `bench-sizes` build (the release code with its symbols, linked
by cargo lambda as the release is) running `make bench`'s scenarios: every function that ran —
first of a build linked without the scripts (`SHIFTGUARD_HOT_CODE=off`; valgrind reads no symbols
outside `.text`, so it must be), then, optionally, of a build linked with them, whose named
functions are those that ran outside `.text.hot` (added). Output: per binary, a linker script
read with `-T` (each crate's build script passes it, for release builds only:
`common/link_hot_code.rs`, a script `hot-code-<binary>.ld` beside the crate's Cargo.toml): an
output section `.text.hot` inserted before `.text`, holding the input sections of the functions
that ran (`-ffunction-sections`: one `.text.<symbol>`, or `.text.unlikely.<symbol>` for a cold
one, per function).

Symbols of this repository's crates and their dependencies are mangled the legacy way,
`_ZN<path>17h<hash>E`; the hash depends on the build's profile and flags, so a pattern keeps the
path and matches any hash (every instance of a generic function of that path: a superset).
Symbols mangled the v0 way (`_R…`: std's, and std's generics instantiated elsewhere) keep their
paths and types, with crate disambiguators, back-references and `.N` suffixes as wildcards. A
function missing from the script is only placed with the cold code: a stale script costs memory,
never correctness — `make bench` shows it (the `.text.hot` size, the resident code).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Binary -> (the crate directory its script lives in, the script's name).
SCRIPTS = {
    "rollback": ("rollback", "hot-code-rollback.ld"),
    "pre-traffic": ("hooks", "hot-code-pre-traffic.ld"),
    "post-traffic": ("hooks", "hot-code-post-traffic.ld"),
    "shift": ("rollback/shift", "hot-code-shift.ld"),
}
LEGACY = re.compile(r"^(_ZN.*17h)[0-9a-f]{16}E(\.\d+)?$")
# In a v0 name (`_R…`), what depends on the build rather than on the code: crate disambiguators
# (`Cs<base62>_`), back-references (`B<base62>_`, offsets into the name, which move with the
# disambiguators' lengths) and LLVM's `.N` suffix on local copies.
V0_VARIABLE = [(re.compile(r"Cs[0-9A-Za-z]+_"), "Cs*_"), (re.compile(r"B[0-9A-Za-z]*_"), "B*_"),
               (re.compile(r"\.\d+$"), "*")]


def executed(reports: list[Path], binary: Path) -> list[str]:
    """Names of the functions of `binary` that ran, in the order callgrind first lists them.
    (Of a binary linked with a script, only those outside `.text.hot` have names.)"""
    seen: dict[str, None] = {}
    for report in reports:
        in_binary = False
        for line in report.read_text(errors="replace").splitlines():
            if line.startswith("ob="):
                in_binary = Path(line[3:].strip()).resolve() == binary.resolve()
            elif line.startswith("fn=") and in_binary:
                name = re.sub(r"'\d+$", "", line[3:].strip())  # callgrind's marks for cycles
                if name and not name.startswith(("0x", "(")):
                    seen.setdefault(name, None)
    return list(seen)


def pattern(name: str) -> str | None:
    """The symbol `name` in any build of the same code: the parts of the name that
    depend on the build's flags are wildcards (a pattern may match a few more functions than the
    one that ran; never fewer)."""
    legacy = LEGACY.match(name)
    if legacy:
        return f"{legacy.group(1)}*"
    if not re.fullmatch(r"[A-Za-z0-9_.$]+", name):
        return None  # not a name a linker script takes bare
    if name.startswith("_R"):
        for variable, wildcard in V0_VARIABLE:
            name = variable.sub(wildcard, name)
    else:
        name = re.sub(r"\.\d+$", "*", name)
    # Another build may hold the function as a local copy with a `.N` suffix: match those too.
    return re.sub(r"\*+", "*", name + "*")


def made_from() -> str:
    """What a script is made from besides the code: the lock file and the compiler. `make bench`
    says when either has changed since (the script may then miss functions)."""
    import hashlib
    import subprocess
    lock = hashlib.sha256((ROOT / "Cargo.lock").read_bytes()).hexdigest()[:16]
    rustc = subprocess.run(["rustc", "-V"], capture_output=True, text=True).stdout.strip()
    return f"made from: Cargo.lock {lock}, {rustc}"


def script(binary_name: str, names: list[str], origin: str = "") -> str:
    patterns = list(dict.fromkeys(p for p in map(pattern, names) if p))
    lines = [
        f"/* Generated by `make hot-code` (tests/bench/hot_code.py): the functions `{binary_name}` ran in",
        "   `make bench`'s scenario, linked first (.text.hot) so that the code it does not run stays",
        "   off its resident memory. Do not edit; regenerate after a dependency or toolchain update.",
        f"   {origin or made_from()} */",
        "SECTIONS {",
        "  .text.hot : {",
        # LLVM puts a function marked cold (`#[cold]`: hashbrown's rehash, `Once::call`, …) in
        # `.text.unlikely.<symbol>`.
        *(f"    *(.text.{p} .text.unlikely.{p})" for p in patterns),
        "  }",
        "} INSERT BEFORE .text;",
        "",
    ]
    return "\n".join(lines)


def binary_in(directory: Path, name: str) -> Path:
    binary = directory / name
    return binary / "bootstrap" if binary.is_dir() else binary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--first", required=True, type=Path,
                        help="callgrind reports <function>.<pid> of the build linked without the scripts")
    parser.add_argument("--first-bin", required=True, type=Path, help="that build's binaries: <dir>/<function>[/bootstrap]")
    parser.add_argument("--second", type=Path,
                        help="callgrind reports of the build linked with the first scripts: what ran outside .text.hot is added")
    parser.add_argument("--second-bin", type=Path, help="that build's binaries")
    args = parser.parse_args()
    origin = made_from()
    for binary_name, (crate, file) in SCRIPTS.items():
        reports = sorted(r for r in args.first.glob(f"{binary_name}.*") if r.suffix != ".log")
        if not reports:
            raise SystemExit(f"no callgrind report for {binary_name} in {args.first}")
        names = executed(reports, binary_in(args.first_bin, binary_name))
        if len(names) < 500:
            raise SystemExit(f"{binary_name}: only {len(names)} functions ran: not a whole start-up and invocation")
        missed = []
        if args.second:
            second = sorted(r for r in args.second.glob(f"{binary_name}.*") if r.suffix != ".log")
            if not second:
                raise SystemExit(f"no callgrind report for {binary_name} in {args.second}")
            missed = [n for n in executed(second, binary_in(args.second_bin, binary_name)) if n not in names]
        out = ROOT / crate / file
        out.write_text(script(binary_name, names + missed, origin))
        print(f"{out.relative_to(ROOT)}: {len(names)} functions ran" + (f", {len(missed)} more outside .text.hot" if args.second else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
