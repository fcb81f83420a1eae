"""Proximal Policy Optimization with a clipped surrogate objective (Schulman et al., 2017).

Per rollout of rollout_steps x num_envs transitions, the loop computes GAE advantages; update() then runs
`epochs` passes over shuffled minibatches minimizing
    L = -E[min(r A, clip(r, 1-eps, 1+eps) A)] + value_coef * E[(V - R)^2] - entropy_coef * E[H(pi)],
with r = pi(a|s) / pi_old(a|s); eps = clip, or with anneal_clip clip * (1 - fraction of training done).
"""

from __future__ import annotations

import gymnasium as gym
import torch
from torch import nn

from rltrain.networks import adam
from rltrain.policies import ActorCritic, anneal_learning_rate, explained_variance


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
        anneal_clip: bool = False,
        clip_value: float | None = None,
        value_coef: float = 0.5,
        entropy_coef: float = 0.0,
        max_grad_norm: float = 0.5,
        normalize_advantages: bool = True,
        normalize_obs: bool = False,
        normalize_reward: bool = False,
        init_log_std: float = 0.0,
        gsde: int | None = None,
    ):
        self.device = device
        self.policy = ActorCritic(
            observation_space,
            action_space,
            network,
            device,
            num_envs,
            gamma,
            normalize_obs=normalize_obs,
            normalize_reward=normalize_reward,
            init_log_std=init_log_std,
            gsde=gsde,
            rollout_steps=rollout_steps,
        )
        self.params = [*self.policy.policy_parameters(), *self.policy.critic.parameters()]
        self.optimizer = adam(self.params, lr)

        self.lr, self.anneal_lr = lr, anneal_lr
        self.rollout_steps, self.epochs, self.minibatches = rollout_steps, epochs, minibatches
        self.gamma, self.gae_lambda = gamma, gae_lambda
        self.clip, self.anneal_clip, self.clip_value = clip, anneal_clip, clip_value
        self.clip_range = clip  # eps of this update: clip, or clip decayed linearly to 0 with anneal_clip
        self.value_coef, self.entropy_coef, self.max_grad_norm = value_coef, entropy_coef, max_grad_norm
        self.normalize_advantages = normalize_advantages
        self.total_updates = max(1, total_steps // (rollout_steps * num_envs))
        self.updates_done = 0

    # --- acting, rollouts and bootstrapping: the shared policy's (OnPolicyAgent in agent.py) ------------------
    def act(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        return self.policy.act(obs, explore)

    def policy_step(self, obs: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.policy.policy_step(obs)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.policy.value(obs)

    def scale_rewards(self, rewards: torch.Tensor, dones: torch.Tensor) -> torch.Tensor:
        return self.policy.scale_rewards(rewards, dones)

    def relabel_rewards(self, rollout) -> None:
        """Nothing to do: the rollout learns from the env's (scaled) rewards."""

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        fraction_done = self.updates_done / self.total_updates
        if self.anneal_lr:
            anneal_learning_rate(self.optimizer, self.lr, fraction_done)
        if self.anneal_clip:
            self.clip_range = self.clip * max(0.0, 1.0 - fraction_done)
        size = batch["obs"].shape[0]
        minibatch = max(size // self.minibatches, 2)  # at least 2 samples, so advantages have a std
        for _ in range(self.epochs):
            order = torch.randperm(size, device=self.device)
            for start in range(0, size - minibatch + 1, minibatch):
                metrics = self._minibatch_step({k: v[order[start : start + minibatch]] for k, v in batch.items()})
        self.updates_done += 1
        return {**metrics, "explained_variance": explained_variance(batch["values"], batch["returns"])}

    def loss(self, mb: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The PPO objective on one minibatch, and its parts."""
        log_prob, entropy = self.policy.log_prob_and_entropy(mb["obs"], mb["actions"])
        advantages = mb["advantages"]
        if self.normalize_advantages:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)

        log_ratio = log_prob - mb["log_probs"]
        ratio = log_ratio.exp()
        clipped_ratio = ratio.clamp(1 - self.clip_range, 1 + self.clip_range)
        policy_loss = -torch.min(ratio * advantages, clipped_ratio * advantages).mean()

        value = self.policy.critic(mb["obs"]).squeeze(-1)
        if self.clip_value is None:
            value_loss = 0.5 * (value - mb["returns"]).square().mean()
        else:
            clipped = mb["values"] + (value - mb["values"]).clamp(-self.clip_value, self.clip_value)
            value_loss = 0.5 * torch.max((value - mb["returns"]).square(), (clipped - mb["returns"]).square()).mean()

        entropy_mean = entropy.mean()
        loss = policy_loss + self.value_coef * value_loss - self.entropy_coef * entropy_mean
        with torch.no_grad():
            approx_kl = ((ratio - 1) - log_ratio).mean()  # the low-variance KL estimator (Schulman, 2020)
            clip_fraction = ((ratio - 1).abs() > self.clip_range).float().mean()
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

    def state_dict(self) -> dict:
        return {**self.policy.state_dict(), "optimizer": self.optimizer.state_dict(), "updates_done": self.updates_done}

    def load_state_dict(self, state: dict) -> None:
        self.policy.load_state_dict(state)
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates_done = int(state["updates_done"])
