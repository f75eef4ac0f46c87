"""Start real ROS 2 node processes for tests, held on loopback DDS, and always clean them up.

    with NodeGroup(tmp_path) as nodes:
        nodes.start_executable("redraw_sim", "twin_node", params={"robot": "db"}, param_files=[...])
        nodes.start_python(script, args)
        ...
    # every process (and its children) is ended on exit, test failed or not

Each NodeGroup gets its own ROS_DOMAIN_ID (unique per test process and group), its own ROS_HOME under the
test's folder, and ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "install"
_counter = itertools.count()


def unique_domain_id() -> int:
    """A ROS_DOMAIN_ID in [1, 100] that differs between concurrent test processes and groups."""
    return 1 + (os.getpid() * 7 + next(_counter) * 13) % 100


def ros_env(run_dir: Path, domain_id: int | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["ROS_DOMAIN_ID"] = str(domain_id if domain_id is not None else unique_domain_id())
    env["ROS_HOME"] = str(run_dir / "ros_home")
    env["ROS_LOG_DIR"] = str(run_dir / "ros_home" / "log")
    env["PYTHONUNBUFFERED"] = "1"
    env["RCUTILS_LOGGING_BUFFERED_STREAM"] = "0"
    Path(env["ROS_LOG_DIR"]).mkdir(parents=True, exist_ok=True)
    return env


def executable_path(package: str, executable: str) -> Path:
    path = INSTALL / package / "lib" / package / executable
    if not path.exists():
        raise FileNotFoundError(f"executable {package}/{executable} not installed: expected {path} (run 'make setup')")
    return path


class NodeProcess:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "wb")
        # own process group: signals reach the node and anything it spawned
        self.proc = subprocess.Popen(argv, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        if self.alive():
            os.killpg(self.proc.pid, sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGINT, then SIGTERM, then SIGKILL, each with a grace period. Returns the exit code."""
        for sig, grace in ((signal.SIGINT, timeout), (signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0)):
            if not self.alive():
                break
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                continue
        self._log.close()
        return self.proc.returncode


class NodeGroup:
    """A set of node processes sharing one DDS domain; a context manager that ends them all."""

    def __init__(self, run_dir: Path, domain_id: int | None = None):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.env = ros_env(self.run_dir, domain_id)
        self.procs: list[NodeProcess] = []

    def __enter__(self) -> NodeGroup:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop_all()

    def stop_all(self) -> None:
        for p in reversed(self.procs):
            p.stop()

    def _start(self, name: str, argv: list[str]) -> NodeProcess:
        proc = NodeProcess(name, argv, self.env, self.run_dir / f"{name}.{len(self.procs)}.log")
        self.procs.append(proc)
        return proc

    def start_python(self, script: Path | str, args: list[str] | None = None, name: str | None = None) -> NodeProcess:
        return self._start(name or Path(script).stem, [sys.executable, str(script), *(args or [])])

    def start_executable(
        self,
        package: str,
        executable: str,
        *,
        name: str | None = None,
        namespace: str | None = None,
        params: dict[str, Any] | None = None,
        param_files: list[Path] | None = None,
        args: list[str] | None = None,
    ) -> NodeProcess:
        """Start an installed node executable with --ros-args, as `ros2 run` / a launch file would."""
        argv = [str(executable_path(package, executable)), *(args or []), "--ros-args"]
        if name:
            argv += ["-r", f"__node:={name}"]
        if namespace:
            argv += ["-r", f"__ns:=/{namespace.strip('/')}"]
        for f in param_files or []:
            argv += ["--params-file", str(f)]
        if params:
            # one params file keeps types exact (no string parsing of -p values)
            pfile = self.run_dir / f"{executable}.{len(self.procs)}.params.yaml"
            pfile.write_text(yaml.safe_dump({"/**": {"ros__parameters": params}}))
            argv += ["--params-file", str(pfile)]
        return self._start(name or executable, argv)


def wait_for(predicate, timeout: float, interval: float = 0.1, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.1f} s waiting for {what}")
