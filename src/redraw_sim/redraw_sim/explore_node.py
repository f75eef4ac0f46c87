"""Exploration driver node: drives the digital twin for reward-free calibration data.

    ros2 launch redraw_sim explore.launch.py robot:=db1

At `control_hz` (10) it reads the lane state from the twin's ground truth (redraw_sim/ground_truth), asks
the driver for an action and publishes it on redraw/action (DriveAction, source EXPLORE; SCRIPTED for the
`expert` P-controller) and, through the robot's kinematics, on wheels_driver_node/wheels_cmd. A START on
redraw/episode resets the driver's mode. Without fresh ground truth (`truth_timeout`) it commands a stop.
Timers follow the ROS clock: start it with use_sim_time:=true next to a twin that publishes /clock.
The driver is `redraw_sim.drivers.ExploreDriver` (noisy lane keeping, drifts and recoveries, stops,
short reverses, varied speeds; it identifies the sign of each command channel from the ground truth's
odometry and logs it) or `LaneFollowPController`; neither uses a reward.
"""

from __future__ import annotations

import sys
from functools import partial

from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from redraw_common import topics
from redraw_common.action_out import ActionOut, run_driver
from redraw_common.kinematics import KinematicsConfig
from redraw_common.nodeparams import declare_config, declare_param
from redraw_common.robot_profile import load
from redraw_msgs.msg import DriveAction, EpisodeEvent, GroundTruth

from . import ground_truth
from .drivers import DriverInputError, ExploreConfig, ExploreDriver, LaneFollowPController

DRIVERS = ("explore", "expert")


class ExploreNode(Node):
    def __init__(self):
        super().__init__("explorer")

        param = partial(declare_param, self)

        driver = param("driver", "explore", f"one of {list(DRIVERS)}: reward-free explorer or the lane-following P-controller")
        control_hz = float(param("control_hz", 10.0, "control rate, Hz (ROS time: simulated with use_sim_time)"))
        self.truth_timeout = float(param("truth_timeout", 0.5, "seconds without ground truth before the driver stops the robot"))
        seed = int(param("seed", 0, "seed of the explorer's random choices"))
        speed = (float(param("speed_min", 0.2, "explore: slowest cruise forward command")),
                 float(param("speed_max", 1.0, "explore: fastest cruise forward command")))
        p_drift = float(param("p_drift", ExploreConfig.p_drift, "explore: chance per tick of starting a drift"))
        p_stop = float(param("p_stop", ExploreConfig.p_stop, "explore: chance per tick of stopping"))
        p_reverse = float(param("p_reverse", ExploreConfig.p_reverse, "explore: chance per tick of a short reverse"))
        turn_noise = float(param("turn_noise", ExploreConfig.turn_noise, "explore: std of the turn noise"))
        forward = float(param("forward", 0.6, "expert: constant forward command"))
        self.kinematics = declare_config(self, "kinematics", KinematicsConfig, "wheel kinematics of this robot:")
        if driver not in DRIVERS:
            raise DriverInputError(f"driver must be one of {DRIVERS}, found {driver!r}")
        if control_hz <= 0 or self.truth_timeout <= 0:
            raise DriverInputError(f"control_hz and truth_timeout must be > 0, found {control_hz}, {self.truth_timeout}")
        if not -1 <= speed[0] <= speed[1] <= 1:
            raise DriverInputError(f"speed_min <= speed_max must lie in [-1, 1], found {speed}")
        if driver == "explore":
            config = ExploreConfig(speed_range=speed, p_drift=p_drift, p_stop=p_stop, p_reverse=p_reverse, turn_noise=turn_noise)
            self.driver = ExploreDriver(config, seed=seed)
            source = DriveAction.SOURCE_EXPLORE
        else:
            self.driver = LaneFollowPController(forward=forward)
            source = DriveAction.SOURCE_SCRIPTED
        self.out = ActionOut(self, self.kinematics, source, load("twin"))   # the twin's own topics: its ground truth drives
        reliable = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.create_subscription(GroundTruth, topics.GROUND_TRUTH, self.on_truth, reliable)
        self.create_subscription(EpisodeEvent, topics.EPISODE, self.on_episode, reliable)
        self.state: dict[str, float] | None = None
        self.state_time_ns = 0
        self.stopped_for_truth = False
        self.logged_decisions = [False, False]
        self.create_timer(1.0 / control_hz, self.on_tick)
        self.get_logger().info(f"{driver} driver at {control_hz:g} Hz, seed {seed}, reading {topics.GROUND_TRUTH}")

    def on_truth(self, msg: GroundTruth) -> None:
        try:
            self.state = ground_truth.from_msg(msg)
        except ground_truth.GroundTruthError as exc:
            self.get_logger().error(str(exc), throttle_duration_sec=5.0)
            return
        self.state_time_ns = self.get_clock().now().nanoseconds

    def on_episode(self, msg: EpisodeEvent) -> None:
        if msg.event == EpisodeEvent.EVENT_START:
            self.driver.reset()

    def on_tick(self) -> None:
        age = (self.get_clock().now().nanoseconds - self.state_time_ns) / 1e9
        if self.state is None or age > self.truth_timeout:
            if not self.stopped_for_truth:
                self.get_logger().warning(f"no ground truth for {age:.1f} s on {topics.GROUND_TRUTH}: stopping")
                self.stopped_for_truth = True
            self.out.publish(0.0, 0.0)
            return
        if self.stopped_for_truth:
            self.get_logger().info("ground truth back: driving")
            self.stopped_for_truth = False
        forward, turn = self.driver.act(self.state)
        self.out.publish(float(forward), float(turn))
        signs = getattr(self.driver, "actuation", None)
        if signs is None:
            return
        for channel in range(2):
            if signs.decided[channel] and not self.logged_decisions[channel]:
                self.logged_decisions[channel] = True
                self.get_logger().info(f"actuation identified from odometry: {signs.describe(channel)}; "
                                       "commands sent = intended x sign from now on")


def main(args: list[str] | None = None) -> int:
    return run_driver(ExploreNode, "explore_node", args)


if __name__ == "__main__":
    sys.exit(main())
