"""The joystick mapping: the dead-man button, the speed limits, and a clear reason for every stop."""

import math

import pytest

from redraw_teleop.joy_teleop import JoyMapping

M = JoyMapping()   # axis 1 forward, axis 3 turn, button 4, limits 0.6 / 1.0


def test_held_button_scales_the_sticks_by_the_limits():
    assert M.command([0.0, 1.0, 0.0, -0.5], [0, 0, 0, 0, 1]) == pytest.approx((0.6, -0.5))
    assert JoyMapping(max_forward=0.3, max_turn=0.5).command([0.0, -1.0, 0.0, 1.0], [0, 0, 0, 0, 1]) == pytest.approx((-0.3, 0.5))


def test_axes_beyond_full_stick_are_clipped_to_the_limits():
    assert M.command([0.0, 1.7, 0.0, -3.0], [0, 0, 0, 0, 1]) == pytest.approx((0.6, -1.0))


@pytest.mark.parametrize("axes, buttons, reason", [
    ([0.0, 1.0, 0.0, 0.0], [1, 1, 1, 1, 0], "dead-man button released"),
    ([0.0, math.nan, 0.0, 0.0], [0, 0, 0, 0, 1], "non-finite joystick axes (nan, 0.0)"),
    ([0.0, 1.0], [0, 0, 0, 0, 1], "the Joy message has 2 axes and 5 buttons; expected at least 4 axes (axis_forward 1, axis_turn 3) "
                                  "and 5 buttons (enable_button 4)"),
    ([0.0, 1.0, 0.0, 0.0], [0, 1], "the Joy message has 4 axes and 2 buttons; expected at least 4 axes"),
])
def test_every_stop_says_why(axes, buttons, reason):
    command = M.command(axes, buttons)
    assert isinstance(command, str) and command.startswith(reason), command
