"""Console scripts of redraw_training: pretrain, calibrate, evaluate, export, collect.

Installed by colcon into install/redraw_training/lib/redraw_training/ (so `ros2 run redraw_training <name>`
finds them on a full ROS 2 install); `python -m redraw_training <name> ...` runs the same code anywhere."""
