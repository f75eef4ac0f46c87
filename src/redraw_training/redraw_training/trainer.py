"""The one training loop: online and offline pretraining, ReDRAW calibration and the finetune baselines are each a
step function handed to a Trainer, which owns everything around it.

    trainer = Trainer(out, kind="calibrate", total=3000, counters=counters, counter="updates",
                      cadence=Cadence(log_every=100, eval_every=500, save_every=1000),
                      evaluation=Evaluation(env, episodes=5, seed=20_000_000), agent=agent, device=device)
    trainer.run(step, save=save, log=extra_scalars)     # step() -> metrics of one step (dict, list of dicts, or None)
    summary = trainer.finish(holdout=..., report=...)   # summary.json

Each step advances counters[counter] by one. After it, at the cadence: scalars (the mean of the steps' metrics since
the last write, log() and run/<counter>_per_s) to TensorBoard, scalars.jsonl and the progress bar; an evaluation
(evaluate_agent with seed seed + the step: the only evaluation path); then the `every` hooks (e.g. reports); then a
checkpoint (save(final=False)). At the end: a last evaluation and save(final=True). Resuming is the caller's (it
loads the checkpoint and passes the restored counters). summary.json holds kind, out, counters, the last evaluation,
the last scalars, seconds and what the caller adds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from redraw_common.files import write_json

from .logger import Logger, Mean


@dataclass(frozen=True)
class Cadence:
    """Every how many steps (of the run's counter) to log, evaluate and save; 0 = never (a run still logs and
    saves at its end)."""

    log_every: int
    eval_every: int = 0
    save_every: int = 0


@dataclass(frozen=True)
class Evaluation:
    """Policy evaluation in an env: `episodes` episodes, reset seeds seed + step, seed + step + 1, ..."""

    env: Any
    episodes: int
    seed: int


class Trainer:
    def __init__(self, out: Path, *, kind: str, total: int, counters: dict[str, int], counter: str, cadence: Cadence,
                 agent, device: torch.device, evaluation: Evaluation | None = None, desc: str | None = None,
                 unit: str = "update", progress: bool = True):
        if counter not in counters:
            raise KeyError(f"counter {counter!r} is not one of the run's counters {sorted(counters)}")
        self.out, self.kind, self.total, self.counters, self.counter = Path(out), kind, int(total), counters, counter
        self.cadence, self.agent, self.device = cadence, agent, device
        self.evaluation = evaluation if evaluation is not None and evaluation.env is not None and evaluation.episodes > 0 else None
        self.logger = Logger(self.out, total=self.total, desc=desc or kind, unit=unit, initial=counters[counter], progress=progress)
        self.mean = Mean()
        self.last_eval: dict[str, Any] = {}
        self.started = time.time()

    @property
    def step(self) -> int:
        return self.counters[self.counter]

    def evaluate(self) -> dict[str, Any]:
        """Evaluate the agent now (no-op without an evaluation env); logs eval/return and eval/return_std."""
        if self.evaluation is None:
            return {}
        from .evaluation import evaluate_agent  # imports gymnasium: not needed by offline runs without an env

        ev = self.evaluation
        self.last_eval = evaluate_agent(self.agent, ev.env, ev.episodes, seed=ev.seed + self.step, device=self.device)
        self.logger.write(self.step, {"eval/return": self.last_eval["return_mean"], "eval/return_std": self.last_eval["return_std"]})
        return self.last_eval

    def checkpoint_metrics(self) -> dict[str, Any]:
        """What a checkpoint records: the last scalars and the last evaluation (eval/<key>, without the return list)."""
        return {**self.logger.last, **{f"eval/{k}": v for k, v in self.last_eval.items() if k != "returns"}}

    def _add(self, metrics: dict[str, Any] | Iterable[dict[str, Any]] | None) -> None:
        if metrics is None:
            return
        for m in [metrics] if isinstance(metrics, dict) else metrics:
            self.mean.add(m)

    def run(self, step: Callable[[], Any], *, save: Callable[[bool], None], log: Callable[[], dict[str, float]] | None = None,
            every: Iterable[tuple[int, Callable[[int], None]]] = (), last: Callable[[], None] | None = None) -> None:
        """step() until the budget is spent, logging, evaluating, calling the `every` hooks and saving on the cadence;
        then `last()` (once, also when a finished run is resumed), the final evaluation and save(True)."""
        c = self.cadence
        every = [(n, fn) for n, fn in every if n]
        try:
            while self.step < self.total:
                self._add(step())
                self.counters[self.counter] += 1
                self.logger.advance()
                n = self.step
                if n % max(1, c.log_every) == 0 or n == self.total:
                    rate = n / max(1e-9, time.time() - self.started)
                    self.logger.write(n, {**self.mean.result(), **(log() if log else {}), f"run/{self.counter}_per_s": rate})
                if c.eval_every and n % c.eval_every == 0 and n < self.total:
                    self.evaluate()
                for period, hook in every:
                    if n % period == 0:
                        hook(n)
                if c.save_every and n % c.save_every == 0 and n < self.total:
                    save(False)
            if last is not None:
                last()
            self.evaluate()
            save(True)
        finally:
            self.logger.close()

    def finish(self, **extra: Any) -> dict[str, Any]:
        """Write and return summary.json: kind, out, counters, eval, last_metrics, seconds, and `extra`."""
        summary = {"kind": self.kind, "out": str(self.out), "counters": dict(self.counters), **extra, "eval": self.last_eval,
                   "last_metrics": self.logger.last, "seconds": time.time() - self.started}
        write_json(self.out / "summary.json", summary)
        return summary
