"""Synchronous advantage actor-critic, A2C (Mnih et al., 2016, without the asynchrony).

Each update uses one rollout of rollout_steps x num_envs transitions with advantages A from GAE (gae_lambda = 1:
plain n-step returns) and takes a single gradient step on
    L = -E[log pi(a|s) A] + value_coef * E[(V - R)^2] - entropy_coef * E[H(pi)].
"""

from __future__ import annotations

import gymnasium as gym
import torch
from torch import nn

from rltrain.errors import RltrainError
from rltrain.networks import adam
from rltrain.policies import ActorCritic, anneal_learning_rate, explained_variance


class A2C:
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
        lr: float = 7e-4,
        anneal_lr: bool = False,
        optimizer: str = "rmsprop",
        rollout_steps: int = 5,
        gamma: float = 0.99,
        gae_lambda: float = 1.0,
        value_coef: float = 0.5,
        entropy_coef: float = 0.0,
        max_grad_norm: float = 0.5,
        normalize_advantages: bool = False,
        normalize_obs: bool = False,
        normalize_reward: bool = False,
        init_log_std: float = 0.0,
        gsde: int | None = None,
    ):
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
        if optimizer == "rmsprop":  # the paper's choice; eps and alpha as in the common implementations
            self.optimizer = torch.optim.RMSprop(self.params, lr=lr, alpha=0.99, eps=1e-5)
        elif optimizer == "adam":
            self.optimizer = adam(self.params, lr)
        else:
            raise RltrainError(f"algo.optimizer={optimizer} is unknown; pick rmsprop or adam.")
        self.lr, self.anneal_lr = lr, anneal_lr
        self.rollout_steps, self.gamma, self.gae_lambda = rollout_steps, gamma, gae_lambda
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

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The A2C objective on one rollout, and its parts."""
        log_prob, entropy = self.policy.log_prob_and_entropy(batch["obs"], batch["actions"])
        advantages = batch["advantages"]
        if self.normalize_advantages:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        policy_loss = -(log_prob * advantages).mean()
        value = self.policy.critic(batch["obs"]).squeeze(-1)
        value_loss = (value - batch["returns"]).square().mean()
        entropy_mean = entropy.mean()
        loss = policy_loss + self.value_coef * value_loss - self.entropy_coef * entropy_mean
        return loss, {"policy": policy_loss.detach(), "value": value_loss.detach(), "entropy": entropy_mean.detach()}

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.anneal_lr:
            anneal_learning_rate(self.optimizer, self.lr, self.updates_done / self.total_updates)
        loss, metrics = self.loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
        self.optimizer.step()
        self.updates_done += 1
        return {**metrics, "explained_variance": explained_variance(batch["values"], batch["returns"])}

    def state_dict(self) -> dict:
        return {**self.policy.state_dict(), "optimizer": self.optimizer.state_dict(), "updates_done": self.updates_done}

    def load_state_dict(self, state: dict) -> None:
        self.policy.load_state_dict(state)
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates_done = int(state["updates_done"])
