"""The shape checker itself: it passes on the tree, and it can fail (a circle, a long file)."""
import os
import subprocess
import sys
import textwrap

import check_shape

HERE = os.path.dirname(os.path.abspath(__file__))


def test_the_tree_has_the_shape():
    run = subprocess.run([sys.executable, os.path.join(HERE, "check_shape.py")], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def write(root, rel, text):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(textwrap.dedent(text))


def test_a_circle_between_two_files_is_found(tmp_path):
    src = str(tmp_path)
    write(src, "lib.rs", "mod a;\nmod b;\n")
    write(src, "a.rs", "use crate::b::Thing;\npub struct Other;\n")
    write(src, "b/mod.rs", "pub struct Thing;\nfn f() -> crate::a::Other { todo!() }\n")
    found = check_shape.circles(check_shape.graph(src))
    assert found and {os.path.basename(p) for p in found[0]} == {"a.rs", "mod.rs"}


def test_grouped_imports_count_and_facades_tests_and_comments_do_not(tmp_path):
    src = str(tmp_path)
    write(src, "a.rs", "use crate::{b::Thing, c};\n")
    write(src, "b.rs", "pub use crate::a::X;\n// crate::a::Y\n#[cfg(test)]\nmod tests {\n    use crate::a::Z;\n}\n")
    write(src, "c.rs", "")
    edges = check_shape.graph(src)
    assert {os.path.basename(p) for p in edges[os.path.join(src, "a.rs")]} == {"b.rs", "c.rs"}
    assert edges[os.path.join(src, "b.rs")] == set()


def test_test_code_does_not_count_toward_the_length():
    text = "fn a() {}\n" * 3 + "#[cfg(test)]\nmod tests {\n" + "    fn t() {}\n" * 50 + "}\n"
    assert len(check_shape.code_lines(text, comments=True)) == 4
