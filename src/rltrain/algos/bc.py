"""Behaviour cloning: supervised learning of the demonstrator's action from its state (Pomerleau, 1991).

On a minibatch {(s, a)} of the dataset (optionally only its best `top_fraction` of episodes by return):
Discrete:       L = -E[log softmax(f(s))_a]                                     (cross-entropy)
Box, deterministic:  a_hat = tanh(f(s)),  L = E[||a_hat - a~||^2]                (MSE, tanh-bounded)
Box, gaussian:  mu = tanh(f_mu(s)),  sigma = exp(f_sigma(s)),
                L = E[sum_d 0.5 ((a~_d - mu_d) / sigma_d)^2 + log sigma_d + 0.5 log 2 pi]  (Gaussian NLL)
with a~ = (a - center) / half_range the action scaled to [-1, 1]; s is standardized with the dataset's mean and
std. Acting: argmax f(s), or center + half_range * mu (a sample of N(mu, sigma), clipped, when exploring).
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rltrain.errors import RltrainError
from rltrain.networks import adam, box_center_and_half_range, mlp

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
POLICIES = ("deterministic", "gaussian")


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
        if policy not in POLICIES:
            raise RltrainError(f"algo.policy={policy} is unknown; pick deterministic or gaussian.")
        if not 0 < top_fraction <= 1:
            raise RltrainError(f"algo.top_fraction={top_fraction} must be in (0, 1].")
        self.device = device
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        self.gaussian = policy == "gaussian" and not self.discrete
        obs_dim = int(np.prod(observation_space.shape))
        act_dim = int(action_space.n) if self.discrete else int(action_space.shape[0])
        out_dim = 2 * act_dim if self.gaussian else act_dim
        self.actor = mlp(obs_dim, out_dim, list(network["hidden"]), network["activation"]).to(device)
        self.optimizer = adam(self.actor.parameters(), lr)
        if not self.discrete:
            self.action_center, self.action_half_range = box_center_and_half_range(action_space, device)
        # the observation statistics of the dataset, fixed for the run and kept in checkpoints (an agent built
        # without its dataset, to act from a checkpoint, gets them from load_state_dict)
        self.obs_mean = torch.zeros(obs_dim, device=device)
        self.obs_std = torch.ones(obs_dim, device=device)
        if normalize_obs and dataset is not None:
            self.obs_mean = dataset.obs.mean(0)
            self.obs_std = dataset.obs.std(0).clamp_min(1e-6)
        # read by the offline loop: which transitions to learn from (None: all) and how many per update
        keep_some = dataset is not None and top_fraction < 1
        self.transitions = dataset.top_episodes(top_fraction) if keep_some else None
        self.batch_size = batch_size
        self.updates_done = 0

    def _outputs(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor((obs - self.obs_mean) / self.obs_std)

    def _mean_and_log_std(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self._outputs(obs)
        if not self.gaussian:
            return torch.tanh(out), torch.zeros_like(out)
        mean, log_std = out.chunk(2, dim=-1)
        return torch.tanh(mean), log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        if self.discrete:
            logits = self._outputs(obs)
            if explore:
                return torch.distributions.Categorical(logits=logits).sample()
            return logits.argmax(-1)
        mean, log_std = self._mean_and_log_std(obs)
        if explore and self.gaussian:
            mean = (mean + log_std.exp() * torch.randn_like(mean)).clamp(-1.0, 1.0)
        return self.action_center + self.action_half_range * mean

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The cloning loss of one minibatch and its parts."""
        if self.discrete:
            logits = self._outputs(batch["obs"])
            loss = nn.functional.cross_entropy(logits, batch["actions"])
            accuracy = (logits.argmax(-1) == batch["actions"]).float().mean()
            return loss, {"bc": loss.detach(), "accuracy": accuracy}
        target = ((batch["actions"] - self.action_center) / self.action_half_range).clamp(-1.0, 1.0)
        mean, log_std = self._mean_and_log_std(batch["obs"])
        mse = (mean - target).square().sum(-1).mean()
        if not self.gaussian:
            return mse, {"bc": mse.detach(), "mse": mse.detach()}
        nll = (0.5 * ((target - mean) / log_std.exp()).square() + log_std + 0.5 * math.log(2 * math.pi)).sum(-1)
        loss = nll.mean()
        return loss, {"bc": loss.detach(), "mse": mse.detach(), "log_std": log_std.detach().mean()}

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        loss, info = self.loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.updates_done += 1
        return info

    def state_dict(self) -> dict:
        return {
            "actor": self.actor.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "obs_mean": self.obs_mean.clone(),
            "obs_std": self.obs_std.clone(),
            "updates_done": self.updates_done,
        }

    def load_state_dict(self, state: dict) -> None:
        self.actor.load_state_dict(state["actor"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.obs_mean.copy_(state["obs_mean"])
        self.obs_std.copy_(state["obs_std"])
        self.updates_done = int(state["updates_done"])
