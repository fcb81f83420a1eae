"""Implicit Q-learning (Kostrikov, Nair and Levine, 2021): Q-learning that never evaluates Q on an action outside
the dataset, and a policy extracted from it by advantage-weighted regression.

On a minibatch {(s, a, r, s', d)} of the dataset (d: terminated; a truncated end is bootstrapped like any step):
Value:   u = min_i Q_target_i(s, a) - V(s),    L_V = E[|expectile - 1(u < 0)| * u^2]
         (V(s) tends to the `expectile` of Q(s, a) over the dataset's actions: 0.5 the mean, -> 1 their max)
Critic:  y = c r + gamma * (1 - d) * V(s'),     L_Q = mean_i E[(Q_i(s, a) - y)^2]
Policy:  w = min(exp(beta * u), max_weight),     L_pi = -E[w * log pi(a|s)]
Targets: Q_target <- (1 - tau) Q_target + tau Q after every update. u, y and w use V and Q_target from before
this update's steps, as the reference implementation does. The actor's learning rate falls from actor_lr to 0
along a cosine over the run.
Rewards: c = 1, or with normalize_rewards (as CORL does on D4RL locomotion) c = longest episode / (highest -
lowest episode return) of the dataset, so that returns span about one unit per step and beta means the same on
any reward scale (Q, V and u are then in those units).
log pi(a|s) is networks.RegressionPolicy's: Gaussian, deterministic (MSE) or categorical. Q takes the observation
standardized with the dataset's statistics and the action scaled to [-1, 1] (one-hot for Discrete actions).
layer_norm puts a LayerNorm before each hidden activation of Q and V (ReBRAC's critics have one per layer): their
last features then have a fixed norm, so neither can grow without bound on states and actions the data does not
cover. actor_dropout drops that fraction of the actor's hidden activations in L_pi (the paper's setting on its
smallest datasets, Adroit and Kitchen: 0.1), so that no few transitions with large weights decide the policy alone.
"""

from __future__ import annotations

import copy

import gymnasium as gym
import torch

from rltrain.errors import RltrainError
from rltrain.networks import QEnsemble, RegressionPolicy, adam, mlp, soft_update
from rltrain.policies import cosine_learning_rate


def expectile_loss(diff: torch.Tensor, expectile: float) -> torch.Tensor:
    """E[|expectile - 1(diff < 0)| * diff^2]: an asymmetric square, weighting positive differences by expectile."""
    return ((expectile - (diff < 0).float()).abs() * diff.square()).mean()


class IQL:
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
        expectile: float = 0.7,
        beta: float = 3.0,
        max_weight: float = 100.0,
        gamma: float = 0.99,
        tau: float = 0.005,
        actor_lr: float = 3e-4,
        critic_lr: float = 3e-4,
        value_lr: float = 3e-4,
        cosine_actor_lr: bool = True,
        batch_size: int = 256,
        policy: str = "gaussian",
        normalize_obs: bool = True,
        normalize_rewards: bool = True,
        layer_norm: bool = False,
        actor_dropout: float = 0.0,
    ):
        if not 0 < expectile < 1:
            raise RltrainError(f"algo.expectile={expectile} must be in (0, 1).")
        self.device = device
        hidden, activation = list(network["hidden"]), network["activation"]
        statistics_of = dataset.obs if normalize_obs and dataset is not None else None  # else from a checkpoint
        self.actor = RegressionPolicy(
            observation_space, action_space, hidden, activation, policy, statistics_of, actor_dropout
        )
        self.actor.to(device)
        self.reward_scale = 1.0  # c of the docstring
        if normalize_rewards and dataset is not None:
            spread = float(dataset.episode_returns.max() - dataset.episode_returns.min())
            self.reward_scale = float(dataset.episode_lengths.max()) / spread if spread > 0 else 1.0
        obs_dim = self.actor.obs_mean.shape[0]
        self.critics = QEnsemble(2, obs_dim, self.actor.act_dim, hidden, activation, layer_norm).to(device)
        self.critics_target = copy.deepcopy(self.critics).requires_grad_(False)
        self.value = mlp(obs_dim, 1, hidden, activation, layer_norm=layer_norm).to(device)
        self.actor_optimizer = adam(self.actor.parameters(), actor_lr)
        self.critic_optimizer = adam(self.critics.parameters(), critic_lr)
        self.value_optimizer = adam(self.value.parameters(), value_lr)
        self.actor_lr, self.cosine_actor_lr, self.total_steps = actor_lr, cosine_actor_lr, max(total_steps, 1)
        self.expectile, self.beta, self.max_weight = expectile, beta, max_weight
        self.gamma, self.tau = gamma, tau
        # read by the offline loop
        self.batch_size, self.transitions = batch_size, None
        self.updates_done = 0

    def act(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        return self.actor.act(obs, explore)

    def v(self, obs: torch.Tensor) -> torch.Tensor:
        return self.value(self.actor.normalize(obs)).squeeze(-1)

    def q_target(self, obs: torch.Tensor, unit_actions: torch.Tensor) -> torch.Tensor:
        return self.critics_target(self.actor.normalize(obs), unit_actions).min(0).values

    def value_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Expectile regression of V(s) on min_i Q_target_i(s, a); the info keeps u = Q_target - V for the policy."""
        with torch.no_grad():
            q = self.q_target(batch["obs"], self.actor.unit_actions(batch["actions"]))
        v = self.v(batch["obs"])
        u = q - v
        return expectile_loss(u, self.expectile), {"v_mean": v.detach().mean(), "advantage": u.detach()}

    def critic_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Twin Q regressed on c r + gamma (1 - d) V(s'); no gradient reaches V."""
        with torch.no_grad():
            next_value = (1.0 - batch["terminated"]) * self.v(batch["next_obs"])
            target = self.reward_scale * batch["rewards"] + self.gamma * next_value
        q = self.critics(self.actor.normalize(batch["obs"]), self.actor.unit_actions(batch["actions"]))
        return (q - target).square().mean(), {"q_data": q.detach().min(0).values.mean()}

    def actor_loss(
        self, batch: dict[str, torch.Tensor], advantage: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Advantage-weighted regression onto the dataset's actions, weights exp(beta * A) clipped at max_weight."""
        weights = torch.exp(self.beta * advantage.detach()).clamp(max=self.max_weight)
        loss = -(weights * self.actor.log_likelihood(batch["obs"], batch["actions"])).mean()
        return loss, {
            "weight_mean": weights.mean(),
            "weight_max": weights.max(),
            "weight_clipped_fraction": (weights >= self.max_weight).float().mean(),
        }

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        # the critic's target V(s') and the advantages come from V before its step (both read it first)
        critic_loss, critic_info = self.critic_loss(batch)
        value_loss, value_info = self.value_loss(batch)
        self.value_optimizer.zero_grad(set_to_none=True)
        value_loss.backward()
        self.value_optimizer.step()
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()
        soft_update(self.critics_target, self.critics, self.tau)

        advantage = value_info.pop("advantage")
        actor_loss, actor_info = self.actor_loss(batch, advantage)
        if self.cosine_actor_lr:
            cosine_learning_rate(self.actor_optimizer, self.actor_lr, self.updates_done / self.total_steps)
        self.actor_optimizer.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_optimizer.step()
        self.updates_done += 1

        with torch.no_grad():  # Q of the policy's own actions, next to Q of the dataset's
            q_policy = self.q_target(batch["obs"], self.actor.mode(batch["obs"])).mean()
        return {
            "value": value_loss.detach(),
            "critic": critic_loss.detach(),
            "actor": actor_loss.detach(),
            **critic_info,
            "q_policy": q_policy,
            **value_info,
            "advantage_mean": advantage.mean(),
            "advantage_std": advantage.std(),
            **actor_info,
            "actor_lr": torch.tensor(self.actor_optimizer.param_groups[0]["lr"]),
        }

    def state_dict(self) -> dict:
        return {
            "actor": self.actor.state_dict(),  # with the observation statistics
            "critics": self.critics.state_dict(),
            "critics_target": self.critics_target.state_dict(),
            "value": self.value.state_dict(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "value_optimizer": self.value_optimizer.state_dict(),
            "updates_done": self.updates_done,
        }

    def load_state_dict(self, state: dict) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critics.load_state_dict(state["critics"])
        self.critics_target.load_state_dict(state["critics_target"])
        self.value.load_state_dict(state["value"])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        self.value_optimizer.load_state_dict(state["value_optimizer"])
        self.updates_done = int(state["updates_done"])
