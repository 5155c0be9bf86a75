"""bench/servers.cpu_seconds: a server's CPU between two readings, children included. A child
(a snapshot's) that is reaped between the readings must not take its CPU out of the sum: its
time moves into its parent's reaped-children figure, and the sum only grows."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import servers  # noqa: E402

CHILD = """
import os, sys, time
pid = os.fork()
if pid == 0:
    t = time.process_time()
    while time.process_time() - t < 0.3:
        pass
    os._exit(0)
sys.stdin.readline()          # the test has read once, with the child alive
os.waitpid(pid, 0)
print("reaped", flush=True)
time.sleep(30)
"""


class _Server:
    def __init__(self, proc):
        self.proc = proc


def test_a_child_reaped_between_readings_stays_in_the_sum():
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        server = _Server(proc)
        deadline = time.monotonic() + 10
        while servers.cpu_seconds(server) < 0.15 and time.monotonic() < deadline:
            time.sleep(0.02)   # the child is burning CPU
        before = servers.cpu_seconds(server)
        assert before >= 0.15
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "reaped"
        assert servers.cpu_seconds(server) >= before
    finally:
        proc.kill()
        proc.wait()
