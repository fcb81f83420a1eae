"""Deep Q-Network (Mnih et al., 2015); with double=true, Double DQN (van Hasselt et al., 2016); with dueling=true,
a dueling head (Wang et al., 2016), combinable with double.

Target:  y = r + gamma * (1 - terminated) * Q_target(s', a*)    (n_step > 1: the n-step return and gamma^n)
         a* = argmax_a Q_target(s', a)          (DQN)
         a* = argmax_a Q_online(s', a)          (Double DQN: the online net picks, the target net scores)
Loss:    Huber(Q_online(s, a) - y), or the squared error with huber=false.
Behaviour: epsilon-greedy, epsilon decaying linearly.
layer_norm=true normalizes the Q network's hidden layers (networks.QNetwork), against Q estimates that diverge.
"""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from rltrain.networks import QNetwork, adam, soft_update
from rltrain.policies import anneal_learning_rate


class DQN:
    kind = "offpolicy"
    observation_spaces = (gym.spaces.Box,)
    action_spaces = (gym.spaces.Discrete,)

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        network: dict,
        device: torch.device,
        total_steps: int,
        lr: float = 1e-3,
        anneal_lr: bool = False,
        gamma: float = 0.99,
        n_step: int = 1,
        double: bool = False,
        dueling: bool = False,
        buffer_size: int = 50_000,
        batch_size: int = 128,
        learning_starts: int = 1000,
        train_every: int = 4,
        gradient_steps: int = 1,
        target_update_every: int = 500,
        tau: float = 1.0,
        eps_start: float = 1.0,
        eps_end: float = 0.05,
        eps_fraction: float = 0.2,
        max_grad_norm: float = 10.0,
        huber: bool = True,
        layer_norm: bool = False,
    ):
        obs_dim = int(np.prod(observation_space.shape))
        hidden, activation = list(network["hidden"]), network["activation"]
        q = QNetwork(obs_dim, int(action_space.n), hidden, activation, dueling, layer_norm=layer_norm).to(device)
        self.q_training = QTraining(
            q, lr, anneal_lr, total_steps, target_update_every, tau, eps_start, eps_end, eps_fraction, max_grad_norm
        )
        self.q, self.q_target = self.q_training.q, self.q_training.q_target
        self.gamma, self.n_step, self.double = gamma, n_step, double
        self.td_loss = F.smooth_l1_loss if huber else F.mse_loss
        # replay schedule, read by the off-policy loop
        self.buffer_size, self.batch_size = buffer_size, batch_size
        self.learning_starts, self.train_every, self.gradient_steps = learning_starts, train_every, gradient_steps

    def act(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        return self.q_training.act(obs, explore)

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Huber TD loss, and the mean Q(s, a) of the batch."""
        with torch.no_grad():
            next_q_target = self.q_target(batch["next_obs"])
            if self.double:
                next_actions = self.q(batch["next_obs"]).argmax(-1, keepdim=True)
            else:
                next_actions = next_q_target.argmax(-1, keepdim=True)
            next_value = next_q_target.gather(-1, next_actions).squeeze(-1)
            # n-step batches carry their own discount gamma^k * (1 - terminated)
            discount = batch["discounts"] if "discounts" in batch else self.gamma * (1.0 - batch["terminated"])
            target = batch["rewards"] + discount * next_value
        q_taken = self.q(batch["obs"]).gather(-1, batch["actions"].long().unsqueeze(-1)).squeeze(-1)
        return self.td_loss(q_taken, target), {"q_mean": q_taken.detach().mean()}

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        loss, info = self.loss(batch)
        self.q_training.step(loss)
        return {"td": loss.detach(), **info, "epsilon": self.q_training.epsilon()}

    def state_dict(self) -> dict:
        return self.q_training.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.q_training.load_state_dict(state)


class QTraining:
    """What DQN and C51 share besides their loss: epsilon-greedy acting on Q with a linearly decaying epsilon, the
    gradient step (norm clipping, optional linear learning-rate decay), the target network's hard or Polyak
    updates, and the checkpoint of all that. Each algorithm holds one; there is no base class."""

    def __init__(
        self,
        q: QNetwork,
        lr: float,
        anneal_lr: bool,
        total_steps: int,
        target_update_every: int,
        tau: float,
        eps_start: float,
        eps_end: float,
        eps_fraction: float,
        max_grad_norm: float,
    ):
        self.q = q
        self.q_target = copy.deepcopy(q).requires_grad_(False)
        self.optimizer = adam(q.parameters(), lr)
        self.lr, self.anneal_lr, self.total_steps = lr, anneal_lr, total_steps
        self.target_update_every, self.tau, self.max_grad_norm = target_update_every, tau, max_grad_norm
        self.eps_start, self.eps_end, self.eps_decay_steps = eps_start, eps_end, max(1, eps_fraction * total_steps)
        self.env_steps = 0  # exploring steps taken, drives the epsilon schedule
        self.updates_done = 0

    def epsilon(self) -> float:
        fraction = min(1.0, self.env_steps / self.eps_decay_steps)
        return self.eps_start + fraction * (self.eps_end - self.eps_start)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        greedy = self.q(obs).argmax(-1)
        if not explore:
            return greedy
        n = obs.shape[0]
        random_actions = torch.randint(0, self.q.num_actions, (n,), device=obs.device)
        take_random = torch.rand(n, device=obs.device) < self.epsilon()
        self.env_steps += n
        return torch.where(take_random, random_actions, greedy)

    def step(self, loss: torch.Tensor) -> None:
        """One gradient step on `loss`, then the target network's update when it is due."""
        if self.anneal_lr:
            anneal_learning_rate(self.optimizer, self.lr, self.env_steps / self.total_steps)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.q.parameters(), self.max_grad_norm)
        self.optimizer.step()
        self.updates_done += 1
        if self.tau < 1.0:
            soft_update(self.q_target, self.q, self.tau)
        elif self.updates_done % self.target_update_every == 0:
            self.q_target.load_state_dict(self.q.state_dict())

    def state_dict(self) -> dict:
        return {
            "q": self.q.state_dict(),
            "q_target": self.q_target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "env_steps": self.env_steps,
            "updates_done": self.updates_done,
        }

    def load_state_dict(self, state: dict) -> None:
        self.q.load_state_dict(state["q"])
        self.q_target.load_state_dict(state["q_target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.env_steps = int(state["env_steps"])
        self.updates_done = int(state["updates_done"])
