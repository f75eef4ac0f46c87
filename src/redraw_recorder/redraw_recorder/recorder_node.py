"""Recorder node: camera images, wheel commands, actions, episode events and wheel odometry of one robot -> a
recording (one rosbag2 bag of split mcap files, with each topic's offered QoS) for reward-free calibration.

The robot's drivers: parameter `robot_profile` (redraw_common.robot_profile: twin, duckietown-ros2,
duckietown-ros1-bridge, or a YAML) names the camera, wheel-command and odometry topics and their types; the
actions and episode events are the project's own (redraw/action, redraw/episode). The bag keeps each topic in
the driver's own type, and the sidecar names the topics, so the converter reads any profile's recording.

Odometry (the profile's: geometry_msgs/TwistStamped or nav_msgs/Odometry, the measured forward m/s and yaw rate
rad/s) is what models with a velocity vector observe besides the camera. It is recorded by default (`record_odometry`);
a robot without it still records, and every progress line, the closing line and the sidecar's stats
(`missing_topics`) say that it is missing, so a conversion for such a model fails knowingly, not silently.

Subscriptions are serialized (`raw=True`): bytes go straight into the bag, nothing is decoded. Topics are
relative, so the node's namespace picks the robot (`--ros-args -r __ns:=/db1`, or the launch file's
namespace). The robot name, the kinematics and the preprocessing settings go with every part.

Stops when asked (max_transitions, max_duration), on SIGINT/SIGTERM, or when the disk is nearly full;
closes every part cleanly in each case. A SIGKILL loses at most about `flush_period` seconds: see
redraw_recorder.repair. Progress (transitions, rates, estimated drops, size, free disk) is logged every
`progress_period` seconds and kept in the recording's sidecar.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import rclpy
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

from redraw_common import topics
from redraw_common.alignment import AlignmentRule, UsableCounter
from redraw_common.errors import RedrawInputError
from redraw_common.kinematics import KinematicsConfig
from redraw_common.nodeparams import declare_config, declare_param
from redraw_common.preprocessing import PreprocessConfig
from redraw_common.recording import RecordingInfo, cdr_header_stamp
from redraw_common.robot_profile import DEFAULT, load, message_class
from redraw_common.rosinit import EXIT_OK, run_node
from redraw_msgs.msg import EpisodeEvent

from . import __version__
from .bagwriter import RecordingWriter, free_bytes

EXIT_DISK_FULL = 3   # besides run_node's 0 (done), 1 (an error while recording), 2 (refused at start)
CAMERA_QUEUE = 600   # frames the recorder's camera subscription holds while it is behind
INFINITE_NS = (2**31 - 1) * 1_000_000_000  # from here on a publisher's deadline, lifespan or lease is rmw's "infinite"
OPTIONAL_ROLES = ("odometry",)  # recorded when the robot has them; their absence is reported, not fatal


class DropEstimator:
    """Estimates messages lost upstream from the stream's own header stamps: each interval spans
    round(dt / period) stream periods (period = median of recent intervals); drops = periods spanned - intervals.
    A late message followed by an early one spans 2 + 0 periods: publisher jitter cancels out, real gaps don't."""

    def __init__(self, window: int = 31):
        self.window = window
        self.intervals: list[float] = []
        self.last: int | None = None
        self.spanned = 0
        self.counted = 0
        self.out_of_order = 0

    @property
    def drops(self) -> int:
        return max(0, self.spanned - self.counted)

    def stamp(self, ns: int | None) -> None:
        if not ns:
            return
        if self.last is not None:
            dt = (ns - self.last) * 1e-9
            if dt <= 0:
                self.out_of_order += 1
                return
            if len(self.intervals) >= 5:
                period = sorted(self.intervals)[len(self.intervals) // 2]
                self.spanned += round(dt / period)
                self.counted += 1
            self.intervals.append(dt)
            del self.intervals[: -self.window]
        self.last = ns


class Recorder(Node):
    def __init__(self):
        super().__init__("recorder")

        param = partial(declare_param, self)

        ns_robot = self.get_namespace().strip("/")
        self.profile = load(str(param("robot_profile", DEFAULT, "robot stack: twin, duckietown-ros2, duckietown-ros1-bridge or the "
                                                               "path of a profile YAML (redraw_common/profiles)")))
        robot = param("robot", "", "robot name stored with the bag; empty = the node's namespace") or ns_robot or topics.DEFAULT_ROBOT
        output = param("output", "", "recording folder to create; empty = <output_root>/<robot>_<UTC time>")
        output_root = param("output_root", "~/redraw_bags", "parent folder of automatically named recordings")
        storage = param("storage", "mcap", "rosbag2 storage: mcap or sqlite3")
        self.max_transitions = int(param("max_transitions", 0, "stop after this many usable transitions, counted as the bag -> dataset "
                                         "converter keeps them (redraw_common.alignment; 0 = no limit)", low=0))
        self.max_duration = float(param("max_duration", 0.0, "stop after this many seconds of recording, node clock (0 = no limit)", low=0.0))
        split_size_mb = float(param("split_size_mb", 512.0, "start a new part after this many MiB (0 = never)", low=0.0))
        split_duration = float(param("split_duration", 300.0, "start a new part after this many seconds (0 = never)", low=0.0))
        self.min_free_mb = float(param("min_free_mb", 512.0, "refuse to start, or stop, below this much free disk (MiB)", low=0.0))
        flush_period = float(param("flush_period", 1.0, "seconds between flushes of complete data to disk"))
        progress_period = float(param("progress_period", 5.0, "seconds between progress log lines"))
        control_hz = float(param("control_hz", 10.0, "control rate, to count transitions", low=0.0, high=100.0))
        camera_best_effort = bool(param("camera_best_effort", True, "subscribe to the camera best-effort (matches any publisher)"))
        record_odometry = bool(param("record_odometry", True, "record the robot profile's odometry (the measured velocity); a robot "
                                     "without it still records, reported as missing"))
        limits = {   # parameter -> (value, ok, what it must be), beyond the inclusive bounds declared above
            "storage": (storage, storage in ("mcap", "sqlite3"), "mcap or sqlite3"),
            "flush_period": (flush_period, flush_period > 0, "> 0 s"),
            "progress_period": (progress_period, progress_period > 0, "> 0 s"),
            "control_hz": (control_hz, control_hz > 0, "> 0 Hz"),
        }
        bad = [f"parameter {name} must be {wanted}, found {value!r}" for name, (value, ok, wanted) in limits.items() if not ok]
        if bad:
            raise RedrawInputError("; ".join(bad))
        kinematics = declare_config(self, "kinematics", KinematicsConfig, "wheel kinematics of this robot:")
        preprocessing = declare_config(self, "preprocessing", PreprocessConfig, "preprocessing of the robot's model:")

        if output:
            folder = Path(output).expanduser()
        else:
            folder = Path(output_root).expanduser() / f"{robot}_{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"
        # role -> (topic relative to the namespace, type name): the drivers' from the profile, the project's own
        endpoints = {"camera": self.profile.camera, "wheels_cmd": self.profile.wheels_cmd}
        if record_odometry:
            endpoints["odometry"] = self.profile.odometry
        roles = {role: (e.topic, e.type) for role, e in endpoints.items()}
        roles["action"] = (topics.ACTION, "redraw_msgs/msg/DriveAction")
        roles["episode"] = (topics.EPISODE, "redraw_msgs/msg/EpisodeEvent")
        types = {role: message_class(msgtype) for role, (_, msgtype) in roles.items()}
        resolved = {role: self.resolve_topic_name(topic) for role, (topic, _) in roles.items()}
        self.info = RecordingInfo(
            robot=robot, kinematics=kinematics, preprocessing=preprocessing, control_hz=control_hz, topics=resolved,
            recorder=f"redraw_recorder {__version__}", started=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        self.writer = RecordingWriter(
            folder, self.info, storage=storage, split_size=int(split_size_mb * 2**20), split_duration=split_duration,
            min_free=int(self.min_free_mb * 2**20), offered_qos=partial(offered_qos, self),
        )
        self.writer.open()  # raises BagError: output exists, disk nearly full

        self.resolved = resolved
        self.keys = {role: self.writer.add_topic(resolved[role], msgtype) for role, (_, msgtype) in roles.items()}
        self.counts = dict.fromkeys(types, 0)
        self.drops = {role: DropEstimator() for role in ("camera", "odometry") if role in types}
        # counts as the converter will keep them, on each command stream: the converter takes the actions from
        # redraw/action where the recording has any, else from the wheel commands (a robot driven by its own
        # controller); odometry is required from its first message on (a robot without odometry still gets
        # frame-only transitions counted, and the NO ODOMETRY warning)
        rule = AlignmentRule(control_hz=control_hz)
        self.counters = {role: UsableCounter(rule, needs_odometry=False) for role in ("action", "wheels_cmd") if role in types}
        reliable = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE)
        # a deep camera queue: a recorder descheduled for a few seconds on a loaded machine (a twin at 4x real time
        # sends 120 frames/s) catches up instead of losing frames; ~600 JPEGs are 3-30 MB
        camera_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=CAMERA_QUEUE,
                                reliability=ReliabilityPolicy.BEST_EFFORT if camera_best_effort else ReliabilityPolicy.RELIABLE)
        # sensor streams best-effort (a best-effort subscription matches reliable and best-effort publishers alike)
        sensor_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.BEST_EFFORT)
        for role, msg_type in types.items():
            qos = camera_qos if role == "camera" else sensor_qos if role == "odometry" else reliable
            self.create_subscription(msg_type, roles[role][0], self._callback(role), qos, raw=True)

        self.t0 = time.monotonic()
        self.t_first: float | None = None  # node-clock time of the first recorded message: max_duration counts from it
        self.done = False
        self.stop_reason = ""
        self.exit_code = EXIT_OK
        self._last_progress = (self.t0, 0, 0, 0)
        self.create_timer(flush_period, self._flush)
        self.create_timer(progress_period, self._progress)
        limits = ", ".join(x for x in (f"{self.max_transitions} transitions" if self.max_transitions else "",
                                      f"{self.max_duration:g} s" if self.max_duration else "") if x) or "none (stop with Ctrl-C)"
        self.get_logger().info(f"recording robot '{robot}' (profile {self.profile.name}) to {folder} ({storage}); topics {sorted(resolved.values())}; limits: {limits}")

    # ---------------------------------------------------------------------------------------------
    def _callback(self, role: str):
        key = self.keys[role]

        def on_message(raw: bytes) -> None:
            if self.done:
                return
            now = self.get_clock().now().nanoseconds
            self.writer.write(key, now, raw)
            self.counts[role] += 1
            t = now * 1e-9  # the node's clock: simulated time next to a twin with use_sim_time
            if self.t_first is None:
                self.t_first = t
            if role == "camera":
                stamp = cdr_header_stamp(raw)
                self.drops["camera"].stamp(stamp)
                for counter in self.counters.values():
                    counter.frame(stamp)
            elif role == "odometry":
                stamp = cdr_header_stamp(raw)
                self.drops["odometry"].stamp(stamp)
                for counter in self.counters.values():
                    counter.odometry_stamp(stamp)
                    counter.needs_odometry = True
            elif role == "episode":
                stamp = cdr_header_stamp(raw)
                for counter in self.counters.values():
                    counter.event(episode_event_kind(raw), stamp)
            elif role in self.counters:
                self.counters[role].command(cdr_header_stamp(raw))
                if self.max_transitions and self.counter.usable >= self.max_transitions:
                    self._stop(f"reached max_transitions={self.max_transitions}")
            self._check_duration(t)

        return on_message

    @property
    def counter(self) -> UsableCounter:
        """The count of the command stream the converter will take the actions from: redraw/action once it has
        sent anything, the wheel commands until then."""
        if "action" in self.counters and (self.counts["action"] or "wheels_cmd" not in self.counters):
            return self.counters["action"]
        return self.counters["wheels_cmd"]

    def _check_duration(self, t: float) -> None:
        if self.max_duration and self.t_first is not None and t - self.t_first >= self.max_duration:
            self._stop(f"reached max_duration={self.max_duration:g} s")

    def _flush(self) -> None:
        if self.done:
            return
        self.writer.flush()
        self._check_duration(self.get_clock().now().nanoseconds * 1e-9)

    def missing_topics(self) -> dict[str, str]:
        """role -> topic of the subscribed topics that have sent nothing yet while the camera flows ('odometry' for a
        robot without wheel odometry); {} before the first frame."""
        if not self.counts["camera"]:
            return {}
        return {role: self.resolved[role] for role in OPTIONAL_ROLES if role in self.counts and not self.counts[role]}

    def stats(self) -> dict:
        elapsed = time.monotonic() - self.t0
        stats = {
            "elapsed_s": round(elapsed, 3),
            "transitions": self.counter.usable,
            "transitions_requested": self.max_transitions,
            "control_ticks": self.counter.ticks,
            "ticks_without_observation": self.counter.unusable,
            "messages": dict(self.counts),
            "camera_drops_estimated": self.drops["camera"].drops,
            "camera_out_of_order": self.drops["camera"].out_of_order,
            "missing_topics": self.missing_topics(),
            "bytes": self.writer.bytes,
            "parts": len(self.writer.parts),
        }
        if "odometry" in self.drops:
            stats["odometry_drops_estimated"] = self.drops["odometry"].drops
        return stats

    def _missing_note(self) -> str:
        missing = self.missing_topics()
        if "odometry" not in missing:
            return ""
        return (f"; NO ODOMETRY on {missing['odometry']} ({self.profile.odometry.type}): models with a velocity vector cannot calibrate "
                f"on this recording (a robot without odometry: set record_odometry:=false)")

    def _progress(self) -> None:
        if self.done:
            return
        now = time.monotonic()
        t_prev, cam_prev, tr_prev, odom_prev = self._last_progress
        dt = max(now - t_prev, 1e-6)
        free = free_bytes(self.writer.folder)
        s = self.stats()
        odom = f", odometry {(self.counts['odometry'] - odom_prev) / dt:.1f} Hz" if "odometry" in self.counts else ""
        wanted = f" of {self.max_transitions} requested" if self.max_transitions else ""
        line = (
            f"{s['transitions']} usable transitions{wanted} ({(s['transitions'] - tr_prev) / dt:.1f}/s, {s['ticks_without_observation']} "
            f"ticks without a fresh frame or odometry), camera {(self.counts['camera'] - cam_prev) / dt:.1f} Hz"
            f"{odom}, {s['camera_drops_estimated']} camera drops, {self.writer.bytes / 2**20:.1f} MiB in {s['parts']} part(s), "
            f"{free / 2**30:.1f} GiB free"
        )
        note = self._missing_note()
        # two call sites: rclpy fixes a call site's severity at its first call and raises on another one after
        if note:
            self.get_logger().warning(line + note)
        else:
            self.get_logger().info(line)
        self._last_progress = (now, self.counts["camera"], s["transitions"], self.counts.get("odometry", 0))
        if free < self.min_free_mb * 2**20:
            self.exit_code = EXIT_DISK_FULL
            self._stop(f"disk nearly full: {free / 2**20:.0f} MiB free < min_free_mb={self.min_free_mb:g}")

    def _stop(self, reason: str) -> None:
        if not self.done:
            self.done = True
            self.stop_reason = reason

    def close(self, reason: str = "") -> None:
        reason = self.stop_reason or reason
        for counter in self.counters.values():
            counter.finish()   # the recording ends: its last ticks are decided (as the converter does)
        stats = self.stats()
        self.writer.close(reason, stats)
        line = (
            f"closed {self.writer.folder}: {stats['transitions']} transitions, {self.writer.messages} messages in "
            f"{stats['parts']} part(s), {stats['camera_drops_estimated']} estimated camera drops; stopped: {reason}{self._missing_note()}"
        )
        if rclpy.ok():
            self.get_logger().info(line)
        else:  # the context is gone after SIGINT/SIGTERM: rosout would refuse the line
            print(f"[INFO] [{self.get_name()}]: {line}", flush=True)


def _qos_time(duration) -> QosTime:
    ns = duration.nanoseconds
    if ns >= INFINITE_NS:   # rmw's infinite duration, as rosbag2 writes it
        return QosTime(2**31 - 1, 2**32 - 1)
    return QosTime(ns // 1_000_000_000, ns % 1_000_000_000)


def offered_qos(node: Node, topic: str) -> list[Qos]:
    """The QoS every publisher of `topic` offers (from the ROS graph), as rosbag2 stores it in metadata.yaml, so that
    `ros2 bag play` offers the same: a latched episode topic stays transient-local."""
    found: list[Qos] = []
    for publisher in node.get_publishers_info_by_topic(topic):
        q = publisher.qos_profile
        qos = Qos(QosHistory(int(q.history)), int(q.depth), QosReliability(int(q.reliability)), QosDurability(int(q.durability)),
                  _qos_time(q.deadline), _qos_time(q.lifespan), QosLiveliness(int(q.liveliness)), _qos_time(q.liveliness_lease_duration),
                  bool(q.avoid_ros_namespace_conventions))
        if qos not in found:
            found.append(qos)
    return found


def episode_event_kind(raw: bytes) -> int:
    """The `event` of a serialised redraw_msgs/EpisodeEvent (a few per episode: decoding them costs nothing)."""
    return int(deserialize_message(bytes(raw), EpisodeEvent).event)


def main(args: list[str] | None = None) -> int:
    # Own signal handling (run_node): rclpy's SIGINT handler raises KeyboardInterrupt wherever the main thread is,
    # which can be inside writer.write() between opening a new part and writing its first message (an empty part)
    # or inside a chunk write. A signal only asks to stop; the loop ends between callbacks and closes every part.
    def close(node: Recorder, reason: str) -> int:
        node.close(reason)
        return node.exit_code

    return run_node("recorder", Recorder, args, done=lambda node: node.done, on_exit=close)

if __name__ == "__main__":
    sys.exit(main())
