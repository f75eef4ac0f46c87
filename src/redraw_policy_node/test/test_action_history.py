"""The vector input with an action history, D = 2 + 2k (redraw_common.observation): the model accepts any such
size and refuses others; the policy node feeds [v, w, a_{t-1}, ..., a_{t-k}] with the actions it drove with,
newest first, and restarts the history at zeros whenever it stops the wheels or an episode event arrives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rclpy
from geometry_msgs.msg import TwistStamped
from helpers.tiny_policy import build_vector_policy
from rclpy.context import Context
from rclpy.parameter import Parameter
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import Bool

from redraw_common.bringup import unique_domain_id
from redraw_common.errors import ManifestError
from redraw_common.preprocessing import PreprocessConfig, encode_jpeg
from redraw_msgs.msg import EpisodeEvent
from redraw_policy_node import watchdog as wd
from redraw_policy_node.model import PolicyModel
from redraw_policy_node.policy_node import PolicyNode

CFG = PreprocessConfig(height=16, width=16)


def weights(dim: int) -> np.ndarray:
    """(D, 2), every entry of the vector weighted differently, so that an entry in the wrong place changes the action."""
    return (np.arange(1, 2 * dim + 1, dtype=np.float32).reshape(dim, 2) * np.array([0.05, -0.03], np.float32)).astype(np.float32)


def build_history_policy(folder: Path, dim: int, manifest_dim: int | None = None) -> Path:
    """A policy over the camera and a vector of size `dim`: action = tanh(vector @ weights(dim) + mean(obs) / 255)."""
    return build_vector_policy(folder, CFG, weights(dim), manifest_dim=manifest_dim, model_id=f"history-policy-d{dim}")


def reference(obs: np.ndarray, vector) -> np.ndarray:
    vec = np.asarray(vector, np.float64)
    return np.tanh(vec @ weights(vec.size).astype(np.float64) + obs.astype(np.float64).mean() / 255.0)


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    img = np.full((48, 64, 3), 70, np.uint8)
    img[30:, 10:20] = (240, 200, 20)   # yellow
    img[30:, 45:55] = (245, 245, 245)  # white
    return img


@pytest.mark.parametrize("dim, k", [(2, 0), (4, 1), (6, 2)])
def test_accepts_a_vector_of_2_plus_2k_and_feeds_it_in_order(tmp_path, frame, dim, k):
    model = PolicyModel(build_history_policy(tmp_path, dim))
    assert model.uses_vector and model.vector_dim == dim and model.action_history == k
    obs = model.observe(encode_jpeg(frame))
    vec = np.linspace(-0.9, 0.8, dim).astype(np.float32)
    np.testing.assert_allclose(model.infer(obs, vec), reference(obs, vec), atol=1e-6)
    if dim > 2:  # the order matters: the history's entries reversed give another action
        swapped = np.concatenate([vec[:2], vec[:1:-1]])
        assert not np.allclose(model.infer(obs, swapped), model.infer(obs, vec), atol=1e-3)
    what = "measured velocity" + (f", then the last {k} actions" if k else "")
    with pytest.raises(ValueError, match=rf"this model reads 'vector' \[1, {dim}\] \({what}\), none was given"):
        model.infer(obs)
    with pytest.raises(ValueError, match=rf"this model reads 'vector' \[1, {dim}\] .*found a vector of shape \[{dim + 2}\]"):
        model.infer(obs, np.zeros(dim + 2, np.float32))


@pytest.mark.parametrize("dim", [3, 1])
def test_refuses_a_vector_size_that_is_not_2_plus_2k(tmp_path, dim):
    with pytest.raises(ManifestError, match=rf"input 'vector' must be float32 \[1, 2\] \(the measured velocity .*\) or \[1, 2 \+ 2k\] "
                                            rf"\(the velocity, then the last k actions sent \(forward, turn\), newest first\), "
                                            rf"the manifest says float32 \[1, {dim}\]"):
        PolicyModel(build_history_policy(tmp_path, dim))
    with pytest.raises(ManifestError, match=r"input 'vector': the manifest says shape \[1, 6\], the ONNX model has \[1, 4\]"):
        PolicyModel(build_history_policy(tmp_path / "mismatch", 4, manifest_dim=6))


# --- the node, in this process: its callbacks called directly, its model's infer() and its publish() recorded -------------

class NodeUnderTest:
    """A PolicyNode on its own context and domain; `vectors` = what infer() got, `sent` = (forward, turn, state) published."""

    def __init__(self, model_path: Path, frame: np.ndarray):
        self.context = Context()
        rclpy.init(context=self.context, domain_id=unique_domain_id())
        # generous timeouts: only the explicit stops below may stop the wheels, however slow this machine is
        self.node = PolicyNode(context=self.context, parameter_overrides=[
            Parameter("model_path", Parameter.Type.STRING, str(model_path)),
            Parameter("frame_timeout", Parameter.Type.DOUBLE, 30.0),
            Parameter("odom_timeout", Parameter.Type.DOUBLE, 30.0)])
        self.jpeg = encode_jpeg(frame)
        self.vectors: list[np.ndarray] = []
        self.sent: list[tuple[float, float, int]] = []
        self.nan_next = False
        infer, publish = self.node.model.infer, self.node.publish

        def spy_infer(obs, vector=None):
            self.vectors.append(np.array(vector, np.float32))
            raw = infer(obs, vector)
            if self.nan_next:
                self.nan_next = False
                return np.full_like(raw, np.nan)
            return raw

        def spy_publish(forward, turn, state, *args, **kwargs):
            self.sent.append((forward, turn, state))
            publish(forward, turn, state, *args, **kwargs)

        self.node.model.infer = spy_infer
        self.node.publish = spy_publish
        self.stamp_s = 100.0

    def step(self, velocity=(0.2, -0.5), advance=0.1) -> bool:
        """Odometry then a camera frame `advance` s after the last; True when the node ran the model on it."""
        odom = TwistStamped()
        odom.twist.linear.x, odom.twist.angular.z = velocity
        self.node.on_odom(odom)
        self.stamp_s += advance
        msg = CompressedImage(format="jpeg", data=self.jpeg)
        msg.header.stamp.sec, msg.header.stamp.nanosec = int(self.stamp_s), int(round(self.stamp_s % 1 * 1e9))
        n = len(self.vectors)
        self.node.on_frame(msg)
        return len(self.vectors) > n

    def last_driven(self, n: int) -> list[tuple[float, float]]:
        """The last n actions published while driving (state OK), newest first."""
        return [(f, t) for f, t, s in reversed(self.sent) if s == wd.OK][:n]

    def close(self):
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def expect(velocity, *actions, k=2):
    tail = [x for a in actions for x in a] + [0.0] * (2 * (k - len(actions)))
    return np.array([*velocity, *tail], np.float32)


def test_node_feeds_the_actions_it_sent_newest_first_and_zeros_after_every_stop(tmp_path, frame):
    t = NodeUnderTest(build_history_policy(tmp_path, 6), frame)
    try:
        assert t.node.history.length == 2
        assert t.node.count_subscribers("redraw/episode") == 1
        # consecutive inferences: [v, w, a_{t-1}, a_{t-2}], zeros before the first actions
        assert t.step((0.1, 0.5))
        np.testing.assert_array_equal(t.vectors[-1], expect((0.1, 0.5)))
        a1 = t.last_driven(1)[0]
        assert a1 != (0.0, 0.0)
        assert t.step((0.2, -0.4))
        np.testing.assert_allclose(t.vectors[-1], expect((0.2, -0.4), a1), atol=0)
        a2 = t.last_driven(1)[0]
        assert a2 != a1  # the vector changed the action: the history is not trivially constant
        assert t.step((0.3, 0.0))
        np.testing.assert_allclose(t.vectors[-1], expect((0.3, 0.0), a2, a1), atol=0)
        a3 = t.last_driven(1)[0]
        # a frame before the control period is dropped: no inference, nothing pushed
        assert not t.step((0.3, 0.0), advance=0.03)
        assert t.step((0.25, 0.1), advance=0.07)
        np.testing.assert_allclose(t.vectors[-1], expect((0.25, 0.1), a3, a2), atol=0)
        # the pushed action is exactly the one that went into the kinematics, as the env records it
        assert all(-1.0 <= x <= 1.0 for a in t.last_driven(4) for x in a)

        def zeros_after(stop, why):
            assert t.step()  # some history first
            assert t.step()
            assert np.any(t.vectors[-1][2:] != 0.0), "history still empty before the stop"
            stop()
            assert t.step((0.05, 0.2)), f"did not drive again after {why}"
            np.testing.assert_array_equal(t.vectors[-1], expect((0.05, 0.2)), err_msg=f"history not reset by {why}")
            assert t.step((0.05, 0.2))
            np.testing.assert_allclose(t.vectors[-1], expect((0.05, 0.2), t.last_driven(2)[1]), atol=0)

        def estop():
            t.node.on_estop(Bool(data=True))
            assert t.sent[-1] == (0.0, 0.0, wd.ESTOP)
            t.node.on_estop(Bool(data=False))

        def stale_camera():
            t.node.watchdog.last_frame -= 60.0
            t.node.on_watchdog()
            assert t.sent[-1] == (0.0, 0.0, wd.STALE_CAMERA)

        def stale_odometry():
            t.node.watchdog.last_odom -= 60.0
            t.node.on_watchdog()
            assert t.sent[-1] == (0.0, 0.0, wd.STALE_ODOMETRY)

        def nan_action():
            t.nan_next = True
            assert t.step()
            assert t.sent[-1] == (0.0, 0.0, wd.BAD_OUTPUT)

        def episode(event):
            def send():
                n = len(t.sent)
                t.node.on_episode(EpisodeEvent(event=event))
                assert len(t.sent) == n  # an episode event alone does not stop the wheels
            return send

        for stop, why in [(estop, "e-stop"), (stale_camera, "stale camera"), (stale_odometry, "stale odometry"),
                          (nan_action, "a non-finite action"), (episode(EpisodeEvent.EVENT_START), "episode start"),
                          (episode(EpisodeEvent.EVENT_END), "episode end")]:
            zeros_after(stop, why)
    finally:
        t.close()


def test_node_feeds_the_velocity_alone_to_a_d2_model(tmp_path, frame):
    t = NodeUnderTest(build_history_policy(tmp_path, 2), frame)
    try:
        assert t.node.history.length == 0
        for velocity in [(0.1, 0.5), (0.2, -0.4), (0.3, 0.0)]:
            assert t.step(velocity)
            np.testing.assert_array_equal(t.vectors[-1], np.array(velocity, np.float32))
        assert t.node.count_subscribers("redraw/episode") == 0  # no history, no episode subscription
    finally:
        t.close()
