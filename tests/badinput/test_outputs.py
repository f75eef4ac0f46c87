"""Bad inputs and bad output paths for the CLIs that write (issue 18, item 2): every check runs before anything is
written, so a refusal leaves the file system exactly as it was; no user error ends in a raw traceback.

Each case calls the CLI's own `main` in this process: an uncaught exception (a traceback for the user) fails the
test; a refusal is `error: ...` on stderr and exit code 2 (1 for an ONNX export that differs from torch)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from helpers.synthetic_bag import write_recording

from redraw_common.preprocessing import PreprocessConfig

PRE = PreprocessConfig(height=32, width=32)


def snapshot(root: Path) -> dict[str, str]:
    """Every path under root (and root itself) -> the sha256 of a file's bytes, or 'dir'."""
    if not root.exists():
        return {}
    paths = [root, *sorted(root.rglob("*"))]
    return {str(p.relative_to(root.parent)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir" for p in paths}


def run_main(main, argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """An untrained tiny DRAW agent saved as a sim-pretrained ('pretrain') checkpoint."""
    from redraw_training.checkpoint import save_checkpoint
    from redraw_training.config import load_config
    from redraw_training.draw_agent import Agent

    agent = Agent(load_config(["tiny"]), PRE.shape, 2)
    return save_checkpoint(tmp_path_factory.mktemp("badinput") / "ckpt", agent, kind="pretrain", counters={}, preprocessing=PRE.to_dict())


@pytest.fixture()
def corrupt_checkpoint(checkpoint, tmp_path) -> Path:
    """The checkpoint with one byte of its weights flipped (the manifest's sha256 no longer matches)."""
    import shutil

    bad = tmp_path / "corrupt"
    shutil.copytree(checkpoint, bad)
    weights = bad / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    return bad


@pytest.fixture()
def unknown_preset_checkpoint(checkpoint, tmp_path) -> Path:
    """The checkpoint with a manifest naming a preset configs.yaml does not define."""
    import shutil

    bad = tmp_path / "foreign"
    shutil.copytree(checkpoint, bad)
    manifest = json.loads((bad / "checkpoint.json").read_text())
    manifest["presets"] = ["tiny", "turbo"]
    (bad / "checkpoint.json").write_text(json.dumps(manifest))
    return bad


def export_main(argv):
    from redraw_training.cli.export import main

    return main(argv)


def calibrate_main(argv):
    from redraw_training.cli.calibrate import main

    return main(argv)


def convert_main(argv):
    from redraw_training.cli.convert_bags import main

    return main(argv)


# --- export ------------------------------------------------------------------------------------------------------

def test_export_refuses_to_replace_an_export_unless_told(checkpoint, tmp_path, capsys):
    out = tmp_path / "model"
    code, _, err = run_main(export_main, ["--checkpoint", str(checkpoint), "--out", str(out), "--model-id", "first"], capsys)
    assert code == 0, err
    before = snapshot(out)
    code, _, err = run_main(export_main, ["--checkpoint", str(checkpoint), "--out", str(out), "--model-id", "second"], capsys)
    assert code == 2 and f"{out} already holds an export (policy.onnx, policy.manifest.json)" in err and "--overwrite" in err, err
    assert snapshot(out) == before
    code, _, err = run_main(export_main, ["--checkpoint", str(checkpoint), "--out", str(out), "--model-id", "second", "--overwrite"], capsys)
    assert code == 0, err
    assert json.loads((out / "policy.manifest.json").read_text())["model_id"] == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]          # no staging folder left beside it


def test_export_that_fails_its_parity_check_writes_nothing(checkpoint, tmp_path, capsys):
    out = tmp_path / "model"
    code, _, err = run_main(export_main, ["--checkpoint", str(checkpoint), "--out", str(out), "--tolerance", "-1"], capsys)
    assert code == 1 and "ONNX output differs from torch by" in err and "nothing was written" in err, err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["is_a_file", "under_a_file"])
def test_export_to_a_path_where_no_folder_can_be_made(checkpoint, tmp_path, capsys, where):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file\n")
    out = blocker if where == "is_a_file" else blocker / "model"
    code, _, err = run_main(export_main, ["--checkpoint", str(checkpoint), "--out", str(out)], capsys)
    assert code == 2 and str(out) in err and "file" in err, err
    assert "Traceback" not in err and blocker.read_text() == "a file\n" and sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]


def test_export_of_a_corrupt_checkpoint_writes_nothing(corrupt_checkpoint, tmp_path, capsys):
    out = tmp_path / "model"
    code, _, err = run_main(export_main, ["--checkpoint", str(corrupt_checkpoint), "--out", str(out)], capsys)
    assert code == 2 and "is corrupted: sha256" in err, err
    assert not out.exists()


def test_export_of_a_checkpoint_naming_an_unknown_preset_writes_nothing(unknown_preset_checkpoint, tmp_path, capsys):
    out = tmp_path / "model"
    code, _, err = run_main(export_main, ["--checkpoint", str(unknown_preset_checkpoint), "--out", str(out)], capsys)
    assert code == 2 and "names preset(s) ['turbo'] that configs.yaml does not define" in err, err
    assert not out.exists()


# --- calibrate ----------------------------------------------------------------------------------------------------

@pytest.fixture()
def bag(tmp_path) -> Path:
    return write_recording(tmp_path / "rec", seconds=4.0)


@pytest.mark.parametrize("out_state", ["absent", "a_run_folder"])
def test_calibrate_with_a_corrupt_checkpoint_leaves_out_exactly_as_it_was(corrupt_checkpoint, bag, tmp_path, capsys, out_state):
    out = tmp_path / "cal"
    if out_state == "a_run_folder":
        (out / "notes").mkdir(parents=True)
        (out / "notes" / "why.txt").write_text("kept\n")
    before = snapshot(out)
    code, printed, err = run_main(calibrate_main, ["--checkpoint", str(corrupt_checkpoint), "--data", str(bag), "--out", str(out),
                                                   "--updates", "1", "--no-progress"], capsys)
    assert code == 2 and "is corrupted: sha256" in err and "weights.safetensors" in err, err
    assert "converting" not in printed                     # refused before the bags were touched
    assert snapshot(out) == before


def test_calibrate_from_a_checkpoint_naming_an_unknown_preset_writes_nothing(unknown_preset_checkpoint, bag, tmp_path, capsys):
    out = tmp_path / "cal"
    code, printed, err = run_main(calibrate_main, ["--checkpoint", str(unknown_preset_checkpoint), "--data", str(bag), "--out", str(out),
                                                   "--updates", "1", "--no-progress"], capsys)
    assert code == 2 and "names preset(s) ['turbo'] that configs.yaml does not define" in err, err
    assert not out.exists() and "converting" not in printed


@pytest.mark.parametrize("args, message", [
    (["--eval-env", "redraw/PointGoal-v0", "--eval-perturb", "upside_down"], "unknown perturbation 'upside_down'"),
    (["--eval-env", "redraw/NoSuchEnv-v0"], "unknown environment id 'redraw/NoSuchEnv-v0'"),
    (["--eval-perturb", "reversed"], "--eval-perturb 'reversed' perturbs the evaluation env; it needs --eval-env"),
], ids=["unknown_perturbation", "unknown_env", "perturb_without_env"])
def test_calibrate_refuses_a_bad_evaluation_env_before_writing(checkpoint, bag, tmp_path, capsys, args, message):
    out = tmp_path / "cal"
    code, printed, err = run_main(calibrate_main, ["--checkpoint", str(checkpoint), "--data", str(bag), "--out", str(out),
                                                   "--updates", "1", "--no-progress", *args], capsys)
    assert code == 2 and message in err, err
    assert not out.exists() and "converting" not in printed


def test_calibrate_to_a_path_under_a_file(checkpoint, bag, tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    code, _, err = run_main(calibrate_main, ["--checkpoint", str(checkpoint), "--data", str(bag), "--out", str(blocker / "cal"),
                                             "--updates", "1", "--no-progress"], capsys)
    assert code == 2 and f"--out {blocker / 'cal'}: {blocker} is a file, so no folder can be made under it" in err, err


# --- convert-bags and the recorder's writer ------------------------------------------------------------------------

def test_convert_bags_to_a_path_under_a_file(bag, tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    pre = tmp_path / "pre.json"
    pre.write_text(json.dumps(PRE.to_dict()))
    code, _, err = run_main(convert_main, [str(bag), "--out", str(blocker / "ds"), "--preprocess", str(pre)], capsys)
    assert code == 2 and f"{blocker} is a file, so no folder can be made under it" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "pre.json", "rec"]


def test_recorder_writer_under_a_file(tmp_path):
    from redraw_common.errors import BagError
    from redraw_common.recording import RecordingInfo
    from redraw_recorder.bagwriter import RecordingWriter

    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    writer = RecordingWriter(blocker / "rec", RecordingInfo(robot="db1"))
    with pytest.raises(BagError, match="is a file, so no folder can be made under it"):
        writer.open()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]


# --- the top-level handler of every CLI ---------------------------------------------------------------------------

def test_cli_top_level_handler_turns_errors_into_one_line_and_keeps_the_traceback(capsys):
    from redraw_common.cli import entry_point
    from redraw_common.errors import BagError

    @entry_point("demo")
    def known(argv):
        raise BagError("the bag is empty: expected camera frames")

    @entry_point("demo")
    def bug(argv):
        return {}["missing"]

    assert known([]) == 2
    assert capsys.readouterr().err == "demo: error: the bag is empty: expected camera frames\n"
    assert bug(["--x"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("demo: error: failed unexpectedly: KeyError: 'missing' (traceback in ") and err.count("\n") == 1, err
    log = Path(err.split("traceback in ")[1].split(";")[0])
    assert "demo --x" in log.read_text() and "Traceback (most recent call last)" in log.read_text()
    log.unlink()


# ROS nodes run their own loop and signal handling (the wheels are stopped, the bag parts closed); the rest are CLIs
NODES = {"policy_node", "recorder", "twin_node", "explore_node", "teleop_node", "joy_teleop", "drive_monitor"}


def test_every_console_script_that_is_not_a_node_has_the_top_level_handler():
    import importlib
    import re

    root = Path(__file__).resolve().parents[2]
    scripts = {}
    for setup in sorted(root.glob("src/*/setup.py")):
        for name, module, func in re.findall(r'"([\w-]+) = ([\w.]+):(\w+)"', setup.read_text()):
            scripts[name] = (module, func)
    assert NODES <= set(scripts) and len(scripts) >= 16, sorted(scripts)
    for name, (module, func) in sorted(scripts.items()):
        if name not in NODES:
            main = getattr(importlib.import_module(module), func)
            assert hasattr(main, "__wrapped__"), f"{name} ({module}:{func}) has no redraw_common.cli.entry_point handler"
