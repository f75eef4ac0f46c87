"""The learning library of redraw (PyTorch): the DRAW world model, the ReDRAW latent dynamics residual and the
imagination actor-critic (../../shared/docs/METHOD.md), replay, checkpoints, ONNX export and the CLIs.

Modules, in the order a newcomer reads them (ARCHITECTURE.md at the repository root has the data flow):
    config          configs.yaml (defaults + presets) and key=value overrides; settings a model cannot use are refused
    nets, optim     layers, initialisers, image encoder/decoder, two-hot, categoricals; Adam with gradient clipping
    draw            DRAW latent dynamics: posterior, prior with belief, residual hook, filtering, imagination
    worldmodel      encoder + DRAW + heads (decoder, reward, continue), losses, training step
    behavior        imagination actor-critic (REINFORCE, percentile return norm, slow critic)
    residual        the ReDRAW ensemble residual MLP
    draw_agent      the DRAW agent: pretraining (world model + task actor-critic) and ReDRAW calibration
    dreamer         the DreamerV3 world model and agent of the Dreamer baselines
    plan2explore    Plan2Explore: disagreement ensemble and exploration actor-critic
    agents          which agent a config describes (build_agent)
    replay          uniform sequence replay over on-disk episodes (redraw_common.episodes)
    rollout         acting in envs: PolicyRunner, run_episodes, collect (one dataset.json)
    collectors, scripted  who acts during online pretraining
    trainer         the one training loop (cadence, logging, evaluation, checkpoints, summary.json) around a step function
    pretrain        online pretraining in an env; offline: pretraining on a fixed dataset
    calibration     ReDRAW on offline target data; finetune: the finetune baselines on the same data
    datasets        offline target datasets (a folder, or bags through targetdata); datacheck: checks before training
    bagread, bagalign, bags   rosbag2 recordings -> episodes (read, align to control ticks, convert + report + cache)
    checkpoint      safetensors + JSON manifest checkpoints (manifest side: redraw_common.checkpointfile)
    evaluation      evaluate_agent (the one evaluation path, with the Duckiebot lane metrics) and evaluate(checkpoint)
    export          encoder + actor -> ONNX with a redraw_common manifest
    compare, compare_settings, compare_report   the paper's comparison: stages, its settings, its table and plots
    report, curves, logger    open-loop prediction report, training-curve PNG, TensorBoard + scalars.jsonl + progress
    runtime         torch device setup, batch -> tensors
    envs            env lookup by gymnasium id; envs.pointgoal = the synthetic PointGoal env
    cli             console scripts: pretrain, calibrate, finetune, evaluate, export, rollout, compare, convert-bags
"""

__version__ = "0.1.0"
