# The training image: torch (CPU), the simulators, the training and sim packages, built by the project's
# own setup script (the same pinned environment as CI: Debian 12, CPython 3.11, requirements.lock).
#
#   docker build -f docker/training.Dockerfile -t redraw-training .
#   docker run --rm -v "$PWD/runs:/opt/redraw/runs" redraw-training pretrain --help
#   docker run --rm redraw-training make test
#
# Build context: the repository root.
FROM python:3.11-slim-bookworm

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    REDRAW_PYTHON=python3.11

WORKDIR /opt/redraw
COPY requirements.txt requirements.lock requirements-override.txt Makefile pyproject.toml conftest.py colcon.meta ./
COPY scripts scripts
COPY src src
COPY tests tests
# setup.sh installs its apt packages (EGL/Mesa, cmake, g++), the pinned venv and builds src/ with colcon
RUN bash scripts/setup.sh \
    && rm -rf build log /var/lib/apt/lists/* /root/.cache

COPY docker/training_entrypoint.sh /usr/local/bin/redraw-training
ENTRYPOINT ["/usr/local/bin/redraw-training"]
CMD ["bash"]
