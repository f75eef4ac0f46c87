"""When the policy may drive: the policy node's safety state, kept free of ROS so it can be tested alone.

States (values = redraw_msgs/PolicyStatus WATCHDOG_*), by priority:
    ESTOP           e-stop engaged on redraw/estop: held until released
    WAITING         no camera frame received yet
    STALE_CAMERA    the freshest frame arrived more than `frame_timeout` seconds ago: held until frames are fresh
    STALE_ODOMETRY  only for models that read odometry (`odom_timeout` given): no velocity message yet, or the
                    freshest arrived more than `odom_timeout` seconds ago: held until odometry is fresh
    MODEL_ERROR     the last inference raised: held until an inference succeeds
    BAD_OUTPUT      the last inference gave a non-finite action: held until one is finite
    OK              driving

Anything but OK means: wheels at zero. Times are monotonic seconds supplied by the caller.

StallGuard: a stale-input verdict taken by a periodic check that itself ran late (the process was not scheduled
for several periods: a loaded machine) is not yet evidence, because the messages that came during the stall are
still queued and rclpy's executor runs due timers before subscriptions. The guard defers such a verdict by one
check, never two in a row, so a real loss still stops the wheels at most one check period later.
"""

from __future__ import annotations

OK, STALE_CAMERA, BAD_OUTPUT, MODEL_ERROR, ESTOP, WAITING, STALE_ODOMETRY = 0, 1, 2, 3, 4, 5, 6
NAMES = {OK: "ok", STALE_CAMERA: "stale_camera", BAD_OUTPUT: "bad_output", MODEL_ERROR: "model_error", ESTOP: "estop",
         WAITING: "waiting", STALE_ODOMETRY: "stale_odometry"}
BLOCKING = (ESTOP, WAITING, STALE_CAMERA, STALE_ODOMETRY)  # states in which the model is not even run


class Watchdog:
    def __init__(self, frame_timeout: float, odom_timeout: float | None = None):
        if not frame_timeout > 0:
            raise ValueError(f"frame_timeout must be > 0 s, found {frame_timeout}")
        if odom_timeout is not None and not odom_timeout > 0:
            raise ValueError(f"odom_timeout must be > 0 s (or None: the model reads no odometry), found {odom_timeout}")
        self.frame_timeout = frame_timeout
        self.odom_timeout = odom_timeout
        self.last_frame: float | None = None
        self.last_odom: float | None = None
        self.estop = False
        self.fault = OK  # outcome of the last inference: OK, BAD_OUTPUT or MODEL_ERROR

    def frame(self, now: float) -> None:
        self.last_frame = now

    def odom(self, now: float) -> None:
        self.last_odom = now

    def set_estop(self, engaged: bool) -> None:
        self.estop = bool(engaged)

    def inference(self, outcome: int) -> None:
        if outcome not in (OK, BAD_OUTPUT, MODEL_ERROR):
            raise ValueError(f"inference outcome must be OK, BAD_OUTPUT or MODEL_ERROR, found {outcome}")
        self.fault = outcome

    def fresh(self, now: float) -> bool:
        return self.last_frame is not None and now - self.last_frame <= self.frame_timeout

    def odom_fresh(self, now: float) -> bool:
        """True when the model reads no odometry, or the freshest velocity arrived within `odom_timeout`."""
        return self.odom_timeout is None or (self.last_odom is not None and now - self.last_odom <= self.odom_timeout)

    def state(self, now: float) -> int:
        """The state before inference: may the node run the model and drive now?"""
        if self.estop:
            return ESTOP
        if self.last_frame is None:
            return WAITING
        if not self.fresh(now):
            return STALE_CAMERA
        if not self.odom_fresh(now):
            return STALE_ODOMETRY
        return self.fault


STALE = (STALE_CAMERA, STALE_ODOMETRY)


class StallGuard:
    def __init__(self, period: float, stall_periods: float = 3.0):
        if not period > 0 or not stall_periods > 1:
            raise ValueError(f"period must be > 0 s and stall_periods > 1, found {period}, {stall_periods}")
        self.stall = period * stall_periods
        self.last_tick: float | None = None
        self.deferred = False

    def defer(self, tick: float, state: int, stopped_for_it: bool) -> bool:
        """Called by each periodic check at its steady-clock time `tick` with the state it found: True when a new
        stale verdict (the wheels are not already stopped for it) comes from a check that ran more than
        `stall_periods` periods after the previous one, and the previous check did not defer."""
        late = self.last_tick is not None and tick - self.last_tick > self.stall
        self.last_tick = tick
        self.deferred = late and state in STALE and not stopped_for_it and not self.deferred
        return self.deferred
