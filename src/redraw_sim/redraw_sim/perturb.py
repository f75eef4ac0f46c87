"""The perturbation tables of redraw_sim's simulators (the string syntax and its parser: redraw_common.perturb).

Every simulator of redraw_sim takes `perturb: str` and parses it against its own table with
redraw_common.perturb.parse_perturb, e.g. "trim:0.1,delay:0.2" on the Duckietown table.
"""

from __future__ import annotations

from redraw_common.perturb import PerturbSpec

#: Duckietown (the lane-following sim and the digital twin): applied to the wheel commands / motor model
#: inside the simulator, never visible in observations.
DUCKIETOWN_PERTURBATIONS: dict[str, PerturbSpec] = {
    "reversed": PerturbSpec("negate both wheel commands (forward and turn flip)", 0.0, 1.0,
                            lambda v: v in (0.0, 1.0), "0 or 1"),
    "trim": PerturbSpec("wheel imbalance t: right motor x(1+t), left motor x(1-t) (t > 0 drifts left)", 0.0, None,
                        lambda v: -0.5 <= v <= 0.5, "in [-0.5, 0.5]"),
    "gain": PerturbSpec("motor gain g: both motors x g (speed and yaw rate scale)", 1.0, None,
                        lambda v: 0.1 <= v <= 3.0, "in [0.1, 3]"),
    "delay": PerturbSpec("extra actuation delay in seconds, on top of the simulator's 0.15 s", 0.0, None,
                         lambda v: 0.0 <= v <= 2.0, "in [0, 2] s"),
}

#: DeepMind Control: applied in Task.before_step on every control step (METHOD.md 8.1).
DMC_PERTURBATIONS: dict[str, PerturbSpec] = {
    "reversed": PerturbSpec("set_control(-action)", 0.0, 1.0, lambda v: v in (0.0, 1.0), "0 or 1"),
    "wind": PerturbSpec("constant force F (N) on the ball along -x (ball_in_cup only)", 0.0, 2.0,
                        lambda v: abs(v) <= 100, "|F| <= 100 N"),
    "torque": PerturbSpec("constant torque T (N m) about world y on the spinner (finger only)", 0.0, 4.0,
                          lambda v: abs(v) <= 100, "|T| <= 100 N m"),
}
