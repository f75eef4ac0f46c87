"""The DreamerV3 world model and agent of the Dreamer baselines (METHOD.md sections 3.7, 5, 7).

    config = load_config(["tiny", "dreamer"])            # or --set model=dreamer
    agent = DreamerAgent(config, image_shape=(32, 32, 3), action_dim=2)
    metrics = agent.train_step(batch)                    # RSSM world model + backprop actor-critic (H = dreamer.imag_horizon)

RSSM (section 3.7): a GRU deterministic state h (dreamer.deter) and `stoch` categorical latents of `classes` classes.

    prior      x = Dense(units)(concat[z_{t-1}, clip(a_{t-1})]);  h_t = GRU(x, h_{t-1})
               p(z_t | h_t) = Cat(unimix(softmax(Out(Dense(units)(h_t)))))
    posterior  q(z_t | h_t, e_t) = Cat(unimix(softmax(Out(Dense(units)(concat[h_t, e_t])))))
    GRU        reset, cand, update = LN(Linear(concat[x, h]));  cand = tanh(sigmoid(reset) * cand);
               update = sigmoid(update - 1);  h = update * cand + (1 - update) * h
    initial    h_0 = tanh(theta) (learned, init 0), z_0 = mode of p(z | h_0), a_{-1} = 0 wherever is_first

Heads (decoder, reward, continue) and the actor-critic read feat = concat[h_t, z_t]. Losses: image, vector,
reward, cont (loss_scales) + dreamer.dyn * max(free, KL(sg q || p)) + dreamer.rep * max(free, KL(q || sg p)),
plain KL (no is_first mask). The actor-critic imagines dreamer.imag_horizon steps and the actor is trained by
backpropagating the normalised lambda-returns through the model (`-A_t`), not by REINFORCE.

With config.explore == "plan2explore" the agent also has a disagreement ensemble (inputs concat[h, z, a],
target e_{t+1}) and an exploration actor-critic whose reward is the ensemble's disagreement (METHOD.md 4).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from .behavior import ActorCriticBase, start_states
from .config import Config
from .nets import (
    LN_EPS,
    Dense,
    Out,
    categorical_kl,
    init_weight,
    mode_onehot,
    sample_onehot,
    straight_through,
    symlog,
    unimix_logits,
)
from .optim import Optimizer
from .plan2explore import Disagreement, member_std, pretraining_config
from .worldmodel import Encoder, LatentWorldModel, autocast, heads


@contextlib.contextmanager
def no_param_grads(*modules: nn.Module):
    """Temporarily stop gradients into the parameters of `modules` (gradients still flow through them)."""
    params = [p for m in modules for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


class GRUCell(nn.Module):
    """DreamerV3's GRU: one bias-free Linear with LayerNorm producing reset, candidate and update."""

    def __init__(self, inp: int, deter: int):
        super().__init__()
        self.deter = deter
        self.linear = nn.Linear(inp + deter, 3 * deter, bias=False)
        self.norm = nn.LayerNorm(3 * deter, eps=LN_EPS)
        init_weight(self.linear.weight, inp + deter, 3 * deter, "normal")

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        parts = self.norm(self.linear(torch.cat([x, h], -1)))
        reset, cand, update = parts.split(self.deter, -1)
        cand = torch.tanh(torch.sigmoid(reset) * cand)
        update = torch.sigmoid(update - 1.0)
        return update * cand + (1.0 - update) * h


class RSSM(nn.Module):
    def __init__(self, embed_dim: int, action_dim: int, deter: int, stoch: int, classes: int, units: int,
                 unimix: float = 0.01, action_clip: float = 1.0):
        super().__init__()
        self.deter, self.stoch, self.classes, self.action_dim = deter, stoch, classes, action_dim
        self.zdim = stoch * classes
        self.feat_dim = deter + self.zdim
        self.unimix, self.action_clip = unimix, action_clip
        self.img_in = Dense(self.zdim + action_dim, units)
        self.gru = GRUCell(units, deter)
        self.img_out = Dense(deter, units)
        self.img_stats = Out(units, self.zdim, "uniform")
        self.obs_out = Dense(deter + embed_dim, units)
        self.obs_stats = Out(units, self.zdim, "uniform")
        self.initial = nn.Parameter(torch.zeros(deter))

    # ------------------------------------------------------------------------------------------------------

    def clip(self, action: torch.Tensor) -> torch.Tensor:
        if not self.action_clip:
            return action
        return action * (self.action_clip / torch.clamp(action.abs(), min=self.action_clip)).detach()

    def logits(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw (..., C*K) -> normalised unimix log-probs (..., C, K)."""
        return unimix_logits(raw.reshape(*raw.shape[:-1], self.classes, self.stoch), self.unimix)

    def sample(self, logits: torch.Tensor, grad: bool = True) -> torch.Tensor:
        probs = logits.exp()
        s = sample_onehot(probs)
        if grad:
            s = straight_through(s, probs)
        return s.reshape(*logits.shape[:-2], self.zdim)

    def prior_logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.logits(self.img_stats(self.img_out(h)))

    def initial_state(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(h_0, z_0) for n sequences: h_0 = tanh(theta), z_0 = mode of the prior at h_0."""
        h = torch.tanh(self.initial).expand(n, -1)
        z = mode_onehot(self.prior_logits(h).detach()).reshape(n, self.zdim)
        return h, z

    def img_step(self, h: torch.Tensor, z: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(h_{t-1}, z_{t-1}, a_{t-1}) -> (h_t, prior log-probs of z_t)."""
        x = self.img_in(torch.cat([z, self.clip(action)], -1))
        h = self.gru(x, h)
        return h, self.prior_logits(h)

    def post_logits(self, h: torch.Tensor, embed: torch.Tensor) -> torch.Tensor:
        return self.logits(self.obs_stats(self.obs_out(torch.cat([h, embed], -1))))

    def observe(self, embed: torch.Tensor, action: torch.Tensor, is_first: torch.Tensor) -> dict[str, torch.Tensor]:
        """Filter (B, T) sequences: the prior of step t uses a_{t-1}; (h, z, a) reset to the initial state where
        is_first. Returns h, z (straight-through posterior samples), post_logit and prior_logit, all (B, T, ...)."""
        batch, length = is_first.shape
        h0, z0 = self.initial_state(batch)
        h, z = h0, z0
        a = torch.zeros_like(action[:, 0])
        hs, zs, posts, priors = [], [], [], []
        for t in range(length):
            first = is_first[:, t].unsqueeze(-1)
            if t == 0:
                h, z, a = h0, z0, torch.zeros_like(a)
            else:
                h = torch.where(first, h0, h)
                z = torch.where(first, z0.to(z.dtype), z)
                a = torch.where(first, torch.zeros_like(a), action[:, t - 1])
            h, prior = self.img_step(h, z, a)
            post = self.post_logits(h, embed[:, t])
            z = self.sample(post)
            hs.append(h)
            zs.append(z)
            posts.append(post)
            priors.append(prior)
        return {"h": torch.stack(hs, 1), "z": torch.stack(zs, 1), "post_logit": torch.stack(posts, 1),
                "prior_logit": torch.stack(priors, 1)}

    def imagine(self, policy, h: torch.Tensor, z: torch.Tensor, horizon: int) -> dict[str, torch.Tensor]:
        """Roll `policy(sg(feat)) -> action` for `horizon` steps from (N, ...) starts, WITH gradients through the
        dynamics, the straight-through samples and the (reparameterised) actions. Returns feat (H+1, N, F) and
        action (H+1, N, A); action[t] is taken in state t."""
        feats, actions = [torch.cat([h, z], -1)], []
        for _ in range(horizon):
            action = policy(feats[-1].detach())
            actions.append(action)
            h, prior = self.img_step(h, z, action)
            z = self.sample(prior)
            feats.append(torch.cat([h, z], -1))
        actions.append(policy(feats[-1].detach()))
        return {"feat": torch.stack(feats), "action": torch.stack(actions)}


class DreamerWorldModel(LatentWorldModel):
    def __init__(self, config: Config, image_shape: tuple[int, int, int], action_dim: int, vector_dim: int = 0):
        super().__init__(config, image_shape, action_dim, vector_dim)
        self.encoder = Encoder(self.image_shape, vector_dim, config.encoder)
        d = config.dreamer
        self.rssm = RSSM(self.encoder.out_dim, action_dim, d.deter, d.stoch, d.classes, d.units, d.unimix, d.action_clip)
        self.decoder, self.reward, self.cont = heads(config, self.rssm.feat_dim, self.image_shape, vector_dim)
        self.scales = {**dict(config.loss_scales), "dyn": d.dyn, "rep": d.rep}
        self.free_bits = d.free_bits

    @property
    def feat_dim(self) -> int:
        return self.rssm.feat_dim

    def embed(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.encoder(batch["image"], batch.get("vector"))

    def loss(self, batch: dict[str, torch.Tensor], scales: dict[str, float] | None = None, embed: torch.Tensor | None = None):
        """Total loss, states (h, z, post/prior logits, feat) and metrics. `scales` overrides loss scales
        (a scale of 0 leaves the term out, e.g. reward for the finetune baseline); `embed` replaces the encoder
        pass (cached embeddings of a frozen encoder)."""
        scales = {**self.scales, **(scales or {})}
        embed = self.embed(batch) if embed is None else embed
        states = self.rssm.observe(embed, batch["action"], batch["is_first"])
        feat = torch.cat([states["h"], states["z"]], -1)
        states["feat"] = feat
        losses: dict[str, torch.Tensor] = {}
        recon = self.decoder(feat)
        target = batch["image"].float() / 255.0
        losses["image"] = ((recon["image"].float() - target) ** 2).sum((-3, -2, -1))
        if self.vector_dim:
            losses["vector"] = ((recon["vector"].float() - symlog(batch["vector"].float())) ** 2).sum(-1)
        if "reward" in batch and scales.get("reward", 0.0):
            losses["reward"] = -self.reward(feat).log_prob(batch["reward"])
        cont_target = 1.0 - batch["is_terminal"].float()
        losses["cont"] = F.binary_cross_entropy_with_logits(self.cont(feat).squeeze(-1).float(), cont_target, reduction="none")
        post, prior = states["post_logit"], states["prior_logit"]
        kl = categorical_kl(post.detach(), prior)
        losses["dyn"] = torch.clamp(kl, min=self.free_bits)
        losses["rep"] = torch.clamp(categorical_kl(post, prior.detach()), min=self.free_bits)
        total = sum(scales[k] * v.mean() for k, v in losses.items() if scales.get(k, 0.0))
        metrics = {f"wm/{k}": v.detach().mean() for k, v in losses.items()}
        metrics["wm/kl"] = kl.detach().mean()
        metrics["wm/image_mse"] = ((recon["image"].detach().float() - target) ** 2).mean()
        return total, states, metrics


class DreamerActorCritic(ActorCriticBase):
    """DreamerV3-v1 actor-critic on feat = [h, z] with backprop actor gradients (METHOD.md 5, 'Dreamer baselines')."""

    def train_step(self, wm: DreamerWorldModel, start: dict[str, torch.Tensor], reward_fn=None,
                   frozen: tuple[nn.Module, ...] = ()) -> dict[str, torch.Tensor]:
        """start: h, z (N, ...), cont (N,). reward_fn(feat[1:], action[1:]) -> (H, N) differentiable rewards
        (default: the reward head's mean). `frozen`: more modules the actor loss must not put gradients in."""
        cfg = self.config
        horizon = cfg.dreamer.imag_horizon
        with no_param_grads(wm, self.critic, *frozen):
            traj = wm.rssm.imagine(lambda f: self.actor(f).sample(), start["h"], start["z"], horizon)
            feat, action = traj["feat"], traj["action"]
            reward = reward_fn(feat[1:], action[1:]) if reward_fn is not None else wm.reward(feat[1:]).mean()
            value = self.critic(feat).mean()
            ret, adv, w, scale = self.advantages(wm, feat, start["cont"], reward, value)
            dist = self.actor(feat[:-1].detach())
            ent = dist.entropy()
            actor_loss = -(w * (adv + cfg.actent * ent)).mean()
            metrics = self.actor_opt.step(actor_loss)

        ret, feat = ret.detach(), feat.detach()
        with torch.no_grad():
            slow = self.slow_critic(feat[:-1]).mean()
        vdist = self.critic(feat[:-1])
        critic_loss = -(w * (vdist.log_prob(ret) + cfg.slowreg * vdist.log_prob(slow))).mean()
        metrics.update(self.critic_opt.step(critic_loss))

        self.count_update()
        metrics.update(self.summary(reward, ret, value, adv, ent, dist, scale))
        return metrics


class DreamerAgent(nn.Module):
    """DreamerV3 world model + task actor-critic (+ Plan2Explore parts when config.explore == 'plan2explore').

    Acting is recurrent: `policy_step(obs, state)` carries (h, z, previous action) from step to step (rollout.PolicyRunner
    holds the state and starts it afresh at every episode)."""

    def __init__(self, config: Config, image_shape: tuple[int, int, int], action_dim: int, vector_dim: int = 0,
                 calibrated: bool = False):
        super().__init__()
        if calibrated:
            raise ValueError("a Dreamer agent cannot be calibrated (ReDRAW needs the DRAW world model, config model: draw)")
        self.config = config
        self.image_shape, self.action_dim, self.vector_dim = tuple(image_shape), action_dim, vector_dim
        self.wm = DreamerWorldModel(config, image_shape, action_dim, vector_dim)
        self.residual = None
        self.explores = config.explore == "plan2explore"
        ac_config = pretraining_config(config) if self.explores else config
        self.task = DreamerActorCritic(ac_config, self.wm.feat_dim, action_dim)
        self.disag: Disagreement | None = None
        self.expl_behavior: DreamerActorCritic | None = None
        if self.explores:
            e = config.expl
            self.disag = Disagreement(self.wm.feat_dim + action_dim, self.wm.encoder.out_dim, e.members, e.layers, e.units,
                                      e.lr, e.eps, e.clip)
            self.expl_behavior = DreamerActorCritic(ac_config, self.wm.feat_dim, action_dim)
        self.wm.make_optimizer()

    @property
    def calibrated(self) -> bool:
        return False

    def optimizers(self) -> dict[str, Optimizer]:
        opts = dict(self.task.optimizers())
        if self.wm.opt is not None:
            opts["model"] = self.wm.opt
        if self.disag is not None:
            opts["disag"] = self.disag.opt
            opts.update({f"expl_{k}": v for k, v in self.expl_behavior.optimizers().items()})
        return opts

    def compile(self) -> None:
        self.wm.encoder.cnn = torch.compile(self.wm.encoder.cnn, dynamic=False)
        self.wm.decoder.image = torch.compile(self.wm.decoder.image, dynamic=False)

    def start_calibration(self, config: Config | None = None) -> None:
        raise ValueError("ReDRAW calibration needs a DRAW checkpoint (config model: draw); this one is a Dreamer model")

    # ------------------------------------------------------------------------------------------------------
    # acting

    @torch.no_grad()
    def policy_step(self, obs: dict[str, torch.Tensor], state, sample: bool = True, behavior: str = "task"):
        """obs (N, ...) and the state of the previous step (None at an episode start) -> (action (N, A), state)."""
        rssm = self.wm.rssm
        embed = self.wm.embed(obs)
        n = embed.shape[0]
        if state is None or state[0] is None:
            h, z = rssm.initial_state(n)
            a = torch.zeros(n, self.action_dim, device=embed.device)
        else:
            h, z, a = state
        h, _ = rssm.img_step(h, z, a)
        post = rssm.post_logits(h, embed)
        z = rssm.sample(post, grad=False) if sample else mode_onehot(post).reshape(n, -1)
        ac = self.task if behavior == "task" else self.expl_behavior
        if ac is None:
            raise RuntimeError("this agent has no exploration actor (config explore is not plan2explore)")
        dist = ac.actor(torch.cat([h, z], -1))
        action = (dist.sample() if sample else dist.mean).clamp(-1.0, 1.0)
        return action, (h, z, action)

    # ------------------------------------------------------------------------------------------------------
    # training

    def intrinsic(self, feat: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        e = self.config.expl
        out = e.disag * member_std(self.disag(torch.cat([feat, action], -1)))
        if e.extr:
            out = out + e.extr * self.wm.reward(feat).mean().float()
        return out

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        states, metrics = self.wm.train_step(batch)
        start = start_states({"h": states["h"], "z": states["z"]}, batch["is_terminal"], self.config.imag_starts)
        with autocast(self.config, batch["image"].device):
            if self.disag is not None:
                with torch.no_grad():
                    embed = self.wm.embed(batch)
                x = torch.cat([states["feat"][:, :-1], batch["action"][:, :-1].float()], -1)
                metrics.update(self.disag.train_step(x, embed[:, 1:], ~batch["is_first"][:, 1:]))
            metrics.update(self.task.train_step(self.wm, start))
            if self.expl_behavior is not None:
                expl = self.expl_behavior.train_step(self.wm, start, reward_fn=self.intrinsic, frozen=(self.disag,))
                metrics.update({f"expl_{k}": v for k, v in expl.items()})
        return metrics
