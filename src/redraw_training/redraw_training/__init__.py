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
    loops        online pretraining loop, offline calibration loop, evaluation, data collection
    report       open-loop prediction report image (truth | model | error)
    export       encoder + actor -> ONNX with a redraw_common manifest
    envs         env lookup by gymnasium id; envs.pointgoal = the synthetic PointGoal env
    cli          console scripts: pretrain, calibrate, evaluate, export, collect

(`bags` is reserved for the bag -> dataset converter.)
"""

__version__ = "0.1.0"
