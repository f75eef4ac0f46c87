"""The learning library: DRAW world model, ReDRAW residual, imagination actor-critic, baselines, replay, bag conversion, ONNX export, evaluation and CLIs (PyTorch)."""
