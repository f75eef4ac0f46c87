"""package.xml says the truth: every module a package's Python code imports is declared with its rosdep key (code in
the package and its launch files: depend / exec_depend; its tests: test_depend too), nothing is declared that the
code does not use, and every key resolves: a ROS package, a key of ros/rosdistro, or one of the project's own keys
in rosdep/redraw.yaml (PyPI packages rosdistro has no key for, each pinned in requirements.lock).

A package's launch files need the packages whose nodes they start (`Node(package="joy", ...)`).

Code that builds messages of a robot profile's types (redraw_common.robot_profile.message_class: the policy node,
the recorder) imports their packages at run time: it needs every message package a profile may name.

Imports inside `try: ... except ImportError` are optional (e.g. the MCAP repair's zstd / lz4 codecs, TensorBoard in
the run logger): they need no declaration, and may have one where the project wants them installed."""

from __future__ import annotations

import ast
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from redraw_common.robot_profile import SUPPORTED

REPO = Path(__file__).resolve().parents[1]
PYTHON_PACKAGES = ["redraw_common", "redraw_policy_node", "redraw_recorder", "redraw_sim", "redraw_teleop", "redraw_training"]
WORKSPACE = {p.parent.name for p in (REPO / "src").glob("*/package.xml")}

#: rosdep keys of ros/rosdistro rosdep/python.yaml (read at commit 000730dc5f916eb05b15d3f183bd1c17bf1b4722), by the
#: module a package imports
ROSDISTRO = {
    "numpy": "python3-numpy",
    "cv2": "python3-opencv",
    "yaml": "python3-yaml",
    "ruamel": "python3-ruamel.yaml",
    "matplotlib": "python3-matplotlib",
    "tqdm": "python3-tqdm",
    "torch": "python3-pytorch-pip",
    "onnxruntime": "python3-onnxruntime-pip",
    "pytest": "python3-pytest",
    "hypothesis": "python3-hypothesis",
}
#: the project's keys (rosdep/redraw.yaml), by module
PROJECT = {
    "rosbags": "python3-rosbags-pip",
    "gymnasium": "python3-gymnasium-pip",
    "rich": "python3-rich-pip",
    "safetensors": "python3-safetensors-pip",
    "dm_control": "python3-dm-control-pip",
    "gym_duckietown": "python3-duckietown-gym-pip",
    "duckietown_world": "python3-duckietown-gym-pip",   # installed with duckietown-gym-daffy
    "geometry": "python3-duckietown-gym-pip",           # PyGeometry-z6, a dependency of duckietown-world-daffy
    "pyglet": "python3-pyglet-pip",
    "ray": "python3-ray-pip",
}
#: what a use of a module needs beyond the module itself (the code touches these without importing their package)
IMPLIED = {
    "torch.utils.tensorboard": "python-tensorboard-pip",   # rosdistro's key (pip: tensorboard)
    "torch.onnx": "python3-onnx-pip",                      # torch.onnx.export(dynamo=True) needs onnx + onnxscript
}
#: the message packages of every type a robot profile may name: what code using robot_profile.message_class imports
PROFILE_PACKAGES = sorted({t.split("/")[0] for types in SUPPORTED.values() for t in types})
#: ROS packages imported as Python modules under their own name
ROS_MODULES = {"rclpy", "launch", "launch_ros", "ament_index_python"}
#: every rosdistro key the packages use: ROSDISTRO's and the one IMPLIED names (a python- key that installs with pip)
ROSDISTRO_KEYS = set(ROSDISTRO.values()) | {"python-tensorboard-pip"}


#: ROS packages whose nodes the launch files start (no Python import): their rosdep key is their name
LAUNCHED = {"joy"}


def is_ros_package(module: str) -> bool:
    return module in ROS_MODULES | LAUNCHED or module in WORKSPACE or module.endswith(("_msgs", "_interfaces"))


def key_of(module: str) -> str:
    if is_ros_package(module):
        return module
    for table in (ROSDISTRO, PROJECT):
        if module in table:
            return table[module]
    raise AssertionError(f"no rosdep key known for the module {module!r}; add it to ROSDISTRO (a rosdistro key) or to "
                         f"rosdep/redraw.yaml and PROJECT")


def optional_imports(tree: ast.AST) -> set[int]:
    """Line numbers of imports inside a `try` whose handlers catch ImportError / ModuleNotFoundError."""
    lines = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try):
            continue
        caught = set()
        for handler in node.handlers:
            types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
            caught |= {t.id for t in types if isinstance(t, ast.Name)}
        if caught & {"ImportError", "ModuleNotFoundError"}:
            lines |= {n.lineno for stmt in node.body for n in ast.walk(stmt) if isinstance(n, (ast.Import, ast.ImportFrom))}
    return lines


def dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def needed_keys(files: list[Path], own: str, optional: bool = False) -> dict[str, str]:
    """rosdep key -> the first file:line that needs it (`optional`: the keys of the optional imports instead)."""
    needs: dict[str, str] = {}
    for path in files:
        tree = ast.parse(path.read_text())
        skip = optional_imports(tree)
        names: list[tuple[str, int]] = []
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and (node.lineno in skip) != optional:
                continue
            if isinstance(node, ast.Import):
                names += [(a.name, node.lineno) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.append((node.module, node.lineno))
            elif isinstance(node, ast.Call) and not optional and dotted(node.func) == "Node":   # a launch file starts it
                names += [(k.value.value, node.lineno) for k in node.keywords
                          if k.arg == "package" and isinstance(k.value, ast.Constant) and k.value.value != own]
            elif isinstance(node, ast.Attribute) and not optional and (name := dotted(node)):
                names += [(prefix, node.lineno) for prefix in IMPLIED if name.startswith(prefix)]
            if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("robot_profile") \
                    and "message_class" in {a.name for a in node.names}:
                names += [(package, node.lineno) for package in PROFILE_PACKAGES]   # absolute or relative import
        for name, line in names:
            where = f"{path.relative_to(REPO)}:{line}"
            for prefix, key in IMPLIED.items():
                if name == prefix or name.startswith(prefix + "."):
                    needs.setdefault(key, where)
            top = name.split(".")[0]
            if top in sys.stdlib_module_names or top == own or top in ("helpers", "setuptools") or (optional and top not in ROSDISTRO | PROJECT):
                continue
            needs.setdefault(key_of(top), where)
    return needs


def declared(package: str) -> dict[str, set[str]]:
    root = ET.parse(REPO / "src" / package / "package.xml").getroot()
    out: dict[str, set[str]] = {}
    for tag in ("depend", "exec_depend", "build_depend", "buildtool_depend", "test_depend"):
        out[tag] = {e.text.strip() for e in root.findall(tag)}
    return out


def code_files(package: str) -> list[Path]:
    root = REPO / "src" / package
    return [p for p in (root / package).rglob("*.py")] + sorted((root / "launch").glob("*.py"))


def project_keys() -> dict[str, list[str]]:
    data = yaml.safe_load((REPO / "rosdep" / "redraw.yaml").read_text())
    return {key: entry["ubuntu"]["pip"]["packages"] for key, entry in data.items()}


@pytest.mark.parametrize("package", PYTHON_PACKAGES)
def test_every_import_is_declared_and_every_declaration_is_used(package):
    deps = declared(package)
    run = deps["depend"] | deps["exec_depend"]
    needs = needed_keys(code_files(package), package)
    missing = {key: where for key, where in needs.items() if key not in run}
    assert not missing, f"src/{package}/package.xml does not declare what its code imports: {missing} (add <exec_depend>)"
    test_needs = needed_keys(sorted((REPO / "src" / package / "test").rglob("*.py")), package)
    missing = {key: where for key, where in test_needs.items() if key not in run | deps["test_depend"]}
    assert not missing, f"src/{package}/package.xml does not declare what its tests import: {missing} (add <test_depend>)"
    unused = run - set(needs) - set(needed_keys(code_files(package), package, optional=True))
    assert not unused, f"src/{package}/package.xml declares {sorted(unused)}, which its code does not import"
    unused = deps["test_depend"] - set(test_needs)
    assert not unused, f"src/{package}/package.xml test_depend {sorted(unused)}, which its tests do not import"


def test_every_declared_key_resolves():
    known = ROSDISTRO_KEYS | set(project_keys())
    for package in [p.parent.name for p in sorted((REPO / "src").glob("*/package.xml"))]:
        for tag, keys in declared(package).items():
            for key in keys:
                if key.startswith("python") or "-pip" in key:
                    assert key in known, f"src/{package}/package.xml <{tag}>{key}: not a rosdistro key nor one of rosdep/redraw.yaml"


def test_the_projects_rosdep_keys_are_pinned_and_not_in_rosdistro():
    lock = {re.split(r"[=<>]", line)[0].strip().lower().replace("_", "-")
            for line in (REPO / "requirements.lock").read_text().splitlines() if line and not line.startswith("#")}
    used = set(PROJECT.values()) | {v for v in IMPLIED.values() if v not in ROSDISTRO_KEYS}
    keys = project_keys()
    assert set(keys) == used, f"rosdep/redraw.yaml defines {sorted(set(keys) - used)} that no module needs, lacks {sorted(used - set(keys))}"
    for key, packages in keys.items():
        assert key not in ROSDISTRO_KEYS, key
        for name in packages:
            assert name.lower().replace("_", "-") in lock, f"rosdep/redraw.yaml {key}: {name} is not pinned in requirements.lock"
