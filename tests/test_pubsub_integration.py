"""Two real node processes exchange redraw_msgs/WheelsCmdStamped over DDS held on loopback."""

import subprocess
from pathlib import Path

import pytest
from helpers.rosproc import NodeGroup

NODES = Path(__file__).parent / "nodes"
pytestmark = pytest.mark.ros


def test_wheels_cmd_pubsub_between_processes(tmp_path):
    with NodeGroup(tmp_path) as group:
        assert group.env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
        talker = group.start_python(NODES / "wheels_talker.py", ["/testbot/wheels_driver_node/wheels_cmd"])
        listener = group.start_python(NODES / "wheels_listener.py", ["/testbot/wheels_driver_node/wheels_cmd", "10"])
        try:
            code = listener.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"listener got fewer than 10 messages in 30 s; its output:\n{listener.output()}\ntalker:\n{talker.output()}")
        assert code == 0, listener.output()
        lines = [line.split() for line in listener.output().splitlines() if line.startswith("GOT ")]
        assert len(lines) == 10
        for _, left, right in lines:
            assert float(left) == pytest.approx(-float(right))
        assert talker.alive()
    assert not talker.alive() and not listener.alive()


def test_group_cleans_up_when_the_test_fails(tmp_path):
    with pytest.raises(RuntimeError), NodeGroup(tmp_path) as group:
        talker = group.start_python(NODES / "wheels_talker.py", ["/x/wheels_cmd"])
        raise RuntimeError("simulated test failure")
    assert not talker.alive()
