"""Every node parameter the ROS way: declared only through redraw_common.nodeparams, every numeric one accepts an
integer-looking value (`max_duration:=8` is an integer on the command line), the inclusive bounds appear as the
descriptor's range, and every parameter is read-only (the nodes read them once, at start: `ros2 param set` must
refuse instead of reporting a change that never happens).

The parameters are read from the nodes' sources (each `param("name", default, ..., low=, high=)` call) and declared
on a real rclpy node with the integer override, one at a time."""

from __future__ import annotations

import ast
import importlib
import math
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NODE_MODULES = {
    "redraw_policy_node.policy_node": REPO / "src/redraw_policy_node/redraw_policy_node/policy_node.py",
    "redraw_recorder.recorder_node": REPO / "src/redraw_recorder/redraw_recorder/recorder_node.py",
    "redraw_sim.twin_node": REPO / "src/redraw_sim/redraw_sim/twin_node.py",
    "redraw_sim.explore_node": REPO / "src/redraw_sim/redraw_sim/explore_node.py",
    "redraw_sim.teleop_node": REPO / "src/redraw_sim/redraw_sim/teleop_node.py",
    "redraw_teleop.joy_teleop": REPO / "src/redraw_teleop/redraw_teleop/joy_teleop.py",
}


def evaluate(node: ast.expr, path: Path, namespace: dict) -> object:
    """A default or bound as the module computes it (literals, or a config default like ExploreConfig.p_drift)."""
    return eval(compile(ast.Expression(node), str(path), "eval"), namespace)


def declared_parameters() -> list[tuple[str, str, object, object, object]]:
    """(module, name, default, low, high) of every `param(...)` / `declare_param(node, ...)` call with a numeric default."""
    found = []
    for module, path in NODE_MODULES.items():
        namespace = vars(importlib.import_module(module))
        for call in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in ("param", "declare_param")):
                continue
            args = call.args[1:] if call.func.id == "declare_param" else call.args
            if not (args and isinstance(args[0], ast.Constant) and isinstance(args[0].value, str)):
                continue
            default = evaluate(args[1], path, namespace)
            keywords = {k.arg: evaluate(k.value, path, namespace) for k in call.keywords}
            if isinstance(default, (int, float)) and not isinstance(default, bool):
                found.append((module, args[0].value, default, keywords.get("low"), keywords.get("high")))
    return found


PARAMETERS = declared_parameters()


def test_the_nodes_declare_parameters_only_through_nodeparams():
    for path in NODE_MODULES.values():
        assert "declare_parameter(" not in path.read_text(), f"{path.name}: declare parameters with redraw_common.nodeparams"
    assert len(PARAMETERS) >= 30, f"expected the nodes' numeric parameters, found {len(PARAMETERS)}"


@pytest.fixture(scope="module")
def rclpy_context(tmp_path_factory):
    os.environ.setdefault("ROS_HOME", str(tmp_path_factory.mktemp("ros_home")))
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    import rclpy

    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    rclpy.shutdown(context=context)


def integer_within(default, low, high) -> int:
    value = round(default)
    if low is not None and value < low:
        value = math.ceil(low)
    if high is not None and value > high:
        value = math.floor(high)
    return int(value)


@pytest.mark.parametrize("module, name, default, low, high", PARAMETERS, ids=[f"{m.split('.')[-1]}.{n}" for m, n, *_ in PARAMETERS])
def test_an_integer_looking_value_is_accepted_and_the_parameter_is_read_only(rclpy_context, module, name, default, low, high):
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    from redraw_common.nodeparams import declare_param

    given = integer_within(default, low, high)
    node = Node("params_under_test", context=rclpy_context, parameter_overrides=[Parameter(name, value=given)])
    try:
        value = declare_param(node, name, default, "under test", low=low, high=high)
        assert value == given and type(value) is type(default), (value, type(value))
        descriptor = node.describe_parameter(name)
        assert descriptor.read_only
        if low is not None or high is not None:
            bounds = (descriptor.floating_point_range or descriptor.integer_range)[0]
            assert (low is None or bounds.from_value == low) and (high is None or bounds.to_value == high)
        result = node.set_parameters([Parameter(name, value=given)])[0]
        assert not result.successful and "read-only" in result.reason
    finally:
        node.destroy_node()


def test_a_value_out_of_the_bounds_names_the_parameter_the_bounds_and_the_value(rclpy_context):
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    from redraw_common.errors import RedrawInputError
    from redraw_common.nodeparams import declare_param

    node = Node("params_out_of_range", context=rclpy_context,
                parameter_overrides=[Parameter("jpeg_quality", value=101), Parameter("max_duration", value=-2)])
    try:
        with pytest.raises(RedrawInputError, match=r"parameter jpeg_quality must be in \[1, 100\], found 101"):
            declare_param(node, "jpeg_quality", 90, "JPEG quality", low=1, high=100)
        with pytest.raises(RedrawInputError, match=r"parameter max_duration must be >= 0, found -2\.0"):
            declare_param(node, "max_duration", 0.0, "seconds", low=0.0)
    finally:
        node.destroy_node()
