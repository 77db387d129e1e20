"""What the scripts that run ShiftGuard's functions locally share (tests/byhand/doctor.py,
tests/byhand/run.py, tests/demo/rollout.py, tests/demo/demo.py): a free port, whether something
answers at a URL, `cargo lambda watch` started in a session of its own and that session stopped, and
the argument parser a script's docstring describes.

The scripts run as files (`python tests/byhand/doctor.py`): each puts tests/ on its path to import
this one."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers_at(url: str) -> bool:
    host, _, port = url.split("//")[-1].rstrip("/").partition(":")
    with socket.socket() as s:
        return s.connect_ex((host, int(port or 80))) == 0


def stop_session(proc: subprocess.Popen) -> None:
    """A process started in a session of its own, with whatever it started (cargo lambda leaves the
    function processes behind otherwise): SIGTERM, then SIGKILL after 15 s."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    proc.wait()


def cargo_lambda_watch(port: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    """`cargo lambda watch` of the repository's functions on 127.0.0.1:`port`, in a session of its own
    (stop it with stop_session), its output in `log`. The venv's cargo-lambda when there is one."""
    cargo_lambda = Path(sys.executable).parent / "cargo-lambda"
    return subprocess.Popen(
        [str(cargo_lambda if cargo_lambda.exists() else "cargo-lambda"), "lambda", "watch", "--ignore-changes",
         "--invoke-address", "127.0.0.1", "--invoke-port", str(port)],
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def docstring_parser(doc: str) -> argparse.ArgumentParser:
    """A parser whose help is the script's docstring: the text before `Usage: ` its description,
    the rest of that line its usage, the lines after it its epilog."""
    description, _, rest = doc.partition("Usage: ")
    usage, _, epilog = rest.partition("\n")
    return argparse.ArgumentParser(usage=usage, description=description, epilog=epilog,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
