"""Root pytest configuration: one torch thread (2 threads become 3-17x slower when another process
takes a core, see PLATFORM.md), a check that tests run inside scripts/env.sh, and `--cpu-hog`: run every
test with one core taken by a busy loop that the session starts and stops (the machine is never idle)."""

import os

import pytest


def pytest_addoption(parser):
    parser.addoption("--cpu-hog", action="store_true", help="keep one core busy (a busy-loop process) for the whole session")


def pytest_configure(config):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import torch
    except ImportError:  # robot-only installs have no torch
        return
    torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def _ros_on_loopback():
    if os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE") != "LOCALHOST":
        pytest.exit("tests must run inside scripts/env.sh (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST); use 'make test'", 2)


@pytest.fixture(scope="session", autouse=True)
def _cpu_hog(request):
    if not request.config.getoption("--cpu-hog"):
        yield None
        return
    from helpers.cpuhog import CpuHog

    with CpuHog(cores=1) as hog:
        yield hog
