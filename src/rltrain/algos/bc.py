"""Behaviour cloning: supervised learning of the demonstrator's action from its state (Pomerleau, 1991).

On a minibatch {(s, a)} of the dataset (optionally only its best `top_fraction` of episodes by return), with the
policy's log pi(a|s) of networks.RegressionPolicy:
Discrete:            L = -E[log softmax(f(s))_a]                                     (cross-entropy)
Box, deterministic:  L = E[||mu(s) - a~||^2],  mu = tanh(f(s))                         (MSE, tanh-bounded)
Box, gaussian:       L = -E[sum_d log N(a~_d; mu_d(s), sigma_d(s))]                  (Gaussian NLL)
with a~ = (a - center) / half_range the action scaled to [-1, 1]; s is standardized with the dataset's mean and
std. Acting: argmax f(s), or center + half_range * mu (a sample of N(mu, sigma), clipped, when exploring).
"""

from __future__ import annotations

import gymnasium as gym
import torch

from rltrain.errors import RltrainError
from rltrain.networks import RegressionPolicy, adam


class BC:
    kind = "offline"
    observation_spaces = (gym.spaces.Box,)
    action_spaces = (gym.spaces.Discrete, gym.spaces.Box)
    needs_dataset = True

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        network: dict,
        device: torch.device,
        dataset=None,
        lr: float = 1e-3,
        batch_size: int = 256,
        policy: str = "deterministic",
        top_fraction: float = 1.0,
        normalize_obs: bool = True,
    ):
        if not 0 < top_fraction <= 1:
            raise RltrainError(f"algo.top_fraction={top_fraction} must be in (0, 1].")
        self.device = device
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        # the observation statistics of the dataset, fixed for the run and kept in checkpoints (an agent built
        # without its dataset, to act from a checkpoint, gets them from load_state_dict)
        statistics_of = dataset.obs if normalize_obs and dataset is not None else None
        hidden, activation = list(network["hidden"]), network["activation"]
        self.actor = RegressionPolicy(observation_space, action_space, hidden, activation, policy, statistics_of)
        self.actor.to(device)
        self.gaussian = self.actor.gaussian
        self.optimizer = adam(self.actor.parameters(), lr)
        # read by the offline loop: which transitions to learn from (None: all) and how many per update
        keep_some = dataset is not None and top_fraction < 1
        self.transitions = dataset.top_episodes(top_fraction) if keep_some else None
        self.batch_size = batch_size
        self.updates_done = 0

    def act(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        return self.actor.act(obs, explore)

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The cloning loss of one minibatch and its parts."""
        log_likelihood = self.actor.log_likelihood(batch["obs"], batch["actions"])
        loss = -log_likelihood.mean()
        if self.discrete:
            accuracy = (self.actor(batch["obs"])[0].argmax(-1) == batch["actions"]).float().mean()
            return loss, {"bc": loss.detach(), "accuracy": accuracy}
        mean, log_std = self.actor(batch["obs"])
        mse = (mean.detach() - self.actor.unit_actions(batch["actions"])).square().sum(-1).mean()
        if not self.gaussian:
            return loss, {"bc": loss.detach(), "mse": mse}
        return loss, {"bc": loss.detach(), "mse": mse, "log_std": log_std.detach().mean()}

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        loss, info = self.loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.updates_done += 1
        return info

    def state_dict(self) -> dict:
        return {
            "actor": self.actor.state_dict(),  # with the observation statistics
            "optimizer": self.optimizer.state_dict(),
            "updates_done": self.updates_done,
        }

    def load_state_dict(self, state: dict) -> None:
        self.actor.load_state_dict(state["actor"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates_done = int(state["updates_done"])
