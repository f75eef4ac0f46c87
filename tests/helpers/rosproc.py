"""Start real ROS 2 node processes for tests, held on loopback DDS, and always clean them up.

    with NodeGroup(tmp_path) as nodes:
        nodes.start_executable("redraw_sim", "twin_node", params={"robot": "db"}, param_files=[...])
        nodes.start_python(script, args)
        ...
    # every process (and its children) is ended on exit, test failed or not

Each NodeGroup gets its own ROS_DOMAIN_ID (unique per test process and group), its own ROS_HOME under the
test's folder, and ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST. Re-exports redraw_common.bringup.
"""

from __future__ import annotations

from pathlib import Path

from redraw_common.bringup import NodeGroup, NodeProcess, executable_path, ros_env, unique_domain_id, wait_for

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "install"

__all__ = ["REPO", "INSTALL", "NodeGroup", "NodeProcess", "executable_path", "ros_env", "unique_domain_id", "wait_for"]
