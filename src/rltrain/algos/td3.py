"""Deterministic actor-critic for continuous actions: DDPG (Lillicrap et al., 2016) and TD3 (Fujimoto et al., 2018).

Critic:  y = r + gamma * (1 - terminated) * min_i Q_target_i(s', a'),   a' = clip(mu_target(s') + eps, -1, 1)
         DDPG: one critic, eps = 0.  TD3: two critics (clipped double Q), eps = clip(N(0, target_noise), +-noise_clip)
Actor:   L_mu = -E[Q_1(s, mu(s))], every `policy_delay` critic steps (TD3: 2, DDPG: 1); targets follow by Polyak.
Exploration: mu(s) + Gaussian noise (or Ornstein-Uhlenbeck noise with noise=ou), clipped to the action box.
Actions live in [-1, 1] inside the agent and are scaled to the env's box at the boundary.
"""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rltrain.networks import QEnsemble, adam, box_center_and_half_range, mlp, soft_update


class DeterministicActor(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int], activation: str):
        super().__init__()
        self.body = mlp(obs_dim, act_dim, hidden, activation, orthogonal=False)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.body(obs))


class DeterministicActorCritic:
    """DDPG with critics=1, policy_delay=1, target_noise=0; TD3 with critics=2, policy_delay=2, target_noise=0.2."""

    kind = "offpolicy"
    observation_spaces = (gym.spaces.Box,)
    action_spaces = (gym.spaces.Box,)

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        network: dict,
        device: torch.device,
        num_envs: int,
        critics: int = 2,
        actor_lr: float = 1e-3,
        critic_lr: float = 1e-3,
        gamma: float = 0.99,
        tau: float = 0.005,
        buffer_size: int = 1_000_000,
        batch_size: int = 256,
        learning_starts: int = 5000,
        train_every: int = 1,
        gradient_steps: int = 1,
        policy_delay: int = 2,
        noise: str = "gaussian",
        exploration_noise: float = 0.1,
        ou_theta: float = 0.15,
        target_noise: float = 0.2,
        noise_clip: float = 0.5,
    ):
        self.device = device
        obs_dim = int(np.prod(observation_space.shape))
        act_dim = int(action_space.shape[0])
        hidden, activation = list(network["hidden"]), network["activation"]
        self.actor = DeterministicActor(obs_dim, act_dim, hidden, activation).to(device)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critics = QEnsemble(critics, obs_dim, act_dim, hidden, activation).to(device)
        self.critics_target = copy.deepcopy(self.critics).requires_grad_(False)
        self.actor_optimizer = adam(self.actor.parameters(), actor_lr)
        self.critic_optimizer = adam(self.critics.parameters(), critic_lr)

        self.action_center, self.action_half_range = box_center_and_half_range(action_space, device)
        if noise not in ("gaussian", "ou"):
            from rltrain.errors import RltrainError

            raise RltrainError(f"algo.noise={noise} is unknown; pick gaussian or ou.")
        self.noise, self.exploration_noise, self.ou_theta = noise, exploration_noise, ou_theta
        self.ou_state = torch.zeros(num_envs, act_dim, device=device)  # one noise process per env

        self.gamma, self.tau, self.policy_delay = gamma, tau, policy_delay
        self.target_noise, self.noise_clip = target_noise, noise_clip
        # replay schedule, read by the off-policy loop
        self.buffer_size, self.batch_size = buffer_size, batch_size
        self.learning_starts, self.train_every, self.gradient_steps = learning_starts, train_every, gradient_steps
        self.n_step = 1
        self.updates_done = 0

    @torch.no_grad()
    def act(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        action = self.actor(obs)
        if explore:
            if self.noise == "ou":  # temporally correlated: dx = -theta * x + sigma * N(0, 1)
                self.ou_state += -self.ou_theta * self.ou_state + self.exploration_noise * torch.randn_like(action)
                action = action + self.ou_state[: action.shape[0]]
            else:
                action = action + self.exploration_noise * torch.randn_like(action)
            action = action.clamp(-1.0, 1.0)
        return self.action_center + self.action_half_range * action

    def critic_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Squared TD error summed over critics, against the smoothed, clipped double-Q target; the mean Q value."""
        actions = (batch["actions"] - self.action_center) / self.action_half_range
        with torch.no_grad():
            next_actions = self.actor_target(batch["next_obs"])
            if self.target_noise > 0:
                smoothing = torch.randn_like(next_actions) * self.target_noise
                smoothing = smoothing.clamp(-self.noise_clip, self.noise_clip)
                next_actions = (next_actions + smoothing).clamp(-1.0, 1.0)
            next_q = self.critics_target(batch["next_obs"], next_actions).min(0).values
            target = batch["rewards"] + self.gamma * (1.0 - batch["terminated"]) * next_q
        q = self.critics(batch["obs"], actions)
        return (q - target).square().mean(1).sum(), {"q_mean": q.detach().mean()}

    def actor_loss(self, obs: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """-Q_1(s, mu(s)); the critics' parameters are held fixed so no gradient reaches them."""
        frozen = {name: p.detach() for name, p in self.critics.named_parameters()}
        return -torch.func.functional_call(self.critics, frozen, (obs, self.actor(obs)))[0].mean(), {}

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        critic_loss, info = self.critic_loss(batch)
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()
        metrics = {"critic": critic_loss.detach(), **info}
        self.updates_done += 1
        if self.updates_done % self.policy_delay == 0:
            actor_loss, _ = self.actor_loss(batch["obs"])
            self.actor_optimizer.zero_grad(set_to_none=True)
            actor_loss.backward()
            self.actor_optimizer.step()
            soft_update(self.actor_target, self.actor, self.tau)
            soft_update(self.critics_target, self.critics, self.tau)
            metrics["actor"] = actor_loss.detach()
        return metrics

    def state_dict(self) -> dict:
        return {
            "actor": self.actor.state_dict(),
            "actor_target": self.actor_target.state_dict(),
            "critics": self.critics.state_dict(),
            "critics_target": self.critics_target.state_dict(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "ou_state": self.ou_state.clone(),
            "updates_done": self.updates_done,
        }

    def load_state_dict(self, state: dict) -> None:
        for name in ("actor", "actor_target", "critics", "critics_target", "actor_optimizer", "critic_optimizer"):
            getattr(self, name).load_state_dict(state[name])
        self.ou_state = state["ou_state"].to(self.device)
        self.updates_done = int(state["updates_done"])
