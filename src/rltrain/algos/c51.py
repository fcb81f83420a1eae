"""C51: categorical distributional DQN (Bellemare et al., 2017).

Q(s, a) is the mean of a categorical distribution Z(s, a) over `atoms` fixed return values z_1..z_K, evenly
spaced on [v_min, v_max]. The target distribution moves each atom of Z_target(s', a*) to r + gamma z_j (n-step:
the n-step return and gamma^n; nothing after a termination), clips it to [v_min, v_max], and splits its
probability between the two nearest atoms (project_distribution). The loss is the cross-entropy between that
projected target and Z(s, a). a* = argmax of the target's mean (of the online net's with double=true).
Acting, the epsilon schedule, the gradient step, target updates and checkpoints are DQN's (dqn.QTraining); only
the head and the loss differ.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from torch.nn import functional as F

from rltrain.algos.dqn import QTraining
from rltrain.errors import RltrainError
from rltrain.networks import QNetwork


def project_distribution(
    next_probs: torch.Tensor, rewards: torch.Tensor, discounts: torch.Tensor, support: torch.Tensor
) -> torch.Tensor:
    """Project the distribution of r + discount * Z (Z: probabilities [B, K] on `support` [K]) back onto `support`."""
    v_min, v_max, atoms = support[0], support[-1], support.numel()
    spacing = (v_max - v_min) / (atoms - 1)
    moved = (rewards.unsqueeze(-1) + discounts.unsqueeze(-1) * support).clamp(v_min, v_max)
    position = (moved - v_min) / spacing  # fractional atom index in [0, K - 1]
    lower, upper = position.floor().long(), position.ceil().long()
    # mass to the lower atom in proportion to the distance to the upper one, and vice versa; an exact hit
    # (lower == upper) keeps all of it on that atom
    upper_weight = position - lower
    lower_weight = 1.0 - upper_weight
    projected = torch.zeros_like(next_probs)
    projected.scatter_add_(-1, lower, next_probs * lower_weight)
    projected.scatter_add_(-1, upper, next_probs * upper_weight)
    return projected


class C51:
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
        atoms: int = 51,
        v_min: float = -10.0,
        v_max: float = 10.0,
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
        layer_norm: bool = False,
    ):
        if atoms < 2 or v_min >= v_max:
            raise RltrainError(
                f"algo.atoms={atoms}, v_min={v_min}, v_max={v_max}: C51 needs atoms >= 2 and v_min < v_max."
            )
        self.device = device
        obs_dim = int(np.prod(observation_space.shape))
        self.support = torch.linspace(v_min, v_max, atoms, device=device)
        hidden, activation = list(network["hidden"]), network["activation"]
        q = QNetwork(obs_dim, int(action_space.n), hidden, activation, dueling, self.support, layer_norm).to(device)
        self.q_training = QTraining(
            q, lr, anneal_lr, total_steps, target_update_every, tau, eps_start, eps_end, eps_fraction, max_grad_norm
        )
        self.q, self.q_target = self.q_training.q, self.q_training.q_target
        self.gamma, self.n_step, self.double = gamma, n_step, double
        # replay schedule, read by the off-policy loop
        self.buffer_size, self.batch_size = buffer_size, batch_size
        self.learning_starts, self.train_every, self.gradient_steps = learning_starts, train_every, gradient_steps

    def act(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        return self.q_training.act(obs, explore)

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Cross-entropy to the projected target distribution, and the mean Q(s, a) of the batch."""
        rows = torch.arange(batch["obs"].shape[0], device=self.device)
        with torch.no_grad():
            next_probs = self.q_target.logits(batch["next_obs"]).softmax(-1)  # [B, A, K]
            chooser = self.q(batch["next_obs"]) if self.double else (next_probs * self.support).sum(-1)
            next_dist = next_probs[rows, chooser.argmax(-1)]
            discount = batch["discounts"] if "discounts" in batch else self.gamma * (1.0 - batch["terminated"])
            target = project_distribution(next_dist, batch["rewards"], discount, self.support)
        logits = self.q.logits(batch["obs"])[rows, batch["actions"].long()]  # [B, K]
        log_probs = F.log_softmax(logits, -1)
        q_taken = (log_probs.detach().exp() * self.support).sum(-1)
        return -(target * log_probs).sum(-1).mean(), {"q_mean": q_taken.mean()}

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        loss, info = self.loss(batch)
        self.q_training.step(loss)
        return {"td": loss.detach(), **info, "epsilon": self.q_training.epsilon()}

    def state_dict(self) -> dict:
        return self.q_training.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.q_training.load_state_dict(state)
