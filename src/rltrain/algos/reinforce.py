"""REINFORCE: Monte-Carlo policy gradient with reward-to-go (Williams, 1992).

From whole episodes, with G_t = sum_{k >= t} gamma^(k-t) r_k the return that follows step t,
    grad J = E[ sum_t grad log pi(a_t|s_t) (G_t - b(s_t)) ],
where only the rewards after the action can be credited to it (reward-to-go), and the baseline b lowers the
variance without biasing the gradient:
    baseline=none   b = 0
    baseline=mean   b = the batch's mean return-to-go
    baseline=value  b = V(s_t), a learned value function fitted to G_t by regression after each update.
"""

from __future__ import annotations

import gymnasium as gym
import torch
from torch import nn

from rltrain.errors import RltrainError
from rltrain.networks import adam
from rltrain.policies import ActorCritic, fit_value

BASELINES = ("none", "mean", "value")


class Reinforce:
    kind = "episodic"
    observation_spaces = (gym.spaces.Box,)
    action_spaces = (gym.spaces.Discrete, gym.spaces.Box)

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        network: dict,
        device: torch.device,
        num_envs: int,
        lr: float = 1e-3,
        gamma: float = 0.99,
        episodes_per_update: int = 8,
        baseline: str = "value",
        scale_advantages: bool = True,
        entropy_coef: float = 0.0,
        max_grad_norm: float = 1.0,
        value_lr: float = 1e-3,
        value_epochs: int = 5,
        value_minibatch: int = 256,
        init_log_std: float = 0.0,
    ):
        if baseline not in BASELINES:
            raise RltrainError(f"algo.baseline={baseline} is unknown; pick one of {', '.join(BASELINES)}.")
        self.device = device
        self.policy = ActorCritic(
            observation_space,
            action_space,
            network,
            device,
            num_envs,
            gamma,
            with_critic=baseline == "value",
            init_log_std=init_log_std,
        )
        self.policy_params = self.policy.policy_parameters()
        self.optimizer = adam(self.policy_params, lr)
        self.value_optimizer = adam(self.policy.critic.parameters(), value_lr) if baseline == "value" else None
        self.gamma, self.episodes_per_update, self.baseline = gamma, episodes_per_update, baseline
        self.scale_advantages = scale_advantages
        self.entropy_coef, self.max_grad_norm = entropy_coef, max_grad_norm
        self.value_epochs, self.value_minibatch = value_epochs, value_minibatch
        self.updates_done = 0

    # --- acting, episodes and bootstrapping: the shared policy's (EpisodicAgent in agent.py) ------------------
    def act(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        return self.policy.act(obs, explore)

    def policy_step(self, obs: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.policy.policy_step(obs)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.policy.value(obs)

    def advantages(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        returns = batch["returns"]
        if self.baseline == "mean":
            advantages = returns - returns.mean()
        elif self.baseline == "value":
            with torch.no_grad():
                advantages = returns - self.policy.critic(batch["obs"]).squeeze(-1)
        else:
            advantages = returns
        if self.scale_advantages and advantages.numel() > 1:
            # divide only: subtracting the batch mean would quietly turn every baseline into baseline=mean
            advantages = advantages / (advantages.std() + 1e-8)
        return advantages

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The negated policy-gradient objective on a batch of whole episodes, and its parts."""
        log_prob, entropy = self.policy.log_prob_and_entropy(batch["obs"], batch["actions"])
        policy_loss = -(log_prob * self.advantages(batch)).mean()
        entropy_mean = entropy.mean()
        return policy_loss - self.entropy_coef * entropy_mean, {
            "policy": policy_loss.detach(),
            "entropy": entropy_mean.detach(),
        }

    def fit_value(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return fit_value(
            self.policy.critic,
            self.value_optimizer,
            batch["obs"],
            batch["returns"],
            self.value_epochs,
            self.value_minibatch,
        )

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        loss, metrics = self.loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.policy_params, self.max_grad_norm)
        self.optimizer.step()
        if self.value_optimizer is not None:
            metrics["value"] = self.fit_value(batch)
        self.updates_done += 1
        return {**metrics, "return_to_go": batch["returns"].mean(), "episodes": batch["episodes"]}

    def state_dict(self) -> dict:
        return {
            **self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "value_optimizer": self.value_optimizer.state_dict() if self.value_optimizer is not None else None,
            "updates_done": self.updates_done,
        }

    def load_state_dict(self, state: dict) -> None:
        self.policy.load_state_dict(state)
        self.optimizer.load_state_dict(state["optimizer"])
        if self.value_optimizer is not None:
            self.value_optimizer.load_state_dict(state["value_optimizer"])
        self.updates_done = int(state["updates_done"])
