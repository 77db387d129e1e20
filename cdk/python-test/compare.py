"""Two cloud assemblies of the same stacks compared: what each stack deploys must be the same.

Per stack: the template (as JSON: resource types and counts, logical ids, every property, outputs,
parameters, conditions, rules), its assets (the assets manifest, and every asset file or directory
byte for byte: the settings files rollback and the hooks read, the stand-in zips, aws-cdk-lib's own
handlers) and its annotations (warnings, errors, info). Nothing is normalised: the apps use the same
stand-in zips and the same aws-cdk-lib version, so even asset hashes agree. Only where each stack
was created in the caller's code (aws:cdk:creationStack traces) and the manifest's
minimumCliVersion are not compared.

    python compare.py TS_ASSEMBLY PY_ASSEMBLY   # exit 1 on a difference
"""
import collections
import filecmp
import json
import os
import sys

TRACES = {"aws:cdk:creationStack"}


def _load(path):
    with open(path) as f:
        return json.load(f)


def stacks(assembly):
    """{stack name: artifact} of the assembly's CloudFormation stacks."""
    manifest = _load(os.path.join(assembly, "manifest.json"))
    return {
        a["properties"]["templateFile"].removesuffix(".template.json"): a
        for a in manifest["artifacts"].values() if a["type"] == "aws:cloudformation:stack"
    }


def _template_differences(a, b):
    out = []
    ra, rb = a.get("Resources", {}), b.get("Resources", {})
    ca = collections.Counter(r["Type"] for r in ra.values())
    cb = collections.Counter(r["Type"] for r in rb.values())
    for t in sorted(set(ca) | set(cb)):
        if ca[t] != cb[t]:
            out.append(f"{t}: {ca[t]} resource(s) in TypeScript's, {cb[t]} in Python's")
    for lid in sorted(set(ra) - set(rb)):
        out.append(f"{lid} ({ra[lid]['Type']}): only in TypeScript's")
    for lid in sorted(set(rb) - set(ra)):
        out.append(f"{lid} ({rb[lid]['Type']}): only in Python's")
    for lid in sorted(set(ra) & set(rb)):
        if ra[lid] == rb[lid]:
            continue
        for key in sorted(set(ra[lid]) | set(rb[lid])):
            va, vb = ra[lid].get(key), rb[lid].get(key)
            if key == "Properties" and isinstance(va, dict) and isinstance(vb, dict):
                for p in sorted(set(va) | set(vb)):
                    if va.get(p) != vb.get(p):
                        out.append(f"{lid}.Properties.{p}:\n  TypeScript: {json.dumps(va.get(p))[:2000]}\n  Python:     {json.dumps(vb.get(p))[:2000]}")
            elif va != vb:
                out.append(f"{lid}.{key}:\n  TypeScript: {json.dumps(va)[:2000]}\n  Python:     {json.dumps(vb)[:2000]}")
    for section in sorted((set(a) | set(b)) - {"Resources"}):
        if a.get(section) != b.get(section):
            out.append(f"{section}:\n  TypeScript: {json.dumps(a.get(section))[:2000]}\n  Python:     {json.dumps(b.get(section))[:2000]}")
    return out


def _tree_differences(a, b, name):
    """Files or directories `a` and `b`, byte for byte."""
    if os.path.isfile(a) or os.path.isfile(b):
        same = os.path.isfile(a) and os.path.isfile(b) and filecmp.cmp(a, b, shallow=False)
        return [] if same else [f"asset {name}: differs"]
    out = []
    cmp = filecmp.dircmp(a, b, ignore=[])
    for f in cmp.left_only:
        out.append(f"asset {name}/{f}: only in TypeScript's")
    for f in cmp.right_only:
        out.append(f"asset {name}/{f}: only in Python's")
    for f in cmp.common_files:
        if not filecmp.cmp(os.path.join(a, f), os.path.join(b, f), shallow=False):
            out.append(f"asset {name}/{f}: differs")
    for d in cmp.common_dirs:
        out.extend(_tree_differences(os.path.join(a, d), os.path.join(b, d), f"{name}/{d}"))
    return out


def _annotations(artifact):
    return {
        path: [e for e in entries if e["type"] not in TRACES]
        for path, entries in artifact.get("metadata", {}).items()
        if any(e["type"] not in TRACES for e in entries)
    }


def stack_differences(ts_assembly, py_assembly, name):
    """Every difference between the two assemblies' stack `name`, one string each."""
    ta, pa = stacks(ts_assembly).get(name), stacks(py_assembly).get(name)
    if ta is None or pa is None:
        return [f"stack {name}: in {'Python' if ta is None else 'TypeScript'}'s assembly only"]
    out = _template_differences(
        _load(os.path.join(ts_assembly, f"{name}.template.json")),
        _load(os.path.join(py_assembly, f"{name}.template.json")),
    )
    assets_a = _load(os.path.join(ts_assembly, f"{name}.assets.json"))
    assets_b = _load(os.path.join(py_assembly, f"{name}.assets.json"))
    if assets_a != assets_b:
        out.append(f"{name}.assets.json differs:\n  TypeScript: {json.dumps(assets_a)[:2000]}\n  Python:     {json.dumps(assets_b)[:2000]}")
    for asset in sorted(set(assets_a.get("files", {})) & set(assets_b.get("files", {}))):
        path = assets_a["files"][asset]["source"]["path"]
        out.extend(_tree_differences(os.path.join(ts_assembly, path), os.path.join(py_assembly, path), path))
    na, nb = _annotations(ta), _annotations(pa)
    if na != nb:
        for path in sorted(set(na) | set(nb)):
            if na.get(path) != nb.get(path):
                out.append(f"annotations of {path}:\n  TypeScript: {json.dumps(na.get(path))}\n  Python:     {json.dumps(nb.get(path))}")
    return out


def main(ts_assembly, py_assembly):
    names = sorted(set(stacks(ts_assembly)) | set(stacks(py_assembly)))
    failed = False
    for name in names:
        diffs = stack_differences(ts_assembly, py_assembly, name)
        failed |= bool(diffs)
        print(f"{name}: {'the same' if not diffs else f'{len(diffs)} difference(s)'}")
        for d in diffs:
            print("  " + d.replace("\n", "\n  "))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
