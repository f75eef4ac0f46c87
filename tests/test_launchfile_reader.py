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
