"""Import the Duckietown simulator headless and quietly.

`gym_duckietown` renders through pyglet. Without an X display it needs pyglet's EGL headless mode, which
exists from pyglet 1.4.0 (final) on; gym_duckietown switches it on by itself at import time. Its import
also prints pyglet's options, logs at DEBUG level and makes the unmaintained `gym` warn: all of that is
swallowed here, real errors are not.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from types import ModuleType

_QUIET_LOGGERS = ("gym-duckietown", "duckietown_world", "commons", "typing", "geometry", "aido_schemas", "nodes",
                  "zuper_commons", "zuper_typing", "dt-world", "duckietown-world", "gym")


class DuckietownUnavailable(RuntimeError):
    """The Duckietown simulator cannot run in this Python environment."""


def _quiet_logs() -> None:
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in list(logging.root.manager.loggerDict):
        if name.startswith(("gym-duckietown", "duckietown", "zuper", "geometry", "aido", "nodes", "commons")):
            logging.getLogger(name).setLevel(logging.WARNING)


def check_headless_pyglet() -> None:
    """Raise DuckietownUnavailable (saying what to install) if pyglet cannot render without a display."""
    import pyglet

    if os.environ.get("DISPLAY"):
        return
    if "headless" not in pyglet.options:
        raise DuckietownUnavailable(
            f"the Duckietown simulator needs pyglet's EGL headless mode (pyglet >= 1.4.0 final, < 2; tested 1.5.27) "
            f"to render without a display, found pyglet {pyglet.version} at {os.path.dirname(pyglet.__file__)}, "
            f"which has none (pyrender pins the beta 1.4.0b1). Install it over the pin: "
            f"pip install --no-deps 'pyglet==1.5.27'"
        )


def simulator_module() -> ModuleType:
    """gym_duckietown.simulator, imported headless with its import-time noise swallowed."""
    import sys

    if "gym_duckietown.simulator" in sys.modules:
        return sys.modules["gym_duckietown.simulator"]
    os.environ.setdefault("PYGLET_HEADLESS", "1")
    check_headless_pyglet()
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        try:
            import gym_duckietown.simulator as simulator
        except Exception as exc:  # report what the import printed: it is the only clue
            raise DuckietownUnavailable(f"importing gym_duckietown failed: {type(exc).__name__}: {exc}\n{sink.getvalue()[-2000:]}") from exc
    _quiet_logs()
    return simulator
