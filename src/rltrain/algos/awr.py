"""Advantage-weighted regression (Peng, Kumar, Zhang and Levine, 2019), offline: V and the policy learn from the
returns of the dataset's own episodes.

Every refresh_every updates, on every transition t of the dataset, with V as it is then:
Returns:     G_t = r_t + gamma * (1 - d_t) * ((1 - lambda_t) * V(s'_t) + lambda_t * G_{t+1}),
             lambda_t = td_lambda, except at an episode's last step where lambda_t = 0: a terminated end (d = 1)
             adds nothing after r, a truncated one (time limit, or the end of a recorded stretch) bootstraps with
             V(s'). td_lambda = 1 gives Monte-Carlo returns (bootstrapped at truncations only).
Advantages:  A_t = G_t - V(s_t),   A~_t = (A_t - mean(A)) / (std(A) + 1e-5)   over the whole dataset
Weights:     w_t = min(exp(A~_t / beta), max_weight)
Then on each minibatch {t}:
Value:       L_V = 0.5 * E[((G_t - V(s_t)) * (1 - gamma))^2]   (V's net outputs V * (1 - gamma): the reference
             normalizes values by 1 / (1 - gamma))
Policy:      L_pi = -E[w_t * log pi(a_t|s_t)]   (networks.RegressionPolicy: deterministic is a fixed-std Gaussian)
"""

from __future__ import annotations

import gymnasium as gym
import torch

from rltrain.errors import RltrainError
from rltrain.networks import RegressionPolicy, adam, mlp

ADVANTAGE_EPS = 1e-5
CHUNK = 65536  # transitions per forward pass when V is evaluated on the whole dataset


def episode_grid(episode: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """[episodes, longest] index of each episode's transitions in order (episodes back to back), -1 as padding."""
    starts = torch.cumsum(lengths, 0) - lengths
    position = torch.arange(episode.shape[0], device=episode.device) - starts[episode]
    grid = torch.full((lengths.shape[0], int(lengths.max())), -1, dtype=torch.long, device=episode.device)
    grid[episode, position] = torch.arange(episode.shape[0], device=episode.device)
    return grid


def lambda_returns(
    rewards: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    grid: torch.Tensor,
    gamma: float,
    td_lambda: float,
) -> torch.Tensor:
    """G_t of the module docstring for every transition, all episodes at once, from their last step backwards.
    next_values[t] = V(s'_t); grid from episode_grid()."""
    returns = torch.zeros_like(rewards)
    later = torch.zeros(grid.shape[0], device=rewards.device)  # G_{t+1} of each episode
    lam = torch.zeros(grid.shape[0], device=rewards.device)  # lambda_t: 0 at each episode's last step
    for step in reversed(range(grid.shape[1])):
        rows = grid[:, step] >= 0
        t = grid[rows, step]
        g = rewards[t] + gamma * (1.0 - terminated[t]) * ((1.0 - lam[rows]) * next_values[t] + lam[rows] * later[rows])
        returns[t] = g
        later[rows] = g
        lam[rows] = td_lambda
    return returns


class AWR:
    kind = "offline"
    observation_spaces = (gym.spaces.Box,)
    action_spaces = (gym.spaces.Box, gym.spaces.Discrete)
    needs_dataset = True

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        network: dict,
        device: torch.device,
        dataset=None,
        gamma: float = 0.99,
        td_lambda: float = 0.95,
        beta: float = 1.0,
        max_weight: float = 20.0,
        refresh_every: int = 200,
        actor_lr: float = 1e-4,
        value_lr: float = 1e-3,
        batch_size: int = 256,
        policy: str = "deterministic",
        normalize_obs: bool = True,
    ):
        if not 0 <= td_lambda <= 1:
            raise RltrainError(f"algo.td_lambda={td_lambda} must be in [0, 1].")
        if beta <= 0 or refresh_every < 1:
            raise RltrainError(f"algo.beta={beta} must be > 0 and algo.refresh_every={refresh_every} at least 1.")
        self.device = device
        hidden, activation = list(network["hidden"]), network["activation"]
        statistics_of = dataset.obs if normalize_obs and dataset is not None else None  # else from a checkpoint
        self.actor = RegressionPolicy(observation_space, action_space, hidden, activation, policy, statistics_of)
        self.actor.to(device)
        self.value = mlp(self.actor.obs_mean.shape[0], 1, hidden, activation).to(device)
        self.actor_optimizer = adam(self.actor.parameters(), actor_lr)
        self.value_optimizer = adam(self.value.parameters(), value_lr)
        self.gamma, self.td_lambda, self.beta, self.max_weight = gamma, td_lambda, beta, max_weight
        self.refresh_every = refresh_every
        self.dataset = dataset
        self.grid = None if dataset is None else episode_grid(dataset.episode, dataset.episode_lengths)
        # G_t and w_t of every transition, recomputed every refresh_every updates (and first after a resume)
        self.returns: torch.Tensor | None = None
        self.weights: torch.Tensor | None = None
        self.refresh_info: dict[str, torch.Tensor] = {}
        # read by the offline loop
        self.batch_size, self.transitions = batch_size, None
        self.updates_done = 0

    def act(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        return self.actor.act(obs, explore)

    def v(self, obs: torch.Tensor) -> torch.Tensor:
        return self.value(self.actor.normalize(obs)).squeeze(-1) / (1.0 - self.gamma)

    @torch.no_grad()
    def refresh(self) -> None:
        """Returns, advantages and weights of the whole dataset under the current V."""
        data = self.dataset
        values = torch.cat([self.v(chunk) for chunk in data.obs.split(CHUNK)])
        next_values = torch.cat([self.v(chunk) for chunk in data.next_obs.split(CHUNK)])
        self.returns = lambda_returns(data.rewards, next_values, data.terminated, self.grid, self.gamma, self.td_lambda)
        advantages = self.returns - values
        normalized = (advantages - advantages.mean()) / (advantages.std() + ADVANTAGE_EPS)
        self.weights = torch.exp(normalized / self.beta).clamp(max=self.max_weight)
        self.refresh_info = {
            "advantage_mean": advantages.mean(),
            "advantage_std": advantages.std(),
            "weight_mean": self.weights.mean(),
            "weight_max": self.weights.max(),
            "weight_clipped_fraction": (self.weights >= self.max_weight).float().mean(),
            "return_mean": self.returns.mean(),
        }

    def value_loss(self, obs: torch.Tensor, returns: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """V regressed on the dataset's lambda-returns, in units of 1 / (1 - gamma)."""
        v = self.v(obs)
        loss = 0.5 * ((returns - v) * (1.0 - self.gamma)).square().mean()
        return loss, {"v_mean": v.detach().mean()}

    def actor_loss(
        self, obs: torch.Tensor, actions: torch.Tensor, weights: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Advantage-weighted log-likelihood of the dataset's actions."""
        return -(weights * self.actor.log_likelihood(obs, actions)).mean(), {}

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.dataset is None:
            raise RltrainError("algo=awr learns from its dataset's episodes; build it with dataset=<minari id>.")
        if self.returns is None or self.updates_done % self.refresh_every == 0:
            self.refresh()
        index = batch["index"]
        value_loss, info = self.value_loss(batch["obs"], self.returns[index])
        self.value_optimizer.zero_grad(set_to_none=True)
        value_loss.backward()
        self.value_optimizer.step()
        actor_loss, _ = self.actor_loss(batch["obs"], batch["actions"], self.weights[index])
        self.actor_optimizer.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_optimizer.step()
        self.updates_done += 1
        return {"value": value_loss.detach(), "actor": actor_loss.detach(), **info, **self.refresh_info}

    def state_dict(self) -> dict:
        return {
            "actor": self.actor.state_dict(),  # with the observation statistics
            "value": self.value.state_dict(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "value_optimizer": self.value_optimizer.state_dict(),
            "updates_done": self.updates_done,
        }

    def load_state_dict(self, state: dict) -> None:
        self.actor.load_state_dict(state["actor"])
        self.value.load_state_dict(state["value"])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.value_optimizer.load_state_dict(state["value_optimizer"])
        self.updates_done = int(state["updates_done"])
        self.returns = self.weights = None  # recomputed with the loaded V at the next update
