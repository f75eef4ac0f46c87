"""Joystick teleop that drives a Duckiebot through its own drivers, for recording reward-free data."""

__version__ = "0.1.0"
