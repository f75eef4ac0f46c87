"""Times one train step of sheeprl's DreamerV3 (sheeprl.algos.dreamer_v3.dreamer_v3.train: world model, then actor
and critic in imagination) on random batches. Run by bench/bench_peers.py with the Python of sheeprl's own virtual
environment: it imports sheeprl, torch and hydra only, never redraw.

    <venv>/bin/python bench/peers/sheeprl_dreamer_v3.py --size S --threads 2 --batch 16 --length 64 --horizon 15

Prints one JSON object: world-model parameters, median wall and process-CPU seconds per train step over --repeats
steps after --warmup, the load average before and after. Batches are made before the timed region.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--size", default="S", help="sheeprl's algo preset dreamer_v3_<size>: XS, S, M, L, XL")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--length", type=int, default=64)
    p.add_argument("--horizon", type=int, default=15)
    p.add_argument("--image", type=int, default=64)
    p.add_argument("--actions", type=int, default=2)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--params-only", action="store_true", help="print the world model's parameter count and stop")
    args = p.parse_args()

    import gymnasium as gym
    import hydra
    import numpy as np
    import torch
    from hydra import compose, initialize_config_module
    from lightning.fabric import Fabric
    from omegaconf import OmegaConf
    from sheeprl.algos.dreamer_v3.agent import build_agent
    from sheeprl.algos.dreamer_v3.dreamer_v3 import train
    from sheeprl.algos.dreamer_v3.utils import Moments
    from sheeprl.utils.metric import MetricAggregator
    from sheeprl.utils.utils import dotdict

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with initialize_config_module("sheeprl.configs", version_base="1.3"):
        cfg = compose("config", overrides=[
            "exp=dreamer_v3", "env=dummy", f"algo=dreamer_v3_{args.size}", "fabric.accelerator=cpu", "fabric.devices=1",
            f"algo.per_rank_batch_size={args.batch}", f"algo.per_rank_sequence_length={args.length}",
            f"algo.horizon={args.horizon}", f"env.screen_size={args.image}", "algo.cnn_keys.encoder=[rgb]",
            "algo.cnn_keys.decoder=[rgb]", "algo.mlp_keys.encoder=[]", "algo.mlp_keys.decoder=[]", "metric.log_level=0"])
    cfg = dotdict(OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True))   # as sheeprl.cli does
    MetricAggregator.disabled = True
    fabric = Fabric(accelerator="cpu", devices=1, precision="32-true")
    obs_space = gym.spaces.Dict({"rgb": gym.spaces.Box(0, 255, (3, args.image, args.image), np.uint8)})
    world_model, actor, critic, target_critic, _player = build_agent(fabric, (args.actions,), True, cfg, obs_space)
    wm_params = sum(p.numel() for p in world_model.parameters())
    if args.params_only:
        print(json.dumps({"size": args.size, "wm_params": wm_params, "cnn_channels": cfg.algo.world_model.encoder.cnn_channels_multiplier,
                          "dense_units": cfg.algo.dense_units, "recurrent_state": cfg.algo.world_model.recurrent_model.recurrent_state_size}))
        return
    opts = [hydra.utils.instantiate(c, params=m.parameters(), _convert_="all")
            for c, m in ((cfg.algo.world_model.optimizer, world_model), (cfg.algo.actor.optimizer, actor), (cfg.algo.critic.optimizer, critic))]
    opts = fabric.setup_optimizers(*opts)
    moments = Moments(cfg.algo.actor.moments.decay, cfg.algo.actor.moments.max, cfg.algo.actor.moments.percentile.low,
                      cfg.algo.actor.moments.percentile.high)
    g = torch.Generator().manual_seed(0)
    t, b = args.length, args.batch

    def batch():
        return {"rgb": torch.randint(0, 256, (t, b, 3, args.image, args.image), generator=g).float(),
                "actions": torch.rand(t, b, args.actions, generator=g) * 2 - 1, "rewards": torch.rand(t, b, 1, generator=g),
                "terminated": torch.zeros(t, b, 1), "truncated": torch.zeros(t, b, 1), "is_first": torch.zeros(t, b, 1)}

    batches = [batch() for _ in range(args.warmup + args.repeats)]
    load_before = os.getloadavg()
    walls, cpus = [], []
    for i, data in enumerate(batches):
        start, cpu = time.perf_counter(), time.process_time()
        train(fabric, world_model, actor, critic, target_critic, *opts, data, None, cfg, True, (args.actions,), moments)
        if i >= args.warmup:
            walls.append(time.perf_counter() - start)
            cpus.append(time.process_time() - cpu)
    print(json.dumps({"size": args.size, "wm_params": wm_params, "threads": args.threads, "batch": [b, t], "horizon": args.horizon,
                      "image": args.image, "update_s": statistics.median(walls), "update_cpu_s": statistics.median(cpus),
                      "updates": len(walls), "warmup": args.warmup, "load_before": load_before, "load_after": os.getloadavg(),
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
