"""Recorder node: camera images, wheel commands, actions and episode events to rosbag2 (mcap) for reward-free calibration."""

__version__ = "0.1.0"
