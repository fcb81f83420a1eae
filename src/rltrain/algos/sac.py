"""Soft Actor-Critic (Haarnoja et al., 2018) with twin critics (or `critics` of them) and automatic entropy tuning.

Critic:  y = r + gamma * (1 - terminated) * (min_i Q_target_i(s', a') - alpha * log pi(a'|s')),  a' ~ pi(.|s')
         L_Q = sum_i E[(Q_i(s, a) - y)^2]
Actor:   L_pi = E[alpha * log pi(a~|s) - min_i Q_i(s, a~)],  a~ = tanh(mu + sigma * eps)  (reparameterized)
Alpha:   L_alpha = -E[log alpha * (log pi(a~|s) + target_entropy)]
With `anneal_lr`, every learning rate before update k of the run's K is lr * (1 - k / K) (the RL Zoo's lin_ schedules).
Actions live in [-1, 1] inside the agent and are scaled to the env's box at the boundary. The offline algorithms that
change only the critic's loss (CQL, SAC-N, EDAC) hold a SAC and hand their loss to step().

gSDE (`gsde`, Raffin et al., 2022; SB3's use_sde for SAC): the std becomes a function of the actor's last hidden
features z(s) (detached) and a learned (features, action dims) matrix of log stds,
    sigma(s)^2 = z(s)^2 exp(2 log_std),   mu(s) clipped to [-2, 2], out of tanh's flat tails,
and the exploring env steps take a = tanh(mu(s) + z(s) W), W = exp(log_std) * eps, eps ~ N(0, 1) held for `gsde`
env steps (gsde <= 0: one round of gradient steps, train_every env steps), one eps per env. Noise correlated over
many steps finds sparse rewards that white noise averages out. The losses above see tanh(N(mu(s), sigma(s)^2)), the
distribution of a for a fresh W. The clip passes no gradient, so the actor's loss gains
    L_pi += E[sum_k max(|mu_k(s)| - 2, 0)^2]
zero inside the bound: without it a mean pushed past the clip on every state stays there, pushing one way forever.
"""

from __future__ import annotations

import copy
import math

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rltrain.errors import RltrainError
from rltrain.networks import QEnsemble, adam, box_center_and_half_range, mlp, soft_update
from rltrain.policies import anneal_learning_rate

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
# SB3's clip_mean: past tanh(2) = 0.96 the small state-dependent noise would no longer move the action
GSDE_MEAN_BOUND = 2.0
GSDE_INIT_LOG_STD = -3.0  # SB3's log_std_init for SAC


class TanhGaussianActor(nn.Module):
    def __init__(
        self, obs_dim: int, act_dim: int, hidden: list[int], activation: str, gsde_init_log_std: float | None = None
    ):
        super().__init__()
        self.gsde = gsde_init_log_std is not None
        # under gSDE the body gives the mean only; the std comes from its features and gsde_log_std
        self.body = mlp(obs_dim, act_dim if self.gsde else 2 * act_dim, hidden, activation, orthogonal=False)
        if self.gsde:
            features = hidden[-1] if hidden else obs_dim
            self.gsde_log_std = nn.Parameter(torch.full((features, act_dim), float(gsde_init_log_std)))

    def features_and_mean(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """gSDE's z(s), detached, and mu(s) clipped to +-GSDE_MEAN_BOUND."""
        features = self.body[:-1](obs)
        return features.detach(), self.body[-1](features).clamp(-GSDE_MEAN_BOUND, GSDE_MEAN_BOUND)

    def mean_excess(self, obs: torch.Tensor) -> torch.Tensor:
        """sum_k max(|mu_k(s)| - GSDE_MEAN_BOUND, 0)^2 of the unclipped gSDE mean, which walks a mean past the clip
        back to where the critic's gradient reaches it again."""
        excess = (self.body(obs).abs() - GSDE_MEAN_BOUND).clamp(min=0.0)
        return excess.square().sum(-1)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.gsde:
            mean, log_std = self.body(obs).chunk(2, dim=-1)
            return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)
        features, mean = self.features_and_mean(obs)
        variance = features.square() @ self.gsde_log_std.exp().square()  # sum_j z_j^2 sigma_j^2 per action dim
        return mean, 0.5 * (variance + 1e-6).log()

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterized action in [-1, 1] and its log-probability (with the tanh change of variables)."""
        mean, log_std = self(obs)
        std = log_std.exp()
        noise = torch.randn_like(mean)
        pre_tanh = mean + std * noise
        action = torch.tanh(pre_tanh)
        gaussian_log_prob = (-0.5 * noise.square() - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        # log(1 - tanh(x)^2) written stably as 2 * (log 2 - x - softplus(-2x))
        squash = (2 * (math.log(2) - pre_tanh - nn.functional.softplus(-2 * pre_tanh))).sum(-1)
        return action, gaussian_log_prob - squash


class HeldExploration:
    """gSDE's exploring actions, tanh(mu(s) + z(s) W) with W = exp(log_std) * eps, eps redrawn every `every` calls
    (and when the number of envs changes); its state goes into the agent's checkpoint so a resumed run keeps it."""

    def __init__(self, actor: TanhGaussianActor, every: int):
        self.actor, self.every = actor, every
        self.eps = torch.zeros(0, *actor.gsde_log_std.shape, device=actor.gsde_log_std.device)
        self.steps = 0  # exploring steps so far

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        features, mean = self.actor.features_and_mean(obs)
        if self.steps % self.every == 0 or self.eps.shape[0] != obs.shape[0]:
            self.eps = torch.randn(obs.shape[0], *self.actor.gsde_log_std.shape, device=obs.device)
        self.steps += 1
        noise = torch.bmm(features.unsqueeze(1), self.eps * self.actor.gsde_log_std.exp()).squeeze(1)
        return torch.tanh(mean + noise)

    def state_dict(self) -> dict:
        return {"eps": self.eps.clone(), "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.eps, self.steps = state["eps"].to(self.eps.device), int(state["steps"])


class SAC:
    kind = "offpolicy"
    observation_spaces = (gym.spaces.Box,)
    action_spaces = (gym.spaces.Box,)

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        network: dict,
        device: torch.device,
        actor_lr: float = 3e-4,
        critic_lr: float = 3e-4,
        alpha_lr: float = 3e-4,
        gamma: float = 0.99,
        tau: float = 0.005,
        buffer_size: int = 1_000_000,
        batch_size: int = 256,
        learning_starts: int = 5000,
        train_every: int = 1,
        gradient_steps: int = 1,
        policy_delay: int = 1,
        init_alpha: float = 1.0,
        autotune_alpha: bool = True,
        target_entropy: float | None = None,
        critics: int = 2,
        gsde: int | None = None,
        gsde_init_log_std: float | None = None,
        anneal_lr: bool = False,
        total_steps: int | None = None,
    ):
        if anneal_lr and total_steps is None:
            raise RltrainError("algo.anneal_lr=true needs the run's total_steps to anneal over; pass total_steps.")
        self.device = device
        obs_dim = int(np.prod(observation_space.shape))
        act_dim = int(action_space.shape[0])
        hidden, activation = list(network["hidden"]), network["activation"]
        if gsde is not None and gsde_init_log_std is None:
            gsde_init_log_std = GSDE_INIT_LOG_STD
        self.actor = TanhGaussianActor(
            obs_dim, act_dim, hidden, activation, gsde_init_log_std if gsde is not None else None
        ).to(device)
        self.exploration = None if gsde is None else HeldExploration(self.actor, gsde if gsde > 0 else train_every)
        self.critics = QEnsemble(critics, obs_dim, act_dim, hidden, activation).to(device)
        self.critics_target = copy.deepcopy(self.critics).requires_grad_(False)
        self.log_alpha = torch.tensor(math.log(init_alpha), device=device, requires_grad=True)
        self.actor_optimizer = adam(self.actor.parameters(), actor_lr)
        self.critic_optimizer = adam(self.critics.parameters(), critic_lr)
        self.alpha_optimizer = adam([self.log_alpha], alpha_lr)

        self.action_center, self.action_half_range = box_center_and_half_range(action_space, device)

        self.gamma, self.tau, self.policy_delay = gamma, tau, policy_delay
        self.n_step = 1
        self.autotune_alpha = autotune_alpha
        self.target_entropy = float(-act_dim if target_entropy is None else target_entropy)
        # replay schedule, read by the off-policy loop
        self.buffer_size, self.batch_size = buffer_size, batch_size
        self.learning_starts, self.train_every, self.gradient_steps = learning_starts, train_every, gradient_steps
        self.updates_done = 0
        # the run's updates (one round of gradient_steps per train_every env steps after the warm-up), over which
        # anneal_lr decays every learning rate linearly to 0, as the RL Zoo's lin_ schedules do over its env steps
        self.anneal_lr = anneal_lr
        self.base_lrs = {"actor": actor_lr, "critic": critic_lr, "alpha": alpha_lr}
        rounds = max(1, math.ceil(((total_steps or 0) - learning_starts) / train_every))
        self.total_updates = rounds * gradient_steps

    @torch.no_grad()
    def act(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        if explore and self.exploration is not None:
            action = self.exploration(obs)
        elif explore:
            action, _ = self.actor.sample(obs)
        else:
            action = torch.tanh(self.actor(obs)[0])
        return self.action_center + self.action_half_range * action

    def critic_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Twin-critic soft Bellman loss (summed over critics), and the mean Q value."""
        actions = (batch["actions"] - self.action_center) / self.action_half_range
        with torch.no_grad():
            next_actions, next_log_prob = self.actor.sample(batch["next_obs"])
            next_q = self.critics_target(batch["next_obs"], next_actions).min(0).values
            next_value = next_q - self.log_alpha.exp() * next_log_prob
            target = batch["rewards"] + self.gamma * (1.0 - batch["terminated"]) * next_value
        q = self.critics(batch["obs"], actions)
        return (q - target).square().mean(1).sum(), {"q_mean": q.detach().mean()}

    def actor_loss(self, obs: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Reparameterized policy loss; no gradient reaches the critics. The info holds the entropy estimate and
        the per-sample log-probs of the actions, which the temperature loss takes."""
        actions, log_prob = self.actor.sample(obs)
        frozen = {name: p.detach() for name, p in self.critics.named_parameters()}
        q = torch.func.functional_call(self.critics, frozen, (obs, actions)).min(0).values
        loss = (self.log_alpha.detach().exp() * log_prob - q).mean()
        if self.actor.gsde:
            loss = loss + self.actor.mean_excess(obs).mean()
        info = {"entropy": -log_prob.detach().mean(), "log_prob": log_prob.detach(), "q_policy": q.detach().mean()}
        return loss, info

    def alpha_loss(self, log_prob: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The temperature loss: alpha rises while the policy's entropy is below target_entropy."""
        return -(self.log_alpha * (log_prob.detach() + self.target_entropy)).mean(), {}

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        critic_loss, info = self.critic_loss(batch)
        return self.step(batch["obs"], critic_loss, info)

    def step(
        self, obs: torch.Tensor, critic_loss: torch.Tensor, info: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """A gradient step of the critics on `critic_loss` (its parts in `info`), then, every policy_delay steps,
        of the actor and the temperature on the states `obs`; then the target critics' Polyak update."""
        if self.anneal_lr:
            fraction_done = self.updates_done / self.total_updates
            for name, optimizer in self.optimizers().items():
                anneal_learning_rate(optimizer, self.base_lrs[name], fraction_done)
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()
        metrics = {"critic": critic_loss.detach(), **info, "alpha": self.log_alpha.detach().exp()}

        self.updates_done += 1
        if self.updates_done % self.policy_delay == 0:
            actor_loss, info = self.actor_loss(obs)
            self.actor_optimizer.zero_grad(set_to_none=True)
            actor_loss.backward()
            self.actor_optimizer.step()
            metrics["actor"] = actor_loss.detach()
            metrics["entropy"], metrics["q_policy"] = info["entropy"], info["q_policy"]
            if self.autotune_alpha:
                alpha_loss, _ = self.alpha_loss(info["log_prob"])
                self.alpha_optimizer.zero_grad(set_to_none=True)
                alpha_loss.backward()
                self.alpha_optimizer.step()
                metrics["alpha_loss"] = alpha_loss.detach()
        soft_update(self.critics_target, self.critics, self.tau)
        return metrics

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor": self.actor_optimizer, "critic": self.critic_optimizer, "alpha": self.alpha_optimizer}

    def state_dict(self) -> dict:
        return {
            "actor": self.actor.state_dict(),
            "critics": self.critics.state_dict(),
            "critics_target": self.critics_target.state_dict(),
            "log_alpha": self.log_alpha.detach().clone(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "alpha_optimizer": self.alpha_optimizer.state_dict(),
            "updates_done": self.updates_done,
            "gsde": None if self.exploration is None else self.exploration.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critics.load_state_dict(state["critics"])
        self.critics_target.load_state_dict(state["critics_target"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        self.alpha_optimizer.load_state_dict(state["alpha_optimizer"])
        self.updates_done = int(state["updates_done"])
        if self.exploration is not None and state.get("gsde") is not None:
            self.exploration.load_state_dict(state["gsde"])
