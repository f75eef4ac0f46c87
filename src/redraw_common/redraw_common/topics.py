"""Topic names of the redraw stack (Duckietown-compatible), relative to the robot namespace `/<robot>`."""

CAMERA = "camera_node/image/compressed"       # sensor_msgs/CompressedImage (JPEG)
WHEELS_CMD = "wheels_driver_node/wheels_cmd"  # redraw_msgs/WheelsCmdStamped
ODOM_VELOCITY = "deadreckoning_node/velocity"  # geometry_msgs/TwistStamped: measured linear.x m/s, angular.z rad/s
ACTION = "redraw/action"                      # redraw_msgs/DriveAction
EPISODE = "redraw/episode"                    # redraw_msgs/EpisodeEvent
POLICY_STATUS = "redraw/policy_status"        # redraw_msgs/PolicyStatus
ESTOP = "redraw/estop"                        # std_msgs/Bool
GROUND_TRUTH = "redraw_sim/ground_truth"      # twin only; never recorded for calibration

DEFAULT_ROBOT = "duckiebot"


def robot_topic(robot: str, name: str) -> str:
    """Absolute topic name of `name` under the robot namespace, e.g. ('db1', CAMERA) -> '/db1/camera_node/...'."""
    robot = robot.strip("/")
    if not robot:
        raise ValueError("robot name must be a non-empty string, found an empty one")
    return f"/{robot}/{name.lstrip('/')}"
