"""Root pytest configuration: one torch thread (2 threads become 3-17x slower when another process
takes a core, see PLATFORM.md), and a check that tests run inside scripts/env.sh."""

import os

import pytest


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
