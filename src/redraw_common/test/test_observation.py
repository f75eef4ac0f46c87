"""The vector observation layout: velocity + the last k actions, newest first, the same online and offline."""

import numpy as np
import pytest

from redraw_common.observation import ActionHistory, compose_vector, history_from_actions, history_length, vector_dim


def test_online_history_equals_the_offline_one():
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1.5, 1.5, (9, 2)).astype(np.float32)   # out-of-range actions are clipped, as the env does
    offline = history_from_actions(actions, 3)
    history = ActionHistory(3)
    for t in range(len(actions)):
        assert np.array_equal(history.values(), offline[t]), t
        history.push(actions[t])
    assert np.array_equal(offline[0], np.zeros(6)) and np.array_equal(offline[1, :2], np.clip(actions[0], -1, 1))
    assert np.array_equal(offline[5], np.clip(np.concatenate([actions[4], actions[3], actions[2]]), -1, 1))
    history.reset()
    assert not history.values().any()


def test_compose_and_sizes():
    history = ActionHistory(2)
    history.push([0.5, -0.25])
    vec = compose_vector([0.2, 1.0], history)
    assert vec.dtype == np.float32 and np.allclose(vec, [0.2, 1.0, 0.5, -0.25, 0.0, 0.0])
    assert vector_dim(2) == 6 and history_length(6) == 2 and history_length(2) == 0
    assert compose_vector([0.1, 0.2], ActionHistory(0)).shape == (2,)
    assert history_from_actions(np.zeros((1, 2)), 2).shape == (1, 4)
    for bad in (0, 1, 3, 5, True, 2.0):
        with pytest.raises(ValueError, match="2 \\+ 2k"):
            history_length(bad)
    with pytest.raises(ValueError, match="2 finite numbers"):
        history.push([np.nan, 0.0])
    with pytest.raises(ValueError, match=">= 0"):
        ActionHistory(-1)
