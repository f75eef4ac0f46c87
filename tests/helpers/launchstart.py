"""Start what a launch file declares, as `ros2 launch` would (re-exports redraw_common.bringup.start_launch)."""

from __future__ import annotations

from redraw_common.bringup import start_launch
from redraw_common.bringup import typed as _typed

__all__ = ["start_launch", "_typed"]
