"""Node parameters take the type of their default; the wrong type is an error naming the parameter."""

import pytest

from redraw_common.errors import RedrawInputError
from redraw_common.nodeparams import coerce_param


def test_an_integer_is_accepted_for_a_float_parameter_and_an_integral_float_for_an_integer():
    assert coerce_param("control_hz", 40, 10.0) == 40.0 and isinstance(coerce_param("control_hz", 40, 10.0), float)
    assert coerce_param("max_transitions", 300.0, 0) == 300 and isinstance(coerce_param("max_transitions", 300.0, 0), int)
    assert coerce_param("robot", "db1", "") == "db1" and coerce_param("progress", False, True) is False


@pytest.mark.parametrize("name, value, default, message", [
    ("control_hz", "fast", 10.0, "parameter control_hz must be a number, found 'fast' (str)"),
    ("max_transitions", 2.5, 0, "parameter max_transitions must be an integer, found 2.5 (float)"),
    ("use_pacing", 1, True, "parameter use_pacing must be true or false, found 1 (int)"),
    ("robot", 5, "", "parameter robot must be a string, found 5 (int)"),
    ("control_hz", True, 10.0, "parameter control_hz must be a number, found True (bool)"),
])
def test_the_wrong_type_names_the_parameter_the_value_and_the_type(name, value, default, message):
    with pytest.raises(RedrawInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        coerce_param(name, value, default)
