"""Generators of bad inputs (issue 18, item 5): each case builds one bad input in an empty folder and says which
tool gets it, with which arguments, and what its refusal must say.

    @case("bag", "convert-bags", r"is empty")
    def zero_byte_mcap(root, fx):
        (root / "x.mcap").write_bytes(b"")
        return [str(root / "x.mcap"), "--out", str(root / "ds")]

A generator returns the tool's arguments. `fx` holds the valid inputs the cases spoil (a tiny sim-pretrained
checkpoint, a tiny ONNX policy). test_cases.py runs every case and checks the exit code, that the output names the
problem (`message`, a regular expression), that no traceback was printed, and that the case's folder is byte for
byte as the generator left it (nothing written, nothing removed).

Classes:
    bag         broken or unusable recordings: empty, random, truncated, topics missing, wrong frames, paths, rates
    garbage     well-formed data that is wrong (grayscale / black / white frames, NaN or huge commands, lost frames,
                fewer transitions than asked for): calibrate refuses it before an hour of training, naming each check
    checkpoint  corrupt, inconsistent or foreign checkpoints; outputs that exist
    onnx        models the policy node refuses before it sends any wheel command
    parameter   node parameters and CLI options out of range or unknown, named in the message with their value
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from helpers.synthetic_bag import CFG, stream, write_bag, write_recording, write_redraw_recording
from helpers.tiny_policy import build_policy, tamper_hash, with_manifest

from redraw_common.manifest import TensorSpec, manifest_path_for
from redraw_common.preprocessing import encode_jpeg
from redraw_common.recording import RecordingInfo

# the tools: an in-process CLI main(argv), or a node executable (package, executable) started as a process
CLIS = {
    "convert-bags": "redraw_training.cli.convert_bags",
    "calibrate": "redraw_training.cli.calibrate",
    "finetune": "redraw_training.cli.finetune",
    "export": "redraw_training.cli.export",
    "evaluate": "redraw_training.cli.evaluate",
    "pretrain": "redraw_training.cli.pretrain",
    "rollout": "redraw_training.cli.rollout",
    "repair_bag": "redraw_recorder.repair",
    "collect": "redraw_sim.collect",
    "sim2real": "redraw_sim.sim2real",
}
NODES = {"policy_node": "redraw_policy_node", "recorder": "redraw_recorder", "twin_node": "redraw_sim", "explore_node": "redraw_sim",
         "teleop_node": "redraw_sim"}


@dataclass(frozen=True)
class Case:
    name: str
    cls: str
    tool: str
    message: str
    make: Callable[[Path, SimpleNamespace], list[str] | dict]   # CLI: argv; node: {parameter: value}
    code: int = 2


CASES: list[Case] = []


def case(cls: str, tool: str, message: str, code: int = 2):
    assert tool in CLIS or tool in NODES, tool

    def register(make):
        CASES.append(Case(make.__name__, cls, tool, message, make, code))
        return make
    return register


def calibrate_args(fx, data: Path, root: Path) -> list[str]:
    """calibrate on `data` for 2 updates, refusing unclean data (the default)."""
    return ["--checkpoint", str(fx.checkpoint), "--data", str(data), "--out", str(root / "cal"), "--updates", "2", "--no-progress",
            "--set", "calibrate.holdout=0", "--set", "batch_length=4", "--set", "batch_size=2"]


def copy_checkpoint(fx, root: Path) -> Path:
    return Path(shutil.copytree(fx.checkpoint, root / "ckpt"))


def edit_manifest(folder: Path, **changes) -> None:
    path = folder / "checkpoint.json"
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest))


def good_bag(path: Path, seconds: float = 4.0, **kwargs) -> Path:
    frames, actions = stream(seconds=seconds)
    return write_bag(path, frames=kwargs.pop("frames", frames), actions=kwargs.pop("actions", actions), **kwargs)


def flat_frames(rgb: tuple[int, int, int], seconds: float = 6.0) -> tuple[list, list]:
    frames, actions = stream(seconds=seconds)
    jpeg = encode_jpeg(np.full((24, 32, 3), rgb, np.uint8), 95)
    return [(s, jpeg) for s, _ in frames], actions


# --- bag: broken or unusable recordings (convert-bags) --------------------------------------------------------------

@case("bag", "convert-bags", r"x\.mcap is not an MCAP file: it starts with 0x\(empty\), expected 0x894d")
def zero_byte_mcap(root, fx):
    (root / "x.mcap").write_bytes(b"")
    return [str(root / "x.mcap"), "--out", str(root / "ds")]


@case("bag", "convert-bags", r"x\.mcap is not an MCAP file: it starts with 0x[0-9a-f]{16}, expected 0x894d")
def random_bytes_mcap(root, fx):
    (root / "x.mcap").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return [str(root / "x.mcap"), "--out", str(root / "ds")]


@case("bag", "convert-bags", r"\.rec_0\.mcap: no complete channel records.*cut short.*nothing can be recovered")
def part_cut_before_its_first_chunk(root, fx):
    # a recorder killed within its first second: the open part's MCAP (in its hidden folder, unlisted in
    # metadata.yaml) holds its header and schemas, no message yet (a part cut later is read up to its last
    # complete chunk, as documented, and converts)
    rec = write_redraw_recording(root / "rec", 40, seconds=4.0)
    working = rec / ".rec_0" / ".rec_0.mcap"
    working.parent.mkdir()
    working.write_bytes((rec / "rec_0.mcap").read_bytes()[:200])
    (rec / "rec_0.mcap").unlink()
    (rec / "metadata.yaml").unlink()
    side = json.loads((rec / "recording.json").read_text())
    side["parts"][0]["status"], side["state"] = "open", "recording"
    (rec / "recording.json").write_text(json.dumps(side))
    return [str(rec), "--out", str(root / "ds")]


@case("bag", "convert-bags", r"bag not found: \S*missing")
def no_such_path(root, fx):
    return [str(root / "missing"), "--out", str(root / "ds")]


@case("bag", "convert-bags", r"empty: no bag here: expected a recording folder")
def folder_without_bags(root, fx):
    (root / "empty").mkdir()
    (root / "empty" / "notes.txt").write_text("not a bag")
    return [str(root / "empty"), "--out", str(root / "ds")]


@case("bag", "convert-bags", r"no camera topic: expected sensor_msgs/msg/CompressedImage.*the bag has: /db/redraw/action")
def no_camera_topic(root, fx):
    _, actions = stream(seconds=4.0)
    write_bag(root / "bag", actions=actions)
    return [str(root / "bag"), "--out", str(root / "ds")]


@case("bag", "convert-bags", r"no driving commands: expected redraw_msgs/msg/DriveAction")
def no_command_topic(root, fx):
    frames, _ = stream(seconds=4.0)
    write_bag(root / "bag", frames=frames)
    return [str(root / "bag"), "--out", str(root / "ds")]


@case("bag", "convert-bags", r"recording\.json is not valid JSON")
def corrupt_recording_json(root, fx):
    write_redraw_recording(root / "rec", 40, seconds=4.0)
    (root / "rec" / "recording.json").write_text('{"info": {"robot": "db1"}, "parts": [')
    return [str(root / "rec"), "--out", str(root / "ds")]


@case("bag", "convert-bags", r"control_hz 40 is above the camera's 30\.0 Hz")
def control_rate_above_the_camera_rate(root, fx):
    good_bag(root / "bag")
    return [str(root / "bag"), "--out", str(root / "ds"), "--control-hz", "40"]


@case("bag", "convert-bags", r"argument --control-hz: must be in \(0, 100\], found -5")
def negative_control_rate(root, fx):
    good_bag(root / "bag")
    return [str(root / "bag"), "--out", str(root / "ds"), "--control-hz", "-5"]


@case("bag", "convert-bags", r"40 of 40 used camera frames cannot be decoded .*found \(1, 1, 3\)")
def one_pixel_frames(root, fx):
    frames, actions = stream(seconds=4.0)
    import cv2  # encode_jpeg refuses to make such a frame; a broken camera driver does not

    tiny = cv2.imencode(".jpg", np.full((1, 1, 3), (30, 60, 90), np.uint8))[1].tobytes()
    write_bag(root / "bag", frames=[(s, tiny) for s, _ in frames], actions=actions)
    return [str(root / "bag"), "--out", str(root / "ds")]


@case("bag", "convert-bags", r"recordings of 2 robots \(db1: \S+; db2: \S+\).*--mixed-robots")
def two_robots_in_one_call(root, fx):
    good_bag(root / "a", info=RecordingInfo(robot="db1", preprocessing=CFG))
    good_bag(root / "b", info=RecordingInfo(robot="db2", preprocessing=CFG))
    return [str(root / "a"), str(root / "b"), "--out", str(root / "ds")]


@case("bag", "convert-bags", r"only wheel commands, and no kinematics.*--kinematics FILE")
def wheel_commands_without_kinematics(root, fx):
    frames, actions = stream(seconds=4.0)
    write_bag(root / "bag", frames=frames, wheels=[(s, 0.3, 0.2) for s, _, _ in actions], plain=True)
    (root / "pre.json").write_text(json.dumps(CFG.to_dict()))
    return [str(root / "bag"), "--out", str(root / "ds"), "--preprocess", str(root / "pre.json")]


@case("bag", "convert-bags", r"kin\.yaml: invalid kinematics: kinematics baseline must be > 0, found -0\.1")
def kinematics_file_with_a_negative_baseline(root, fx):
    good_bag(root / "bag")
    (root / "kin.yaml").write_text("baseline: -0.1\n")
    return [str(root / "bag"), "--out", str(root / "ds"), "--kinematics", str(root / "kin.yaml")]


@case("bag", "convert-bags", r"settings file not found: \S*missing\.yaml")
def kinematics_file_missing(root, fx):
    good_bag(root / "bag")
    return [str(root / "bag"), "--out", str(root / "ds"), "--kinematics", str(root / "missing.yaml")]


@case("bag", "convert-bags", r"settings file not found: \S*missing\.json")
def preprocessing_file_missing(root, fx):
    good_bag(root / "bag")
    return [str(root / "bag"), "--out", str(root / "ds"), "--preprocess", str(root / "missing.json")]


@case("bag", "convert-bags", r"output \S*ds exists already")
def output_exists(root, fx):
    good_bag(root / "bag")
    (root / "ds").mkdir()
    (root / "ds" / "mine.txt").write_text("keep me")
    return [str(root / "bag"), "--out", str(root / "ds")]


@case("bag", "convert-bags", r"blocker is a file, so no folder can be made under it")
def output_under_a_file(root, fx):
    good_bag(root / "bag")
    (root / "blocker").write_text("x")
    return [str(root / "bag"), "--out", str(root / "blocker" / "ds")]


@case("bag", "repair_bag", r"stuff: no recording\.json; expected a recording written by the redraw recorder")
def repair_a_folder_that_is_no_recording(root, fx):
    (root / "stuff").mkdir()
    (root / "stuff" / "a.txt").write_text("x")
    return [str(root / "stuff")]


# --- garbage: well-formed data that is wrong (calibrate refuses before training) ------------------------------------

@case("garbage", "calibrate", r"fail 1 check\(s\); nothing was trained:.*60 of 60 used frames grayscale.*--accept-unclean")
def grayscale_frames(root, fx):
    frames, actions = flat_frames((90, 90, 90))
    return calibrate_args(fx, write_bag(root / "bag", frames=frames, actions=actions), root)


@case("garbage", "calibrate", r"fail 1 check\(s\); nothing was trained:.*60 of 60 used frames all black.*--accept-unclean")
def black_frames(root, fx):
    frames, actions = flat_frames((3, 2, 4))
    return calibrate_args(fx, write_bag(root / "bag", frames=frames, actions=actions), root)


@case("garbage", "calibrate", r"fail 1 check\(s\); nothing was trained:.*60 of 60 used frames all white.*--accept-unclean")
def white_frames(root, fx):
    frames, actions = flat_frames((250, 252, 251))
    return calibrate_args(fx, write_bag(root / "bag", frames=frames, actions=actions), root)


@case("garbage", "calibrate", r"nothing was trained:.*30 of 60 driving commands non-finite \(30, dropped\).*--accept-unclean")
def half_the_commands_nan(root, fx):
    frames, actions = stream(seconds=6.0)
    actions = [(s, float("nan") if k % 2 else f, t) for k, (s, f, t) in enumerate(actions)]
    return calibrate_args(fx, write_bag(root / "bag", frames=frames, actions=actions), root)


@case("garbage", "calibrate", r"nothing was trained:.*20 of 60 driving commands .*\(20, clipped\).*--accept-unclean")
def commands_of_1e9(root, fx):
    frames, actions = stream(seconds=6.0)
    actions = [(s, 1e9 if k % 3 == 0 else f, t) for k, (s, f, t) in enumerate(actions)]
    return calibrate_args(fx, write_bag(root / "bag", frames=frames, actions=actions), root)


@case("garbage", "calibrate", r"nothing was trained:.*15 of 60 driving commands .*\(15, clipped\).*--accept-unclean")
def wheel_commands_beyond_the_limit(root, fx):
    frames, actions = stream(seconds=6.0)
    wheels = [(s, 1e9 if k % 4 == 0 else 0.3, 1e9 if k % 4 == 0 else 0.2) for k, (s, _, _) in enumerate(actions)]
    return calibrate_args(fx, write_bag(root / "bag", frames=frames, wheels=wheels), root)


@case("garbage", "calibrate", r"fail 2 check\(s\).*control ticks \(15\.0%\) have no fresh camera frame.*camera lost \d+ frames")
def camera_out_for_a_fifth_of_the_time(root, fx):
    return calibrate_args(fx, write_recording(root / "rec", seconds=12.0, outage=(2.0, 0.4)), root)


@case("garbage", "calibrate", r"60 usable transitions of the 600 the recorder was asked for \(10\.0%; at least 90%\)")
def far_fewer_transitions_than_asked_for(root, fx):
    return calibrate_args(fx, write_redraw_recording(root / "rec", 600, seconds=6.0), root)


@case("garbage", "calibrate", r"recordings of 2 robots \(db1: \S+; db2: \S+\)")
def two_robots_in_the_calibration_data(root, fx):
    good_bag(root / "data" / "a", seconds=6.0, info=RecordingInfo(robot="db1", preprocessing=CFG))
    good_bag(root / "data" / "b", seconds=6.0, info=RecordingInfo(robot="db2", preprocessing=CFG))
    return calibrate_args(fx, root / "data", root)


# --- checkpoint: corrupt, inconsistent or foreign (calibrate, export, evaluate) --------------------------------------

@case("checkpoint", "calibrate", r"weights\.safetensors is corrupted: sha256 [0-9a-f]{64} does not match")
def weights_with_a_flipped_byte(root, fx):
    ck = copy_checkpoint(fx, root)
    data = bytearray((ck / "weights.safetensors").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (ck / "weights.safetensors").write_bytes(bytes(data))
    return calibrate_args(SimpleNamespace(checkpoint=ck), good_bag(root / "bag"), root)


@case("checkpoint", "export", r"weights\.safetensors is corrupted: sha256 [0-9a-f]{64} does not match")
def truncated_weights(root, fx):
    ck = copy_checkpoint(fx, root)
    data = (ck / "weights.safetensors").read_bytes()
    (ck / "weights.safetensors").write_bytes(data[: len(data) // 3])
    return ["--checkpoint", str(ck), "--out", str(root / "model")]


@case("checkpoint", "export", r"checkpoint\.json is not valid JSON")
def manifest_not_json(root, fx):
    ck = copy_checkpoint(fx, root)
    (ck / "checkpoint.json").write_text('{"kind": "pretrain", ')
    return ["--checkpoint", str(ck), "--out", str(root / "model")]


@case("checkpoint", "sim2real", r"--model \S+ckpt: checkpoint manifest \S+checkpoint\.json is not valid JSON")
def sim2real_model_manifest_not_json(root, fx):
    ck = copy_checkpoint(fx, root)
    (ck / "checkpoint.json").write_text('{"kind": ')
    return ["--model", str(ck), "--out", str(root / "run")]


@case("checkpoint", "evaluate", r"no checkpoint at \S+ckpt: expected")
def manifest_missing(root, fx):
    ck = copy_checkpoint(fx, root)
    (ck / "checkpoint.json").unlink()
    return ["--checkpoint", str(ck), "--out", str(root / "eval.json")]


@case("checkpoint", "evaluate", r"checkpoint file missing: \S+weights\.safetensors")
def weights_missing(root, fx):
    ck = copy_checkpoint(fx, root)
    (ck / "weights.safetensors").unlink()
    return ["--checkpoint", str(ck), "--out", str(root / "eval.json")]


@case("checkpoint", "calibrate", r"preset\(s\) \['turbo'\] that configs\.yaml does not define")
def manifest_naming_an_unknown_preset(root, fx):
    ck = copy_checkpoint(fx, root)
    manifest = json.loads((ck / "checkpoint.json").read_text())
    edit_manifest(ck, presets=[*manifest.get("presets", []), "turbo"])
    return calibrate_args(SimpleNamespace(checkpoint=ck), good_bag(root / "bag"), root)


@case("checkpoint", "calibrate", r"'pretrain' checkpoint")
def calibrating_a_calibrated_checkpoint(root, fx):
    ck = copy_checkpoint(fx, root)
    edit_manifest(ck, kind="calibrate")
    return calibrate_args(SimpleNamespace(checkpoint=ck), good_bag(root / "bag"), root)


@case("checkpoint", "calibrate", r"changes the pretrained model")
def calibrating_with_another_model_size(root, fx):
    return [*calibrate_args(fx, good_bag(root / "bag"), root), "--set", "rssm.units=64"]


@case("checkpoint", "export", r"already holds an export .*--overwrite")
def export_over_an_existing_export(root, fx):
    build_policy(root / "model", CFG)
    return ["--checkpoint", str(fx.checkpoint), "--out", str(root / "model")]


# --- onnx: models the policy node refuses (no wheel command sent) ---------------------------------------------------

def policy_params(path: Path) -> dict:
    return {"model_path": str(path)}


@case("onnx", "policy_node", r"sha256 mismatch")
def onnx_changed_after_its_manifest(root, fx):
    path = build_policy(root / "m", CFG)
    tamper_hash(path)
    return policy_params(path)


@case("onnx", "policy_node", r"model manifest not found")
def onnx_without_a_manifest(root, fx):
    path = build_policy(root / "m", CFG)
    manifest_path_for(path).unlink()
    return policy_params(path)


@case("onnx", "policy_node", r"not valid JSON")
def manifest_of_the_onnx_not_json(root, fx):
    path = build_policy(root / "m", CFG)
    manifest_path_for(path).write_text("{")
    return policy_params(path)


@case("onnx", "policy_node", r"model file not found")
def onnx_file_missing(root, fx):
    path = build_policy(root / "m", CFG)
    path.unlink()
    return policy_params(path)


@case("onnx", "policy_node", r"onnxruntime cannot load \S+policy\.onnx: .*INVALID_PROTOBUF")
def onnx_of_random_bytes_with_a_matching_manifest(root, fx):
    from redraw_common.manifest import sha256_file

    path = build_policy(root / "m", CFG)
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 2048, dtype=np.uint8).tobytes())
    manifest = json.loads(manifest_path_for(path).read_text())
    manifest["sha256"] = sha256_file(path)
    manifest_path_for(path).write_text(json.dumps(manifest))
    return policy_params(path)


@case("onnx", "policy_node", r"the manifest lists outputs \['action'\], the ONNX model has \['action', 'channel_means'\]")
def onnx_with_an_output_the_manifest_does_not_list(root, fx):
    return policy_params(build_policy(root / "m", CFG, extra_output=True))


@case("onnx", "policy_node", r"input 'obs' must be uint8 \[1, 8, 8, 3\].*the manifest says uint8 \[1, 64, 64, 2\]")
def onnx_input_of_another_size(root, fx):
    return policy_params(build_policy(root / "m", CFG, input_shape=(1, 64, 64, 2)))


@case("onnx", "policy_node", r"manifest field 'format_version' must be 1, found 99")
def manifest_of_a_future_format(root, fx):
    path = build_policy(root / "m", CFG)
    manifest = json.loads(manifest_path_for(path).read_text())
    manifest["format_version"] = 99
    manifest_path_for(path).write_text(json.dumps(manifest))
    return policy_params(path)


@case("onnx", "policy_node", r"input 'vector' must be float32")
def onnx_with_a_vector_of_the_wrong_shape(root, fx):
    path = build_policy(root / "m", CFG)
    with_manifest(path, inputs=(TensorSpec("obs", (1, *CFG.shape), "uint8"), TensorSpec("vector", (1, 3), "float32")))
    return policy_params(path)


# --- parameter: node parameters and CLI options ---------------------------------------------------------------------

@case("parameter", "policy_node", r"parameter control_hz must be in \(0, 100\] Hz.*found -5")
def policy_control_rate_negative_integer(root, fx):
    return {**policy_params(build_policy(root / "m", CFG)), "control_hz": -5}


@case("parameter", "policy_node", r"parameter frame_timeout must be > 0, found 0")
def policy_frame_timeout_zero(root, fx):
    return {**policy_params(build_policy(root / "m", CFG)), "frame_timeout": 0}


@case("parameter", "recorder", r"parameter split_duration must be >= 0, found -1\.0")
def recorder_negative_split(root, fx):
    return {"output": str(root / "rec"), "split_duration": -1}


@case("parameter", "recorder", r"output \S+: \S+blocker is a file")
def recorder_output_under_a_file(root, fx):
    (root / "blocker").write_text("x")
    return {"output": str(root / "blocker" / "rec")}


@case("parameter", "recorder", r"parameter storage must be mcap or sqlite3, found 'zip'")
def recorder_unknown_storage(root, fx):
    return {"output": str(root / "rec"), "storage": "zip"}


@case("parameter", "twin_node", r"unknown perturbation 'wobble' in 'wobble:0\.3'")
def twin_unknown_perturbation(root, fx):
    return {"perturb": "wobble:0.3"}


@case("parameter", "twin_node", r"parameter map_name must be one of \[.*\], found 'nowhere'")
def twin_unknown_map(root, fx):
    return {"map_name": "nowhere"}


@case("parameter", "twin_node", r"parameter camera_hz must divide the simulator's 30 Hz.*found 7")
def twin_camera_rate_not_dividing_30(root, fx):
    return {"camera_hz": 7.0}


@case("parameter", "teleop_node", r"teleop script segment '2\.0:5,0': need seconds > 0 and forward, turn in \[-1, 1\]")
def teleop_script_faster_than_full_speed(root, fx):
    return {"script": "2.0:5,0"}


@case("parameter", "explore_node", r"driver.*'drunk'")
def explorer_unknown_driver(root, fx):
    return {"driver": "drunk"}


@case("parameter", "sim2real", r"--target-perturb: unknown perturbation 'wobble'")
def sim2real_unknown_perturbation(root, fx):
    return ["--target-perturb", "wobble", "--out", str(root / "run")]


@case("parameter", "sim2real", r"--transitions must be >= 50, found 10")
def sim2real_too_few_transitions(root, fx):
    return ["--transitions", "10", "--out", str(root / "run")]


@case("parameter", "sim2real", r"--model \S+missing: no such folder")
def sim2real_model_missing(root, fx):
    return ["--model", str(root / "missing"), "--out", str(root / "run")]


@case("parameter", "calibrate", r"--eval-env redraw/DuckietownLoop-v0 --eval-perturb 'wobble': unknown perturbation")
def calibrate_unknown_evaluation_perturbation(root, fx):
    return [*calibrate_args(fx, good_bag(root / "bag"), root), "--eval-env", "redraw/DuckietownLoop-v0", "--eval-perturb", "wobble"]


@case("parameter", "finetune", r"--eval-perturb 'reversed' perturbs the evaluation env; it needs --eval-env")
def finetune_evaluation_perturbation_without_env(root, fx):
    return ["--method", "draw_finetune", *calibrate_args(fx, good_bag(root / "bag"), root), "--eval-perturb", "reversed"]


@case("parameter", "pretrain", r"unknown preset 'huge'")
def pretrain_unknown_preset(root, fx):
    return ["--preset", "huge", "--out", str(root / "run")]


@case("parameter", "pretrain", r"unknown config key 'rssm.unitz'")
def pretrain_unknown_config_key(root, fx):
    return ["--preset", "tiny", "--set", "rssm.unitz=3", "--out", str(root / "run")]


@case("parameter", "sim2real", r"--perturb was renamed: use --target-perturb")
def sim2real_retired_perturb_flag(root, fx):
    return ["--perturb", "reversed", "--out", str(root / "run")]


@case("parameter", "rollout", r"unknown perturbation 'wobble' in 'wobble:1'")
def rollout_unknown_perturbation(root, fx):
    return ["--env", "redraw/PointGoal-v0", "--target-perturb", "wobble:1", "--episodes", "1", "--out", str(root / "data")]


@case("parameter", "collect", r"--driver-kwargs \{.speed.: 2\}: .*unexpected keyword argument .speed.")
def collect_driver_argument_it_does_not_take(root, fx):
    return ["--env", "redraw/PointGoal-v0", "--driver", "random", "--driver-kwargs", '{"speed": 2}', "--transitions", "10",
            "--out", str(root / "data")]

