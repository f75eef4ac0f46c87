"""Pure-Python core of redraw, shared by the robot and the workstation (numpy + OpenCV only).

Modules:
    preprocessing  camera frame (RGB array or JPEG bytes) -> model observation
    kinematics     policy action (forward, turn) <-> wheel commands
    imageconv      sensor_msgs Image / CompressedImage <-> numpy, without cv_bridge
    manifest       the JSON manifest that travels with every exported model
    episodes       the on-disk episode format shared by simulators, bag conversion and the replay
    topics         topic names (Duckietown-compatible)

Nothing here imports ROS or torch at module level.
"""

__version__ = "0.1.0"
