"""The state every emulator session starts with (`seed`); the sample application `--seed-sample`
adds is `sample.py`."""

from __future__ import annotations

import json

from state import DEFAULT_ACCOUNT


DEMO_ROLE = "shiftguard-lambda-role"


def seed() -> None:
    """State every session starts with: an execution role Lambda can assume, so that functions
    can be created without an IAM round trip in every test."""
    from moto.iam.models import iam_backends

    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
        }
    )
    iam_backends[DEFAULT_ACCOUNT]["global"].create_role(
        role_name=DEMO_ROLE,
        assume_role_policy_document=policy,
        path="/",
        permissions_boundary=None,
        description="Execution role for functions created in the local emulator",
        tags=[],
        max_session_duration="3600",
    )
