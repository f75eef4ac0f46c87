"""Write a dataset of N transitions from any redraw env + driver, in redraw_common's episode format.

    collect --env redraw/DuckietownLoopReversed-v0 --driver explore --transitions 10000 --out data/explore_rev --reward-free
    collect --env redraw/DuckietownLoop-v0 --driver expert --transitions 5000 --out data/expert --env-kwargs '{"map_name": "small_loop"}'
    collect --env redraw/dmc_reacher_easy_reversed_actions-v0 --driver random --transitions 2000 --out data/reacher_rev

One transition = one env step. Episodes end when the env ends them or when the N-th transition is reached
(then the last episode is cut: is_last without is_terminal). Next to the episodes, `dataset.json` records
the env id and settings, the driver, the seed and the counts.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from redraw_common.cli import CommandError, entry_point
from redraw_common.episodes import SUFFIX, make_flags, save_episode
from redraw_common.errors import RedrawInputError
from redraw_common.files import DATASET_JSON, write_json

from . import DMC_IDS, DUCKIETOWN_IDS  # noqa: F401  (registers the ids)
from .drivers import ExploreDriver, LaneFollowPController, RandomDriver

DRIVERS = ("expert", "explore", "random")


class CollectError(RedrawInputError):
    """Bad collection settings: unknown driver, an env without what the driver needs, an existing dataset."""


def make_driver(name: str, env: gym.Env, seed: int | None = None, **kwargs: Any):
    """A driver by name for `env`: expert (lane P-controller), explore (reward-free explorer) or random."""
    if name == "random":
        return RandomDriver(int(np.prod(env.action_space.shape)), seed=seed, **kwargs)
    if name not in DRIVERS:
        raise CollectError(f"unknown driver {name!r}; expected one of {DRIVERS}")
    if not hasattr(env.unwrapped, "lane_state"):
        raise CollectError(f"driver {name!r} reads the lane state, which {env.spec.id if env.spec else env} does not provide; use --driver random")
    if name == "expert":
        return LaneFollowPController(**kwargs)
    return ExploreDriver(seed=seed, **kwargs)


class _EpisodeBuffer:
    def __init__(self):
        self.rows: dict[str, list] = {"image": [], "action": [], "reward": [], "vector": [], "stamp": []}

    def add(self, obs: dict[str, np.ndarray], reward: float, stamp: float | None) -> None:
        self.rows["image"].append(obs["image"])
        if "vector" in obs:
            self.rows["vector"].append(np.asarray(obs["vector"], np.float32))
        self.rows["reward"].append(reward)
        if stamp is not None:
            self.rows["stamp"].append(stamp)

    def episode(self, terminal: bool, keep_reward: bool) -> dict[str, np.ndarray]:
        n = len(self.rows["image"])
        ep = {"image": np.stack(self.rows["image"]).astype(np.uint8), "action": np.stack(self.rows["action"]).astype(np.float32)}
        ep.update(make_flags(n, terminal))
        if keep_reward:
            ep["reward"] = np.asarray(self.rows["reward"], np.float32)
        if len(self.rows["vector"]) == n:
            ep["vector"] = np.stack(self.rows["vector"]).astype(np.float32)
        if len(self.rows["stamp"]) == n:
            ep["stamp"] = np.asarray(self.rows["stamp"], np.float64)
        return ep


def _stamp(info: dict[str, Any], steps: int, control_dt: float) -> float:
    return float(info["sim_time_s"]) if "sim_time_s" in info else steps * control_dt


def collect(env: gym.Env, driver: Any, transitions: int, out: Path, *, seed: int | None = 0, keep_reward: bool = True,
            progress: bool = True, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run `driver` in `env` for `transitions` env steps and write the episodes to `out`. Returns a summary."""
    if not isinstance(transitions, int) or transitions < 1:
        raise CollectError(f"transitions must be a positive int, found {transitions!r}")
    out = Path(out)
    if out.exists() and any(out.glob(f"*{SUFFIX}")):
        raise CollectError(f"output folder {out} already holds episodes; choose a new folder (nothing was written)")
    out.mkdir(parents=True, exist_ok=True)
    from tqdm import tqdm

    wants_state = getattr(driver, "input", "none") == "state"
    control_dt = 1.0 / float(getattr(env.unwrapped, "control_hz", env.metadata.get("render_fps", 10)))
    bar = tqdm(total=transitions, unit="step", desc=f"collect -> {out.name}", disable=not progress, file=sys.stderr)
    done, episodes, returns, lengths, ends = 0, 0, [], [], []
    t0 = time.monotonic()
    obs, info = env.reset(seed=seed)
    driver.reset(seed)
    buf, ep_steps, ep_return = _EpisodeBuffer(), 0, 0.0
    buf.add(obs, 0.0, _stamp(info, 0, control_dt))
    while True:
        action = np.asarray(driver.act(env.unwrapped.lane_state() if wants_state else obs), np.float32)
        buf.rows["action"].append(action)
        obs, reward, terminated, truncated, info = env.step(action)
        done += 1
        ep_steps += 1
        ep_return += float(reward)
        bar.update(1)
        buf.add(obs, float(reward), _stamp(info, ep_steps, control_dt))
        last = terminated or truncated or done >= transitions
        if last:
            buf.rows["action"].append(np.zeros_like(action))
            save_episode(out / f"ep_{episodes:05d}_{ep_steps + 1:04d}{SUFFIX}", buf.episode(bool(terminated), keep_reward))
            episodes += 1
            returns.append(ep_return)
            lengths.append(ep_steps)
            ends.append("terminated" if terminated else "truncated" if truncated else "cut")
            bar.set_postfix(episodes=episodes, ret=f"{ep_return:.1f}")
            if done >= transitions:
                break
            obs, info = env.reset()
            driver.reset()
            buf, ep_steps, ep_return = _EpisodeBuffer(), 0, 0.0
            buf.add(obs, 0.0, _stamp(info, 0, control_dt))
    bar.close()
    summary = {
        "transitions": done,
        "episodes": episodes,
        "episode_lengths": lengths,
        "episode_ends": ends,
        "mean_return": float(np.mean(returns)),
        "reward_free": not keep_reward,
        "seconds": time.monotonic() - t0,
        "env": env.spec.id if env.spec else type(env.unwrapped).__name__,
        "env_settings": env.unwrapped.describe() if hasattr(env.unwrapped, "describe") else {},
        "driver": type(driver).__name__,
        "driver_config": {k: v for k, v in vars(getattr(driver, "config", driver)).items() if isinstance(v, (int, float, str, tuple, bool))},
        "seed": seed,
        **(metadata or {}),
    }
    write_json(out / DATASET_JSON, summary)
    return summary


@entry_point("collect")
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="collect", description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="redraw/DuckietownLoop-v0", help="a registered gymnasium id (redraw/...)")
    p.add_argument("--env-kwargs", default="{}", help="JSON dict of env keyword arguments, e.g. '{\"perturb\": \"trim:0.1\"}'")
    p.add_argument("--driver", default="explore", choices=DRIVERS)
    p.add_argument("--driver-kwargs", default="{}", help="JSON dict of driver keyword arguments (expert: forward, k_offset, k_heading)")
    p.add_argument("--transitions", type=int, required=True, help="number of env steps to record")
    p.add_argument("--out", type=Path, required=True, help="new dataset folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reward-free", action="store_true", help="drop rewards (calibration data is reward-free)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    try:
        env_kwargs, driver_kwargs = json.loads(args.env_kwargs), json.loads(args.driver_kwargs)
    except json.JSONDecodeError as exc:
        p.error(f"--env-kwargs / --driver-kwargs must be JSON objects: {exc}")
    if args.env not in gym.registry:
        p.error(f"unknown env {args.env!r}; redraw ids: {sorted(k for k in gym.registry if k.startswith('redraw/'))}")
    try:   # the environment's and the driver's own checks of the keyword arguments the user gave
        env = gym.make(args.env, **env_kwargs)
        driver = make_driver(args.driver, env, seed=args.seed, **driver_kwargs)
    except (ValueError, TypeError) as exc:
        raise CommandError(f"--env-kwargs {args.env_kwargs} / --driver-kwargs {args.driver_kwargs}: {exc}") from None
    summary = collect(env, driver, args.transitions, args.out, seed=args.seed, keep_reward=not args.reward_free,
                      progress=not args.no_progress)
    print(f"wrote {summary['transitions']} transitions in {summary['episodes']} episodes to {args.out} "
          f"({summary['transitions'] / summary['seconds']:.0f} steps/s, mean return {summary['mean_return']:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
