"""rclpy.init for a node's main(): SIGINT and SIGTERM only ask the node to stop.

    stop = init_stoppable(args)
    while rclpy.ok() and not stop:
        rclpy.spin_once(node, timeout_sec=0.05)
    # the context is still alive: the node sends its last zero command, closes its bag parts, then shuts down

rclpy's own SIGINT handler raises KeyboardInterrupt wherever the main thread is (inside a bag write, between two
wheel commands) and shuts the context down, after which nothing can be published. No ROS import at module level.
"""

from __future__ import annotations

import signal


class StopRequest:
    """Truthy once SIGINT or SIGTERM arrived; `name` is the signal's ('SIGINT')."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def __bool__(self) -> bool:
        return self.signal is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signal).name if self.signal is not None else ""

    def _handle(self, signum: int, _frame) -> None:
        self.signal = signum


def init_stoppable(args: list[str] | None = None) -> StopRequest:
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = StopRequest()
    signal.signal(signal.SIGINT, stop._handle)
    signal.signal(signal.SIGTERM, stop._handle)
    return stop
