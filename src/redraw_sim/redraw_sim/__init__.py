"""Duckietown and DeepMind Control environments with perturbable dynamics, lane metrics, data-collection drivers, and the digital-twin robot node."""
