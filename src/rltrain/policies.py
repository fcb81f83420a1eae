"""The stochastic policy and value function that the on-policy algorithms (PPO, A2C, TRPO, REINFORCE) share.

pi(a|s) is a Categorical over Discrete actions, or a diagonal Gaussian with a state-independent log std over Box
actions; the Gaussian is unbounded, so the env gets each sample clipped to its box while the learner keeps the
sample itself. Optional running normalization of observations and of rewards (by the std of the discounted
return) lives here too, because the rollout and the checkpoint must see the same statistics.

Generalized state-dependent exploration (gSDE, Raffin et al., 2022), for Box actions with gsde set (an int; None:
off): the rollout's noise is a linear function of the actor's last hidden features z(s) (detached),
    a = mu(s) + z(s) W,   W ~ N(0, sigma^2) of shape (features, action dims), one W per env,
with W = sigma * eps and eps ~ N(0, 1) drawn again every gsde env steps (gsde <= 0: at the start of each rollout),
so exploration is smooth in time instead of white noise. A gsde above the rollout length holds eps across rollouts
and updates (W follows the learned sigma), so one perturbed policy acts for that many steps. sigma = exp(log_std)
is learned per (feature, action dim); the learner sees
    pi(a|s) = N(mu(s), diag(z(s)^2 sigma^2)),
the distribution of a for a fresh W.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical, Normal

from rltrain.errors import RltrainError
from rltrain.networks import RunningNorm, mlp


class ActorCritic:
    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        network: dict,
        device: torch.device,
        num_envs: int,
        gamma: float,
        with_critic: bool = True,
        normalize_obs: bool = False,
        normalize_reward: bool = False,
        init_log_std: float = 0.0,
        gsde: int | None = None,
        rollout_steps: int = 1,
    ):
        self.device, self.gamma = device, gamma
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        obs_dim = int(np.prod(observation_space.shape))
        act_dim = int(action_space.n) if self.discrete else int(action_space.shape[0])
        hidden, activation = list(network["hidden"]), network["activation"]
        self.actor = mlp(obs_dim, act_dim, hidden, activation, out_gain=0.01).to(device)
        self.critic = mlp(obs_dim, 1, hidden, activation, out_gain=1.0).to(device) if with_critic else None
        if gsde is not None and self.discrete:
            raise RltrainError(f"algo.gsde={gsde} needs Box actions, but this env's are Discrete; drop algo.gsde.")
        self.gsde = gsde is not None
        # gSDE learns one log std per (last hidden feature, action dim); otherwise one per action dim
        log_std_shape = (hidden[-1] if hidden else obs_dim, act_dim) if self.gsde else (act_dim,)
        self.log_std = nn.Parameter(torch.full(log_std_shape, float(init_log_std), device=device))
        self.gsde_sample_freq, self.rollout_steps = gsde or 0, rollout_steps
        self.gsde_steps = 0  # policy_step calls so far (a rollout is rollout_steps of them)
        # eps of the docstring, one per env (exploration = sigma * eps is W)
        self.exploration_eps = torch.zeros(num_envs, *log_std_shape, device=device) if self.gsde else None
        self.exploration = self.exploration_eps
        if not self.discrete:
            self.action_low = torch.as_tensor(action_space.low, device=device)
            self.action_high = torch.as_tensor(action_space.high, device=device)
        self.obs_norm = RunningNorm(observation_space.shape).to(device) if normalize_obs else None
        self.return_norm = RunningNorm(()).to(device) if normalize_reward else None
        self.discounted_return = torch.zeros(num_envs, dtype=torch.float64, device=device)

    def policy_parameters(self) -> list[nn.Parameter]:
        return [*self.actor.parameters()] + ([] if self.discrete else [self.log_std])

    # --- the policy ---------------------------------------------------------------------------------------
    def normalized(self, obs: torch.Tensor, update_stats: bool = False) -> torch.Tensor:
        if self.obs_norm is None:
            return obs
        if update_stats:
            self.obs_norm.update(obs)
        return self.obs_norm.normalize(obs)

    def distribution(self, obs: torch.Tensor) -> Categorical | Normal:
        return self._distribution_and_features(obs)[0]

    def _distribution_and_features(self, obs: torch.Tensor) -> tuple[Categorical | Normal, torch.Tensor]:
        """pi(.|s) and the actor's last hidden features z(s) (detached under gSDE: its noise is linear in them, and
        the std's gradient must not reach the features)."""
        features = self.actor[:-1](obs)
        logits_or_mean = self.actor[-1](features)
        if self.discrete:
            return Categorical(logits=logits_or_mean, validate_args=False), features
        if not self.gsde:
            return Normal(logits_or_mean, self.log_std.exp().expand_as(logits_or_mean), validate_args=False), features
        features = features.detach()
        variance = features.square() @ self.log_std.exp().square()  # Var[z W] per action dim: sum_j z_j^2 sigma_j^2
        return Normal(logits_or_mean, (variance + 1e-6).sqrt(), validate_args=False), features

    def log_prob_and_entropy(self, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """log pi(a|s) and H(pi(.|s)) per sample (summed over the dimensions of a Box action)."""
        dist = self.distribution(obs)
        log_prob, entropy = dist.log_prob(actions), dist.entropy()
        if not self.discrete:
            log_prob, entropy = log_prob.sum(-1), entropy.sum(-1)
        return log_prob, entropy

    def to_env(self, action: torch.Tensor) -> torch.Tensor:
        return action if self.discrete else torch.max(torch.min(action, self.action_high), self.action_low)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        obs = self.normalized(obs)
        if explore:  # a fresh draw from pi(a|s) (under gSDE too: only rollouts hold a noise matrix)
            return self.to_env(self.distribution(obs).sample())
        logits_or_mean = self.actor(obs)
        return logits_or_mean.argmax(-1) if self.discrete else self.to_env(logits_or_mean)

    @torch.no_grad()
    def policy_step(self, obs: torch.Tensor) -> dict[str, torch.Tensor]:
        """One exploring step for a rollout: the (normalized) obs to store, action, its log-prob, V(obs)."""
        obs = self.normalized(obs, update_stats=True)
        dist, features = self._distribution_and_features(obs)
        if self.gsde:
            period = self.gsde_sample_freq if self.gsde_sample_freq > 0 else self.rollout_steps
            if self.gsde_steps % period == 0:  # eps ~ N(0, 1), one per env, held until the next draw
                self.exploration_eps = torch.randn_like(self.exploration_eps)
            self.gsde_steps += 1
            self.exploration = self.exploration_eps * self.log_std.exp()  # W ~ N(0, sigma^2)
            action = dist.mean + torch.bmm(features.unsqueeze(1), self.exploration).squeeze(1)
        else:
            action = dist.sample()
        log_prob = dist.log_prob(action)
        if not self.discrete:
            log_prob = log_prob.sum(-1)
        value = self.critic(obs).squeeze(-1) if self.critic is not None else torch.zeros_like(log_prob)
        return {"obs": obs, "action": action, "env_action": self.to_env(action), "log_prob": log_prob, "value": value}

    # --- the value function and reward scale ---------------------------------------------------------------
    @torch.no_grad()
    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """V(obs) for raw observations (zeros without a critic)."""
        if self.critic is None:
            return torch.zeros(obs.shape[0], device=obs.device)
        return self.critic(self.normalized(obs)).squeeze(-1)

    @torch.no_grad()
    def scale_rewards(self, rewards: torch.Tensor, dones: torch.Tensor) -> torch.Tensor:
        """Divide rewards by the running std of the discounted return (a no-op unless normalize_reward)."""
        if self.return_norm is None:
            return rewards
        self.discounted_return = self.discounted_return * self.gamma + rewards.double()
        self.return_norm.update(self.discounted_return)
        self.discounted_return = self.discounted_return * (1.0 - dones.double())
        return self.return_norm.scale(rewards)

    # --- checkpoints --------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict() if self.critic is not None else None,
            "log_std": self.log_std.detach().clone(),
            "obs_norm": self.obs_norm.state_dict() if self.obs_norm is not None else None,
            "return_norm": self.return_norm.state_dict() if self.return_norm is not None else None,
            "discounted_return": self.discounted_return.clone(),
            # gSDE's held noise and step count, so a resumed run keeps the noise a longer-than-rollout hold had
            "gsde": None if not self.gsde else {"eps": self.exploration_eps.clone(), "step": self.gsde_steps},
        }

    def load_state_dict(self, state: dict) -> None:
        self.actor.load_state_dict(state["actor"])
        if self.critic is not None:
            self.critic.load_state_dict(state["critic"])
        with torch.no_grad():
            self.log_std.copy_(state["log_std"])
        if self.obs_norm is not None:
            self.obs_norm.load_state_dict(state["obs_norm"])
        if self.return_norm is not None:
            self.return_norm.load_state_dict(state["return_norm"])
        self.discounted_return = state["discounted_return"].to(self.device)
        if self.gsde and state.get("gsde") is not None:  # (checkpoints from before it was kept draw afresh)
            self.exploration_eps = state["gsde"]["eps"].to(self.device)
            self.gsde_steps = int(state["gsde"]["step"])


def anneal_learning_rate(optimizer: torch.optim.Optimizer, lr: float, fraction_done: float) -> None:
    """Linear decay from lr to 0 as training goes from fraction 0 to 1."""
    for group in optimizer.param_groups:
        group["lr"] = lr * max(0.0, 1.0 - fraction_done)


def cosine_learning_rate(optimizer: torch.optim.Optimizer, lr: float, fraction_done: float) -> None:
    """Cosine decay from lr to 0 as training goes from fraction 0 to 1 (Loshchilov and Hutter's SGDR without
    restarts); a function of the fraction, so a run resumed with a larger total_steps stretches the same curve."""
    for group in optimizer.param_groups:
        group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * min(max(fraction_done, 0.0), 1.0)))


def explained_variance(values: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
    """1 - Var[R - V] / Var[R]: 1 is a perfect value function, 0 no better than a constant."""
    return 1.0 - (returns - values).var() / returns.var().clamp_min(1e-8)


def fit_value(
    critic: nn.Module,
    optimizer: torch.optim.Optimizer,
    obs: torch.Tensor,
    returns: torch.Tensor,
    epochs: int,
    minibatch: int,
) -> torch.Tensor:
    """Regress V(obs) on the returns: `epochs` passes over shuffled minibatches; the last minibatch's loss."""
    size = obs.shape[0]
    minibatch = min(minibatch, size)
    for _ in range(epochs):
        order = torch.randperm(size, device=obs.device)
        for start in range(0, size - minibatch + 1, minibatch):
            index = order[start : start + minibatch]
            loss = (critic(obs[index]).squeeze(-1) - returns[index]).square().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return loss.detach()
