"""Sweeps on Ray: a task graph of cells, each of which writes one folder, on a local Ray instance or a cluster.

A cell is one unit of a sweep (a pretraining, a target dataset, a calibration and its evaluation, ...). It needs the
folders of the cells it depends on and writes one folder of its own. Workers need no shared filesystem: a task gets
its inputs' folders as Ray objects (the producing task's return value, passed on as an object reference, so a cell
starts as soon as its inputs exist), runs in a scratch folder of its node and returns its folder as bytes; the driver
writes it into the sweep's folder atomically (scratch folder + rename), so a killed driver leaves no half cell. A cell
whose folder holds `cell.json` is done: a resumed sweep submits nothing for it.

    with ray_session(address=None, cpus=2, log=print):
        failed = run_graph(cells, execute, root, log=print)

`execute(cell, inputs, out, log)` does the work of one cell: `inputs` maps each dependency's name to its folder on
the worker, `out` is the (empty) folder to fill. A worker process that dies (a killed node, out of memory) is retried
up to `retries` times; an exception raised by `execute` (bad data, a NaN) fails its cell and the cells that need it,
with the error kept, and the rest of the graph goes on.

A sweep longer than one machine's life goes on elsewhere from its records: `write_record` copies a finished cell's
folder without its weights, episodes and other large files, and names each file it left out with its size and sha256 in
`record.json`; `restore_records` puts records into a new sweep folder. A record counts as done (its results are
reported, it is not rerun) until a cell still to run needs it as an input: then run_graph recomputes it first and
logs whether the recomputed large files match the recorded hashes.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import shutil
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redraw_common.errors import RedrawInputError
from redraw_common.files import read_json, sha256_file, write_json

#: the marker of a finished cell folder: what ran, where, for how long
CELL_JSON = "cell.json"
#: per-cell logs, under the sweep's folder
LOGS = "logs"


class ClusterError(RedrawInputError):
    """A sweep that cannot run: its folder is in use, the cluster cannot be reached."""


@dataclass(frozen=True)
class Cell:
    name: str                              # its folder under the sweep's root, e.g. "runs/redraw/reversed_n40/seed0"
    stage: str                             # the progress line it counts in ("pretrain", "data", ...)
    deps: tuple[str, ...] = ()             # names of the cells (or given inputs) whose folders it reads
    cpus: float = 1.0
    gpus: float = 0.0
    spec: dict[str, Any] = field(default_factory=dict, hash=False)   # what it computes (method, seed, settings, ...)
    ships: tuple[str, ...] = ()            # the files its dependents get (path prefixes, e.g. "checkpoint/"); () = all


#: a cell folder written by write_record: the files it left out
RECORD_JSON = "record.json"
#: the largest file a record keeps, bytes
RECORD_LIMIT = 512 * 1024
#: what a record never keeps, whatever its size: episodes (datasets, replay) and weights
RECORD_LEAVES_OUT = (".npz", ".safetensors", ".onnx")


def is_done(folder: Path) -> bool:
    return (folder / CELL_JSON).is_file()


def is_complete(folder: Path) -> bool:
    """A done cell that holds every file it made (not a record missing what it left out): usable as an input."""
    left_out = (read_json(folder / RECORD_JSON) or {}).get("left_out", {})
    return is_done(folder) and all((folder / rel).is_file() for rel in left_out)


# ----------------------------------------------------------------------------------------------------------
# folders as bytes (what travels between nodes)


def pack(folder: Path, only: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Every file under `folder` (links followed) by its relative POSIX path; with `only`, those whose path starts
    with one of its prefixes."""
    folder = Path(folder)
    files = {}
    for top, dirs, names in os.walk(folder, followlinks=True):
        dirs.sort()
        for name in sorted(names):
            rel = (Path(top) / name).relative_to(folder).as_posix()
            if not only or rel.startswith(only):
                files[rel] = (Path(top) / name).read_bytes()
    return files


def unpack(files: dict[str, bytes], folder: Path) -> Path:
    folder = Path(folder)
    for rel, data in files.items():
        path = folder / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            raise ValueError(f"refusing to write {rel!r} outside {folder}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def commit(files: dict[str, bytes], dest: Path) -> Path:
    """Write a cell's folder: into a scratch folder beside `dest`, then one rename, so `dest` is either absent (or
    the unfinished folder an earlier run left, replaced here) or complete."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp"))
    try:
        unpack(files, scratch)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(scratch, dest)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return dest


# ----------------------------------------------------------------------------------------------------------
# records: a sweep's results without its large files, to commit and resume from


def _files(folder: Path) -> Iterator[tuple[str, Path]]:
    for top, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if not name.startswith("."):
                yield (Path(top) / name).relative_to(folder).as_posix(), Path(top) / name


def write_record(root: Path, name: str, dest: Path, limit: int = RECORD_LIMIT) -> Path:
    """The record of the finished cell root/name in dest/name (written atomically, replacing an older one): its JSON files
    (cell.json, summaries, evaluations: what the results are read from) and each other file up to `limit` bytes except
    episodes and weights (RECORD_LEAVES_OUT), e.g. curves and scalars; its log under dest/logs; and record.json naming
    every file it left out with its size and sha256. A cell recorded already (the same cell.json) is left as it is."""
    src, out = Path(root) / name, Path(dest) / name
    if not is_done(src):
        raise ClusterError(f"{src} is not a finished cell ({CELL_JSON} missing): nothing to record")
    if (out / RECORD_JSON).is_file() and (out / CELL_JSON).read_bytes() == (src / CELL_JSON).read_bytes():
        return out                       # recorded already (cell.json says when and where the cell ran: one per run)
    kept: dict[str, bytes] = {}
    left_out = dict((read_json(src / RECORD_JSON) or {}).get("left_out", {}))     # a record of a record keeps its list
    for rel, path in _files(src):
        if rel == RECORD_JSON:
            continue
        size = path.stat().st_size
        if rel.endswith(".json") or (size <= limit and not rel.endswith(RECORD_LEAVES_OUT)):
            kept[rel] = path.read_bytes()
        else:
            left_out[rel] = {"bytes": size, "sha256": sha256_file(path)}
    kept[RECORD_JSON] = (json.dumps({"left_out": left_out, "limit_bytes": limit}, indent=2) + "\n").encode()
    out = commit(kept, out)
    log = Path(root) / LOGS / f"{name}.log"
    if log.is_file() and log.stat().st_size <= limit:
        write_text(Path(dest) / LOGS / f"{name}.log", log.read_text())
    return out


def write_records(root: Path, dest: Path, limit: int = RECORD_LIMIT) -> list[str]:
    """write_record for every finished cell under `root`, and the sweep's own files at its top (results, table, plot,
    each up to `limit`); returns the cells' names."""
    root, dest = Path(root), Path(dest)
    names = sorted(Path(rel).parent.as_posix() for rel, _ in _files(root)
                   if Path(rel).name == CELL_JSON and not rel.startswith(f"{LOGS}/"))
    names = [n for n in names if not any(n.startswith(f"{m}/") for m in names if m != n)]   # cells, not their insides
    for name in names:
        write_record(root, name, dest, limit)
    for path in sorted(root.iterdir()):
        if path.is_file() and not path.name.startswith(".") and path.stat().st_size <= limit:
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest / path.name)
    return names


def restore_records(src: Path, root: Path) -> list[str]:
    """Copy the cells recorded under `src` (write_record's folders, with their logs and the top-level files) into the
    sweep folder `root`, leaving every folder and file `root` already has as it is; returns the cells restored."""
    src, root = Path(src), Path(root)
    if not src.is_dir():
        return []
    restored = []
    for rel, _ in _files(src):
        if Path(rel).name != CELL_JSON or rel.startswith(f"{LOGS}/"):
            continue
        name = Path(rel).parent.as_posix()
        if (root / name).exists() or any(name.startswith(f"{n}/") for n in restored):
            continue
        shutil.copytree(src / name, root / name)
        restored.append(name)
        log = src / LOGS / f"{name}.log"
        if log.is_file() and not (root / LOGS / f"{name}.log").exists():
            write_text(root / LOGS / f"{name}.log", log.read_text())
    for path in sorted(src.iterdir()):
        if path.is_file() and not (root / path.name).exists():
            root.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, root / path.name)
    return restored


@contextmanager
def folder_lock(root: Path, what: str = "sweep") -> Iterator[None]:
    """Hold `root`/.lock while this process drives the sweep in `root`: a second driver on the same folder is refused
    (it would write the same cells). The OS drops the lock when the holder exits, however it ends."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            raise ClusterError(f"{root} is being run by another {what} (pid {holder}); wait for it to end, or use another "
                               f"output folder") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}")
        fh.flush()
        yield


# ----------------------------------------------------------------------------------------------------------
# the Ray session

#: a local instance for this machine only: Ray's one-machine switch (its node IP is then 127.0.0.1 and every server
#: it starts listens there, not on all interfaces) and no usage report sent out
LOCAL_ONLY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


@contextmanager
def _local_only() -> Iterator[None]:
    """LOCAL_ONLY for the start of a local instance. Ray reads the switch when it is first imported, so the imported
    constant is set too (and both are put back after)."""
    from ray._private import ray_constants

    saved_env = {k: os.environ.get(k) for k in LOCAL_ONLY}
    saved = ray_constants.ENABLE_RAY_CLUSTER
    os.environ.update(LOCAL_ONLY)
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def ray_session(address: str | None, cpus: int | None, log: Callable[[str], None], gpus: int | None = None) -> Iterator[dict[str, Any]]:
    """Ray for the length of a sweep. No address: a local instance of `cpus` CPUs (default: this machine's cores) on
    127.0.0.1 only (LOCAL_ONLY), started here and stopped at the end, whatever RAY_ADDRESS or a `ray start` on this
    machine say; `address` ("auto" or HOST:PORT): join that cluster (left running; this process must run on one of
    its nodes).
    A Ray session the caller already holds (ray.init in a notebook or a test) is used as it is."""
    import ray

    if ray.is_initialized():
        yield _describe(ray, "the caller's Ray session", "")
        return
    try:
        if address:
            context = ray.init(address=address, log_to_driver=False, configure_logging=False)
            where = f"the Ray cluster at {address}"
        else:
            with _local_only():
                context = ray.init(address="local", num_cpus=int(cpus or os.cpu_count() or 1), num_gpus=gpus,
                                   include_dashboard=False, log_to_driver=False, configure_logging=False)
            where = "a local Ray instance (127.0.0.1)"
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterError(f"cannot start or join Ray ({'address ' + address if address else 'local instance'}): {exc}") from None
    try:
        info = _describe(ray, where, getattr(context, "dashboard_url", "") or "")
        log(f"ray: {where}, {info['cpus']:g} CPUs, {info['gpus']:g} GPUs on {info['nodes']} node(s)"
            + (f"; dashboard http://{info['dashboard']}" if info["dashboard"] else ""))
        yield info
    finally:
        ray.shutdown()


def _describe(ray, where: str, dashboard: str) -> dict[str, Any]:
    res = ray.cluster_resources()
    return {"where": where, "cpus": float(res.get("CPU", 0)), "gpus": float(res.get("GPU", 0)),
            "nodes": sum(1 for n in ray.nodes() if n.get("Alive")), "dashboard": dashboard}


# ----------------------------------------------------------------------------------------------------------
# one cell on a worker


class CellFailed(Exception):
    """A cell's own failure (not a lost worker): the error and the cell's log, carried back to the driver."""

    def __init__(self, error: str, log: str):
        super().__init__(error, log)
        self.error, self.log = error, log

    def __str__(self) -> str:
        return self.error


class _Tracker:
    """Which cells have started, how often (a retried cell starts again): a Ray actor on the driver's node, for the
    running / queued counts of the progress lines and the run's report."""

    def __init__(self):
        self.starts: dict[str, int] = {}

    def start(self, name: str) -> None:
        self.starts[name] = self.starts.get(name, 0) + 1

    def snapshot(self) -> dict[str, int]:
        return dict(self.starts)


@dataclass
class GraphRun:
    """What run_graph did: the cells it found done, the ones it submitted, how often each started, which failed."""

    done_before: list[str]
    submitted: list[str]
    starts: dict[str, int]
    failed: dict[str, str]              # name -> error (a cell whose input failed: "input <name> failed")
    differs: dict[str, list[str]] = field(default_factory=dict)   # recomputed record -> left-out files that came out other


def _run_cell(execute: Callable, cell: Cell, tracker, *inputs: dict[str, bytes]) -> tuple[dict[str, Any], dict[str, bytes]]:
    """A task: materialise the inputs (in/<dep name>), run `execute` into a scratch folder with what it prints kept in
    the cell's log, and return (the folder and the log for the driver, the files its dependents get)."""
    import ray

    ray.get(tracker.start.remote(cell.name))     # recorded before the work starts (the driver's counts never miss it)
    lines = io.StringIO()

    def log(line: str) -> None:
        lines.write(f"[{time.strftime('%H:%M:%S')}] {line}\n")

    t0 = time.time()
    try:
        with tempfile.TemporaryDirectory(prefix="redraw-cell-") as tmp:
            scratch = Path(tmp)
            folders = {dep: unpack(files, scratch / "in" / dep) for dep, files in zip(cell.deps, inputs)}
            out = scratch / "out"
            out.mkdir()
            with redirect_stdout(lines), redirect_stderr(lines):
                execute(cell, folders, out, log)
            write_json(out / CELL_JSON, {"name": cell.name, "stage": cell.stage, "spec": cell.spec, "seconds": time.time() - t0,
                                         "host": socket.gethostname(), "node": ray.get_runtime_context().get_node_id(),
                                         "pid": os.getpid(), "finished": time.strftime("%Y-%m-%dT%H:%M:%S")})
            return {"files": pack(out), "log": lines.getvalue()}, pack(out, cell.ships)
    except Exception as exc:
        log(traceback.format_exc())
        raise CellFailed(f"{type(exc).__name__}: {exc}", lines.getvalue()) from None


# ----------------------------------------------------------------------------------------------------------
# the graph on the driver


class _Lines:
    """One line per stage: done / running / queued cells and an ETA; live tqdm bars on a terminal, otherwise the
    lines in the log when a cell ends and at least every `every` seconds."""

    def __init__(self, cells: list[Cell], done: set[str], log: Callable[[str], None], every: float = 60.0):
        self.stages = list(dict.fromkeys(c.stage for c in cells))
        self.cells = {st: [c.name for c in cells if c.stage == st] for st in self.stages}
        self.done, self.log, self.seconds = set(done), log, {st: [] for st in self.stages}
        self.live, self.every, self.last = sys.stderr.isatty(), every, time.time()
        self.bars = {}
        if self.live:
            from tqdm import tqdm

            width = max(len(s) for s in self.stages)
            self.bars = {st: tqdm(total=len(self.cells[st]), initial=sum(n in self.done for n in self.cells[st]), position=i,
                                  desc=st.ljust(width), bar_format="{desc} {bar:20} {n_fmt}/{total_fmt} {postfix}", leave=True)
                         for i, st in enumerate(self.stages)}

    def text(self, st: str, started: dict[str, int], failed: set[str]) -> str:
        names = self.cells[st]
        done = sum(n in self.done for n in names)
        bad = sum(n in failed for n in names)
        running = sum(n in started and n not in self.done and n not in failed for n in names)
        queued = len(names) - done - bad - running
        parts = [f"{done}/{len(names)} done", f"{running} running", f"{queued} queued"] + ([f"{bad} failed"] if bad else [])
        left = queued + running
        if left and self.seconds[st]:
            per = sum(self.seconds[st]) / len(self.seconds[st])
            parts.append(f"ETA {per * max(1, -(-left // max(1, running))) / 60:.1f} min")
        return ", ".join(parts)

    def update(self, started: dict[str, int], failed: set[str], ended: bool) -> None:
        if self.live:
            for st in self.stages:
                self.bars[st].n = sum(n in self.done for n in self.cells[st])
                self.bars[st].set_postfix_str(self.text(st, started, failed))
        elif ended or time.time() - self.last >= self.every:
            self.last = time.time()
            for st in self.stages:
                self.log(f"progress: {st:9s} {self.text(st, started, failed)}")

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def _check(cells: list[Cell], given: dict[str, Path], root: Path) -> None:
    """Refuse, before anything runs, a graph that cannot run as asked: a cell listed twice or before an input, a
    resource request no node can meet (it would wait forever), a finished cell made with other settings than these
    (its results would be mixed with new ones), a folder that no finished cell wrote (left by another tool or an
    older compare: it would be replaced)."""
    import ray

    seen: set[str] = set(given)
    problems = []
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    cpus, gpus = max((n.get("CPU", 0) for n in nodes), default=0), max((n.get("GPU", 0) for n in nodes), default=0)
    for c in cells:
        if c.name in seen:
            problems.append(f"{c.name}: listed twice (or named like a given input)")
        missing = [d for d in c.deps if d not in seen]
        if missing:
            problems.append(f"{c.name}: needs {missing}, which are not given and not cells listed before it")
        seen.add(c.name)
        if c.cpus > cpus or c.gpus > gpus:
            problems.append(f"{c.name}: asks {c.cpus:g} CPUs and {c.gpus:g} GPUs, the largest node has {cpus:g} and {gpus:g}")
        folder = root / c.name
        if is_done(folder):
            recorded = (read_json(folder / CELL_JSON) or {}).get("spec")
            if json.dumps(recorded, sort_keys=True, default=str) != json.dumps(c.spec, sort_keys=True, default=str):
                keys = sorted(k for k in set(recorded or {}) | set(c.spec) if (recorded or {}).get(k) != c.spec.get(k))
                problems.append(f"{folder} was made with other settings ({', '.join(keys)} differ: {(recorded or {}).get(keys[0]) if keys else ''!s:.200} "
                                f"there, {c.spec.get(keys[0]) if keys else ''!s:.200} now); remove that folder to recompute it, or use another output folder")
        elif folder.exists() and any(folder.iterdir()):
            problems.append(f"{folder} exists but holds no finished cell ({CELL_JSON}): made by another tool or an older "
                            f"version; move it away, or use another output folder")
    if problems:
        shown = problems[:8] + ([f"... and {len(problems) - 8} more"] if len(problems) > 8 else [])
        raise ClusterError(f"{len(problems)} cell(s) cannot run as asked:\n  " + "\n  ".join(shown))


def _records_needed(cells: list[Cell], done: set[str], root: Path) -> dict[str, dict[str, Any]]:
    """The done cells that are records (is_complete false) and that a cell still to run needs, directly or through
    another such record: name -> the files its record left out."""
    needed: dict[str, dict[str, Any]] = {}
    for c in reversed(cells):                          # dependents before their inputs
        if c.name in done and c.name not in needed:
            continue
        for d in c.deps:
            if d in done and d not in needed and not is_complete(root / d):
                needed[d] = (read_json(root / d / RECORD_JSON) or {}).get("left_out", {})
    return needed


def _compare_to_record(folder: Path, left_out: dict[str, Any]) -> tuple[str, list[str]]:
    """How the recomputed cell in `folder` compares with the files its record left out: (a log line, the files that
    differ). A left-out file the cell has not made (one derived from it later, e.g. a dataset's size folder) is not
    compared."""
    made = {rel: want for rel, want in left_out.items() if (folder / rel).is_file()}
    differ = sorted(rel for rel, want in made.items() if sha256_file(folder / rel) != want.get("sha256"))
    line = f"recomputed from its record: {len(made) - len(differ)} of the {len(made)} left-out files it makes are identical"
    if differ:
        line += (f"; {len(differ)} differ ({', '.join(differ[:3])}{', ...' if len(differ) > 3 else ''}): the finished cells "
                 f"that used the original are not rerun (results.json lists them under 'records_differ')")
    return line, differ


def run_graph(cells: list[Cell], execute: Callable, root: Path, given: dict[str, Path] | None = None,
              log: Callable[[str], None] = print, retries: int = 3,
              on_done: Callable[[Cell], None] | None = None) -> GraphRun:
    """Run every cell of `cells` (listed after their dependencies) that is not done in `root`, as Ray tasks, after
    _check. `given` are input folders on the driver that cells may name as deps (a pretrained checkpoint). Each
    finished cell is written to root/<name>, its log to root/logs/<name>.log (its last line also to `log`), and then
    handed to `on_done` (e.g. to write its record). A cell whose input failed is not run and fails with "input <name>
    failed". A record (restore_records) that a cell to run needs is recomputed first, into the same folder."""
    import ray
    from ray.exceptions import RayError, RayTaskError
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    root, given = Path(root), dict(given or {})
    _check(cells, given, root)
    done = {c.name for c in cells if is_done(root / c.name)}
    records = {c.name for c in cells if c.name in done and not is_complete(root / c.name)}
    recompute = _records_needed(cells, done, root)
    if records:
        log(f"{len(records)} finished cell(s) are records without their large files; {len(recompute)} of them are "
            f"recomputed because cells still to run need them" + (f": {', '.join(sorted(recompute)[:4])}"
                                                                  f"{', ...' if len(recompute) > 4 else ''}" if recompute else ""))
    done -= set(recompute)
    todo = [c for c in cells if c.name not in done]
    by_name = {c.name: c for c in cells}
    ships: dict[str, Any] = {}     # name -> the object its dependents get
    for name in sorted({d for c in todo for d in c.deps if d not in {t.name for t in todo}}):
        ships[name] = ray.put(pack(given[name]) if name in given else pack(root / name, by_name[name].ships))
    lines = _Lines(cells, done, log)
    failed: dict[str, str] = {}
    report = GraphRun(sorted(done), [c.name for c in todo], {}, failed)
    if not todo:
        lines.update({}, set(), ended=True)
        lines.close()
        return report
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)   # dies with the driver only
    tracker = ray.remote(num_cpus=0)(_Tracker).options(scheduling_strategy=here).remote()
    task = ray.remote(_run_cell)
    pending: dict[Any, Cell] = {}
    for c in todo:
        result, shipped = task.options(num_cpus=c.cpus, num_gpus=c.gpus, max_retries=retries, retry_exceptions=False,
                                       num_returns=2, name=c.name).remote(execute, c, tracker, *[ships[d] for d in c.deps])
        ships[c.name] = shipped
        pending[result] = c
    ships.clear()     # the submitted tasks hold their inputs: an output is freed once its dependents are done
    started: dict[str, int] = {}
    polled = 0.0
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=2.0)
            if time.time() - polled >= 2.0:
                started, polled = ray.get(tracker.snapshot.remote()), time.time()
            for ref in ready:
                c = pending.pop(ref)
                logfile = root / LOGS / f"{c.name}.log"
                bad = [d for d in c.deps if d in failed]
                try:
                    result = ray.get(ref)
                except RayTaskError as exc:
                    cause = exc.cause if isinstance(getattr(exc, "cause", None), CellFailed) else None
                    if bad:
                        failed[c.name] = f"input {bad[0]} failed"
                        write_text(logfile, f"not run: its input {bad[0]} failed (log: {root / LOGS / bad[0]}.log)\n")
                    else:
                        failed[c.name] = cause.error if cause else str(exc).splitlines()[0]
                        write_text(logfile, cause.log if cause else str(exc))
                    log(f"{c.name}: FAILED: {failed[c.name]} (log: {logfile})")
                except RayError as exc:                 # a worker lost more often than `retries`
                    failed[c.name] = f"{type(exc).__name__}: {exc}".splitlines()[0]
                    write_text(logfile, str(exc))
                    log(f"{c.name}: FAILED: {failed[c.name]}")
                else:
                    commit(result["files"], root / c.name)
                    write_text(logfile, result["log"])
                    lines.done.add(c.name)
                    lines.seconds[c.stage].append(float(json.loads(result["files"][CELL_JSON])["seconds"]))
                    last = result["log"].strip().splitlines()[-1:]
                    log(f"{c.name}: done" + "".join(f"; {line.split('] ', 1)[-1]}" for line in last))
                    if c.name in recompute:
                        line, differ = _compare_to_record(root / c.name, recompute[c.name])
                        log(f"{c.name}: {line}")
                        if differ:
                            report.differs[c.name] = differ
                    if on_done is not None:
                        try:
                            on_done(c)
                        except Exception as exc:      # (a full disk for the records): the sweep itself goes on
                            log(f"{c.name}: done, but its on_done hook failed: {type(exc).__name__}: {exc}")
                lines.update(started, set(failed), ended=True)
            if not ready:
                lines.update(started, set(failed), ended=False)
        report.starts.update(ray.get(tracker.snapshot.remote()))
    finally:
        lines.close()
        for ref in pending:
            ray.cancel(ref, force=True)
        ray.kill(tracker)
    for c in cells:                  # a cell whose input failed did not run: say so rather than repeat the input's error
        bad = [d for d in c.deps if d in failed]
        if c.name in failed and bad:
            failed[c.name] = f"input {bad[0]} failed"
    return report


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
