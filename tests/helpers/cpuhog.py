"""A CPU hog that a test starts and stops: `cores` busy-loop processes, ended by their own PIDs.

    with CpuHog(cores=1):
        ...   # the machine has one core less, as on a loaded robot computer or laptop

Used by the load tests and by `make test PYTEST_ARGS=--cpu-hog` (the root conftest), which runs every test with
one core taken.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

BUSY_LOOP = "while True:\n    pass\n"


class CpuHog:
    def __init__(self, cores: int = 1):
        if cores < 1:
            raise ValueError(f"cores must be >= 1, found {cores}")
        self.cores = cores
        self.procs: list[subprocess.Popen] = []

    def start(self) -> CpuHog:
        for _ in range(self.cores):
            self.procs.append(subprocess.Popen([sys.executable, "-c", BUSY_LOOP], stdin=subprocess.DEVNULL,
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        return self

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def alive(self) -> bool:
        return bool(self.procs) and all(p.poll() is None for p in self.procs)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
            p.wait(timeout=10)
        self.procs.clear()

    def __enter__(self) -> CpuHog:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()
