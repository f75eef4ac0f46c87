"""Duckietown lane following without the gymnasium layer: the simulator with perturbable dynamics, the lane
track, the project's reward and the lap metrics. Used by the gymnasium env (10 Hz control, camera
observations) and by the digital-twin node (wheel commands at any time, camera at 30 Hz).

Dynamics (duckietown_world `DynamicModel`, 30 Hz, inside `ApplyDelay(0.15 s)`): with wheel commands
r, l in [-1, 1], forward speed u and yaw rate w follow
    du/dt = -5 u + 1.5 (gR r + gL l)        dw/dt = -4 w + 15 (gR r - gL l)
with gR = gain (1 + trim), gL = gain (1 - trim) (nominal 1). Perturbations (see `perturb.py`) change gR,
gL, the delay, or negate the commands before they reach the motors; the agent sees none of it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from redraw_common.perturb import format_perturb, parse_perturb

from .dt_import import simulator_module
from .perturb import DUCKIETOWN_PERTURBATIONS
from .track import LanePose, LaneTrack

SIM_HZ = 30.0
BASE_DELAY_S = 0.15
#: Loop maps (no intersections) the lane-following task supports; loop_empty is the default.
MAPS = ("loop_empty", "small_loop", "small_loop_cw", "zigzag_dists", "ETHZ_loop")


@dataclass(frozen=True)
class RewardConfig:
    """The project's lane-following reward, per step of duration dt:

        r = clip(progress / (v_ref dt), -1, 1) - centre_weight * min(|offset| / lane_limit, 1)^2
        r = -out_of_lane_penalty, and the episode ends, when |offset| > lane_limit or the robot is off the road

    progress = arc length gained along the lane direction (negative backwards), offset = distance from the
    lane centre. Standing still on the centre earns 0. lane_limit 0.10 m: the robot's centre is then within
    2 cm of the yellow line's centre, or a wheel is on the white line (tile 0.585 m, lane centre 0.117 m from
    the tile centre).
    """

    v_ref: float = 0.25               # m/s along the lane that earns the full progress reward
    centre_weight: float = 0.5
    lane_limit: float = 0.10          # m
    out_of_lane_penalty: float = 20.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"reward {name} must be a finite number >= 0, found {value!r}")
        if self.v_ref <= 0 or self.lane_limit <= 0:
            raise ValueError(f"reward v_ref and lane_limit must be > 0, found {self.v_ref}, {self.lane_limit}")


@dataclass(frozen=True)
class StartConfig:
    """Random start poses: uniform arc length on the lane, offset and heading uniform within the bounds."""

    max_offset: float = 0.03          # m
    max_heading_deg: float = 15.0


@dataclass
class Episode:
    """Running metrics of one episode."""

    substeps: int = 0                 # simulator steps (1/30 s each)
    steps: int = 0                    # calls of LaneSim.step
    ret: float = 0.0
    distance: float = 0.0             # signed arc length along the lane, m
    best_distance: float = 0.0
    laps: int = 0
    lap_times: list[float] = field(default_factory=list)
    last_lap_end: float = 0.0
    offset_sum_cm: float = 0.0
    out_of_lane: int = 0
    end: str = ""

    @property
    def time(self) -> float:
        """Simulated seconds since the start of the episode."""
        return self.substeps / SIM_HZ


def make_dynamics_factory(gain: float = 1.0, trim: float = 0.0, delay: float = 0.0):
    """duckietown_world dynamics of a DB18 with the given motor gain, trim and extra delay (s)."""
    from duckietown_world.world_duckietown.dynamics_delay import ApplyDelay
    from duckietown_world.world_duckietown.pwm_dynamics import DynamicModelParameters, PWMCommands, get_DB18_nominal

    p = get_DB18_nominal(delay=0)
    g_r, g_l = gain * (1.0 + trim), gain * (1.0 - trim)
    params = DynamicModelParameters(
        u1=p.u1, u2=p.u2, u3=p.u3, w1=p.w1, w2=p.w2, w3=p.w3,
        uar=p.u_alpha_r * g_r, ual=p.u_alpha_l * g_l, war=p.w_alpha_r * g_r, wal=p.w_alpha_l * g_l,
    )
    return ApplyDelay(params, BASE_DELAY_S + delay, PWMCommands(0.0, 0.0))


_SIM_CLASS = None


def perturbed_simulator_class():
    """gym_duckietown's Simulator with perturbable motors and settable poses (created on first use)."""
    global _SIM_CLASS
    if _SIM_CLASS is not None:
        return _SIM_CLASS
    simulator = simulator_module()
    import geometry

    class PerturbedSimulator(simulator.Simulator):
        def __init__(self, *, perturbation: dict[str, float] | None = None, **kwargs: Any):
            self.perturbation = dict(perturbation or {})
            # the parent queries GL before creating its context: make pyglet's current (MuJoCo's EGL
            # rendering in the same process leaves none current)
            import pyglet.gl

            shadow = getattr(pyglet.gl, "_shadow_window", None)
            if shadow is not None:
                shadow.switch_to()
            super().__init__(**kwargs)

        def _factory(self):
            p = self.perturbation
            return make_dynamics_factory(p.get("gain", 1.0), p.get("trim", 0.0), p.get("delay", 0.0))

        def reset(self, segment: bool = False):
            # The parent sets the lights in the current GL context under the current modelview matrix, i.e. in
            # another simulator's context or relative to the last camera pose: make both this simulator's own,
            # so that frames depend on the pose only (reproducible, several simulators per process).
            from pyglet import gl

            self.shadow_window.switch_to()
            gl.glMatrixMode(gl.GL_MODELVIEW)
            gl.glLoadIdentity()
            # the parent also renders a frame we do not need: skip it, then rebuild the motors
            self.graphics = False
            try:
                super().reset(segment)
            finally:
                self.graphics = True
            self.set_pose(self.cur_pos[0], self.cur_pos[2], self.cur_angle)

        def set_pose(self, x: float, z: float, angle: float) -> None:
            """Place the robot at rest at (x, z) with heading `angle`; the motor delay line starts empty."""
            self.cur_pos = np.array([x, 0.0, z], dtype=float)
            self.cur_angle = float(angle)
            q = self.cartesian_from_weird(self.cur_pos, self.cur_angle)
            v0 = geometry.se2_from_linear_angular(np.array([0.0, 0.0]), 0.0)
            self.state = self._factory().initialize(c0=(q, v0), t0=0)
            self.speed = 0.0
            self.last_action = np.zeros(2)
            self.wheelVels = np.zeros(2)

        def update_physics(self, action, delta_time: float | None = None):
            action = np.clip(np.asarray(action, dtype=float), -1.0, 1.0)
            if self.perturbation.get("reversed", 0.0):
                action = -action
            super().update_physics(action, delta_time)

        def velocities(self) -> tuple[float, float]:
            """(forward speed m/s, yaw rate rad/s) of the motor model, after any delay."""
            inner = getattr(self.state, "state", self.state)
            (linear, angular) = geometry.linear_angular_from_se2(inner.v0)
            return float(linear[0]), float(angular)

    _SIM_CLASS = PerturbedSimulator
    return _SIM_CLASS


class LaneSim:
    """Lane following on a Duckietown loop map: wheel commands in, lane pose, reward and metrics out."""

    def __init__(
        self,
        map_name: str = "loop_empty",
        perturb: str = "",
        camera_width: int = 160,
        camera_height: int = 120,
        domain_rand: bool = False,
        reward: RewardConfig | None = None,
        start: StartConfig | None = None,
        seed: int | None = None,
    ):
        if map_name not in MAPS:
            raise ValueError(f"map must be one of the loop maps {MAPS}, found {map_name!r}")
        for name, value in (("camera_width", camera_width), ("camera_height", camera_height)):
            if not isinstance(value, int) or not 16 <= value <= 2048:
                raise ValueError(f"{name} must be an int in [16, 2048], found {value!r}")
        self.perturbation = parse_perturb(perturb, DUCKIETOWN_PERTURBATIONS)
        self.perturb = format_perturb(self.perturbation, DUCKIETOWN_PERTURBATIONS)
        self.map_name = map_name
        self.reward_config = reward or RewardConfig()
        self.start_config = start or StartConfig()
        self.rng = np.random.default_rng(seed)
        cls = perturbed_simulator_class()
        self.sim = cls(
            perturbation=self.perturbation, map_name=map_name, domain_rand=domain_rand, camera_width=camera_width,
            camera_height=camera_height, max_steps=2**62, frame_rate=SIM_HZ, seed=int(self.rng.integers(2**31)),
            accept_start_angle_deg=90,
        )
        self.track = LaneTrack.from_simulator(self.sim)
        self.dt = 1.0 / SIM_HZ
        self.episode = Episode()
        self.pose: LanePose | None = None
        self.done = True

    # --- episode -------------------------------------------------------------------------------------------
    def reset(self, seed: int | None = None, s: float | None = None, offset: float | None = None,
              heading: float | None = None) -> LanePose:
        """New episode at a random pose on the lane (or the given arc length s, offset m, heading rad)."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.sim.seed(int(self.rng.integers(2**31)))
        self.sim.reset()
        sc = self.start_config
        for _ in range(100):
            s_ = self.rng.uniform(0, self.track.length) if s is None else s
            off = self.rng.uniform(-sc.max_offset, sc.max_offset) if offset is None else offset
            head = math.radians(self.rng.uniform(-sc.max_heading_deg, sc.max_heading_deg)) if heading is None else heading
            x, z, angle = self.track.pose_at(s_, off, head)
            if self.sim._valid_pose(np.array([x, 0.0, z]), angle):
                break
            if s is not None:
                raise ValueError(f"start pose s={s}, offset={off}, heading={head} is not a valid pose on {self.map_name}")
        self.sim.set_pose(x, z, angle)
        self.pose = self.track.locate(x, z, angle)
        self.episode = Episode()
        self.done = False
        return self.pose

    def step(self, left: float, right: float, substeps: int = 1) -> tuple[float, bool, dict[str, Any]]:
        """Drive `substeps` simulator steps (1/30 s each) with wheel commands (left, right) in [-1, 1].
        Returns (reward, terminated, info). The episode terminates when the robot leaves the lane."""
        if self.done:
            raise RuntimeError("the episode has ended (the robot left the lane): call reset() first")
        if substeps < 1:
            raise ValueError(f"substeps must be >= 1, found {substeps}")
        ep, cfg = self.episode, self.reward_config
        action = np.array([left, right], dtype=float)
        if not np.all(np.isfinite(action)):
            raise ValueError(f"wheel commands must be finite, found left={left}, right={right}")
        progress, reason, elapsed = 0.0, "", 0.0
        for _ in range(substeps):
            self.sim.update_physics(action)
            elapsed += self.dt
            ep.substeps += 1
            x, _, z = self.sim.cur_pos
            pose = self.track.locate(x, z, self.sim.cur_angle)
            if pose is None or not self.sim._valid_pose(self.sim.cur_pos, self.sim.cur_angle):
                reason = "off_road"
            elif abs(pose.offset) > cfg.lane_limit:
                reason = "left_lane"
            if pose is not None:
                ds = self.track.progress(self.pose.s, pose.s)
                progress += ds
                ep.distance += ds
                self.pose = pose
                while ep.distance >= (ep.laps + 1) * self.track.length:
                    ep.laps += 1
                    ep.lap_times.append(ep.time - ep.last_lap_end)
                    ep.last_lap_end = ep.time
                ep.best_distance = max(ep.best_distance, ep.distance)
            if reason:
                break
        ep.steps += 1
        offset = abs(self.pose.offset)
        ep.offset_sum_cm += 100.0 * offset
        r_progress = float(np.clip(progress / (cfg.v_ref * elapsed), -1.0, 1.0))
        r_centre = -cfg.centre_weight * min(offset / cfg.lane_limit, 1.0) ** 2
        if reason:
            reward = -cfg.out_of_lane_penalty
            ep.out_of_lane += 1
            ep.end = reason
            self.done = True
        else:
            reward = r_progress + r_centre
        ep.ret += reward
        info = self.step_info(progress, r_progress, r_centre)
        return reward, bool(reason), info

    # --- views ---------------------------------------------------------------------------------------------
    def render(self) -> np.ndarray:
        """The robot camera's current frame, uint8 RGB (camera_height, camera_width, 3)."""
        return self.sim.render_obs()

    def lane_state(self) -> dict[str, float]:
        """What a lane-following controller may read: signed offset (m, + = left), heading (rad, + = left) and
        the odometry (forward speed m/s, yaw rate rad/s), as in the twin's ground truth."""
        v, w = self.sim.velocities()
        return {"lane_offset_m": float(self.pose.offset), "lane_heading_rad": float(self.pose.heading),
                "speed_mps": float(v), "yaw_rate_rps": float(w)}

    def step_info(self, progress: float = 0.0, r_progress: float = 0.0, r_centre: float = 0.0) -> dict[str, Any]:
        ep, pose = self.episode, self.pose
        v, w = self.sim.velocities()
        return {
            "lane_offset_m": float(pose.offset),
            "lane_heading_rad": float(pose.heading),
            "offset_cm": 100.0 * abs(pose.offset),
            "heading_deg": math.degrees(pose.heading),
            "progress_m": progress,
            "reward_progress": r_progress,
            "reward_centre": r_centre,
            "distance_m": ep.distance,
            "s_m": pose.s,
            "laps": ep.laps,
            "lap_time_s": ep.lap_times[-1] if ep.lap_times else float("nan"),
            "out_of_lane": bool(ep.end),
            "sim_time_s": ep.time,
            "pose": (float(self.sim.cur_pos[0]), float(self.sim.cur_pos[2]), float(self.sim.cur_angle)),
            "speed_mps": v,
            "yaw_rate": w,
        }

    def episode_metrics(self, end: str | None = None) -> dict[str, Any]:
        """Summary of the episode so far (the env adds it to `info["episode"]` at the end)."""
        ep = self.episode
        n = max(ep.steps, 1)
        return {
            "return": ep.ret,
            "length": ep.steps,
            "dense_reward": ep.ret / n,
            "centre_offset_cm": ep.offset_sum_cm / n,
            "laps": ep.laps,
            "lap_times_s": list(ep.lap_times),
            "lap_time_s": float(np.mean(ep.lap_times)) if ep.lap_times else float("nan"),
            "distance_m": ep.distance,
            "out_of_lane_events": ep.out_of_lane,
            "sim_time_s": ep.time,
            "end": end or ep.end or "running",
            "map": self.map_name,
            "perturb": self.perturb,
        }
