"""A Python CDK app on the jsii-built shiftguard-cdk wheel (make cdk-python): the pack test's app
(tiny.py), the Protect and Lattice example stacks (examples.py) and the rest of the API
(surface.py), synthesized into one cloud assembly. cdk/test/python-twins.ts builds the same stacks
in TypeScript; test_python.py compares the two assemblies.

    python app.py OUTDIR ASSET_DIR
"""
import os
import sys

from aws_cdk import App
from aws_cdk import aws_lambda as lambda_

from examples import LatticeExampleStack, ProtectExampleStack
from surface import surface
from tiny import tiny

STAND_IN_ZIP = bytes.fromhex("504b0506" + "00" * 18)  # an empty zip: the templates do not depend on the code


def stand_in_assets(asset_dir: str) -> str:
    for binary in ("pre-traffic", "post-traffic", "rollback", "shift"):
        os.makedirs(os.path.join(asset_dir, binary), exist_ok=True)
        with open(os.path.join(asset_dir, binary, "bootstrap.zip"), "wb") as f:
            f.write(STAND_IN_ZIP)
    return os.path.abspath(asset_dir)


def main(outdir: str, asset_dir: str) -> None:
    assets = stand_in_assets(asset_dir)
    app = App(outdir=outdir, analytics_reporting=False)
    tiny(app, assets)
    ProtectExampleStack(app, "ShiftGuardProtectExample", asset_dir=assets, architecture=lambda_.Architecture.X86_64)
    LatticeExampleStack(app, "ShiftGuardLatticeExample", asset_dir=assets, architecture=lambda_.Architecture.X86_64)
    surface(app, assets)
    app.synth()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
