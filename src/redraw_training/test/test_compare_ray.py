"""The task graph of compare (redraw_training.cluster) on a local Ray instance: a failing cell keeps its error and stops
only the cells that need it; a resumed graph submits nothing that finished; one driver per folder. The comparison on a
two-node cluster is test_compare_cluster.py."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from redraw_training.cluster import (  # noqa: E402
    CELL_JSON,
    RECORD_JSON,
    Cell,
    ClusterError,
    folder_lock,
    is_complete,
    is_done,
    restore_records,
    run_graph,
    write_records,
)


def _toy(cell: Cell, inputs: dict[str, Path], out: Path, log) -> None:
    """A cell that sums its inputs' numbers and its own; spec bad=True raises as a real cell does on bad data."""
    if cell.spec.get("bad"):
        raise ValueError(f"{cell.name}: bad data")
    total = cell.spec["value"] + sum(int((folder / "n.txt").read_text()) for folder in inputs.values())
    (out / "n.txt").write_text(str(total))
    log(f"{cell.name} = {total}")


def _graph(bad: bool = False) -> list[Cell]:
    return [Cell("a", "first", spec={"value": 1}), Cell("b", "first", spec={"value": 2, "bad": bad}),
            Cell("c/x", "second", ("a",), spec={"value": 10}), Cell("c/y", "second", ("a", "b"), spec={"value": 20}),
            Cell("d", "third", ("c/y",), spec={"value": 100})]


def test_a_failing_cell_keeps_its_error_and_stops_only_what_needs_it(local_ray, tmp_path):
    run = run_graph(_graph(bad=True), _toy, tmp_path, log=lambda line: None)
    assert run.failed["b"] == "ValueError: b: bad data"
    assert run.failed["c/y"] == "input b failed" and run.failed["d"] == "input c/y failed"
    assert set(run.failed) == {"b", "c/y", "d"}
    assert (tmp_path / "c/x/n.txt").read_text() == "11" and is_done(tmp_path / "c/x")
    assert not (tmp_path / "b").exists() and not (tmp_path / "d").exists()
    assert "bad data" in (tmp_path / "logs" / "b.log").read_text()          # the traceback is kept
    assert run.starts.get("d", 0) == 0                                       # never started


def test_a_resumed_graph_runs_only_what_is_not_done(local_ray, tmp_path):
    first = run_graph(_graph(), _toy, tmp_path, log=lambda line: None)
    assert first.failed == {} and first.starts == {c.name: 1 for c in _graph()}
    assert (tmp_path / "d/n.txt").read_text() == str(100 + 20 + 1 + 2)
    again = run_graph(_graph(), _toy, tmp_path, log=lambda line: None)
    assert again.submitted == [] and again.starts == {} and len(again.done_before) == 5
    shutil.rmtree(tmp_path / "c/y")                 # as if the driver had been killed before it wrote c/y (writes are atomic)
    third = run_graph(_graph(), _toy, tmp_path, log=lambda line: None)
    assert third.submitted == ["c/y"] and third.starts == {"c/y": 1}      # d is done: it is not rerun
    assert json.loads((tmp_path / "c/y" / CELL_JSON).read_text())["spec"] == {"value": 20}
    assert not list(tmp_path.glob("c/.*.tmp"))                              # no scratch folder left


def test_what_cannot_run_as_asked_is_refused_before_anything_runs(local_ray, tmp_path):
    """A cell asking more CPUs than any node has (it would wait forever), a finished cell made with other settings
    (its results would be mixed with new ones), a folder no finished cell wrote (it would be replaced), a cell listed
    before its input: each refused up front, naming the cell, with nothing submitted."""
    with pytest.raises(ClusterError, match="a: asks 8 CPUs and 0 GPUs, the largest node has 2 and 0"):
        run_graph([Cell("a", "first", cpus=8.0, spec={"value": 1})], _toy, tmp_path, log=lambda line: None)
    assert run_graph(_graph(), _toy, tmp_path, log=lambda line: None).failed == {}
    changed = [Cell(c.name, c.stage, c.deps, spec={**c.spec, "value": 3}) if c.name == "c/x" else c for c in _graph()]
    with pytest.raises(ClusterError, match="c/x was made with other settings \\(value differ: 10 there, 3 now\\)"):
        run_graph(changed, _toy, tmp_path, log=lambda line: None)
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "summary.json").write_text("{}")                # e.g. a run folder of an older compare
    with pytest.raises(ClusterError, match="e exists but holds no finished cell"):
        run_graph([*_graph(), Cell("e", "third", spec={"value": 0})], _toy, tmp_path, log=lambda line: None)
    with pytest.raises(ClusterError, match="f: needs \\['g'\\], which are not given and not cells listed before it"):
        run_graph([Cell("f", "x", ("g",), spec={"value": 0}), Cell("g", "x", spec={"value": 0})], _toy, tmp_path / "2", log=lambda line: None)
    assert (tmp_path / "e" / "summary.json").read_text() == "{}"      # nothing touched


def _heavy(cell: Cell, inputs: dict[str, Path], out: Path, log) -> None:
    """_toy with a large file: the sum is read from the inputs' big/w.txt (over the records' limit in the test) and kept
    small in n.json too."""
    total = cell.spec["value"] + sum(int((folder / "big" / "w.txt").read_text()) for folder in inputs.values())
    (out / "big").mkdir()
    (out / "big" / "w.txt").write_text(str(total).rjust(4096))
    (out / "n.json").write_text(json.dumps({"total": total}))


def test_records_resume_a_sweep_elsewhere_and_are_recomputed_only_where_a_cell_to_run_needs_them(local_ray, tmp_path):
    """A sweep's records (its cells without their large files) restored on another machine: every recorded cell counts
    as done and is not rerun; a new cell whose inputs are records gets them recomputed first, and only those, whose
    large files match the recorded hashes."""
    first, records, elsewhere = tmp_path / "first", tmp_path / "records", tmp_path / "elsewhere"
    assert run_graph(_graph(), _heavy, first, log=lambda line: None).failed == {}
    (first / "results.json").write_text("{}")
    assert write_records(first, records, limit=1024) == ["a", "b", "c/x", "c/y", "d"]
    record = json.loads((records / "d" / RECORD_JSON).read_text())
    assert list(record["left_out"]) == ["big/w.txt"] and record["left_out"]["big/w.txt"]["bytes"] == 4096
    assert not (records / "d" / "big").exists() and (records / "d" / "n.json").is_file()
    assert (records / "logs" / "d.log").is_file() and (records / "results.json").is_file()
    stamp = (records / "d" / RECORD_JSON).stat().st_mtime_ns
    write_records(first, records, limit=1024)                            # recorded already: not written (nor hashed) again
    assert (records / "d" / RECORD_JSON).stat().st_mtime_ns == stamp

    assert restore_records(records, elsewhere) == ["a", "b", "c/x", "c/y", "d"]
    assert is_done(elsewhere / "d") and not is_complete(elsewhere / "d")
    again = run_graph(_graph(), _heavy, elsewhere, log=lambda line: None)
    assert again.submitted == [] and len(again.done_before) == 5          # a record is done: nothing reruns

    lines: list[str] = []
    more = run_graph([*_graph(), Cell("e", "fourth", ("d",), spec={"value": 1000})], _heavy, elsewhere, log=lines.append)
    assert more.failed == {} and more.submitted == ["a", "b", "c/y", "d", "e"]     # c/x is not needed by e: still a record
    assert json.loads((elsewhere / "e" / "n.json").read_text())["total"] == 1000 + 100 + 20 + 1 + 2
    assert is_complete(elsewhere / "d") and not is_complete(elsewhere / "c/x")
    assert sum("recomputed from its record: 1 of the 1 left-out files it makes are identical" in line for line in lines) == 4
    assert restore_records(records, elsewhere) == []                    # what the sweep folder has is never replaced

    record = json.loads((records / "a" / RECORD_JSON).read_text())    # as if a's recomputation made other bytes
    record["left_out"]["big/w.txt"]["sha256"] = "0" * 64
    (records / "a" / RECORD_JSON).write_text(json.dumps(record))
    restore_records(records, tmp_path / "third")
    lines.clear()

    def broken(cell: Cell) -> None:
        raise OSError("No space left on device")

    last = run_graph([*_graph(), Cell("e", "fourth", ("c/x",), spec={"value": 1000})], _heavy, tmp_path / "third", log=lines.append,
                     on_done=broken)
    assert last.failed == {} and last.submitted == ["a", "c/x", "e"] and last.differs == {"a": ["big/w.txt"]}
    assert any("1 differ (big/w.txt)" in line for line in lines)
    assert sum("on_done hook failed: OSError: No space left on device" in line for line in lines) == 3   # the sweep went on


def test_a_second_driver_on_the_same_folder_is_refused(tmp_path):
    with folder_lock(tmp_path, "compare"):
        with pytest.raises(ClusterError, match=f"being run by another compare \\(pid {os.getpid()}\\)"):
            with folder_lock(tmp_path, "compare"):
                pass
    with folder_lock(tmp_path, "compare"):      # released when the holder is done
        pass


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


def _listening(pids: set[int]) -> list[str]:
    """The addresses (hex ip:port as /proc/net/tcp{,6} write them) that the processes `pids` listen on."""
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:              # state LISTEN, owned by one of `pids`
                found.append(fields[1])
    return found


def test_the_local_instance_listens_on_loopback_only(local_ray):
    """compare's local Ray instance (no --ray-address) is for this machine alone: node IP 127.0.0.1, and every
    server of it (GCS, raylet, workers) listens on 127.0.0.1, none on all interfaces."""
    assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}
    addresses = _listening(_descendants(os.getpid()))
    loopback = ("0100007F:", "0000000000000000FFFF00000100007F:")       # 127.0.0.1 in tcp and (v4-mapped) tcp6
    assert len(addresses) >= 3 and all(a.startswith(loopback) for a in addresses), addresses
