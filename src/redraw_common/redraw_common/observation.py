"""The Duckiebot's vector observation: one layout for the simulator, the bag converter and the policy node.

    vector = [forward m/s, yaw rate rad/s,  forward_{t-1}, turn_{t-1},  ...,  forward_{t-k}, turn_{t-k}]

The first two entries are the measured velocity (wheel odometry, redraw_common.topics.ODOM_VELOCITY). The
rest are the last k actions sent to the robot, newest first, in policy space [-1, 1] (zeros after a reset).
Duckiebot motors act on a command about 0.15 s late and then accelerate, so a model without a recurrent
state needs the commands still in flight to know what the robot is about to do. The size D = 2 + 2k fixes k;
D = 2 is the velocity alone (k = 0).

    history = ActionHistory(2)
    history.push((forward, turn))               # after sending an action
    vec = compose_vector((v, omega), history)   # (6,) float32
    k = history_length(vec_dim)                 # from a model's vector size
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np

VELOCITY_DIM = 2
ACTION_DIM = 2


def vector_dim(history: int) -> int:
    """The vector size for `history` past actions."""
    return VELOCITY_DIM + ACTION_DIM * int(history)


def history_length(dim: int) -> int:
    """The number of past actions in a vector of size `dim` (2 + 2k); a clear error for any other size."""
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < VELOCITY_DIM or (dim - VELOCITY_DIM) % ACTION_DIM:
        raise ValueError(
            f"a Duckiebot vector observation has 2 + 2k entries (forward m/s, yaw rate rad/s, then k past "
            f"(forward, turn) actions), found size {dim!r}")
    return (int(dim) - VELOCITY_DIM) // ACTION_DIM


class ActionHistory:
    """The last `length` actions, newest first; zeros until that many were pushed."""

    def __init__(self, length: int):
        if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 0:
            raise ValueError(f"an action history length must be an int >= 0, found {length!r}")
        self.length = int(length)
        self._items: deque[np.ndarray] = deque(maxlen=max(self.length, 1))
        self.reset()

    def reset(self) -> None:
        self._items.clear()
        for _ in range(self.length):
            self._items.appendleft(np.zeros(ACTION_DIM, np.float32))

    def push(self, action: Sequence[float]) -> None:
        a = np.asarray(action, np.float32).reshape(-1)
        if a.shape != (ACTION_DIM,) or not np.all(np.isfinite(a)):
            raise ValueError(f"an action is 2 finite numbers (forward, turn), found {a.tolist()}")
        if self.length:
            self._items.appendleft(np.clip(a, -1.0, 1.0))

    def values(self) -> np.ndarray:
        """(2k,) float32, newest first."""
        if not self.length:
            return np.zeros(0, np.float32)
        return np.concatenate(list(self._items)).astype(np.float32)


def compose_vector(velocity: Sequence[float], history: ActionHistory) -> np.ndarray:
    """[forward m/s, yaw rate rad/s] + the history's actions, newest first: (2 + 2k,) float32."""
    v = np.asarray(velocity, np.float32).reshape(-1)
    if v.shape != (VELOCITY_DIM,):
        raise ValueError(f"a velocity is 2 numbers (forward m/s, yaw rate rad/s), found {v.tolist()}")
    return np.concatenate([v, history.values()]).astype(np.float32)


def history_from_actions(actions: np.ndarray, length: int) -> np.ndarray:
    """For an episode's actions (T, 2), row t taken after observation t: the (T, 2k) history seen at each
    observation, i.e. actions t-1 ... t-k, newest first, zeros before the episode's start."""
    actions = np.asarray(actions, np.float32)
    if actions.ndim != 2 or actions.shape[1] != ACTION_DIM:
        raise ValueError(f"actions must be (T, 2) (forward, turn), found shape {list(actions.shape)}")
    T = actions.shape[0]
    out = np.zeros((T, ACTION_DIM * length), np.float32)
    clipped = np.clip(actions, -1.0, 1.0)
    for j in range(1, length + 1):
        out[j:, ACTION_DIM * (j - 1):ACTION_DIM * j] = clipped[:T - j] if T > j else 0.0
    return out
