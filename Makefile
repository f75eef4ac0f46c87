# redraw: the targets the README names. Every target that runs code sources scripts/env.sh
# (DDS on loopback, per-run ROS_HOME).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
ENV := . scripts/env.sh
PYTEST_ARGS ?=

.PHONY: setup build test lint demo bench clean

setup:
	bash scripts/setup.sh

build: setup

test: setup
	$(ENV) && ruff check . && python -m pytest $(PYTEST_ARGS)

lint: setup
	$(ENV) && ruff check .

demo: setup
	$(ENV) && bash scripts/demo.sh

bench: setup
	$(ENV) && bash bench/run_all.sh

clean:
	rm -rf build install log .run
