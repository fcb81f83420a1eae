"""Multi-armed bandit strategies: epsilon-greedy, decaying epsilon-greedy, UCB1 and Thompson sampling.

Each keeps, per arm a, the pull count N(a) and the sample-mean reward Q(a), updated incrementally:
    N(a) <- N(a) + 1,   Q(a) <- Q(a) + (r - Q(a)) / N(a)
and differs only in how it picks the next arm.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch


def greedy_arm(values: np.ndarray, rng: np.random.Generator) -> int:
    """argmax with ties broken at random, so untried arms are not always taken in index order."""
    best = np.flatnonzero(values == values.max())
    return int(best[0] if len(best) == 1 else rng.choice(best))


BANDIT_SPACES = (gym.spaces.Discrete,)
# the bandit loop computes regret from the env's known success probabilities
BANDIT_ENV = {"probabilities": "a bandit env that exposes its arm probabilities (env=bandit)"}


class ArmStatistics:
    """N(a), Q(a), the pull count t and the random generator: everything a strategy learns or resumes from."""

    def __init__(self, arms: int, seed: int):
        self.counts = np.zeros(arms)
        self.values = np.zeros(arms)
        self.pulls = 0
        self.rng = np.random.default_rng(seed)

    def record(self, batch: dict) -> None:
        arm, reward = int(batch["actions"]), float(batch["rewards"])
        self.pulls += 1
        self.counts[arm] += 1
        self.values[arm] += (reward - self.values[arm]) / self.counts[arm]

    def state_dict(self) -> dict:
        return {
            "counts": torch.from_numpy(self.counts.copy()),
            "values": torch.from_numpy(self.values.copy()),
            "pulls": self.pulls,
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict) -> None:
        self.counts = state["counts"].numpy().copy()
        self.values = state["values"].numpy().copy()
        self.pulls = int(state["pulls"])
        self.rng.bit_generator.state = state["rng"]


# What every strategy does the same way, written once and attached to each class (there is no base class):
def act_each(self, obs, explore: bool) -> np.ndarray:
    """One arm per observation (a bandit has a single state)."""
    return np.array([self.choose(explore) for _ in range(len(obs))])


def record_pull(self, batch: dict) -> dict:
    self.stats.record(batch)
    return {}


def stats_state(self) -> dict:
    return self.stats.state_dict()


def load_stats(self, state: dict) -> None:
    self.stats.load_state_dict(state)


class EpsilonGreedy:
    """With probability epsilon a random arm, else the arm with the best mean so far."""

    kind = "bandit"
    observation_spaces = action_spaces = BANDIT_SPACES
    needs_env_attributes = BANDIT_ENV

    def __init__(self, observation_space, action_space, seed: int, epsilon: float = 0.1):
        self.stats = ArmStatistics(int(action_space.n), seed)
        self.epsilon = epsilon

    def choose(self, explore: bool) -> int:
        if explore and self.stats.rng.random() < self.epsilon:
            return int(self.stats.rng.integers(len(self.stats.values)))
        return greedy_arm(self.stats.values, self.stats.rng)

    act, update, state_dict, load_state_dict = act_each, record_pull, stats_state, load_stats


class DecayingEpsilonGreedy:
    """epsilon_t = max(epsilon_min, min(1, scale / t^power)); the defaults give epsilon_t = 1/t."""

    kind = "bandit"
    observation_spaces = action_spaces = BANDIT_SPACES
    needs_env_attributes = BANDIT_ENV

    def __init__(
        self,
        observation_space,
        action_space,
        seed: int,
        scale: float = 1.0,
        power: float = 1.0,
        epsilon_min: float = 0.0,
    ):
        self.stats = ArmStatistics(int(action_space.n), seed)
        self.scale, self.power, self.epsilon_min = scale, power, epsilon_min

    def epsilon(self) -> float:
        return max(self.epsilon_min, min(1.0, self.scale / (self.stats.pulls + 1) ** self.power))

    def choose(self, explore: bool) -> int:
        if explore and self.stats.rng.random() < self.epsilon():
            return int(self.stats.rng.integers(len(self.stats.values)))
        return greedy_arm(self.stats.values, self.stats.rng)

    def update(self, batch: dict) -> dict:
        self.stats.record(batch)
        return {"epsilon": self.epsilon()}

    act, state_dict, load_state_dict = act_each, stats_state, load_stats


class UCB:
    """UCB1 (Auer et al., 2002): every arm once, then argmax Q(a) + c * sqrt(ln t / N(a))."""

    kind = "bandit"
    observation_spaces = action_spaces = BANDIT_SPACES
    needs_env_attributes = BANDIT_ENV

    def __init__(self, observation_space, action_space, seed: int, c: float = 1.0):
        self.stats = ArmStatistics(int(action_space.n), seed)
        self.c = c

    def choose(self, explore: bool) -> int:
        counts, values = self.stats.counts, self.stats.values
        if not explore:
            return greedy_arm(values, self.stats.rng)
        untried = np.flatnonzero(counts == 0)
        if len(untried):
            return int(untried[0])
        return greedy_arm(values + self.c * np.sqrt(math.log(self.stats.pulls) / counts), self.stats.rng)

    act, update, state_dict, load_state_dict = act_each, record_pull, stats_state, load_stats


class Thompson:
    """Thompson sampling, Beta(prior_alpha, prior_beta) prior per arm: draw p(a) from each posterior, take argmax."""

    kind = "bandit"
    observation_spaces = action_spaces = BANDIT_SPACES
    needs_env_attributes = BANDIT_ENV

    def __init__(self, observation_space, action_space, seed: int, prior_alpha: float = 1.0, prior_beta: float = 1.0):
        self.stats = ArmStatistics(int(action_space.n), seed)
        self.prior_alpha, self.prior_beta = prior_alpha, prior_beta

    def posterior(self) -> tuple[np.ndarray, np.ndarray]:
        successes = self.stats.values * self.stats.counts
        return self.prior_alpha + successes, self.prior_beta + self.stats.counts - successes

    def choose(self, explore: bool) -> int:
        alpha, beta = self.posterior()
        if not explore:
            return greedy_arm(alpha / (alpha + beta), self.stats.rng)
        return greedy_arm(self.stats.rng.beta(alpha, beta), self.stats.rng)

    act, update, state_dict, load_state_dict = act_each, record_pull, stats_state, load_stats
