"""Policy node: drives a Duckiebot (or the digital twin) in closed loop with an exported ONNX policy.

At the control rate (the manifest's, 10 Hz by default) it preprocesses the freshest camera frame with the
manifest's settings, runs onnxruntime, and publishes the action (redraw/action, DriveAction source POLICY),
the wheel command (wheels_driver_node/wheels_cmd, through the robot's kinematics) and its status
(redraw/policy_status: model id, inference time, camera-to-command latency, watchdog state).

Safety (redraw_policy_node.watchdog): no fresh frame within `frame_timeout`, a non-finite action, an
inference error, or redraw/estop = true put the wheels at zero at once - published the moment the cause is
seen, not at the next tick - and keep them there until frames are fresh again, the model gives a finite
action again, or the e-stop is released. A model whose manifest is missing or does not match (hash, input
shape, preprocessing) is refused at start: the node exits with an error and never publishes a wheel command.
On SIGINT/SIGTERM it sends a last zero command before exiting.
"""

from __future__ import annotations

import signal
import sys
import time

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import Bool

from redraw_common import topics
from redraw_common.errors import ManifestError, RedrawInputError
from redraw_common.kinematics import KinematicsConfig, action_to_wheels
from redraw_common.nodeparams import declare_config
from redraw_msgs.msg import DriveAction, PolicyStatus, WheelsCmdStamped

from . import watchdog as wd
from .model import PolicyModel

EXIT_OK, EXIT_REFUSED = 0, 2


class PolicyNode(Node):
    def __init__(self):
        super().__init__("policy_node")

        def param(name, default, description):
            return self.declare_parameter(name, default, ParameterDescriptor(description=description)).value

        model_path = param("model_path", "", "exported policy (.onnx); its manifest <name>.manifest.json lies next to it")
        threads = int(param("threads", 1, "onnxruntime intra-op threads"))
        control_hz = float(param("control_hz", 0.0, "control rate in Hz (0 = the manifest's control_hz)"))
        frame_timeout = float(param("frame_timeout", 0.1, "seconds without a camera frame before the wheels stop"))
        watchdog_hz = float(param("watchdog_hz", 50.0, "how often the camera timeout is checked, Hz"))
        self.kinematics = declare_config(self, "kinematics", KinematicsConfig, "wheel kinematics of this robot:")
        if not model_path:
            raise ManifestError("parameter model_path is empty; expected the path of an exported policy .onnx")
        # load and verify before anything can reach the wheels
        self.model = PolicyModel(model_path, threads=threads)
        self.control_hz = control_hz or self.model.manifest.control_hz
        self.watchdog = wd.Watchdog(frame_timeout)

        reliable = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.wheels_pub = self.create_publisher(WheelsCmdStamped, topics.WHEELS_CMD, reliable)
        self.action_pub = self.create_publisher(DriveAction, topics.ACTION, reliable)
        self.status_pub = self.create_publisher(PolicyStatus, topics.POLICY_STATUS, reliable)
        camera_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
        self.create_subscription(CompressedImage, topics.CAMERA, self.on_frame, camera_qos)
        self.create_subscription(Bool, topics.ESTOP, self.on_estop, reliable)

        self.frame: CompressedImage | None = None
        self.frame_received_ns = 0
        self.driving = False          # last wheel command sent was non-zero
        self.last_state = wd.WAITING
        self.last_inference_ms = 0.0
        self.ticks = 0
        self.create_timer(1.0 / self.control_hz, self.on_tick)
        self.create_timer(1.0 / watchdog_hz, self.on_watchdog)
        m = self.model.manifest
        self.get_logger().info(
            f"model '{m.model_id}' ({self.model.path.name}, sha256 {m.sha256[:12]}...) verified; preprocessing {m.preprocessing.mode} "
            f"{m.preprocessing.height}x{m.preprocessing.width}; control {self.control_hz:g} Hz; camera timeout {frame_timeout:g} s"
        )

    # ---------------------------------------------------------------------------------------------
    def on_frame(self, msg: CompressedImage) -> None:
        self.frame = msg
        self.frame_received_ns = self.get_clock().now().nanoseconds
        self.watchdog.frame(time.monotonic())

    def on_estop(self, msg: Bool) -> None:
        engaged = bool(msg.data)
        if engaged != self.watchdog.estop:
            self.get_logger().warning("e-stop ENGAGED: wheels to zero" if engaged else "e-stop released")
        self.watchdog.set_estop(engaged)
        if engaged:
            self.stop(wd.ESTOP)

    def on_watchdog(self) -> None:
        state = self.watchdog.state(time.monotonic())
        if state in (wd.STALE_CAMERA, wd.ESTOP) and (self.driving or self.last_state != state):
            self.stop(state)

    def on_tick(self) -> None:
        self.ticks += 1
        state = self.watchdog.state(time.monotonic())
        if state in (wd.ESTOP, wd.WAITING, wd.STALE_CAMERA):
            self.stop(state)
            return
        frame = self.frame
        t0 = time.perf_counter()
        try:
            raw = self.model.infer(self.model.observe(bytes(frame.data)))
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
        self.publish(forward, turn, wd.OK, frame)

    # ---------------------------------------------------------------------------------------------
    def stop(self, state: int) -> None:
        """Wheels to zero now."""
        if self.last_state != state and state in (wd.STALE_CAMERA,):
            self.get_logger().warning("camera frames stale: wheels to zero")
        self.publish(0.0, 0.0, state, None)

    def publish(self, forward: float, turn: float, state: int, frame: CompressedImage | None) -> None:
        now = self.get_clock().now()
        stamp = now.to_msg()
        wheels = action_to_wheels(forward, turn, self.kinematics, strict=False)
        cmd = WheelsCmdStamped()
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
        status.inference_ms = float(self.last_inference_ms if state in (wd.OK, wd.BAD_OUTPUT, wd.MODEL_ERROR) else 0.0)
        if frame is not None:
            captured = frame.header.stamp.sec * 1_000_000_000 + frame.header.stamp.nanosec or self.frame_received_ns
            status.end_to_end_latency_ms = float((now.nanoseconds - captured) / 1e6)
        status.watchdog_state = state
        status.last_forward, status.last_turn = float(forward), float(turn)
        self.status_pub.publish(status)
        self.driving = state == wd.OK and (wheels.left != 0.0 or wheels.right != 0.0)
        self.last_state = state


def main(args: list[str] | None = None) -> int:
    # own signal handling: the context must still be alive to send the last zero command
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = {"signal": None}

    def on_signal(signum, _frame):
        stop["signal"] = signum

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    node = None
    code = EXIT_OK
    try:
        node = PolicyNode()
        while rclpy.ok() and stop["signal"] is None:
            rclpy.spin_once(node, timeout_sec=0.05)
    except RedrawInputError as exc:
        what = "refusing the model" if isinstance(exc, ManifestError) else "bad configuration"
        print(f"policy_node: error: {what}: {exc}. No wheel command was sent.", file=sys.stderr, flush=True)
        code = EXIT_REFUSED
    finally:
        if node is not None:
            if rclpy.ok():
                node.publish(0.0, 0.0, wd.ESTOP if node.watchdog.estop else wd.WAITING, None)
                node.get_logger().info("stopping: wheels to zero")
                time.sleep(0.05)  # let the last command leave
            node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
