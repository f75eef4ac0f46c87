"""Read what a ROS 2 launch file declares, without ROS 2 `launch` (not installable here).

Re-exports redraw_common.bringup (the implementation, shared with `sim2real`): `declared_nodes(path)` parses the
launch file's Python AST and returns every `Node(...)` it declares; tests then start exactly those executables
with exactly those parameter files (tests/helpers/rosproc.py), so the launch files' content is exercised.
"""

from __future__ import annotations

from pathlib import Path

from redraw_common.bringup import DeclaredNode, LaunchArg, declared_arguments, declared_nodes, resolve

REPO = Path(__file__).resolve().parents[2]

__all__ = ["REPO", "DeclaredNode", "LaunchArg", "declared_arguments", "declared_nodes", "resolve"]
