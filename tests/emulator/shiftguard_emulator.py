"""ShiftGuard's local AWS endpoint: moto server plus the operations moto lacks.

moto serves every operation it implements unchanged. This WSGI layer sits in front of it and adds:

* the operations ShiftGuard needs that moto does not implement, with the request/response shapes and
  error codes of the AWS API references (CodeDeploy, Lambda, VPC Lattice);
* `RevisionId` checking and weight validation on Lambda `UpdateAlias`;
* fault injection on any operation (throttling, HTTP 500, latency, a concurrent writer) and a log of
  every call, both driven over HTTP under `/_shiftguard/`, so that tests in any language can use them;
* CodeDeploy's rollback deployments: new deployments (creator `codeDeployRollback`, `rollbackInfo`
  both ways) made by `StopDeployment(autoRollbackEnabled)` or by the control plane
  (`POST /_shiftguard/codedeploy/deployments/{id}/rollback`).

* (opt-in) the engine: CodeDeploy Lambda deployments that run themselves, CloudWatch alarms that
  evaluate and notify, SNS delivering to Lambda, functions bound to a local Lambda Runtime API
  endpoint, time compression (`engine.py`, `alarms.py`, `sns.py`, `lambda_invocations.py`;
  `POST /_shiftguard/engine`, `--engine`, `SHIFTGUARD_ENGINE=1`);
* model conformance against botocore's service models, strict with `SHIFTGUARD_STRICT=1`/`--strict`
  (`conformance.py`, `GET /_shiftguard/conformance`);
* Lambda's log lines in CloudWatch Logs for every invocation, and FilterLogEvents with the
  documented filter pattern syntax and pagination (`cloudwatch_logs.py`);
* published Lambda versions that keep their own code hash, code and description, image functions'
  `ResolvedImageUri` (`moto_patches._lambda_versions_keep_their_code`);
* CloudWatch GetMetricData per period as documented, over JSON and CBOR (`cloudwatch_metrics.py`);
* API Gateway REST API stage canaries (`canarySettings` on CreateDeployment, CreateStage, GetStage,
  UpdateStage's canary patch paths) and operation names for every API Gateway request
  (`apigateway.py`);
* VPC Lattice RegisterTargets / DeregisterTargets / ListTargets (one target per LAMBDA target group,
  target statuses), Lattice tags on any resource ARN (`lattice_targets.py`), Lambda tag limits
  (`lambda_service.py`).

Which of these behaviours AWS documents and which are our guesses: `MODELLED.md` beside this file,
one section per service, naming the module of each. Its own tests: `make emulator-test` (pytest,
`test_*.py` here).

This file is the entry point (arguments, signals, start-up); the emulator is split by
responsibility, each module importing only those below it (`test_shape.py` checks there is no
cycle):

* `server.py` (the WSGI layer), `routing.py` (which operation a request is), `faults.py` (faults
  and the call log), `authorize.py` (IAM at the edge), `control_plane.py` (`/_shiftguard/...`);
* per service: `codedeploy.py` (+ `codedeploy_model.py`, `deployment_configs.py`, `engine.py`),
  `lambda_service.py` (+ `lambda_invocations.py`), `lattice.py` and `lattice_targets.py`,
  `alarms.py` and `cloudwatch_metrics.py` (CloudWatch), `cloudwatch_logs.py`, `apigateway.py`,
  `sns.py`, `iam.py` and `stacks.py`, `cbor_edge.py`, `conformance.py`;
* shared: `state.py` (account, lock, moto's backends, time), `errors.py`, `engine_settings.py`
  (the engine's switch and clock), `tags.py`;
* `moto_patches.py` (applied once at start-up), `seed.py` and `sample.py` (starting states).

Run: `python shiftguard_emulator.py [--host 127.0.0.1] [--port 0] [--engine] [--time-scale N] [--strict] [--seed-sample]`
(`--seed-sample`: the sample application `sample.py` describes, and how to run each function against it). It prints one line,
`SHIFTGUARD_EMULATOR_READY http://HOST:PORT`, once it accepts connections.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from typing import Any

# The modules beside this file import each other by name, wherever the process was started from.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server  # noqa: E402

import conformance  # noqa: E402
import engine  # noqa: E402
import moto_patches  # noqa: E402
import sample  # noqa: E402
import state  # noqa: E402
from engine_settings import SETTINGS  # noqa: E402
from seed import seed  # noqa: E402
from server import ShiftGuardEmulator  # noqa: E402


def exit_on_signals() -> None:
    """SIGTERM and SIGINT end the process at once (nothing is worth flushing; no request thread,
    ticker or hook invocation in flight may hold it), and so does its parent's death: it was seen
    to outlive a `kill` for minutes — the kill of the process that had started it."""
    import signal

    def stop(signum: int, _frame: Any) -> None:
        print(f"shiftguard emulator: signal {signum}, exiting", file=sys.stderr, flush=True)
        os._exit(0)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    # The emulator dies with whatever started it (`make emulator`, a test process killed by a
    # timeout, the demo): an orphan would keep its port and CI's output pipe open. Linux only.
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        parent = os.getppid()
        if libc.prctl(1, int(signal.SIGTERM)) == 0 and os.getppid() != parent:  # PR_SET_PDEATHSIG
            os._exit(0)  # the parent was already gone
    except (OSError, AttributeError):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--engine", action="store_true", help="CodeDeploy deployments, alarms and SNS run themselves (also SHIFTGUARD_ENGINE=1)")
    parser.add_argument("--time-scale", type=float, default=None, help="emulated seconds per real second (also SHIFTGUARD_TIME_SCALE)")
    parser.add_argument("--strict", action="store_true", help="off-model answers become HTTP 500 (also SHIFTGUARD_STRICT=1)")
    parser.add_argument("--seed-sample", action="store_true",
                        help="create the sample application the events in events/ name, print how to run each function against it (also SHIFTGUARD_SEED=sample)")
    args = parser.parse_args()
    seed_sample = args.seed_sample or os.environ.get("SHIFTGUARD_SEED", "") == "sample"
    if args.engine:
        SETTINGS.enabled = True
    if args.time_scale is not None:
        SETTINGS.update({"timeScale": args.time_scale})
    if args.strict:
        conformance.STRICT = True

    app = ShiftGuardEmulator(DomainDispatcherApplication(create_backend_app))
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    exit_on_signals()
    url = f"http://{args.host}:{server.port}"
    state.SELF_URL = url
    moto_patches.install()
    if SETTINGS.enabled:
        engine.ENGINE.ensure_ticker()
    seed()
    if seed_sample:
        # Seeded through the emulator's own API: it has to be serving first. The ready line stays
        # the first line printed (the tests read it), the instructions follow it.
        serving = threading.Thread(target=server.serve_forever, daemon=True)
        serving.start()
        info = sample.seed(url)
        info["iamLine"] = sample.enforce_iam(url, info)
        print(f"SHIFTGUARD_EMULATOR_READY {url}", flush=True)
        print(sample.instructions(info), flush=True)
        try:
            while serving.is_alive():
                serving.join(0.5)
        except KeyboardInterrupt:
            server.shutdown()
        return
    print(f"SHIFTGUARD_EMULATOR_READY {url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
