"""Every launch file of the repository: its declared executables and parameter files exist (installed and in
the source tree), and the nodes start as declared, run, and stop cleanly on SIGINT."""

from __future__ import annotations

import signal
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from helpers.launchfile import declared_arguments, declared_nodes
from helpers.launchstart import start_launch
from helpers.rosproc import NodeGroup, executable_path
from helpers.tiny_policy import build_policy

REPO = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted([*REPO.glob("launch/*.launch.py"), *REPO.glob("src/*/launch/*.launch.py")])
IDS = [str(p.relative_to(REPO)) for p in LAUNCH_FILES]
WORKSPACE = {p.parent.name for p in (REPO / "src").glob("*/package.xml")}


def test_the_robot_launch_files_exist():
    names = {p.name for p in LAUNCH_FILES}
    assert {"record.launch.py", "drive.launch.py"} <= names


@pytest.mark.parametrize("launch_file", sorted(REPO.glob("launch/*.launch.py")), ids=lambda p: p.name)
def test_the_bring_ups_include_the_package_launch_files(launch_file):
    """A top-level bring-up starts each node through its package's launch file (IncludeLaunchDescription), so a
    node's parameters are declared once, where `ros2 launch <package> ...` on the robot reads them too."""
    own = [n.executable for n in declared_nodes(launch_file) if not n.included]
    assert not own, f"{launch_file.name} declares Node(...) of its own for {own}; include the package's launch file"


@pytest.mark.parametrize("launch_file", LAUNCH_FILES, ids=IDS)
def test_declared_executables_and_parameter_files_exist(launch_file):
    """Nodes of this workspace: installed, with their parameter files; nodes of other packages (joy_node):
    declared as an exec_depend of the package whose launch file starts them, for rosdep to install."""
    nodes = declared_nodes(launch_file)
    assert nodes, f"{launch_file} declares no Node(...)"
    for node in nodes:
        if node.package not in WORKSPACE:
            owner = launch_file.parents[1] / "package.xml"
            depends = {e.text.strip() for e in ET.parse(owner).getroot().findall("exec_depend")} if owner.is_file() else set()
            assert node.package in depends, f"{launch_file.name} starts {node.package}/{node.executable}: declare <exec_depend>{node.package}"
            continue
        assert executable_path(node.package, node.executable).is_file()
        for installed, source in zip(node.param_file_paths(), node.source_param_file_paths()):
            assert installed.is_file(), f"{installed} not installed (add config/ to the package's data_files and run setup)"
            assert source.is_file(), f"{source} missing from the source tree"


@pytest.mark.ros
@pytest.mark.parametrize("launch_file", LAUNCH_FILES, ids=IDS)
def test_declared_nodes_start_run_and_stop_cleanly(tmp_path, launch_file):
    # joy false: the joystick teleop's joy_node needs a gamepad (and the joy package, not installed here)
    known = {"robot": "lbot", "output": str(tmp_path / "recording"), "model": str(build_policy(tmp_path / "model")), "joy": "false"}
    args = {k: v for k, v in known.items() if k in declared_arguments(launch_file)}
    with NodeGroup(tmp_path) as group:
        procs = start_launch(group, launch_file, args)
        time.sleep(4.0)
        dead = {name: p.output() for name, p in procs.items() if not p.alive()}
        assert not dead, f"exited early: {dead}"
        for p in procs.values():
            p.signal(signal.SIGINT)
        codes = {name: p.wait(15) for name, p in procs.items()}
        assert all(c == 0 for c in codes.values()), {n: (c, procs[n].output()[-2000:]) for n, c in codes.items()}
