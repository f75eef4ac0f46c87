from pathlib import Path

import pytest
from helpers.launchfile import LaunchArg, declared_arguments, declared_nodes, resolve

EXAMPLE = Path(__file__).parent / "data" / "example.launch.py"


def test_reads_nodes_params_and_arguments():
    args = declared_arguments(EXAMPLE)
    assert args == {"robot": "duckiebot"}
    rec, twin = declared_nodes(EXAMPLE)
    assert (rec.package, rec.executable, rec.name) == ("redraw_recorder", "recorder", "recorder")
    assert rec.namespace == LaunchArg("robot")
    assert rec.param_files == [("redraw_recorder", "config/record.yaml")]
    assert resolve(rec.params, args) == {"robot": "duckiebot", "max_transitions": 100}
    assert rec.param_file_paths()[0].parts[-5:] == ("redraw_recorder", "share", "redraw_recorder", "config", "record.yaml")
    assert (twin.package, twin.executable, twin.param_files) == ("redraw_sim", "twin", [("redraw_sim", "config/twin.yaml")])


def test_every_repo_launch_file_is_readable():
    root = Path(__file__).resolve().parents[1]
    files = [p for p in [*root.glob("launch/*.launch.py"), *root.glob("src/*/launch/*.launch.py")]]
    for f in files:
        for node in declared_nodes(f):
            assert node.package and node.executable, f


def test_variables_are_refused_not_read_as_strings(tmp_path):
    f = tmp_path / "var.launch.py"
    f.write_text(
        "from launch.substitutions import LaunchConfiguration\n"
        "from launch_ros.actions import Node\n"
        "robot = LaunchConfiguration('robot')\n"
        "def generate_launch_description():\n"
        "    return [Node(package='p', executable='e', namespace=robot)]\n"
    )
    with pytest.raises(ValueError, match="cannot read 'robot' statically"):
        declared_nodes(f)


def test_includes_are_followed_with_the_arguments_they_pass():
    root = Path(__file__).resolve().parents[1]
    top = root / "launch" / "twin_drive.launch.py"
    twin, policy = declared_nodes(top)
    assert (twin.executable, policy.executable) == ("twin_node", "policy_node")
    assert [inc.path.name for inc in twin.included] == ["twin.launch.py"]
    args = {**declared_arguments(top), "robot": "db7", "perturb": "gain:0.5", "model": "/m/p.onnx"}
    seen = twin.arguments(args)
    assert resolve(twin.namespace, seen) == "db7"
    # given by the including file, and the included file's own default for what it is not given
    assert resolve(twin.params, seen)["perturb"] == "gain:0.5" and resolve(twin.params, seen)["map_name"] == "loop_empty"
    assert resolve(policy.params, policy.arguments(args))["model_path"] == "/m/p.onnx"


def test_an_included_file_sees_what_the_including_file_set(tmp_path):
    """As ros2 launch: launch configurations set before an include are visible inside it; launch_arguments (here
    a list of pairs) come on top."""
    f = tmp_path / "outer.launch.py"
    f.write_text(
        "from launch import LaunchDescription\n"
        "from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription\n"
        "from launch.launch_description_sources import PythonLaunchDescriptionSource\n"
        "from launch.substitutions import LaunchConfiguration, PathJoinSubstitution\n"
        "from launch_ros.substitutions import FindPackageShare\n"
        "def generate_launch_description():\n"
        "    return LaunchDescription([\n"
        "        DeclareLaunchArgument('perturb', default_value='trim:0.1'),\n"
        "        IncludeLaunchDescription(\n"
        "            PythonLaunchDescriptionSource(PathJoinSubstitution([FindPackageShare('redraw_sim'), 'launch', 'twin.launch.py'])),\n"
        "            launch_arguments=[('robot', 'inner'), ('map_name', LaunchConfiguration('perturb'))],\n"
        "        ),\n"
        "    ])\n"
    )
    (twin,) = declared_nodes(f)
    seen = twin.arguments(declared_arguments(f))
    params = resolve(twin.params, seen)
    assert resolve(twin.namespace, seen) == "inner"
    assert params["perturb"] == "trim:0.1" and params["map_name"] == "trim:0.1"


def test_an_include_it_cannot_read_is_refused(tmp_path):
    f = tmp_path / "bad.launch.py"
    f.write_text(
        "from launch.actions import IncludeLaunchDescription\n"
        "def generate_launch_description():\n"
        "    return [IncludeLaunchDescription(source)]\n"
    )
    with pytest.raises(ValueError, match="cannot read the included launch file"):
        declared_nodes(f)
    f.write_text(
        "from launch.actions import IncludeLaunchDescription\n"
        "from launch.launch_description_sources import PythonLaunchDescriptionSource\n"
        "from launch.substitutions import PathJoinSubstitution\n"
        "from launch_ros.substitutions import FindPackageShare\n"
        "def generate_launch_description():\n"
        "    return [IncludeLaunchDescription(PythonLaunchDescriptionSource(\n"
        "        PathJoinSubstitution([FindPackageShare('redraw_sim'), 'launch', 'nothing.launch.py'])))]\n"
    )
    with pytest.raises(FileNotFoundError, match="nothing.launch.py not installed"):
        declared_nodes(f)
