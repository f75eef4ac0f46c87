"""A node's main(): rclpy.init with signals that only ask the node to stop, and one spin loop for every node.

    def main(args=None):
        return run_node("policy_node", PolicyNode, args, on_exit=lambda node, reason: node.stop_wheels())

rclpy's own SIGINT handler raises KeyboardInterrupt wherever the main thread is (inside a bag write, between two
wheel commands) and shuts the context down, after which nothing can be published. Here SIGINT and SIGTERM set a
flag; the loop ends between callbacks and the context is still alive for the node's last words (a zero wheel
command, the last bag part closed). No ROS import at module level.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from typing import Any

from .errors import RedrawInputError

EXIT_OK, EXIT_ERROR, EXIT_REFUSED = 0, 1, 2


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


def spin_until_shutdown(node: Any, stop: StopRequest, done: Callable[[], bool] = lambda: False,
                        timeout: float = 0.05) -> str:
    """Run the node's callbacks until a stop signal, `done()`, or a shutdown of the context from outside (a
    launch's shutdown); returns why it ended: 'done', 'interrupted (SIGINT)', 'interrupted (context shut down)'."""
    import rclpy
    from rclpy.executors import ExternalShutdownException

    try:
        while rclpy.ok() and not stop and not done():
            rclpy.spin_once(node, timeout_sec=timeout)
    except ExternalShutdownException:
        return "interrupted (context shut down)"
    if stop:
        return f"interrupted ({stop.name})"
    return "done" if rclpy.ok() else "interrupted (context shut down)"


def run_node(prog: str, make_node: Callable[[], Any], args: list[str] | None = None, *,
             done: Callable[[Any], bool] = lambda node: False,
             on_exit: Callable[[Any, str], int | None] = lambda node, reason: None,
             explain: Callable[[RedrawInputError], str] = str,
             refused: tuple[type[BaseException], ...] = ()) -> int:
    """main() of a node: make it, spin it (spin_until_shutdown), always end it.

    A RedrawInputError (a bad parameter, a refused model, a bag that cannot be written) or one of `refused` is
    one line on stderr, `<prog>: error: <explain(exc)>`, and exit code 2 when the node could not start, 1 when it
    happened while running. `on_exit(node, reason)` runs once the node exists, whatever ended it, while the
    context may still be alive (`rclpy.ok()`): the place for a last zero command; it may return an exit code."""
    import rclpy

    stop = init_stoppable(args)
    node, code = None, EXIT_OK
    reason = "interrupted"
    try:
        node = make_node()
        reason = spin_until_shutdown(node, stop, lambda: done(node))
    except (RedrawInputError, *refused) as exc:
        print(f"{prog}: error: {explain(exc) if isinstance(exc, RedrawInputError) else exc}", file=sys.stderr, flush=True)
        code = EXIT_REFUSED if node is None else EXIT_ERROR
        reason = f"error: {exc}"
    finally:
        if node is not None:
            node_code = on_exit(node, reason)
            if node_code is not None and code == EXIT_OK:
                code = node_code
            node.destroy_node()
        rclpy.try_shutdown()
    return code
