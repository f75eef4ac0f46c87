"""Start what a launch file declares, as `ros2 launch` would: every Node(...) with its executable, name,
namespace, parameter files (installed copies) and inline parameters, with launch arguments resolved
(given values over declared defaults)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from helpers.launchfile import declared_arguments, declared_nodes, resolve
from helpers.rosproc import NodeGroup, NodeProcess


def start_launch(group: NodeGroup, launch_file: Path, arguments: dict[str, Any] | None = None,
                 overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, NodeProcess]:
    """Start every node of `launch_file`; returns {executable: process}. `overrides` adds parameters per
    executable on top of the launch file's own (for test-only knobs); missing parameter files fail."""
    args = {**declared_arguments(launch_file), **(arguments or {})}
    procs = {}
    for node in declared_nodes(launch_file):
        files = node.param_file_paths()
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise FileNotFoundError(f"{launch_file.name}: parameter files of {node.package}/{node.executable} not installed: {missing}")
        params = resolve(node.params, args)
        params = {k: _typed(v) for k, v in params.items()}
        params.update((overrides or {}).get(node.executable, {}))
        namespace = resolve(node.namespace, args) if node.namespace is not None else None
        procs[node.executable] = group.start_executable(
            node.package, node.executable, name=node.name, namespace=namespace, params=params or None, param_files=files,
        )
    return procs


def _typed(value: Any) -> Any:
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
