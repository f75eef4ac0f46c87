"""redraw_common.bringup without ROS: launch-file reading in strict mode, installed paths, process cleanup."""

import os
import subprocess
import sys
import time

import pytest

from redraw_common import bringup

LAUNCH = """
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("robot", default_value="db"),
        Node(package="redraw_sim", executable="twin_node", namespace=LaunchConfiguration("robot"),
             parameters=[PathJoinSubstitution([FindPackageShare("redraw_sim"), "config", "twin.yaml"]), {"seed": "3"}]),
    ])
"""


def test_no_ros_imported_at_module_level():
    code = "import sys, redraw_common.bringup; bad = [m for m in ('rclpy', 'torch') if m in sys.modules]; print(bad); sys.exit(bool(bad))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_installed_paths_come_from_the_ament_prefixes():
    root = bringup.workspace_root()
    assert (root / "src" / "redraw_common").is_dir()
    assert bringup.executable_path("redraw_sim", "twin_node").is_file()
    assert (bringup.package_share("redraw_sim") / "config" / "twin.yaml").is_file()
    with pytest.raises(FileNotFoundError, match="redraw_sim/no_such_node not installed"):
        bringup.executable_path("redraw_sim", "no_such_node")


def test_strict_start_refuses_unknown_arguments_and_overrides(tmp_path):
    f = tmp_path / "t.launch.py"
    f.write_text(LAUNCH)
    group = bringup.NodeGroup(tmp_path)
    with pytest.raises(bringup.BringupError, match=r"declares no launch argument\(s\) \['robt'\]"):
        bringup.start_launch(group, f, {"robt": "x"}, strict=True)
    with pytest.raises(bringup.BringupError, match=r"starts no executable\(s\) \['twin'\]"):
        bringup.start_launch(group, f, {"robot": "x"}, overrides={"twin": {"seed": 1}}, strict=True)
    assert group.procs == []
    assert bringup.typed("3") == 3 and bringup.typed("2.5") == 2.5 and bringup.typed("True") is True and bringup.typed("x") == "x"


def test_group_ends_its_processes_and_their_children(tmp_path):
    with bringup.NodeGroup(tmp_path, domain_id=7) as group:
        assert group.env["ROS_DOMAIN_ID"] == "7" and group.env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
        proc = group.start_command("sleeper", ["bash", "-c", "sleep 60 & echo child $!; wait"])
        bringup.wait_for(lambda: "child" in proc.output(), 10, what="the child's pid")
        child = int(proc.output().split()[-1])
    assert not proc.alive()
    time.sleep(0.2)
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)
    for _ in range(50):
        assert 101 <= bringup.unique_domain_id(101, 200) <= 200


def test_children_end_when_the_starting_process_is_killed(tmp_path):
    """SIGKILL of the job skips every cleanup; its children must still end (PR_SET_PDEATHSIG), not run on."""
    pid_file = tmp_path / "child.pid"
    code = (
        "import sys, time; from pathlib import Path; from redraw_common.bringup import NodeProcess; "
        f"p = NodeProcess('sleeper', ['sleep', '120'], dict(__import__('os').environ), Path({str(tmp_path / 'log')!r})); "
        f"Path({str(pid_file)!r}).write_text(str(p.pid)); time.sleep(120)"
    )
    parent = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 30
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        child = int(pid_file.read_text())
        os.kill(child, 0)                       # running
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                break
            if open(f"/proc/{child}/stat").read().split()[2] == "Z":   # exited, not yet reaped by init
                break
            time.sleep(0.05)
        else:
            os.kill(child, 9)
            pytest.fail(f"child {child} still runs 10 s after its parent was killed")
    finally:
        if parent.poll() is None:
            parent.kill()
