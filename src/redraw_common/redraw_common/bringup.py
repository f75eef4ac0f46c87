"""Bring up ROS 2 nodes without `ros2 launch` (not installable here, see PLATFORM.md): read what a launch file
declares, start exactly those executables as processes on loopback DDS, and always end them.

    with NodeGroup(run_dir) as group:                       # own ROS_DOMAIN_ID, ROS_HOME under run_dir, loopback
        procs = start_launch(group, Path("launch/twin_record.launch.py"), {"robot": "db1", "perturb": "reversed"})
        procs["recorder"].wait(timeout=600)
    # every process (and its children) is ended on exit, by process group id, error or not

Three parts, usable on their own:
- Reading launch files (`declared_arguments`, `declared_nodes`, `resolve`): the launch file's Python AST gives
  every `Node(...)` it declares: package, executable, name, namespace, the parameter files it names and inline
  parameters. Understood forms for parameter files (the conventions redraw's launch files follow):
      PathJoinSubstitution([FindPackageShare("pkg"), "config", "file.yaml"])
      os.path.join(get_package_share_directory("pkg"), "config", "file.yaml")
  Inline parameters: dict literals with constant values. Values that are launch substitutions
  (LaunchConfiguration("robot")) are reported as `LaunchArg(name)` and resolved with the launch arguments.
  `condition=IfCondition(...)` / `UnlessCondition(...)` of a constant or a LaunchConfiguration: the node starts
  only when it holds (true / false as ROS reads them: "true", "1", "false", "0", any case).
  IncludeLaunchDescription(PythonLaunchDescriptionSource(<a share path as above>), launch_arguments={...}.items())
  is followed into the installed file: its nodes come in order, each with the chain of inclusions that sets the
  launch configurations it sees (DeclaredNode.arguments).
- Processes (`NodeGroup`, `NodeProcess`): real node processes sharing a DDS domain, each in its own process
  group with its output in a log file; `stop()` sends SIGINT, then SIGTERM, then SIGKILL.
- `start_launch`: every node of a launch file with its installed executable, name, namespace, installed
  parameter files and inline parameters (launch arguments: given values over declared defaults), as
  `ros2 launch` would.

Installed packages are found through AMENT_PREFIX_PATH (set by `. scripts/env.sh`), as ROS 2 finds them.
No ROS import: this module only starts processes.
"""

from __future__ import annotations

import ast
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_counter = itertools.count()


class BringupError(RuntimeError):
    """A package, executable or parameter file that a bring-up needs is not installed."""


# --------------------------------------------------------------------------------------------------------------
# where things are installed

def _ament_prefixes() -> list[Path]:
    return [Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]


def workspace_root() -> Path:
    """The colcon workspace (the repository root): the folder holding install/ and src/.

    Found from the install prefix of redraw_common in AMENT_PREFIX_PATH (<root>/install/redraw_common), else
    by walking up from this file (the source tree, or build/ of a symlink install)."""
    for prefix in _ament_prefixes():
        if prefix.name == "redraw_common" and prefix.parent.name == "install":
            return prefix.parent.parent
    for parent in Path(__file__).resolve().parents:
        if (parent / "install").is_dir() and (parent / "src").is_dir():
            return parent
    raise BringupError("cannot find the workspace (a folder with install/ and src/): run `. scripts/env.sh` after `bash scripts/setup.sh`")


def package_prefix(package: str) -> Path:
    """Install prefix of `package`: the AMENT_PREFIX_PATH entry that registers it in the ament index, else
    <workspace>/install/<package> (where colcon puts it, installed or not)."""
    for prefix in _ament_prefixes():
        if (prefix / "share" / "ament_index" / "resource_index" / "packages" / package).is_file():
            return prefix
    return workspace_root() / "install" / package


def package_share(package: str) -> Path:
    return package_prefix(package) / "share" / package


def executable_path(package: str, executable: str) -> Path:
    path = package_prefix(package) / "lib" / package / executable
    if not path.exists():
        raise FileNotFoundError(f"executable {package}/{executable} not installed: expected {path} "
                                "(run `bash scripts/setup.sh`, then `. scripts/env.sh`)")
    return path


# --------------------------------------------------------------------------------------------------------------
# reading launch files

@dataclass(frozen=True)
class LaunchArg:
    name: str


@dataclass(frozen=True)
class Inclusion:
    """One IncludeLaunchDescription on the way to a node: the included file, its declared defaults and the
    launch_arguments the including file gives it (values may be LaunchArg of the including file)."""
    path: Path
    defaults: dict[str, Any]
    given: dict[str, Any]


@dataclass
class DeclaredNode:
    package: str
    executable: str
    name: str | None = None
    namespace: Any = None
    param_files: list[tuple[str, str]] = field(default_factory=list)  # (package, path relative to share dir)
    params: dict[str, Any] = field(default_factory=dict)
    included: list[Inclusion] = field(default_factory=list)  # outermost first; empty for a node of the file itself
    condition: tuple[bool, Any] | None = None   # (start when the value is true: IfCondition, or false: Unless), value

    def starts(self, arguments: dict[str, Any]) -> bool:
        """Whether `ros2 launch` would start this node with these launch configurations (its condition)."""
        if self.condition is None:
            return True
        wanted, value = self.condition
        text = str(resolve(value, arguments)).strip().lower()
        if text not in ("true", "1", "false", "0"):
            raise ValueError(f"{self.package}/{self.executable}: condition value {text!r} is not a boolean (true, false, 1, 0)")
        return (text in ("true", "1")) == wanted

    def arguments(self, top: dict[str, Any]) -> dict[str, Any]:
        """The launch configurations this node sees, given those of the top file (`top`): as `ros2 launch` does,
        an included file sees everything set before it, then its launch_arguments, then its own defaults for
        whatever is still unset."""
        args = dict(top)
        for inc in self.included:
            args = {**inc.defaults, **args, **resolve(inc.given, args)}
        return args

    def param_file_paths(self, root: Path | None = None) -> list[Path]:
        """Installed paths of the parameter files: <root>/install/<pkg>/share/<pkg>/<rel> when `root` (a
        workspace) is given, else under each package's install prefix."""
        if root is not None:
            return [Path(root) / "install" / pkg / "share" / pkg / rel for pkg, rel in self.param_files]
        return [package_share(pkg) / rel for pkg, rel in self.param_files]

    def source_param_file_paths(self, root: Path | None = None) -> list[Path]:
        root = Path(root) if root is not None else workspace_root()
        return [root / "src" / pkg / rel for pkg, rel in self.param_files]


def _call_name(node: ast.AST) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _value(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Call) and _call_name(node) == "LaunchConfiguration" and node.args:
        return LaunchArg(_value(node.args[0]))
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_value(e) for e in node.elts]
    if isinstance(node, ast.Dict):
        return {_value(k): _value(v) for k, v in zip(node.keys, node.values)}
    raise ValueError(
        f"line {getattr(node, 'lineno', '?')}: cannot read {ast.unparse(node)!r} statically; expected a constant or "
        "LaunchConfiguration('name') written inline (variables and other expressions are not followed)"
    )


def _share_path(node: ast.AST) -> tuple[str, str] | None:
    """(package, path under its share folder) of PathJoinSubstitution([FindPackageShare("pkg"), "a", "b"]) or
    os.path.join(get_package_share_directory("pkg"), "a", "b"); None for anything else."""
    if not isinstance(node, ast.Call):
        return None
    name = _call_name(node)
    if name == "PathJoinSubstitution" and node.args and isinstance(node.args[0], (ast.List, ast.Tuple)):
        parts = node.args[0].elts
    elif name == "join" and node.args:
        parts = node.args
    else:
        return None
    if not parts or _call_name(parts[0]) not in ("FindPackageShare", "get_package_share_directory"):
        return None
    package = _value(parts[0].args[0])
    rel = "/".join(str(_value(p)) for p in parts[1:])
    return package, rel



def _included_file(path: Path, call: ast.Call) -> tuple[Path, dict[str, Any]]:
    """IncludeLaunchDescription(PythonLaunchDescriptionSource(<share path>), launch_arguments={...}.items())
    -> (the installed launch file, the launch_arguments)."""
    where = f"{path}:{call.lineno}"
    source = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg == "launch_description_source"), None)
    if isinstance(source, ast.Call) and _call_name(source) == "PythonLaunchDescriptionSource" and source.args:
        source = source.args[0]
    target = _share_path(source) if source is not None else None
    if target is None:
        raise ValueError(f"{where}: cannot read the included launch file; expected PythonLaunchDescriptionSource("
                         "PathJoinSubstitution([FindPackageShare('pkg'), 'launch', 'file.launch.py']))")
    included = package_share(target[0]) / target[1]
    if not included.is_file():
        raise FileNotFoundError(f"{where}: included launch file {target[0]}/{target[1]} not installed: expected {included} "
                                "(run `bash scripts/setup.sh`, then `. scripts/env.sh`)")
    given_node = next((k.value for k in call.keywords if k.arg == "launch_arguments"), None)
    if given_node is None:
        return included, {}
    if isinstance(given_node, ast.Call) and isinstance(given_node.func, ast.Attribute) and given_node.func.attr == "items":
        given_node = given_node.func.value
    given = _value(given_node)
    if isinstance(given, list):
        given = dict(given)
    if not isinstance(given, dict):
        raise ValueError(f"{where}: launch_arguments must be a dict literal (with .items()) or a list of pairs")
    return included, given


def declared_arguments(path: Path) -> dict[str, Any]:
    """DeclareLaunchArgument(name, default_value=...) -> {name: default}."""
    tree = ast.parse(Path(path).read_text(), filename=str(path))
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _call_name(node) == "DeclareLaunchArgument":
            name = _value(node.args[0]) if node.args else _value(next(k.value for k in node.keywords if k.arg == "name"))
            default = next((_value(k.value) for k in node.keywords if k.arg == "default_value"), None)
            out[name] = default
    return out


def declared_nodes(path: Path) -> list[DeclaredNode]:
    """Every Node(...) that `path` starts, in order, with the nodes of the launch files it includes
    (IncludeLaunchDescription, followed into the installed files; their DeclaredNode.included says how)."""
    path = Path(path)
    tree = ast.parse(path.read_text(), filename=str(path))
    calls = sorted((c for c in ast.walk(tree) if isinstance(c, ast.Call) and _call_name(c) in ("Node", "IncludeLaunchDescription")),
                   key=lambda c: (c.lineno, c.col_offset))
    nodes = []
    for call in calls:
        if _call_name(call) == "IncludeLaunchDescription":
            included, given = _included_file(path, call)
            inclusion = Inclusion(included, declared_arguments(included), given)
            for node in declared_nodes(included):
                node.included.insert(0, inclusion)
                nodes.append(node)
            continue
        kw = {k.arg: k.value for k in call.keywords}
        if "package" not in kw or "executable" not in kw:
            raise ValueError(f"{path}:{call.lineno}: Node(...) must name package= and executable=")
        node = DeclaredNode(package=_value(kw["package"]), executable=_value(kw["executable"]))
        node.name = _value(kw["name"]) if "name" in kw else None
        node.namespace = _value(kw["namespace"]) if "namespace" in kw else None
        if "condition" in kw:
            cond = kw["condition"]
            if not (isinstance(cond, ast.Call) and _call_name(cond) in ("IfCondition", "UnlessCondition") and cond.args):
                raise ValueError(f"{path}:{call.lineno}: cannot read condition {ast.unparse(cond)!r}; expected "
                                 "IfCondition(LaunchConfiguration('name')) or UnlessCondition(...)")
            node.condition = (_call_name(cond) == "IfCondition", _value(cond.args[0]))
        if "parameters" in kw:
            if not isinstance(kw["parameters"], (ast.List, ast.Tuple)):
                raise ValueError(f"{path}:{call.lineno}: parameters= must be a list literal")
            for item in kw["parameters"].elts:
                pf = _share_path(item)
                if pf is not None:
                    node.param_files.append(pf)
                elif isinstance(item, ast.Dict):
                    node.params.update(_value(item))
                else:
                    raise ValueError(f"{path}:{call.lineno}: cannot read parameter entry {ast.unparse(item)!r}")
        nodes.append(node)
    return nodes


def resolve(value: Any, arguments: dict[str, Any]) -> Any:
    """Replace LaunchArg placeholders with the given launch-argument values."""
    if isinstance(value, LaunchArg):
        if value.name not in arguments:
            raise KeyError(f"launch argument {value.name!r} has no value or default")
        return arguments[value.name]
    if isinstance(value, dict):
        return {k: resolve(v, arguments) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, arguments) for v in value]
    return value


# --------------------------------------------------------------------------------------------------------------
# processes

def unique_domain_id(low: int = 1, high: int = 100) -> int:
    """A ROS_DOMAIN_ID in [low, high] that differs between concurrent processes and groups (by pid and count)."""
    if not 0 <= low <= high <= 232:
        raise ValueError(f"ROS_DOMAIN_ID range must lie in [0, 232], found [{low}, {high}]")
    return low + (os.getpid() * 7 + next(_counter) * 13) % (high - low + 1)


def ros_env(run_dir: Path, domain_id: int | None = None) -> dict[str, str]:
    """This process's environment for nodes: loopback-only discovery, the domain, ROS_HOME and logs in run_dir."""
    env = dict(os.environ)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["ROS_DOMAIN_ID"] = str(domain_id if domain_id is not None else unique_domain_id())
    env["ROS_HOME"] = str(Path(run_dir) / "ros_home")
    env["ROS_LOG_DIR"] = str(Path(run_dir) / "ros_home" / "log")
    env["PYTHONUNBUFFERED"] = "1"
    env["RCUTILS_LOGGING_BUFFERED_STREAM"] = "0"
    Path(env["ROS_LOG_DIR"]).mkdir(parents=True, exist_ok=True)
    return env


def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGTERM when the starting process dies, even by SIGKILL, whose
    cleanup code never runs; without it a killed job leaves its twin and drivers running forever."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class NodeProcess:
    """One process in its own process group (signals reach it and anything it spawned), output to a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path):
        self.name = name
        self.argv = argv
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=_die_with_parent)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def tail(self, chars: int = 3000) -> str:
        return self.output()[-chars:]

    def signal(self, sig: int) -> None:
        if self.alive():
            os.killpg(self.proc.pid, sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def _group_alive(self) -> bool:
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGINT, then SIGTERM, then SIGKILL to its process group, each with a grace period, until the process
        has exited; then SIGTERM and SIGKILL to what is left of its group. Returns the exit code."""
        self._escalate(((signal.SIGINT, timeout), (signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0)), self.alive, self._wait_for_exit)
        # what it started and left behind (e.g. a shell's background jobs, which ignore SIGINT)
        self._escalate(((signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0)), self._group_alive, self._wait_for_group)
        if not self._log.closed:
            self._log.close()
        return self.proc.returncode

    def _escalate(self, steps, alive: Callable[[], bool], wait: Callable[[float], None]) -> None:
        """Each (signal, grace) in turn to the process group while `alive()`; `wait(grace)` after each."""
        for sig, grace in steps:
            if not alive():
                return
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            wait(grace)

    def _wait_for_exit(self, grace: float) -> None:
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass

    def _wait_for_group(self, grace: float) -> None:
        deadline = time.monotonic() + grace
        while self._group_alive() and time.monotonic() < deadline:
            time.sleep(0.05)


class NodeGroup:
    """A set of node processes sharing one DDS domain; a context manager that ends them all (last started first)."""

    def __init__(self, run_dir: Path, domain_id: int | None = None):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.env = ros_env(self.run_dir, domain_id)
        self.procs: list[NodeProcess] = []

    @property
    def domain_id(self) -> int:
        return int(self.env["ROS_DOMAIN_ID"])

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

    def start_command(self, name: str, argv: list[str]) -> NodeProcess:
        """Any command, in this group's ROS environment."""
        return self._start(name, [str(a) for a in argv])

    def start_python(self, script: Path | str, args: list[str] | None = None, name: str | None = None) -> NodeProcess:
        return self._start(name or Path(script).stem, [sys.executable, str(script), *(args or [])])

    def start_module(self, module: str, args: list[str] | None = None, name: str | None = None) -> NodeProcess:
        """`python -m module args...` with this interpreter."""
        return self._start(name or module.rsplit(".", 1)[-1], [sys.executable, "-m", module, *(args or [])])

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


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.1, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.1f} s waiting for {what}")


# --------------------------------------------------------------------------------------------------------------
# launch files

def start_launch(group: NodeGroup, launch_file: Path, arguments: dict[str, Any] | None = None,
                 overrides: dict[str, dict[str, Any]] | None = None, strict: bool = False) -> dict[str, NodeProcess]:
    """Start every node of `launch_file`; returns {executable: process}. `overrides` adds parameters per
    executable on top of the launch file's own; missing parameter files fail. `strict`: also fail on launch
    arguments the file does not declare and overrides for executables it does not start (catches typos and a
    launch file that changed under its caller)."""
    launch_file = Path(launch_file)
    declared = declared_arguments(launch_file)
    nodes = declared_nodes(launch_file)
    if strict:
        unknown = sorted(set(arguments or {}) - set(declared))
        if unknown:
            raise BringupError(f"{launch_file.name} declares no launch argument(s) {unknown}; it declares {sorted(declared)}")
        unused = sorted(set(overrides or {}) - {n.executable for n in nodes})
        if unused:
            raise BringupError(f"{launch_file.name} starts no executable(s) {unused} to override; it starts {[n.executable for n in nodes]}")
    args = {**declared, **(arguments or {})}
    procs = {}
    for node in nodes:
        if not node.starts(node.arguments(args)):
            continue
        files = node.param_file_paths()
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise FileNotFoundError(f"{launch_file.name}: parameter files of {node.package}/{node.executable} not installed: {missing}")
        node_args = node.arguments(args)
        params = resolve(node.params, node_args)
        params = {k: typed(v) for k, v in params.items()}
        params.update((overrides or {}).get(node.executable, {}))
        namespace = resolve(node.namespace, node_args) if node.namespace is not None else None
        procs[node.executable] = group.start_executable(
            node.package, node.executable, name=node.name, namespace=namespace, params=params or None, param_files=files,
        )
    return procs


def typed(value: Any) -> Any:
    """Launch arguments are strings; ROS parses `-p name:=value` strings into ints/floats/bools. Do the same."""
    if not isinstance(value, str):
        return value
    low = value.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value
