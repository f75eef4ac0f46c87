"""Digital twin: the Duckietown lane-following simulator as a ROS 2 robot under a namespace (/<robot>/...).

    ros2 launch redraw_sim twin.launch.py robot:=db1 perturb:=reversed

Publishes (relative to the namespace)
    camera_node/image/compressed   sensor_msgs/CompressedImage, JPEG, `camera_hz` (30) at camera_width x camera_height
    deadreckoning_node/velocity    geometry_msgs/TwistStamped, the measured velocity (twist.linear.x forward m/s,
                                   twist.angular.z yaw rate rad/s) as wheel-encoder odometry reports it: the
                                   Duckietown env's "vector" observation (LaneSim.sim.velocities(), after the
                                   perturbation), with every camera frame and stamped like it; off with
                                   publish_odometry:=false
    redraw/episode                 redraw_msgs/EpisodeEvent: START at the start and after every reset, END (LEFT_LANE
                                   when the robot leaves its lane, TIMEOUT after `episode_timeout` s) before it
    redraw_sim/ground_truth        redraw_msgs/GroundTruth (fields: redraw_sim.ground_truth), every
                                   simulator step: pose, lane offset, progress, laps, dense reward - twin only
    /clock                         rosgraph_msgs/Clock, the twin's simulated time, when `publish_clock` is true
Consumes
    wheels_driver_node/wheels_cmd  redraw_msgs/WheelsCmdStamped: held until the next one; after
                                   `command_timeout` s without one the wheels stop, like a real wheels driver.

Time: the simulator steps at 30 Hz of simulated time, paced by the wall clock at most `real_time_factor` x real
time (1 = real time; 4 = four times faster). The real-time factor is an upper bound, as in Gazebo: every camera
frame the configured rate owes is rendered and published, and when rendering (or, with /clock, the driver) cannot
keep up, simulated time slows instead; the achieved factor is logged every `log_every` s and in the closing line.
With publish_clock the simulated time goes out on /clock and stamps every message, so nodes started with
use_sim_time:=true follow the twin at any speed; without it, messages are stamped with the ROS time at the start
plus the simulated time.

Driver pacing (with publish_clock only): a driver that follows /clock stamps its wheel commands with simulated time.
Once commands flow, the twin does not let simulated time run more than `max_command_lag` s past the newest
command's stamp: it waits for the driver (in wall time) instead, so a driver starved of CPU sees the same
simulated control delay as on an idle machine. A driver silent for `command_wait_timeout` wall seconds releases
the wait (the wheels stop after `command_timeout`, as without a driver) until its next command. 0 turns pacing off.

The perturbation (`perturb`, e.g. "reversed" or "trim:0.1,delay:0.2") acts inside the simulator on the wheel
commands; nothing published reveals it except the motion itself.
"""

from __future__ import annotations

import math
import sys
import time
from functools import partial

from builtin_interfaces.msg import Time
from geometry_msgs.msg import TwistStamped
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import CompressedImage

from redraw_common import topics
from redraw_common.errors import RedrawInputError
from redraw_common.imageconv import rgb_to_compressed
from redraw_common.nodeparams import declare_param
from redraw_common.rosinit import run_node
from redraw_msgs.msg import EpisodeEvent, GroundTruth, WheelsCmdStamped

from . import ground_truth
from .dt_import import DuckietownUnavailable
from .duckietown_sim import MAPS, SIM_HZ, LaneSim


class TwinConfigError(RedrawInputError):
    """A twin parameter is out of range."""


class TwinNode(Node):
    def __init__(self):
        super().__init__("twin")

        param = partial(declare_param, self)

        map_name = param("map_name", "loop_empty", f"Duckietown loop map, one of {list(MAPS)}")
        if map_name not in MAPS:
            raise TwinConfigError(f"parameter map_name must be one of {list(MAPS)}, found {map_name!r}")
        perturb = param("perturb", "", "dynamics perturbation inside the simulator, e.g. 'reversed' or 'trim:0.1,gain:0.7,delay:0.2'")
        width = int(param("camera_width", 640, "camera frame width, pixels"))
        height = int(param("camera_height", 480, "camera frame height, pixels"))
        camera_hz = float(param("camera_hz", 30.0, "camera frame rate in simulated time; must divide 30"))
        self.quality = int(param("jpeg_quality", 90, "JPEG quality of the camera frames", low=1, high=100))
        self.rtf = float(param("real_time_factor", 1.0, "most simulated seconds per wall second (1 = real time); the twin runs "
                               "slower when it cannot render every frame or its driver lags (achieved factor in the status lines)"))
        self.publish_clock = bool(param("publish_clock", False, "publish the simulated time on /clock and stamp with it"))
        self.command_timeout = float(param("command_timeout", 0.5, "seconds (simulated) without a wheel command before the wheels stop"))
        self.episode_timeout = float(param("episode_timeout", 0.0, "end and restart an episode after this many simulated seconds (0 = never)"))
        seed = int(param("seed", 0, "seed of the start poses"))
        self.max_catchup = int(param("max_catchup_steps", 5, "most simulator steps (each with its frame) one tick may run to catch up "
                                     "with the wall clock; a larger backlog slows simulated time instead", low=1))
        self.max_command_lag = float(param("max_command_lag", 0.25, "with publish_clock: most simulated seconds past the newest wheel "
                                           "command's stamp before the twin waits for its driver (0 = never wait)"))
        self.command_wait_timeout = float(param("command_wait_timeout", 5.0, "wall seconds the twin waits for a lagging driver "
                                                "before it runs on without one (until the driver's next command)"))
        log_every = float(param("log_every", 10.0, "seconds (wall) between status lines"))
        self.frame_id = param("frame_id", "", "frame_id of the camera frames (empty: the robot name)") or self.get_namespace().strip("/")
        publish_odometry = bool(param("publish_odometry", True, "publish the measured velocity on deadreckoning_node/velocity (false: a robot without odometry)"))
        self.odom_frame_id = f"{self.get_namespace().strip('/') or 'twin'}/base_link"
        self.check(camera_hz, width, height)
        self.camera_every = int(round(SIM_HZ / camera_hz))

        self.lane = LaneSim(map_name, perturb, width, height, seed=seed)   # raises on a bad map / perturbation
        self.lane.reset()

        reliable = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
        # the camera's writer keeps 300 frames for a reliable subscriber that is behind (a recorder descheduled on a
        # loaded machine acknowledges late): a frame the twin rendered is not lost on the way
        self.camera_pub = self.create_publisher(CompressedImage, topics.CAMERA,
                                                QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=300, reliability=ReliabilityPolicy.RELIABLE))
        # latched: a node that joins mid-episode (a probe, `ros2 topic echo --qos-durability transient_local`) still
        # gets the events of the current episode; volatile subscribers match too and see new events only
        latched = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.episode_pub = self.create_publisher(EpisodeEvent, topics.EPISODE, latched)
        self.truth_pub = self.create_publisher(GroundTruth, topics.GROUND_TRUTH, reliable)
        self.odom_pub = self.create_publisher(TwistStamped, topics.ODOM_VELOCITY, reliable) if publish_odometry else None
        self.clock_pub = self.create_publisher(ClockMsg, "/clock", reliable) if self.publish_clock else None
        self.create_subscription(WheelsCmdStamped, topics.WHEELS_CMD, self.on_wheels, reliable)

        self.command = (0.0, 0.0)
        self.command_time = -math.inf       # simulated time of the last wheel command
        self.steps = 0                      # simulator steps since start
        self.episode = 0
        self.episode_start = 0.0
        self.episode_laps = 0
        self.counts = {"frames": 0, "odometry": 0, "episodes": 1, "left_lane": 0, "timeouts": 0, "commands": 0, "laps": 0}
        self.command_stamp = -math.inf      # simulated time stamped on the newest wheel command (pacing)
        self.pace = self.publish_clock and self.max_command_lag > 0
        self.wait_since: float | None = None    # wall time the twin started waiting for its driver
        self.released = False               # the driver went silent: no pacing until its next command
        self.waited_s = 0.0                 # wall seconds spent waiting for the driver
        self.t0_ros = self.get_clock().now().nanoseconds
        self.t0_wall = time.monotonic()     # wall time of simulated time 0 on the schedule (moves when the twin slows)
        self.start_wall = self.last_tick = self.t0_wall
        self.last_log = self.t0_wall
        self.last_log_sim = 0.0
        self.log_every = log_every
        wall = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(1.0 / (SIM_HZ * self.rtf), self.on_tick, clock=wall)
        self.started = False
        self.get_logger().info(
            f"twin on {map_name} (loop {self.lane.track.length:.2f} m), perturbation '{self.lane.perturb or 'none'}', camera "
            f"{width}x{height} at {camera_hz:g} Hz, at most {self.rtf:g}x real time{', publishing /clock' if self.publish_clock else ''}"
            f"{f', pacing its driver (max command lag {self.max_command_lag:g} s)' if self.pace else ''}"
        )

    def check(self, camera_hz: float, width: int, height: int) -> None:
        if camera_hz <= 0 or abs(SIM_HZ / camera_hz - round(SIM_HZ / camera_hz)) > 1e-9:
            raise TwinConfigError(f"parameter camera_hz must divide the simulator's {SIM_HZ:g} Hz (30, 15, 10, ...), found {camera_hz}")
        if not 0 < self.rtf <= 100:
            raise TwinConfigError(f"real_time_factor must be in (0, 100], found {self.rtf}")
        if self.command_timeout <= 0:
            raise TwinConfigError(f"command_timeout must be > 0 s, found {self.command_timeout}")
        if not (math.isfinite(self.max_command_lag) and self.max_command_lag >= 0):
            raise TwinConfigError(f"max_command_lag must be >= 0 s (0 = no driver pacing), found {self.max_command_lag}")
        if not self.command_wait_timeout > 0:
            raise TwinConfigError(f"command_wait_timeout must be > 0 s, found {self.command_wait_timeout}")

    # time ---------------------------------------------------------------------------------------------------
    @property
    def sim_time(self) -> float:
        return self.steps / SIM_HZ

    def stamp(self) -> Time:
        ns = int(round(self.sim_time * 1e9)) + (0 if self.publish_clock else self.t0_ros)
        return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)

    # callbacks ----------------------------------------------------------------------------------------------
    def on_wheels(self, msg: WheelsCmdStamped) -> None:
        left, right = float(msg.vel_left), float(msg.vel_right)
        if not (math.isfinite(left) and math.isfinite(right)):
            self.get_logger().warning(f"ignoring a non-finite wheel command ({left}, {right})", throttle_duration_sec=5.0)
            return
        self.command = (max(-1.0, min(1.0, left)), max(-1.0, min(1.0, right)))
        self.command_time = self.sim_time
        self.command_stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        self.released = False
        self.counts["commands"] += 1

    def driver_lags(self, now: float) -> bool:
        """With pacing: the next step would put simulated time more than max_command_lag past the newest command."""
        if not self.pace or self.released or self.command_stamp == -math.inf:
            return False
        if (self.steps + 1) / SIM_HZ - self.command_stamp <= self.max_command_lag:
            self.wait_since = None
            return False
        if self.wait_since is None:
            self.wait_since = now
        if now - self.wait_since >= self.command_wait_timeout:
            self.get_logger().warning(f"no wheel command for {now - self.wait_since:.1f} s wall (newest stamped {self.command_stamp:.2f} s, "
                                      f"simulated time {self.sim_time:.2f} s): running on without the driver until its next command")
            self.released, self.wait_since = True, None
            return False
        return True

    def on_tick(self) -> None:
        if not self.started:
            self.started = True
            self.publish_event(EpisodeEvent.EVENT_START, EpisodeEvent.REASON_NONE)
        now = time.monotonic()
        due = int((now - self.t0_wall) * SIM_HZ * self.rtf) - self.steps
        if due > self.max_catchup:      # behind the schedule: slow simulated time instead of skipping frames
            self.t0_wall += (due - self.max_catchup) / (SIM_HZ * self.rtf)
            due = self.max_catchup
        for _ in range(max(due, 0)):
            if self.driver_lags(now):
                # hold simulated time where it is: the schedule moves with the wall clock while the twin waits
                self.t0_wall = now - self.steps / (SIM_HZ * self.rtf)
                self.waited_s += now - self.last_tick
                break
            self.physics_step()
            if self.steps % self.camera_every == 0:
                self.publish_frame()
        self.last_tick = now
        if now - self.last_log >= self.log_every:
            self.log_status(now)

    # simulation ---------------------------------------------------------------------------------------------
    def physics_step(self) -> None:
        fresh = self.sim_time - self.command_time <= self.command_timeout
        left, right = self.command if fresh else (0.0, 0.0)
        reward, terminated, info = self.lane.step(left, right, 1)
        self.steps += 1
        if self.clock_pub is not None:
            self.clock_pub.publish(ClockMsg(clock=self.stamp()))
        self.counts["laps"] += info["laps"] - self.episode_laps
        self.episode_laps = info["laps"]
        self.publish_truth(info, reward, terminated)
        if terminated:
            self.counts["left_lane"] += 1
            self.restart(EpisodeEvent.REASON_LEFT_LANE, f"left the lane ({self.lane.episode.end})")
        elif self.episode_timeout > 0 and self.sim_time - self.episode_start >= self.episode_timeout:
            self.counts["timeouts"] += 1
            self.restart(EpisodeEvent.REASON_TIMEOUT, f"episode time limit {self.episode_timeout:g} s")

    def restart(self, reason: int, why: str) -> None:
        metrics = self.lane.episode_metrics()
        self.publish_event(EpisodeEvent.EVENT_END, reason)
        self.get_logger().info(
            f"episode {self.episode} ended: {why} after {metrics['sim_time_s']:.1f} s, {metrics['distance_m']:.2f} m along the "
            f"lane, {metrics['laps']} laps, centre offset {metrics['centre_offset_cm']:.1f} cm; resetting"
        )
        self.lane.reset()
        self.episode_laps = 0
        self.episode += 1
        self.episode_start = self.sim_time
        self.counts["episodes"] += 1
        self.publish_event(EpisodeEvent.EVENT_START, EpisodeEvent.REASON_NONE)

    # publishing ---------------------------------------------------------------------------------------------
    def publish_frame(self) -> None:
        self.publish_odometry()
        msg = rgb_to_compressed(self.lane.render(), stamp=self.stamp(), frame_id=self.frame_id, quality=self.quality)
        self.camera_pub.publish(msg)
        self.counts["frames"] += 1

    def publish_odometry(self) -> None:
        """The velocity the Duckietown env would observe now (its 'vector'), stamped like a frame taken now."""
        if self.odom_pub is None:
            return
        forward, yaw_rate = self.lane.sim.velocities()
        msg = TwistStamped()
        msg.header.stamp = self.stamp()
        msg.header.frame_id = self.odom_frame_id
        msg.twist.linear.x = float(forward)
        msg.twist.angular.z = float(yaw_rate)
        self.odom_pub.publish(msg)
        self.counts["odometry"] += 1

    def publish_event(self, event: int, reason: int) -> None:
        msg = EpisodeEvent()
        msg.header.stamp = self.stamp()
        msg.header.frame_id = self.frame_id
        msg.event, msg.reason = event, reason
        self.episode_pub.publish(msg)

    def publish_truth(self, info: dict, reward: float, terminated: bool) -> None:
        x, y, yaw = ground_truth.map_pose(self.lane.sim)
        self.truth_pub.publish(ground_truth.to_msg({
            "stamp_s": self.sim_time + (0.0 if self.publish_clock else self.t0_ros / 1e9),
            "x_m": x, "y_m": y, "yaw_rad": yaw,
            "lane_offset_m": info["lane_offset_m"], "lane_heading_rad": info["lane_heading_rad"], "s_m": info["s_m"],
            "distance_m": info["distance_m"], "laps": info["laps"], "lap_time_s": info["lap_time_s"],
            "speed_mps": info["speed_mps"], "yaw_rate_rps": info["yaw_rate"], "reward": reward,
            "episode": self.episode, "out_of_lane": float(terminated),
        }))

    def achieved_rtf(self, now: float) -> float:
        """Simulated seconds per wall second since the twin started."""
        return self.sim_time / max(now - self.start_wall, 1e-9)

    def log_status(self, now: float) -> None:
        c = self.counts
        recent = (self.sim_time - self.last_log_sim) / max(now - self.last_log, 1e-9)
        self.get_logger().info(
            f"t_sim {self.sim_time:.1f} s ({self.achieved_rtf(now):.2f}x real time achieved, {recent:.2f}x in the last "
            f"{now - self.last_log:.0f} s; at most {self.rtf:g}x), {c['frames']} frames ({c['frames'] / max(self.sim_time, 1e-9):.1f}/s "
            f"simulated), {c['odometry']} odometry, {c['commands']} commands, {self.waited_s:.1f} s waiting for the driver, "
            f"episode {self.episode} ({c['left_lane']} left the lane, {c['timeouts']} timed out), {c['laps']} laps"
        )
        self.last_log, self.last_log_sim = now, self.sim_time


def main(args: list[str] | None = None) -> int:
    return run_node("twin_node", TwinNode, args, on_exit=lambda node, reason: node.log_status(time.monotonic()),
                    explain=lambda exc: f"bad configuration: {exc}", refused=(DuckietownUnavailable,))


if __name__ == "__main__":
    sys.exit(main())
