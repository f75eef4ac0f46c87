# The robot image: ROS 2 kilted + onnxruntime + OpenCV + joy + redraw's robot packages (no torch).
# Multi-arch base (linux/arm64 for the Duckiebot's Jetson/Raspberry Pi, linux/amd64 for a laptop):
#
#   docker buildx build --platform linux/arm64,linux/amd64 -f docker/robot.Dockerfile -t redraw-robot .
#   docker run --rm --network host -e ROBOT_NAME=db1 -v /data/models:/models redraw-robot drive
#   docker run ... -e ROBOT_PROFILE=duckietown-ros1-bridge ...      # the drivers' stack (default duckietown-ros2)
#   docker run --rm --network host -e ROBOT_NAME=db1 -v /data/bags:/bags redraw-robot record output:=/bags/run1
#   docker run --rm --network host -e ROBOT_NAME=db1 --device /dev/input/js0 redraw-robot teleop     # gamepad driving
#
# Build context: the repository root.
FROM ros:kilted-ros-base

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_BREAK_SYSTEM_PACKAGES=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1

# Apt packages follow the ROS base image's snapshot (their versions move with it), so they are not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3-pip python3-numpy python3-opencv python3-yaml ros-kilted-joy \
    && rm -rf /var/lib/apt/lists/*

# Python packages from PyPI, pinned like requirements.lock: onnxruntime runs the policy, rosbags writes bags.
RUN python3 -m pip install --no-cache-dir onnxruntime==1.31.1 rosbags==0.11.9

WORKDIR /opt/redraw_ws
COPY src/redraw_msgs src/redraw_msgs
COPY src/duckietown_msgs src/duckietown_msgs
COPY src/redraw_common src/redraw_common
COPY src/redraw_recorder src/redraw_recorder
COPY src/redraw_policy_node src/redraw_policy_node
COPY src/redraw_teleop src/redraw_teleop
RUN . "/opt/ros/${ROS_DISTRO}/setup.bash" \
    && colcon build --base-paths src --install-base /opt/redraw --merge-install \
       --cmake-args -DBUILD_TESTING=OFF \
    && rm -rf build log

COPY docker/robot_entrypoint.sh /usr/local/bin/redraw-robot
# ROBOT_PROFILE: whose drivers the nodes talk to (redraw_common/profiles): a Duckiebot's ROS 2 interface by default
ENV ROBOT_NAME=duckiebot \
    ROBOT_PROFILE=duckietown-ros2 \
    MODEL=/models/policy.onnx
# `docker stop` sends SIGINT: ros2 launch (exec'd by the entrypoint) then shuts the nodes down as Ctrl-C does, and the
# policy node sends its last zero wheel command (SIGTERM would end launch without it)
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/redraw-robot"]
CMD ["drive"]
