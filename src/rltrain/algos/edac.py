"""SAC-N and EDAC (An et al., 2021): offline SAC made pessimistic by an ensemble of N critics.

SAC-N is SAC (algos/sac.py, whose networks and steps this reuses) with N critics instead of two: the minimum over
a large ensemble is a lower confidence bound of Q, low where the critics disagree, that is away from the data.
    y   = r + gamma * (1 - terminated) * (min_i Q_target_i(s', a') - alpha * log pi(a'|s')),  a' ~ pi(.|s')
    L_Q = sum_i E[(Q_i(s, a) - y)^2]  +  eta * ES(s, a)
EDAC adds the ensemble similarity ES (eta > 0), so that far fewer critics suffice: it pushes apart the directions
in which the critics' values change with the action, at the dataset's (s, a),
    ES(s, a) = 1 / (N - 1) * sum_{i != j} cos(grad_a Q_i(s, a), grad_a Q_j(s, a)),
which makes the ensemble disagree, and the minimum fall, as soon as an action leaves the data. With a 1-dimensional
action (Pendulum) each direction is +1 or -1, so ES has no gradient and EDAC trains exactly as SAC-N: there only
the number of critics makes it pessimistic.
Actor and temperature: SAC's,  L_pi = E[alpha log pi(a~|s) - min_i Q_i(s, a~)].
Observations are standardized with the dataset's mean and std.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from rltrain.algos.sac import SAC
from rltrain.errors import RltrainError
from rltrain.networks import QEnsemble, Standardizer


def ensemble_similarity(critics: QEnsemble, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """ES: the mean over the batch of 1 / (N - 1) * sum over pairs i != j of cos(grad_a Q_i, grad_a Q_j), as a
    function of the critics' parameters (the graph is kept, so it can be minimized)."""
    members = critics.members
    # each critic gets its own copy of the actions, so that autograd gives grad_a Q_i separately for each i
    own_actions = actions.detach().unsqueeze(0).repeat(members, 1, 1).requires_grad_(True)
    q = critics(obs.unsqueeze(0).expand(members, -1, -1), own_actions)  # [N, batch]
    (grads,) = torch.autograd.grad(q.sum(), own_actions, create_graph=True)  # [N, batch, act_dim]
    directions = grads / (grads.norm(dim=-1, keepdim=True) + 1e-10)
    cosines = torch.einsum("ibd,jbd->bij", directions, directions)  # [batch, N, N], ones on the diagonal
    off_diagonal = cosines.sum((1, 2)) - cosines.diagonal(dim1=1, dim2=2).sum(-1)
    return (off_diagonal / (members - 1)).mean()


class EDAC:
    kind = "offline"
    observation_spaces = (gym.spaces.Box,)
    action_spaces = (gym.spaces.Box,)
    needs_dataset = True

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        network: dict,
        device: torch.device,
        dataset=None,
        critics: int = 10,
        eta: float = 1.0,
        actor_lr: float = 3e-4,
        critic_lr: float = 3e-4,
        alpha_lr: float = 3e-4,
        gamma: float = 0.99,
        tau: float = 5e-3,
        batch_size: int = 256,
        init_alpha: float = 1.0,
        target_entropy: float | None = None,
        normalize_obs: bool = True,
    ):
        if critics < 2 and eta > 0:
            raise RltrainError(
                f"algo.critics={critics}: the ensemble similarity (algo.eta > 0) needs 2 or more critics."
            )
        self.sac = SAC(
            observation_space, action_space, network, device, actor_lr=actor_lr, critic_lr=critic_lr,
            alpha_lr=alpha_lr, gamma=gamma, tau=tau, init_alpha=init_alpha, target_entropy=target_entropy,
            critics=critics,
        )  # fmt: skip
        obs_dim = int(np.prod(observation_space.shape))
        self.normalize = Standardizer(obs_dim, dataset.obs if normalize_obs and dataset is not None else None).to(
            device
        )
        self.eta = eta
        # read by the offline loop
        self.batch_size = batch_size
        self.transitions = None

    @torch.no_grad()
    def act(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        return self.sac.act(self.normalize(obs), explore)

    def critic_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """SAC's soft Bellman loss over the N critics (+ eta * ES for EDAC); Q on the dataset's actions."""
        td, info = self.sac.critic_loss(batch)
        info = {"td": td.detach(), "q_data": info["q_mean"]}
        if self.eta == 0:
            return td, info
        actions = (batch["actions"] - self.sac.action_center) / self.sac.action_half_range
        similarity = ensemble_similarity(self.sac.critics, batch["obs"], actions)
        return td + self.eta * similarity, {**info, "ensemble_similarity": similarity.detach()}

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        batch = {**batch, "obs": self.normalize(batch["obs"]), "next_obs": self.normalize(batch["next_obs"])}
        loss, info = self.critic_loss(batch)
        return self.sac.step(batch["obs"], loss, info)

    def state_dict(self) -> dict:
        return {"sac": self.sac.state_dict(), "normalize": self.normalize.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.sac.load_state_dict(state["sac"])
        self.normalize.load_state_dict(state["normalize"])
