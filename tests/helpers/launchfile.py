"""Read what a ROS 2 launch file declares, without ROS 2 `launch` (not installable here).

`declared_nodes(path)` parses the launch file's Python AST and returns every `Node(...)` it declares:
package, executable, name, namespace, the parameter files it names and inline parameters. Tests then
start exactly those executables with exactly those parameter files (tests/helpers/rosproc.py), so the
launch files' content is exercised.

Understood forms for parameter files (the conventions redraw's launch files follow):
    PathJoinSubstitution([FindPackageShare("pkg"), "config", "file.yaml"])
    os.path.join(get_package_share_directory("pkg"), "config", "file.yaml")
Inline parameters: dict literals with constant values. Values that are launch substitutions
(LaunchConfiguration("robot")) are reported as `LaunchArg(name)` and resolved with the launch
arguments' declared defaults.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class LaunchArg:
    name: str


@dataclass
class DeclaredNode:
    package: str
    executable: str
    name: str | None = None
    namespace: Any = None
    param_files: list[tuple[str, str]] = field(default_factory=list)  # (package, path relative to share dir)
    params: dict[str, Any] = field(default_factory=dict)

    def param_file_paths(self, root: Path = REPO) -> list[Path]:
        """Installed paths (install/<pkg>/share/<pkg>/<rel>) of the parameter files."""
        return [root / "install" / pkg / "share" / pkg / rel for pkg, rel in self.param_files]

    def source_param_file_paths(self, root: Path = REPO) -> list[Path]:
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


def _param_file(node: ast.AST) -> tuple[str, str] | None:
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
    tree = ast.parse(Path(path).read_text(), filename=str(path))
    nodes = []
    for call in ast.walk(tree):
        if not (isinstance(call, ast.Call) and _call_name(call) == "Node"):
            continue
        kw = {k.arg: k.value for k in call.keywords}
        if "package" not in kw or "executable" not in kw:
            raise ValueError(f"{path}:{call.lineno}: Node(...) must name package= and executable=")
        node = DeclaredNode(package=_value(kw["package"]), executable=_value(kw["executable"]))
        node.name = _value(kw["name"]) if "name" in kw else None
        node.namespace = _value(kw["namespace"]) if "namespace" in kw else None
        if "parameters" in kw:
            if not isinstance(kw["parameters"], (ast.List, ast.Tuple)):
                raise ValueError(f"{path}:{call.lineno}: parameters= must be a list literal")
            for item in kw["parameters"].elts:
                pf = _param_file(item)
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
