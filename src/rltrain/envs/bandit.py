"""A K-armed Bernoulli bandit as a gymnasium env: one pull per episode, a single observation (0)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class BernoulliBandit(gym.Env):
    """Arm a pays 1 with probability p[a], else 0. `probabilities` fixes p; otherwise p ~ U(0, 1)^arms from `seed`.

    `optimal_arm` and `probabilities` are public so that loops can compute regret.
    """

    metadata = {"render_modes": []}

    def __init__(self, arms: int = 10, probabilities: list[float] | None = None, seed: int = 0):
        if probabilities is not None:
            self.probabilities = np.asarray(probabilities, dtype=np.float64)
            if self.probabilities.ndim != 1 or ((self.probabilities < 0) | (self.probabilities > 1)).any():
                raise ValueError(f"bandit probabilities must be a list of numbers in [0, 1], got {probabilities}")
        else:
            self.probabilities = np.random.default_rng(seed).uniform(0, 1, int(arms))
        self.arms = len(self.probabilities)
        self.optimal_arm = int(self.probabilities.argmax())
        self.observation_space = gym.spaces.Discrete(1)
        self.action_space = gym.spaces.Discrete(self.arms)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        return 0, {}

    def step(self, action):
        reward = float(self.np_random.random() < self.probabilities[int(action)])
        return 0, reward, True, False, {}


def register() -> None:
    if "rltrain/BernoulliBandit-v0" not in gym.registry:
        gym.register("rltrain/BernoulliBandit-v0", entry_point=BernoulliBandit)
