"""Helpers for integration tests: real node processes on loopback DDS, and launch-file reading."""
