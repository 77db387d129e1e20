"""The emulator as a process: it ends promptly on SIGTERM and SIGINT, even while a request is in
flight, and when whatever started it is killed (`make emulator`, a test process that timed out):
that orphan used to keep running, holding its port and CI's output pipe."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def start() -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "shiftguard_emulator.py"), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()
    assert line.startswith("SHIFTGUARD_EMULATOR_READY "), line
    return process, line.split()[1]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_the_emulator_within_two_seconds_even_mid_request(sig: int) -> None:
    process, url = start()
    try:
        # A request held by an injected latency fault: a thread of the server is busy.
        body = b'{"service": "lambda", "operation": "ListFunctions", "kind": "latency", "delay_ms": 60000}'
        urllib.request.urlopen(urllib.request.Request(f"{url}/_shiftguard/faults", data=body, method="POST"), timeout=5)
        threading.Thread(target=lambda: _quietly(lambda: urllib.request.urlopen(f"{url}/2015-03-31/functions/", timeout=90)),
                         daemon=True).start()
        time.sleep(0.3)
        started = time.monotonic()
        process.send_signal(sig)
        process.wait(timeout=5)
        assert time.monotonic() - started < 2.0
    finally:
        if process.poll() is None:
            process.kill()


def _quietly(call) -> None:
    try:
        call()
    except Exception:
        pass


def test_the_emulator_dies_with_the_process_that_started_it() -> None:
    # A parent that starts the emulator and is then killed outright (SIGKILL: no cleanup runs).
    parent = subprocess.Popen(
        [sys.executable, "-c", (
            "import subprocess, sys, time\n"
            f"p = subprocess.Popen([sys.executable, {os.path.join(HERE, 'shiftguard_emulator.py')!r}, '--port', '0'],"
            " stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)\n"
            "print(p.stdout.readline().strip(), p.pid, flush=True)\n"
            "time.sleep(600)\n")],
        stdout=subprocess.PIPE, text=True)
    ready, pid = parent.stdout.readline().rsplit(" ", 1)
    assert ready.startswith("SHIFTGUARD_EMULATOR_READY "), ready
    child = int(pid)
    parent.kill()
    parent.wait(timeout=5)
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    alive = _alive(child)
    if alive:
        os.kill(child, signal.SIGKILL)
    assert not alive, "the emulator outlived the process that started it"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
