"""The hot-code linker scripts (`make hot-code`, tests/bench/hot_code.py): a pattern made from one
build's symbol must match the same function in another build (the release build's hashes and
crate disambiguators differ from the profiled build's), and the committed scripts are whole."""

import re
import sys
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hot_code  # noqa: E402


# (a symbol in the profiled build, the same function in another build, a different function)
SAME_FUNCTION = [
    # legacy mangling: the hash at the end depends on the build
    ("_ZN4core3ptr47drop_in_place$LT$alloc..vec..Vec$LT$u32$GT$$GT$17h9432b93092f990a7E",
     "_ZN4core3ptr47drop_in_place$LT$alloc..vec..Vec$LT$u32$GT$$GT$17h0123456789abcdefE",
     "_ZN4core3ptr47drop_in_place$LT$alloc..vec..Vec$LT$u64$GT$$GT$17h9432b93092f990a7E"),
    # legacy with LLVM's suffix on a local copy
    ("_ZN110_$LT$aws_runtime..auth..sigv4..SigV4AuthScheme$GT$6signer17h8b8a882367dc894dE.622",
     "_ZN110_$LT$aws_runtime..auth..sigv4..SigV4AuthScheme$GT$6signer17hffffffffffffffffE.733",
     "_ZN110_$LT$aws_runtime..auth..sigv4..SigV4AuthScheme$GT$6verify17h8b8a882367dc894dE.622"),
    # v0: crate disambiguators and back-references (offsets that move with them)
    ("_RNvMs4_NtCslNYArtu3iFV_5alloc7raw_vecNtB5_11RawVecInner11finish_growCsduwmD7cSIQq_5gimli",
     "_RNvMs4_NtCsAb12_5alloc7raw_vecNtB3_11RawVecInner11finish_growCs9xYz7788_5gimli",
     "_RNvMs4_NtCslNYArtu3iFV_5alloc7raw_vecNtB5_11RawVecInner10try_reserveCsduwmD7cSIQq_5gimli"),
    # v0 with a suffix
    ("_RNvNtCslNYArtu3iFV_5alloc5boxed14box_new_uninit.28",
     "_RNvNtCsQ1_5alloc5boxed14box_new_uninit.47",
     "_RNvNtCslNYArtu3iFV_5alloc5boxed8box_copy.28"),
    # C and compiler-builtins: exact
    ("fmin", "fmin.3", "fmax"),
]


@pytest.mark.parametrize("profiled,other_build,other_function", SAME_FUNCTION)
def test_a_pattern_matches_the_function_in_any_build_and_not_another_function(profiled, other_build, other_function):
    pattern = hot_code.pattern(profiled)
    assert pattern is not None
    assert fnmatchcase(profiled, pattern)
    assert fnmatchcase(other_build, pattern), (pattern, other_build)
    assert not fnmatchcase(other_function, pattern), (pattern, other_function)


def test_names_a_linker_script_cannot_take_bare_are_left_out():
    assert hot_code.pattern("weird name (with spaces)") is None


def test_a_script_holds_cold_sections_too_and_is_inserted_before_text():
    text = hot_code.script("rollback", ["_ZN3foo3bar17h0123456789abcdefE", "fmin"], "made from: test")
    assert "*(.text._ZN3foo3bar17h* .text.unlikely._ZN3foo3bar17h*)" in text
    assert "*(.text.fmin* .text.unlikely.fmin*)" in text
    assert text.rstrip().endswith("} INSERT BEFORE .text;")


def test_the_executed_functions_are_read_from_callgrind_for_that_binary_only(tmp_path):
    binary = tmp_path / "rollback" / "bootstrap"
    binary.parent.mkdir()
    binary.write_bytes(b"")
    report = tmp_path / "rollback.1"
    report.write_text("\n".join([
        "ob=/usr/lib/x86_64-linux-gnu/libc.so.6", "fn=memcpy",
        f"ob={binary}", "fn=_ZN3foo3bar17h0123456789abcdefE'2", "fn=0x0000000000400320", "fn=(below main)",
        "fn=fmin", "cfn=memset",
    ]))
    assert hot_code.executed([report], binary) == ["_ZN3foo3bar17h0123456789abcdefE", "fmin"]


@pytest.mark.parametrize("binary_name", sorted(hot_code.SCRIPTS))
def test_the_committed_scripts_are_whole(binary_name):
    crate, file = hot_code.SCRIPTS[binary_name]
    text = (hot_code.ROOT / crate / file).read_text()
    lines = [line.strip() for line in text.splitlines()]
    patterns = [line for line in lines if line.startswith("*(")]
    assert len(patterns) > 1000, f"{file}: {len(patterns)} functions; regenerate with `make hot-code`"
    assert all(re.fullmatch(r"\*\(\.text\.[A-Za-z0-9_.$*]+ \.text\.unlikely\.[A-Za-z0-9_.$*]+\)", p) for p in patterns)
    assert "SECTIONS {" in lines and ".text.hot : {" in lines and lines[-1] == "} INSERT BEFORE .text;"
    assert any(line.startswith("made from: Cargo.lock ") for line in lines)
