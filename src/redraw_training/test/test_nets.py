"""Building blocks: channel LayerNorm, initialisers, image encoder/decoder shapes, two-hot, categoricals."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from redraw_training.config import load_config
from redraw_training.nets import (
    ChannelNorm,
    Dense,
    ImageDecoder,
    ImageEncoder,
    Out,
    TwoHot,
    categorical_kl,
    mode_onehot,
    sample_onehot,
    straight_through,
    symexp,
    symlog,
    twohot,
    unimix_probs,
)
from redraw_training.worldmodel import WorldModel


def test_channel_norm_is_layer_norm_per_pixel_not_groupnorm():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 3, 4)
    norm = ChannelNorm(5)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.5, 0.5)
    y = norm(x)
    ref = nn.functional.layer_norm(x.permute(0, 2, 3, 1), (5,), norm.weight, norm.bias, 1e-3).permute(0, 3, 1, 2)
    assert torch.allclose(y, ref, atol=1e-6)
    per_pixel = y.permute(0, 2, 3, 1)
    centred = (per_pixel - norm.bias) / norm.weight
    assert torch.allclose(centred.mean(-1), torch.zeros(2, 3, 4), atol=1e-5)
    group = nn.GroupNorm(1, 5, eps=1e-3)
    assert not torch.allclose(group(x), nn.functional.layer_norm(x.permute(0, 2, 3, 1), (5,), eps=1e-3).permute(0, 3, 1, 2), atol=1e-2)


def test_initialisers():
    torch.manual_seed(0)
    layer = Dense(600, 400)
    w = layer.linear.weight
    std = math.sqrt(1 / 500) / 0.87962566103423978
    assert w.abs().max() <= 2 * std + 1e-6                    # truncated at 2 std
    assert w.std().item() == pytest.approx(math.sqrt(1 / 500), rel=0.05)   # unit-variance after truncation
    assert layer.linear.bias is None and layer.norm.eps == 1e-3
    out = Out(600, 400, "uniform")
    assert out.linear.weight.abs().max() <= math.sqrt(3 / 500) + 1e-6
    assert out.linear.weight.abs().max() > 0.9 * math.sqrt(3 / 500)
    assert torch.count_nonzero(Out(10, 255, "zero").linear.weight) == 0
    wm = WorldModel(load_config(["tiny"]), (32, 32, 3), 2)
    assert torch.count_nonzero(wm.reward.mlp.head.linear.weight) == 0


@pytest.mark.parametrize("shape", [(32, 32, 3), (64, 64, 3), (32, 32, 2), (64, 64, 2)])
def test_encoder_decoder_shapes(shape):
    enc = ImageEncoder(shape, 8, 4)
    dec = ImageDecoder(20, shape, 8, 4)
    x = torch.randint(0, 256, (3, *shape), dtype=torch.uint8)
    e = enc(x)
    stages = 3 if shape[0] == 32 else 4
    assert enc.stages == stages and e.shape == (3, 4 * 4 * 8 * 2 ** (stages - 1))
    y = dec(torch.randn(3, 20))
    assert y.shape == (3, *shape)


def test_image_size_error():
    with pytest.raises(ValueError, match="minres"):
        ImageEncoder((48, 40, 3), 8, 4)


def test_symlog_two_hot():
    x = torch.tensor([-300.0, -2.5, 0.0, 0.3, 7.0, 1e4])
    assert torch.allclose(symexp(symlog(x)), x, rtol=1e-5)
    bins = torch.linspace(-20, 20, 255)
    enc = twohot(symlog(x), bins)
    assert torch.allclose(enc.sum(-1), torch.ones(6))
    assert (enc > 0).sum(-1).max() <= 2
    assert torch.allclose((enc * bins).sum(-1), symlog(x), atol=1e-5)
    # a distribution that puts the two-hot weights on the bins predicts the value back
    dist = TwoHot(torch.log(enc + 1e-12), bins)
    assert torch.allclose(dist.mean(), x, rtol=1e-3, atol=1e-3)
    assert torch.all(dist.log_prob(x) > -0.7)


def test_unimix_straight_through_and_sampling():
    torch.manual_seed(0)
    raw = torch.randn(4000, 4, 3) * 5
    probs = unimix_probs(raw, 0.01)
    assert probs.min() >= 0.01 / 4 - 1e-7 and torch.allclose(probs.sum(-2), torch.ones(4000, 3))
    sample = sample_onehot(probs)
    assert torch.equal(sample.sum(-2), torch.ones(4000, 3))
    fixed = torch.tensor([0.1, 0.2, 0.3, 0.4]).view(1, 4, 1).expand(20000, 4, 1)
    freq = sample_onehot(fixed).mean(0).flatten()
    assert torch.allclose(freq, torch.tensor([0.1, 0.2, 0.3, 0.4]), atol=0.015)
    p = torch.softmax(torch.randn(2, 4, 3, requires_grad=True), -2)
    s = sample_onehot(p)
    st = straight_through(s, p)
    assert torch.allclose(st.detach(), s, atol=1e-6)
    (st * torch.arange(24.0).view(2, 4, 3)).sum().backward()  # gradient reaches the logits through p
    m = mode_onehot(torch.tensor([[[0.0], [3.0], [3.0]]]))
    assert m.flatten().tolist() == [0.0, 1.0, 0.0]


def test_categorical_kl():
    p = torch.log_softmax(torch.randn(5, 4, 7), -2)
    q = torch.log_softmax(torch.randn(5, 4, 7), -2)
    kl = categorical_kl(p, q)
    ref = torch.distributions.kl_divergence(torch.distributions.Categorical(logits=p.transpose(-1, -2)),
                                            torch.distributions.Categorical(logits=q.transpose(-1, -2))).sum(-1)
    assert torch.allclose(kl, ref, atol=1e-5) and torch.allclose(categorical_kl(p, p), torch.zeros(5), atol=1e-6)


def test_paper_preset_parameter_count():
    """PLATFORM.md's plain implementation: 12.0 M world-model parameters at paper size."""
    wm = WorldModel(load_config(["paper"]), (64, 64, 3), 2)
    count = sum(p.numel() for p in wm.parameters())
    assert 11.9e6 < count < 12.1e6, count
