"""The learning library of redraw (PyTorch): the DRAW world model, the ReDRAW latent dynamics residual and the
imagination actor-critic (../../shared/docs/METHOD.md), replay, checkpoints, ONNX export and the CLIs.

Modules:
    config       configs.yaml (defaults + presets `paper`, `small`, `tiny`) and key=value overrides
    nets         layers, initialisers, channel LayerNorm, image encoder/decoder, two-hot, categoricals
    draw         DRAW latent dynamics: posterior, prior with belief, residual hook, filtering, imagination
    worldmodel   encoder + DRAW + heads (decoder, reward, continue), losses, training step
    behavior     imagination actor-critic (REINFORCE, percentile return norm, slow critic)
    residual     the ReDRAW ensemble residual MLP
    agent        pretraining agent and ReDRAW calibration (residual + fresh actor-critic)
    replay       uniform sequence replay over on-disk episodes (redraw_common.episodes)
    datasets     load_target_dataset: offline target data for calibration
    checkpoint   safetensors + JSON manifest checkpoints, resumable, verified on load
    trainer      the one training loop (cadence, logging, evaluation, checkpoints, summary.json) around a step function
    pretrain     online pretraining in an env (collector -> replay -> updates); offline: pretraining on a fixed dataset
    calibration  ReDRAW: the residual and a fresh policy on offline target data; finetune: the finetune baselines
    rollout      acting in envs: PolicyRunner, run_episodes, episodes in the DreamerV3 row convention, collect
    evaluation   evaluate_agent (the one evaluation path, with the Duckiebot lane metrics) and evaluate(checkpoint)
    report       open-loop prediction report image (truth | model | error)
    export       encoder + actor -> ONNX with a redraw_common manifest
    envs         env lookup by gymnasium id; envs.pointgoal = the synthetic PointGoal env
    cli          console scripts: pretrain, calibrate, finetune, evaluate, export, rollout, compare

(`bags` is reserved for the bag -> dataset converter.)
"""

__version__ = "0.1.0"
