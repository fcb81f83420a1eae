"""Conservative Q-learning (Kumar et al., 2020): offline Q-learning that pushes Q down on actions the dataset does not
take and up on the ones it does, so the policy cannot exploit over-estimated, never-seen actions.

Both variants add to the critic's TD loss, per critic i, the gap
    gap_i = E_s[ T * log sum_a exp(Q_i(s, a) / T) ] - E_(s,a)~D[ Q_i(s, a) ]             (CQL(H))
weighted by  w = cql_alpha  (lagrange=false), or  w = cql_alpha * alpha'  with alpha' >= 0 learned by
    L_alpha' = -alpha' * cql_alpha * (mean_i gap_i - target_gap)                          (lagrange=true)
so that alpha' grows while the gap exceeds target_gap and shrinks to 0 below it.

Box actions (SAC-based, as CORL's cql.py): the integral over actions is estimated by importance sampling from
n_actions samples of each of three proposals, a ~ U[-1, 1]^d (log density -d log 2), a ~ pi(.|s) and a ~ pi(.|s'):
    log sum_a exp(Q_i(s, a)) ~= logsumexp_k (Q_i(s, a_k) - log mu(a_k))      over the 3 n_actions samples a_k ~ mu
(the constant -log(3 n_actions) is left out, as the reference implementations do). The TD target is SAC's without
its entropy term (backup_entropy=false, as in the paper's code):
    y = r + gamma (1 - terminated) min_i Q_target_i(s', a'),  a' ~ pi(.|s').
The actor and the temperature learn as in SAC (algos/sac.py, whose networks and steps this reuses).

Discrete actions (CQL on the DQN family, algos/dqn.py): the log-sum-exp is exact over the actions,
    gap = E[ logsumexp_a Q(s, a) - Q(s, a_data) ],  added to DQN's TD loss (Double DQN's target with double=true).
Observations are standardized with the dataset's mean and std.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch

from rltrain.algos.dqn import DQN
from rltrain.algos.sac import SAC
from rltrain.networks import Standardizer, adam


def logsumexp_gap(
    q_data: torch.Tensor, q_sampled: torch.Tensor, log_density: torch.Tensor | float, temperature: float = 1.0
) -> torch.Tensor:
    """T * logsumexp_k((Q(s, a_k) - log mu(a_k)) / T) - Q(s, a_data) per state: the CQL(H) gap.
    q_data [..., batch]; q_sampled [..., batch, k] (every action for discrete CQL, with log_density 0)."""
    soft_max = temperature * torch.logsumexp((q_sampled - log_density) / temperature, dim=-1)
    return soft_max - q_data


class CQL:
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
        total_steps: int,
        dataset=None,
        cql_alpha: float = 10.0,
        lagrange: bool = False,
        target_gap: float = 0.8,
        n_actions: int = 10,
        temperature: float = 1.0,
        backup_entropy: bool = False,
        actor_lr: float = 3e-5,
        critic_lr: float = 3e-4,
        alpha_lr: float = 3e-5,
        gamma: float = 0.99,
        tau: float = 5e-3,
        batch_size: int = 256,
        init_alpha: float = 1.0,
        target_entropy: float | None = None,
        double: bool = True,
        dueling: bool = False,
        huber: bool = True,
        max_grad_norm: float = 10.0,
        normalize_obs: bool = True,
    ):
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        obs_dim = int(np.prod(observation_space.shape))
        self.normalize = Standardizer(obs_dim, dataset.obs if normalize_obs and dataset is not None else None).to(
            device
        )
        if self.discrete:
            # no exploration offline: epsilon stays 0; tau < 1 gives Polyak target updates after every step
            self.dqn = DQN(
                observation_space, action_space, network, device, total_steps, lr=critic_lr, gamma=gamma,
                double=double, dueling=dueling, tau=tau, eps_start=0.0, eps_end=0.0, max_grad_norm=max_grad_norm,
                huber=huber,
            )  # fmt: skip
        else:
            self.sac = SAC(
                observation_space, action_space, network, device, actor_lr=actor_lr, critic_lr=critic_lr,
                alpha_lr=alpha_lr, gamma=gamma, tau=tau, init_alpha=init_alpha, target_entropy=target_entropy,
            )  # fmt: skip
            self.act_dim = int(action_space.shape[0])
        self.cql_alpha, self.lagrange, self.target_gap = cql_alpha, lagrange, target_gap
        self.n_actions, self.temperature, self.backup_entropy = n_actions, temperature, backup_entropy
        self.gamma = gamma
        # alpha' of the Lagrange variant, starting at 1 (the weight starts at cql_alpha)
        self.log_alpha_prime = torch.zeros((), device=device, requires_grad=True)
        self.alpha_prime_optimizer = adam([self.log_alpha_prime], critic_lr)
        # read by the offline loop
        self.batch_size = batch_size
        self.transitions = None

    @torch.no_grad()
    def act(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        learner = self.dqn if self.discrete else self.sac
        return learner.act(self.normalize(obs), explore)

    def penalty_weight(self) -> torch.Tensor | float:
        if not self.lagrange:
            return self.cql_alpha
        return self.cql_alpha * self.log_alpha_prime.detach().exp().clamp(0.0, 1e6)

    def critic_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """TD loss + w * sum_i gap_i; the info holds the parts, Q on the dataset's actions and the gaps [critics]
        (and, for discrete actions, Q of the greedy policy's actions)."""
        info = {}
        if self.discrete:
            td, _ = self.dqn.loss(batch)
            q_all = self.dqn.q(batch["obs"])
            q_data = q_all.gather(-1, batch["actions"].long().unsqueeze(-1)).squeeze(-1)
            gaps = logsumexp_gap(q_data, q_all, 0.0).mean().unsqueeze(0)
            info["q_policy"] = q_all.detach().max(-1).values.mean()
        else:
            td, q_data, gaps = self._box_td_and_gaps(batch)
        weight = self.penalty_weight()
        loss = td + weight * gaps.sum()
        info |= {"td": td.detach(), "cql_gap": gaps.detach().mean(), "q_data": q_data.detach().mean()}
        info["cql_weight"] = torch.as_tensor(weight)
        return loss, {**info, "gaps": gaps.detach()}

    def _box_td_and_gaps(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        sac = self.sac
        obs, next_obs = batch["obs"], batch["next_obs"]
        actions = (batch["actions"] - sac.action_center) / sac.action_half_range
        with torch.no_grad():
            next_actions, next_log_prob = sac.actor.sample(next_obs)
            next_value = sac.critics_target(next_obs, next_actions).min(0).values
            if self.backup_entropy:
                next_value = next_value - sac.log_alpha.exp() * next_log_prob
            target = batch["rewards"] + self.gamma * (1.0 - batch["terminated"]) * next_value
        q_data = sac.critics(obs, actions)  # [critics, batch]
        td = (q_data - target).square().mean(1).sum()

        # n_actions samples per state from each proposal, laid out [proposal, batch, k]; no gradient reaches the actor
        batch_size, k = obs.shape[0], self.n_actions
        with torch.no_grad():
            random_actions = torch.rand(batch_size * k, self.act_dim, device=obs.device) * 2 - 1
            current_actions, current_log_prob = sac.actor.sample(obs.repeat_interleave(k, 0))
            next_state_actions, next_state_log_prob = sac.actor.sample(next_obs.repeat_interleave(k, 0))
        sampled = torch.stack([random_actions, current_actions, next_state_actions])
        log_density = torch.stack(
            [torch.full_like(current_log_prob, -self.act_dim * math.log(2.0)), current_log_prob, next_state_log_prob]
        )
        # Q(s, a_k) of every sample at the state s it belongs to: [critics, batch, 3 k]
        repeated_obs = obs.repeat_interleave(k, 0).expand(3, -1, -1)
        q_sampled = sac.critics(repeated_obs.reshape(-1, obs.shape[-1]), sampled.reshape(-1, self.act_dim))
        q_sampled = q_sampled.view(-1, 3, batch_size, k).permute(0, 2, 1, 3).reshape(-1, batch_size, 3 * k)
        log_density = log_density.view(3, batch_size, k).permute(1, 0, 2).reshape(batch_size, 3 * k)
        gaps = logsumexp_gap(q_data, q_sampled, log_density, self.temperature).mean(1)
        return td, q_data, gaps

    def lagrange_loss(self, gaps: torch.Tensor) -> torch.Tensor:
        """alpha' rises while the mean gap exceeds target_gap (gaps carry no gradient to the critics here)."""
        alpha_prime = self.log_alpha_prime.exp().clamp(0.0, 1e6)
        return -(alpha_prime * self.cql_alpha * (gaps.mean() - self.target_gap))

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        batch = {**batch, "obs": self.normalize(batch["obs"]), "next_obs": self.normalize(batch["next_obs"])}
        loss, info = self.critic_loss(batch)
        gaps = info.pop("gaps")
        if self.lagrange:
            lagrange_loss = self.lagrange_loss(gaps)
            self.alpha_prime_optimizer.zero_grad(set_to_none=True)
            lagrange_loss.backward()
            self.alpha_prime_optimizer.step()
            info["lagrange"] = lagrange_loss.detach()
        if self.discrete:
            self.dqn.q_training.step(loss)
            return {"critic": loss.detach(), **info}
        return self.sac.step(batch["obs"], loss, info)

    def state_dict(self) -> dict:
        learner = self.dqn if self.discrete else self.sac
        return {
            "learner": learner.state_dict(),
            "normalize": self.normalize.state_dict(),
            "log_alpha_prime": self.log_alpha_prime.detach().clone(),
            "alpha_prime_optimizer": self.alpha_prime_optimizer.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        (self.dqn if self.discrete else self.sac).load_state_dict(state["learner"])
        self.normalize.load_state_dict(state["normalize"])
        with torch.no_grad():
            self.log_alpha_prime.copy_(state["log_alpha_prime"])
        self.alpha_prime_optimizer.load_state_dict(state["alpha_prime_optimizer"])
