"""Episode replay: episodes (redraw_common.episodes format) in one time-ordered stream, uniform sequences.

All steps live in flat arrays in arrival order (a ring of `capacity` steps: the oldest steps are dropped
first). A sample is `batch_size` windows of `length` consecutive steps with uniformly drawn starts; windows
may cross episode boundaries (marked by `is_first`, where the model resets to its initial state), and
`is_first` is set on the first step of every window, as DreamerV3 does. With a `directory`, every added
episode is also written there as one .npz file, and `load_directory()` rebuilds the replay after a crash.

Samples are dicts of numpy arrays (B, T, ...) plus `index` (B, T): the physical position of every step, so
per-step caches (e.g. the posterior logits of a fixed dataset) can be gathered alongside.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from redraw_common.episodes import episode_paths, load_episode, save_episode, validate_episode
from redraw_common.errors import RedrawInputError
from redraw_common.files import sha256_file

KEYS = ("image", "action", "reward", "vector", "is_first", "is_last", "is_terminal")


class ReplayError(RedrawInputError):
    """The replay cannot hold or sample what was asked (shape mismatch, too little data)."""


class Replay:
    def __init__(self, capacity: int, directory: str | Path | None = None, seed: int = 0):
        if capacity < 2:
            raise ReplayError(f"replay capacity must be >= 2 steps, found {capacity}")
        self.capacity = int(capacity)
        self.directory = Path(directory) if directory is not None else None
        self.rng = np.random.default_rng(seed)
        self.arrays: dict[str, np.ndarray] = {}
        self.size = 0          # valid steps
        self.head = 0          # physical index of the next write
        self.episodes = 0      # episodes added in total
        self.steps_added = 0   # steps added in total
        self._digest = hashlib.sha256()  # over (file name, file sha256) of every episode file written or loaded

    def __len__(self) -> int:
        return self.size

    # ------------------------------------------------------------------------------------------------------
    # adding

    def _spec(self, ep: Mapping[str, np.ndarray]) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        spec = {}
        for key in KEYS:
            if key == "reward" and key not in ep:
                spec[key] = ((), np.dtype(np.float32))
            elif key in ep:
                spec[key] = (tuple(ep[key].shape[1:]), ep[key].dtype)
        return spec

    def _allocate(self, spec, need: int) -> None:
        if not self.arrays:
            n = min(self.capacity, max(1024, need))
            self.arrays = {k: np.zeros((n, *shape), dtype) for k, (shape, dtype) in spec.items()}
            return
        have = {k: (v.shape[1:], v.dtype) for k, v in self.arrays.items()}
        if have != spec:
            raise ReplayError(f"episode does not match the replay: expected {have}, found {spec}")
        cur = len(self.arrays["image"])
        if self.size + need > cur and cur < self.capacity:
            n = min(self.capacity, max(2 * cur, self.size + need))
            # only grows while nothing has wrapped (head == size)
            for k, v in self.arrays.items():
                grown = np.zeros((n, *v.shape[1:]), v.dtype)
                grown[: self.size] = v[: self.size]
                self.arrays[k] = grown
            self.head = self.size

    def add_episode(self, ep: Mapping[str, np.ndarray], save: bool = True, name: str | None = None) -> Path | None:
        """Validate, optionally write to the directory, and append to the stream."""
        length = validate_episode(ep, name or "episode")
        path = None
        if save and self.directory is not None:
            fname = name or f"ep_{self.episodes:07d}_{length}.npz"
            path = save_episode(self.directory / fname, ep)
            self._hash_file(path)
        self._append(ep, length)
        return path

    def _hash_file(self, path: Path) -> None:
        self._digest.update(path.name.encode() + b"\0" + sha256_file(path).encode() + b"\n")

    def digest(self) -> str:
        """sha256 fingerprint of the episode files added so far (in order)."""
        return self._digest.copy().hexdigest()

    def _append(self, ep: Mapping[str, np.ndarray], length: int) -> None:
        spec = self._spec(ep)
        self._allocate(spec, length)
        phys = len(self.arrays["image"])
        if length > phys:  # keep the newest `capacity` steps of an over-long episode
            ep = {k: v[-phys:] for k, v in ep.items()}
            length = phys
        idx = (self.head + np.arange(length)) % phys
        for key, arr in self.arrays.items():
            arr[idx] = ep[key] if key in ep else 0
        self.head = int((self.head + length) % phys)
        self.size = min(self.size + length, phys)
        self.episodes += 1
        self.steps_added += length

    def load_directory(self) -> int:
        """(Re)load every episode file of the directory, oldest first; returns the number of episodes."""
        if self.directory is None or not self.directory.is_dir():
            return 0
        paths = episode_paths(self.directory)
        for path in paths:
            ep = load_episode(path)
            self._hash_file(path)
            self._append(ep, len(ep["image"]))
        return len(paths)

    # ------------------------------------------------------------------------------------------------------
    # sampling

    def _logical_start(self) -> int:
        """Physical index of the oldest valid step."""
        phys = len(self.arrays["image"]) if self.arrays else 0
        return (self.head - self.size) % phys if phys else 0

    def sample_indices(self, batch_size: int, length: int) -> np.ndarray:
        if self.size < length:
            raise ReplayError(f"replay holds {self.size} steps, fewer than one sequence of length {length}")
        starts = self.rng.integers(0, self.size - length + 1, size=batch_size)
        phys = len(self.arrays["image"])
        return (self._logical_start() + starts[:, None] + np.arange(length)[None]) % phys

    def gather(self, index: np.ndarray) -> dict[str, np.ndarray]:
        batch = {k: v[index] for k, v in self.arrays.items()}
        batch["is_first"] = batch["is_first"].copy()
        batch["is_first"][:, 0] = True
        batch["index"] = index
        return batch

    def sample(self, batch_size: int, length: int) -> dict[str, np.ndarray]:
        return self.gather(self.sample_indices(batch_size, length))

    def ordered(self, key: str) -> np.ndarray:
        """All valid steps of one key, oldest first."""
        if not self.arrays:
            raise ReplayError("replay is empty")
        phys = len(self.arrays[key])
        return self.arrays[key][(self._logical_start() + np.arange(self.size)) % phys]

    # ------------------------------------------------------------------------------------------------------
    # checkpoint support

    def rng_state(self) -> dict[str, Any]:
        return self.rng.bit_generator.state

    def set_rng_state(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state
