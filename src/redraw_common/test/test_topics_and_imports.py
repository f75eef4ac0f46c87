import subprocess
import sys

import pytest

from redraw_common import topics


def test_robot_topic():
    assert topics.robot_topic("db1", topics.CAMERA) == "/db1/camera_node/image/compressed"
    assert topics.robot_topic("/db1/", "/redraw/action") == "/db1/redraw/action"
    with pytest.raises(ValueError, match="non-empty"):
        topics.robot_topic("", topics.CAMERA)


def test_no_ros_or_torch_imported_at_module_level():
    code = (
        "import sys, redraw_common.preprocessing, redraw_common.kinematics, redraw_common.imageconv, "
        "redraw_common.manifest, redraw_common.episodes, redraw_common.topics, redraw_common.files, redraw_common.checkpointfile; "
        "bad = [m for m in ('rclpy', 'torch', 'sensor_msgs') if m in sys.modules]; print(bad); sys.exit(bool(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
