"""The tiny synthetic comparison (2 seeds, draw_zeroshot + redraw, 1 condition, pretraining per seed) on a real two-node
Ray cluster on loopback: a head and a worker node of 1 CPU each (`ray start`, torn down by PID after). Its rows equal
those of the same comparison on a local instance of 1 CPU, also when the worker node is killed while it runs a cell
(the cell runs again on the head; every cell is in the results once).

`ray start` makes a node reachable from other machines (it turns 127.0.0.1 into the machine's address and its servers
listen on every interface), so the test runs itself again inside a network namespace of its own (`unshare --net`),
where loopback is the only interface: nothing it starts can be reached from outside. The cluster uses Ray's token
authentication with a token made for the test."""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from redraw_training.cluster import CELL_JSON  # noqa: E402

RAY = str(Path(sys.executable).with_name("ray"))
INSIDE = "REDRAW_PRIVATE_NETWORK" in os.environ


def _loopback_up() -> None:
    """Bring up `lo`, the one interface of a new network namespace (SIOCGIFFLAGS / SIOCSIFFLAGS, IFF_UP)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = struct.unpack("16sh", fcntl.ioctl(s, 0x8913, struct.pack("16sh", b"lo", 0))[:18])[1]
        fcntl.ioctl(s, 0x8914, struct.pack("16sh", b"lo", flags | 0x1))


ARGS = ["--env", "redraw/PointGoal-v0", "--target-perturb", "reversed", "--seeds", "2", "--methods", "draw_zeroshot,redraw",
        "--preset", "tiny", "--pretrain-steps", "110", "--updates", "4", "--sizes", "60", "--eval-episodes", "2",
        "--set", "run.prefill=100", "--set", "imag_starts=32", "--set", "calibrate.log_every=2"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    """`ray start ... --block` in its own session, so that the node (raylet, its workers) ends with one killpg."""

    def __init__(self, args: list[str], log: Path):
        self.log = open(log, "w")
        self.proc = subprocess.Popen([RAY, "start", "--block", "--node-ip-address", "127.0.0.1", *args], stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def tasks(self) -> list[str]:
        """Titles of this node's processes that run a cell (Ray names a worker ray::<task name>, and compare's task names
        are the cells' folders: pretrain/draw_seed0, ...; Ray's own processes are ray::IDLE, ray::DashboardAgent, ...)."""
        titles = []
        for pid in os.listdir("/proc"):
            try:
                if pid.isdigit() and os.getsid(int(pid)) == self.proc.pid:
                    title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
                    if title.startswith("ray::") and "/" in title:
                        titles.append(title)
            except (OSError, ProcessLookupError):
                continue
        return titles

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)
        self.log.close()


@contextmanager
def two_nodes(tmp_path: Path):
    """A head node and a worker node of 1 CPU each on 127.0.0.1; yields (address, worker)."""
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")        # short: Ray's socket paths must fit in 107 characters
    port = _free_port()
    head = Node(["--head", "--port", str(port), "--num-cpus", "1", "--include-dashboard", "false", "--temp-dir", temp,
                 "--object-store-memory", str(200 * 2**20), "--disable-usage-stats"], tmp_path / "head.log")
    address = f"127.0.0.1:{port}"
    worker = None
    try:
        deadline = time.time() + 120
        while subprocess.run([RAY, "status", "--address", address], capture_output=True).returncode != 0:
            assert time.time() < deadline and head.proc.poll() is None, (tmp_path / "head.log").read_text()
            time.sleep(1)
        worker = Node(["--address", address, "--num-cpus", "1", "--object-store-memory", str(200 * 2**20)], tmp_path / "worker.log")
        ray.init(address=address, log_to_driver=False)
        while sum(n["Alive"] for n in ray.nodes()) < 2:
            assert time.time() < deadline and worker.proc.poll() is None, (tmp_path / "worker.log").read_text()
            time.sleep(0.5)
        assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}
        ray.shutdown()
        yield address, worker
    finally:
        if ray.is_initialized():
            ray.shutdown()
        for node in (worker, head):
            if node is not None:
                node.kill()
        shutil.rmtree(temp, ignore_errors=True)


def _rows(out: Path) -> dict[tuple, dict]:
    rows = json.loads((out / "results.json").read_text())["rows"]
    return {(r["method"], r["perturb"], r["size"], r["seed"]): r for r in rows}


def _assert_same(a: dict[tuple, dict], b: dict[tuple, dict]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert b[key]["returns"] == pytest.approx(a[key]["returns"], abs=1e-6), key
        if "holdout" in a[key]:
            assert json.dumps(b[key]["holdout"], sort_keys=True) == json.dumps(a[key]["holdout"], sort_keys=True), key


@pytest.mark.slow
def test_two_node_cluster_gives_the_local_rows_and_survives_a_lost_worker_node(tmp_path):
    if not INSIDE:                       # run this test again in a network namespace of its own (see the module doc)
        assert shutil.which("unshare"), "needs util-linux's unshare"
        test = f"{Path(__file__)}::test_two_node_cluster_gives_the_local_rows_and_survives_a_lost_worker_node"
        # the nodes and the driver share a token made for this run (Ray reads these when it is imported)
        env = {**os.environ, "REDRAW_PRIVATE_NETWORK": "1", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
               "RAY_USAGE_STATS_ENABLED": "0"}
        proc = subprocess.run(["unshare", "--net", "--", sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test,
                               "--basetemp", str(tmp_path / "inside")], env=env, capture_output=True, text=True, timeout=1500)
        assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout[-8000:] + proc.stderr[-3000:]
        return
    _loopback_up()
    with two_nodes(tmp_path) as (address, worker):
        _cluster_checks(tmp_path, address, worker)


def _cluster_checks(tmp_path: Path, address: str, worker: Node) -> None:
    from redraw_training.cli.compare import main

    assert main([*ARGS, "--out", str(tmp_path / "local"), "--jobs", "1"]) == 0
    local = _rows(tmp_path / "local")
    assert len(local) == 4

    assert main([*ARGS, "--out", str(tmp_path / "cluster"), "--ray-address", address]) == 0
    _assert_same(local, _rows(tmp_path / "cluster"))
    nodes = {json.loads(p.read_text())["node"] for p in (tmp_path / "cluster").rglob(CELL_JSON)}
    assert len(nodes) == 2                                          # both nodes ran cells

    killed: list[str] = []

    def kill_when_busy():                                           # the worker node dies in the middle of a cell
        deadline, seen = time.time() + 300, set()
        while time.time() < deadline and not killed:
            running = set(worker.tasks())
            if running & seen:                                      # the same cell still running 0.5 s later
                killed.extend(sorted(running & seen))
                worker.kill()
            seen = running
            time.sleep(0.5)

    killer = threading.Thread(target=kill_when_busy, daemon=True)
    killer.start()
    assert main([*ARGS, "--out", str(tmp_path / "lost"), "--ray-address", address]) == 0
    killer.join(timeout=1)
    assert killed, "the worker node never ran a cell"
    results = json.loads((tmp_path / "lost" / "results.json").read_text())
    assert results["failed"] == {} and results["cells"]["total"] == 10     # 2 pretrain, 2 data, 2 offline, 4 evaluate
    starts = results["cells"]["starts"]
    assert [starts[title.removeprefix("ray::")] for title in killed] == [2] * len(killed), (killed, starts)  # ran again
    _assert_same(local, _rows(tmp_path / "lost"))                       # every cell once, with the same numbers
