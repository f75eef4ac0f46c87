import itertools
import math

import numpy as np
import pytest

from redraw_common.errors import KinematicsError
from redraw_common.kinematics import KinematicsConfig, action_to_wheels, wheels_to_action


def test_straight_turn_and_reverse_signs():
    fwd = action_to_wheels(1.0, 0.0)
    assert fwd.left == pytest.approx(fwd.right) and fwd.left > 0
    left_turn = action_to_wheels(0.5, 1.0)
    assert left_turn.right > left_turn.left  # positive turn = counter-clockwise
    back = action_to_wheels(-1.0, 0.0)
    assert back.left < 0 and back.right < 0
    stop = action_to_wheels(0.0, 0.0)
    assert stop.left == 0 and stop.right == 0


@pytest.mark.parametrize("cfg", [KinematicsConfig(), KinematicsConfig(gain=1.3, trim=0.1), KinematicsConfig(trim=-0.2, max_turn=2.0)])
def test_exact_inverse_where_not_clamped(cfg):
    grid = np.linspace(-1, 1, 9)
    checked = 0
    for f, w in itertools.product(grid, grid):
        cmd = action_to_wheels(f, w, cfg)
        if cmd.clamped:
            continue
        back = wheels_to_action(cmd.left, cmd.right, cfg)
        assert back.forward == pytest.approx(f, abs=1e-9) and back.turn == pytest.approx(w, abs=1e-9)
        assert not back.clamped
        checked += 1
    assert checked > 40


def test_trim_and_gain():
    base = action_to_wheels(1.0, 0.0)
    trimmed = action_to_wheels(1.0, 0.0, KinematicsConfig(trim=0.1))
    assert trimmed.right > base.right and trimmed.left < base.left
    assert action_to_wheels(0.5, 0.0, KinematicsConfig(gain=2.0)).left == pytest.approx(2 * action_to_wheels(0.5, 0.0).left)


def test_clamping_is_reported():
    cmd = action_to_wheels(1.0, 1.0, KinematicsConfig(gain=3.0))
    assert cmd.clamped and cmd.right == 1.0
    cmd = action_to_wheels(1.0, 1.0, KinematicsConfig(limit=0.5))
    assert cmd.right == 0.5 and cmd.clamped
    back = wheels_to_action(1.0, 1.0, KinematicsConfig(max_forward=0.1))
    assert back.forward == 1.0 and back.clamped


def test_bad_actions_get_clear_errors():
    with pytest.raises(KinematicsError, match="forward must be finite, found nan"):
        action_to_wheels(math.nan, 0.0)
    with pytest.raises(KinematicsError, match="turn must be finite, found inf"):
        action_to_wheels(0.0, math.inf)
    with pytest.raises(KinematicsError, match=r"action must be in \[-1, 1\]\^2, found forward=1.5"):
        action_to_wheels(1.5, 0.0)
    assert action_to_wheels(1.5, 0.0, strict=False) == action_to_wheels(1.0, 0.0)
    with pytest.raises(KinematicsError, match="must be a number"):
        action_to_wheels("fast", 0.0)
    with pytest.raises(KinematicsError, match="vel_left must be finite"):
        wheels_to_action(math.nan, 0.0)


def test_config_validation_and_round_trip():
    cfg = KinematicsConfig(gain=1.2, trim=0.05)
    assert KinematicsConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(KinematicsError, match=r"\|trim\| must be < gain"):
        KinematicsConfig(trim=1.0)
    with pytest.raises(KinematicsError, match="baseline must be > 0"):
        KinematicsConfig(baseline=0.0)
    with pytest.raises(KinematicsError, match="unknown kinematics settings"):
        KinematicsConfig.from_dict({"wheel_base": 0.1})
    with pytest.raises(KinematicsError, match="gain must be a finite number"):
        KinematicsConfig(gain=float("nan"))
