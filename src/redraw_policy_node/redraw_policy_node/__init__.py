"""ONNX encoder+policy node that drives a Duckiebot in closed loop, with a watchdog and e-stop."""
