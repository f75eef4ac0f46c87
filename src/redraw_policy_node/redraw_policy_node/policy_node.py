"""Policy node: drives a Duckiebot (or the digital twin) in closed loop with an exported ONNX policy.

Event-driven: the arrival of a camera frame triggers the work - preprocessing with the manifest's settings,
onnxruntime, and publishing the action (redraw/action, DriveAction source POLICY), the wheel command
(through the robot's kinematics) and the status (redraw/policy_status: model
id, inference time, camera-to-command latency, watchdog state) - so a command is never computed from a frame
that waited for a timer. It acts at the control rate (the manifest's, 10 Hz by default): on the first frame
taken at least 1/control_hz - control_slack after the frame of the last action, by the frames' stamps (the
capture time: regular even when frames arrive with jitter, and simulated time in the twin; the arrival time
for unstamped frames); the frames in between are dropped undecoded. A 30 Hz camera thus gives 10 Hz
commands, each from a frame that has just arrived.

The robot: parameter `robot_profile` (redraw_common.robot_profile; launch argument robot_profile:=) names where its
drivers publish the camera and the odometry and take the wheel commands and the e-stop, and in which types:
`twin` (default: the project's twin), `duckietown-ros2`, `duckietown-ros1-bridge`, or a YAML of the same shape.
The wheel command goes out in the profile's type, the e-stop is read in it, and the odometry's type picks how
the velocity is read (TwistStamped twist.linear.x / angular.z, nav_msgs/Odometry twist.twist.*).

A model whose manifest lists a `vector` input float32 (1, D) reads the Duckietown env's vector observation
(redraw_common.observation), D = 2 + 2k: the robot's measured velocity [forward m/s, yaw rate rad/s] from the
profile's odometry, the freshest message at the frame's arrival, then the last k actions the node sent (forward, turn), newest first (an ActionHistory: each action
the policy drove with is pushed after it goes out, in policy space [-1, 1] as it entered the kinematics).
D = 2 (k = 0) is the velocity alone. Models without a vector input do not subscribe to odometry. Like an env
reset, every stop of the wheels (below) and every episode event on redraw/episode (redraw_msgs/EpisodeEvent,
START or END: the twin's resets, an operator's episodes; subscribed only when k > 0) sets the history to zeros.

Safety (redraw_policy_node.watchdog): no fresh frame within `frame_timeout`, no fresh odometry within
`odom_timeout` (models with a vector input; also before the first message), a non-finite action, an
inference error, or the profile's e-stop = true put the wheels at zero at once - published the moment the cause is
seen, by the frame that meets it or by the watchdog timer (`watchdog_hz`, on the steady clock, so it runs
even when /clock stops; a stale verdict from a check that ran late because the node itself was not scheduled
waits one check for the frames queued meanwhile, watchdog.StallGuard) - and keep them there until frames (and odometry) are fresh again, the model gives a
finite action again, or the e-stop is released. While stopped, a zero command and the status saying why go
out at the control rate. A model whose manifest is missing or does not match (hash, input shapes,
preprocessing) is refused at start: the node exits with code 2 and never publishes a wheel command. On
SIGINT/SIGTERM it sends a last zero command before exiting.

Time: the timeouts (and the zero commands' rate while stopped) count in the node's time base - the steady
clock, or with use_sim_time the simulated time on /clock, so a twin running slower than real time is not
mistaken for a stalled camera (its wheels stop by themselves when its simulated time stops: a wheels
driver's timeout). The control period counts in frame stamps, simulated time in a twin with /clock.
"""

from __future__ import annotations

import math
import sys
import time
from collections import deque
from functools import partial

import rclpy
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage

from redraw_common import topics
from redraw_common.errors import ManifestError, RedrawInputError
from redraw_common.kinematics import KinematicsConfig, action_to_wheels
from redraw_common.nodeparams import declare_config, declare_param
from redraw_common.observation import ActionHistory, compose_vector
from redraw_common.robot_profile import DEFAULT, load, message_class, velocity
from redraw_common.rosinit import run_node
from redraw_msgs.msg import DriveAction, EpisodeEvent, PolicyStatus

from . import watchdog as wd
from .model import PolicyModel

CAMERA_RATE_WINDOW = 30      # frames over which the camera's rate is measured once, against control_hz


class PolicyNode(Node):
    def __init__(self, **node_kwargs):
        super().__init__("policy_node", **node_kwargs)

        param = partial(declare_param, self)

        self.profile = load(str(param("robot_profile", DEFAULT, "robot stack: twin, duckietown-ros2, duckietown-ros1-bridge or the "
                                                               "path of a profile YAML (redraw_common/profiles)")))
        model_path = str(param("model_path", "", "exported policy (.onnx); its manifest <name>.manifest.json lies next to it"))
        threads = int(param("threads", 1, "onnxruntime intra-op threads", low=1))
        control_hz = float(param("control_hz", 0.0, "control rate in Hz (0 = the manifest's control_hz)"))
        slack = float(param("control_slack", 0.02, "a frame taken this many seconds short of a control period after the frame "
                                                   "of the last action may trigger the next one (absorbs camera jitter)"))
        frame_timeout = float(param("frame_timeout", 0.1, "seconds without a camera frame before the wheels stop"))
        odom_timeout = float(param("odom_timeout", 0.2, "seconds without odometry before the wheels stop (models with a vector "
                                                        "input: measured velocity + the last k actions)"))
        watchdog_hz = float(param("watchdog_hz", 50.0, "how often the input timeouts are checked, Hz (steady clock)"))
        self.kinematics = declare_config(self, "kinematics", KinematicsConfig, "wheel kinematics of this robot:")
        if not model_path:
            raise ManifestError("parameter model_path is empty; expected the path of an exported policy .onnx")
        # load and verify before anything can reach the wheels
        self.model = PolicyModel(model_path, threads=threads)
        if not (math.isfinite(control_hz) and 0.0 <= control_hz <= 100.0):
            raise RedrawInputError(f"parameter control_hz must be in (0, 100] Hz, or 0 for the manifest's "
                                   f"{self.model.manifest.control_hz:g} Hz; found {control_hz:g}")
        for name, value in (("frame_timeout", frame_timeout), ("odom_timeout", odom_timeout), ("watchdog_hz", watchdog_hz)):
            if not (math.isfinite(value) and value > 0):
                raise RedrawInputError(f"parameter {name} must be > 0, found {value:g}")
        self.control_hz = control_hz or self.model.manifest.control_hz
        period = 1.0 / self.control_hz
        if not 0.0 <= slack < period:
            raise RedrawInputError(f"parameter control_slack must be in [0, {period:g}) s (the control period at "
                                   f"control_hz {self.control_hz:g}), found {slack:g}")
        self.period_ns = int(period * 1e9)
        self.min_interval_ns = int((period - slack) * 1e9)
        self.watchdog = wd.Watchdog(frame_timeout, odom_timeout if self.model.uses_vector else None)

        reliable = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
        latest = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
        camera, odometry, wheels, estop = self.profile.camera, self.profile.odometry, self.profile.wheels_cmd, self.profile.estop
        self.wheels_type = message_class(wheels.type)
        self.odometry_type = odometry.type
        self.stop_warnings = {wd.STALE_CAMERA: f"camera frames ({camera.topic}) stale: wheels to zero",
                              wd.STALE_ODOMETRY: f"odometry ({odometry.topic}, {odometry.type}) missing or stale: wheels to zero"}
        self.wheels_pub = self.create_publisher(self.wheels_type, wheels.topic, reliable)
        self.action_pub = self.create_publisher(DriveAction, topics.ACTION, reliable)
        self.status_pub = self.create_publisher(PolicyStatus, topics.POLICY_STATUS, reliable)
        self.create_subscription(CompressedImage, camera.topic, self.on_frame, latest)
        self.create_subscription(message_class(estop.type), estop.topic, self.on_estop, reliable)
        if self.model.uses_vector:
            self.create_subscription(message_class(odometry.type), odometry.topic, self.on_odom, latest)
        # the last k actions sent, newest first: the vector's tail (k = 0: no history, the velocity alone)
        self.history = ActionHistory(self.model.action_history)
        if self.history.length:
            self.create_subscription(EpisodeEvent, topics.EPISODE, self.on_episode, reliable)

        self.velocity: tuple[float, float] | None = None  # measured (forward m/s, yaw rate rad/s), models with a vector input
        self.last_action_ns: int | None = None  # stamp (else arrival time) of the frame of the last inference
        self.last_publish = -math.inf           # time (self.now()) of the last command
        self.driving = False                    # last wheel command sent was non-zero
        self.last_state = wd.WAITING
        self.last_inference_ms = 0.0
        self.last_preprocess_ms = 0.0
        self.last_frame_age_ms = 0.0  # frame stamp -> on_frame, of the frame acted on
        self.sim_time = bool(self.get_parameter("use_sim_time").value)
        self.frame_stamps: deque[int] = deque(maxlen=CAMERA_RATE_WINDOW)   # stamps of the latest frames: the camera's rate
        self.rate_checked = False
        self.stall_guard = wd.StallGuard(1.0 / watchdog_hz)
        self.create_timer(1.0 / watchdog_hz, self.on_watchdog, clock=Clock(clock_type=ClockType.STEADY_TIME))
        m = self.model.manifest
        odom = f"; odometry from {odometry.topic} ({odometry.type}), timeout {odom_timeout:g} s" if self.model.uses_vector else ""
        if self.history.length:
            odom += f"; vector = velocity + the last {self.history.length} actions (reset on stops and {topics.EPISODE})"
        self.get_logger().info(
            f"robot profile {self.profile.name}: wheels {wheels.topic} ({wheels.type}), e-stop {estop.topic}; "
            f"model '{m.model_id}' ({self.model.path.name}, sha256 {m.sha256[:12]}...) verified; preprocessing {m.preprocessing.mode} "
            f"{m.preprocessing.height}x{m.preprocessing.width}; control {self.control_hz:g} Hz on camera frames; "
            f"camera timeout {frame_timeout:g} s{odom}"
        )

    # ---------------------------------------------------------------------------------------------
    def now(self) -> float:
        """Seconds in the time base of the timeouts: simulated time with use_sim_time, else the steady clock."""
        return self.get_clock().now().nanoseconds / 1e9 if self.sim_time else time.monotonic()

    def on_frame(self, msg: CompressedImage) -> None:
        received = self.get_clock().now().nanoseconds
        now = self.now()
        self.watchdog.frame(now)
        taken = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec or received
        if not self.rate_checked:
            self.check_camera_rate(taken)
        if self.last_action_ns is not None and 0 <= taken - self.last_action_ns < self.min_interval_ns:
            return  # not due yet: the frame is dropped undecoded (a stamp going back, e.g. a restarted twin, resyncs)
        state = self.watchdog.state(now)
        if state in wd.BLOCKING:
            if state != self.last_state:
                self.stop(state)  # the watchdog timer repeats it at the control rate
            return
        self.last_action_ns = taken
        self.last_frame_age_ms = (received - taken) / 1e6
        self.act(msg, taken)

    def check_camera_rate(self, taken_ns: int) -> None:
        """Once a window of frames has come: say so when the control rate asked for is above the camera's, which
        gives one command per frame, at the camera's rate."""
        self.frame_stamps.append(taken_ns)
        if len(self.frame_stamps) < CAMERA_RATE_WINDOW:
            return
        self.rate_checked = True
        span = (self.frame_stamps[-1] - self.frame_stamps[0]) / 1e9
        camera_hz = (len(self.frame_stamps) - 1) / span if span > 0 else math.inf
        if self.control_hz > 1.05 * camera_hz:
            self.get_logger().warning(
                f"control_hz {self.control_hz:g} is above the camera's {camera_hz:.1f} Hz (measured over {len(self.frame_stamps)} "
                f"frames): the node acts on every frame, about {camera_hz:.1f} commands per second; set control_hz <= the camera rate")

    def on_odom(self, msg) -> None:
        forward, yaw_rate = velocity(msg, self.odometry_type)
        if not (math.isfinite(forward) and math.isfinite(yaw_rate)):
            self.get_logger().warning(f"ignoring non-finite odometry ({forward}, {yaw_rate})", throttle_duration_sec=5.0)
            return
        self.velocity = (forward, yaw_rate)
        self.watchdog.odom(self.now())

    def on_estop(self, msg) -> None:
        engaged = bool(msg.data)
        if engaged != self.watchdog.estop:
            self.get_logger().warning("e-stop ENGAGED: wheels to zero" if engaged else "e-stop released")
        self.watchdog.set_estop(engaged)
        if engaged:
            self.stop(wd.ESTOP)

    def on_episode(self, msg: EpisodeEvent) -> None:
        """An episode starts or ends (the twin reset, an operator): the action history restarts at zeros."""
        self.history.reset()
        self.get_logger().debug(f"episode event {int(msg.event)}: action history reset")

    def on_watchdog(self) -> None:
        now = self.now()
        state = self.watchdog.state(now)
        if self.stall_guard.defer(time.monotonic(), state, stopped_for_it=state == self.last_state):
            return  # this process just woke from a stall: take the frames queued meanwhile, decide at the next check
        if state not in wd.BLOCKING:
            return  # frames drive the commands (and report model errors / bad outputs themselves)
        if self.driving or state != self.last_state or now - self.last_publish >= self.period_ns / 1e9:
            self.stop(state)

    def act(self, frame: CompressedImage, taken_ns: int) -> None:
        """Preprocess, infer, publish: the work one camera frame triggers at the control rate."""
        t0 = time.perf_counter()
        self.last_preprocess_ms = 0.0
        try:
            vector = compose_vector(self.velocity, self.history) if self.model.uses_vector else None
            obs = self.model.observe(bytes(frame.data))
            self.last_preprocess_ms = (time.perf_counter() - t0) * 1e3
            raw = self.model.infer(obs, vector)
        except Exception as exc:  # any failure of preprocessing or onnxruntime stops the robot
            self.last_inference_ms = (time.perf_counter() - t0) * 1e3
            self.watchdog.inference(wd.MODEL_ERROR)
            if self.last_state != wd.MODEL_ERROR:
                self.get_logger().error(f"inference failed, wheels to zero: {type(exc).__name__}: {exc}")
            self.stop(wd.MODEL_ERROR)
            return
        self.last_inference_ms = (time.perf_counter() - t0) * 1e3
        try:
            forward, turn = self.model.to_drive(raw)
        except ValueError as exc:
            self.watchdog.inference(wd.BAD_OUTPUT)
            if self.last_state != wd.BAD_OUTPUT:
                self.get_logger().error(f"model output rejected, wheels to zero: {exc}")
            self.stop(wd.BAD_OUTPUT)
            return
        self.watchdog.inference(wd.OK)
        if self.last_state != wd.OK:
            self.get_logger().info(f"driving ({wd.NAMES[self.last_state]} cleared)")
        self.publish(forward, turn, wd.OK, frame, taken_ns)
        self.history.push((forward, turn))  # what the kinematics got, as the env records its action

    # ---------------------------------------------------------------------------------------------
    def stop(self, state: int) -> None:
        """Wheels to zero now; the action history restarts at zeros, as after an env reset."""
        if self.last_state != state and state in self.stop_warnings:
            self.get_logger().warning(self.stop_warnings[state])
        self.history.reset()
        self.publish(0.0, 0.0, state, None)

    def publish(self, forward: float, turn: float, state: int, frame: CompressedImage | None, taken_ns: int = 0) -> None:
        now = self.get_clock().now()
        stamp = now.to_msg()
        wheels = action_to_wheels(forward, turn, self.kinematics, strict=False)
        cmd = self.wheels_type()
        cmd.header.stamp = stamp
        cmd.header.frame_id = self.get_namespace().strip("/")
        cmd.vel_left, cmd.vel_right = float(wheels.left), float(wheels.right)
        self.wheels_pub.publish(cmd)
        act = DriveAction()
        act.header.stamp = stamp
        act.forward, act.turn, act.source = float(forward), float(turn), DriveAction.SOURCE_POLICY
        self.action_pub.publish(act)
        status = PolicyStatus()
        status.header.stamp = stamp
        status.model_id = self.model.model_id
        acted = state in (wd.OK, wd.BAD_OUTPUT, wd.MODEL_ERROR)
        status.inference_ms = float(self.last_inference_ms if acted else 0.0)
        status.preprocess_ms = float(self.last_preprocess_ms if acted else 0.0)
        if frame is not None:
            status.end_to_end_latency_ms = float((now.nanoseconds - taken_ns) / 1e6)
            status.frame_age_ms = float(self.last_frame_age_ms)
        status.watchdog_state = state
        status.last_forward, status.last_turn = float(forward), float(turn)
        self.status_pub.publish(status)
        self.driving = state == wd.OK and (wheels.left != 0.0 or wheels.right != 0.0)
        self.last_state = state
        self.last_publish = self.now()


def main(args: list[str] | None = None) -> int:
    def explain(exc: RedrawInputError) -> str:
        what = "refusing the model" if isinstance(exc, ManifestError) else "bad configuration"
        return f"{what}: {exc}. No wheel command was sent."

    def stop_wheels(node: PolicyNode, reason: str) -> None:
        if rclpy.ok():  # the context is alive (own signal handling): the last command reaches the wheels
            node.publish(0.0, 0.0, wd.ESTOP if node.watchdog.estop else wd.WAITING, None)
            node.get_logger().info(f"stopping ({reason}): wheels to zero")
            time.sleep(0.05)  # let the last command leave

    return run_node("policy_node", PolicyNode, args, on_exit=stop_wheels, explain=explain)


if __name__ == "__main__":
    sys.exit(main())
