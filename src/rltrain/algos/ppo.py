"""Proximal Policy Optimization with a clipped surrogate objective (Schulman et al., 2017).

Per rollout of rollout_steps x num_envs transitions, the loop computes GAE advantages; update() then runs
`epochs` passes over shuffled minibatches minimizing
    L = -E[min(r A, clip(r, 1-eps, 1+eps) A)] + value_coef * E[(V - R)^2] - entropy_coef * E[H(pi)],
with r = pi(a|s) / pi_old(a|s).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical, Normal

from rltrain.networks import RunningNorm, adam, mlp


class PPO:
    kind = "onpolicy"
    observation_spaces = (gym.spaces.Box,)
    action_spaces = (gym.spaces.Discrete, gym.spaces.Box)

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        network: dict,
        device: torch.device,
        total_steps: int,
        num_envs: int,
        lr: float = 3e-4,
        anneal_lr: bool = True,
        rollout_steps: int = 128,
        epochs: int = 4,
        minibatches: int = 4,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        clip: float = 0.2,
        clip_value: float | None = None,
        value_coef: float = 0.5,
        entropy_coef: float = 0.0,
        max_grad_norm: float = 0.5,
        normalize_advantages: bool = True,
        normalize_obs: bool = False,
        normalize_reward: bool = False,
        init_log_std: float = 0.0,
    ):
        self.device = device
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        obs_dim = int(np.prod(observation_space.shape))
        act_dim = int(action_space.n) if self.discrete else int(action_space.shape[0])
        hidden, activation = list(network["hidden"]), network["activation"]
        self.actor = mlp(obs_dim, act_dim, hidden, activation, out_gain=0.01).to(device)
        self.critic = mlp(obs_dim, 1, hidden, activation, out_gain=1.0).to(device)
        self.log_std = nn.Parameter(torch.full((act_dim,), float(init_log_std), device=device))
        params = [*self.actor.parameters(), *self.critic.parameters()]
        if not self.discrete:
            params.append(self.log_std)
            self.action_low = torch.as_tensor(action_space.low, device=device)
            self.action_high = torch.as_tensor(action_space.high, device=device)
        self.params = params
        self.optimizer = adam(params, lr, device)
        self.obs_norm = RunningNorm(observation_space.shape).to(device) if normalize_obs else None
        self.return_norm = RunningNorm(()).to(device) if normalize_reward else None
        self.discounted_return = torch.zeros(num_envs, dtype=torch.float64, device=device)

        self.lr, self.anneal_lr = lr, anneal_lr
        self.rollout_steps, self.epochs, self.minibatches = rollout_steps, epochs, minibatches
        self.gamma, self.gae_lambda = gamma, gae_lambda
        self.clip, self.clip_value = clip, clip_value
        self.value_coef, self.entropy_coef, self.max_grad_norm = value_coef, entropy_coef, max_grad_norm
        self.normalize_advantages = normalize_advantages
        self.total_updates = max(1, total_steps // (rollout_steps * num_envs))
        self.updates_done = 0

    # --- acting -------------------------------------------------------------------------------------------
    def _normalized(self, obs: torch.Tensor, update_stats: bool) -> torch.Tensor:
        if self.obs_norm is None:
            return obs
        if update_stats:
            self.obs_norm.update(obs)
        return self.obs_norm.normalize(obs)

    def _distribution(self, obs: torch.Tensor):
        logits_or_mean = self.actor(obs)
        if self.discrete:
            return Categorical(logits=logits_or_mean, validate_args=False)
        return Normal(logits_or_mean, self.log_std.exp().expand_as(logits_or_mean), validate_args=False)

    def _to_env(self, action: torch.Tensor) -> torch.Tensor:
        # the Gaussian is unbounded; the env gets the action clipped to its box, the buffer keeps the sample
        return action if self.discrete else torch.max(torch.min(action, self.action_high), self.action_low)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        obs = self._normalized(obs, update_stats=False)
        if explore:
            return self._to_env(self._distribution(obs).sample())
        logits_or_mean = self.actor(obs)
        return logits_or_mean.argmax(-1) if self.discrete else self._to_env(logits_or_mean)

    @torch.no_grad()
    def policy_step(self, obs: torch.Tensor) -> dict[str, torch.Tensor]:
        """One exploring step for the rollout: the (normalized) obs to store, action, its log-prob, V(obs)."""
        obs = self._normalized(obs, update_stats=True)
        dist = self._distribution(obs)
        action = dist.sample()
        log_prob = dist.log_prob(action)
        if not self.discrete:
            log_prob = log_prob.sum(-1)
        return {
            "obs": obs,
            "action": action,
            "env_action": self._to_env(action),
            "log_prob": log_prob,
            "value": self.critic(obs).squeeze(-1),
        }

    @torch.no_grad()
    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(self._normalized(obs, update_stats=False)).squeeze(-1)

    @torch.no_grad()
    def scale_rewards(self, rewards: torch.Tensor, dones: torch.Tensor) -> torch.Tensor:
        """Divide rewards by the running std of the discounted return (a no-op unless normalize_reward)."""
        if self.return_norm is None:
            return rewards
        self.discounted_return = self.discounted_return * self.gamma + rewards.double()
        self.return_norm.update(self.discounted_return)
        self.discounted_return = self.discounted_return * (1.0 - dones.double())
        return self.return_norm.scale(rewards)

    # --- learning -----------------------------------------------------------------------------------------
    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.anneal_lr:
            for group in self.optimizer.param_groups:
                group["lr"] = self.lr * (1.0 - self.updates_done / self.total_updates)
        size = batch["obs"].shape[0]
        minibatch = max(size // self.minibatches, 2)  # at least 2 samples, so advantages have a std
        for _ in range(self.epochs):
            order = torch.randperm(size, device=self.device)
            for start in range(0, size - minibatch + 1, minibatch):
                metrics = self._minibatch_step({k: v[order[start : start + minibatch]] for k, v in batch.items()})
        self.updates_done += 1
        explained = 1.0 - (batch["returns"] - batch["values"]).var() / batch["returns"].var().clamp_min(1e-8)
        return {**metrics, "explained_variance": explained}

    def loss(self, mb: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The PPO objective on one minibatch, and its parts."""
        dist = self._distribution(mb["obs"])
        log_prob = dist.log_prob(mb["actions"])
        entropy = dist.entropy()
        if not self.discrete:
            log_prob, entropy = log_prob.sum(-1), entropy.sum(-1)
        advantages = mb["advantages"]
        if self.normalize_advantages:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)

        log_ratio = log_prob - mb["log_probs"]
        ratio = log_ratio.exp()
        policy_loss = -torch.min(ratio * advantages, ratio.clamp(1 - self.clip, 1 + self.clip) * advantages).mean()

        value = self.critic(mb["obs"]).squeeze(-1)
        if self.clip_value is None:
            value_loss = 0.5 * (value - mb["returns"]).square().mean()
        else:
            clipped = mb["values"] + (value - mb["values"]).clamp(-self.clip_value, self.clip_value)
            value_loss = 0.5 * torch.max((value - mb["returns"]).square(), (clipped - mb["returns"]).square()).mean()

        entropy_mean = entropy.mean()
        loss = policy_loss + self.value_coef * value_loss - self.entropy_coef * entropy_mean
        with torch.no_grad():
            approx_kl = ((ratio - 1) - log_ratio).mean()  # the low-variance KL estimator (Schulman, 2020)
            clip_fraction = ((ratio - 1).abs() > self.clip).float().mean()
        return loss, {
            "policy": policy_loss.detach(),
            "value": value_loss.detach(),
            "entropy": entropy_mean.detach(),
            "approx_kl": approx_kl,
            "clip_fraction": clip_fraction,
        }

    def _minibatch_step(self, mb: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        loss, metrics = self.loss(mb)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
        self.optimizer.step()
        return metrics

    # --- checkpoints --------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "log_std": self.log_std.detach().clone(),
            "optimizer": self.optimizer.state_dict(),
            "obs_norm": self.obs_norm.state_dict() if self.obs_norm is not None else None,
            "return_norm": self.return_norm.state_dict() if self.return_norm is not None else None,
            "discounted_return": self.discounted_return.clone(),
            "updates_done": self.updates_done,
        }

    def load_state_dict(self, state: dict) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        with torch.no_grad():
            self.log_std.copy_(state["log_std"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.obs_norm is not None:
            self.obs_norm.load_state_dict(state["obs_norm"])
        if self.return_norm is not None:
            self.return_norm.load_state_dict(state["return_norm"])
        self.discounted_return = state["discounted_return"].to(self.device)
        self.updates_done = int(state["updates_done"])
