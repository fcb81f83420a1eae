"""Tabular temporal-difference control: SARSA, Q-learning and Dyna-Q (Sutton & Barto, ch. 6 and 8).

All three act epsilon-greedily on a table Q[s, a] and move it towards a one-step target with step size alpha:
    SARSA:       Q(s,a) <- Q(s,a) + alpha * (r + gamma * Q(s', a') - Q(s,a))        a' the action taken next
    Q-learning:  Q(s,a) <- Q(s,a) + alpha * (r + gamma * max_a' Q(s', a') - Q(s,a))
    Dyna-Q:      the Q-learning update, plus `planning_steps` more on transitions replayed from a learned
                 deterministic model Model(s, a) = (r, s', terminated) of what was observed.
Nothing is bootstrapped past a termination; a time-limit truncation bootstraps as usual.
"""

from __future__ import annotations

import random

import gymnasium as gym
import numpy as np
import torch


class QTable:
    """Q[s, a], epsilon-greedy action choice with random tie-breaking, and checkpoints: the shared helper.

    Rows are Python lists and the generator is Python's: one transition touches a handful of scalars, and
    scalar work on lists is several times faster than on small numpy arrays.
    """

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, seed: int, epsilon: float):
        self.actions = int(action_space.n)
        self.rows = [[0.0] * self.actions for _ in range(int(observation_space.n))]
        self.random = random.Random(seed)
        self.epsilon = epsilon
        self.updates = 0

    @property
    def q(self) -> np.ndarray:
        return np.array(self.rows)

    def choose(self, state: int, explore: bool) -> int:
        if explore and self.random.random() < self.epsilon:
            return self.random.randrange(self.actions)
        row = self.rows[state]
        best = max(row)
        ties = [a for a, value in enumerate(row) if value == best]
        return ties[0] if len(ties) == 1 else self.random.choice(ties)

    def act(self, obs, explore: bool) -> np.ndarray:
        return np.array([self.choose(int(s), explore) for s in np.asarray(obs, dtype=np.int64).reshape(-1)])

    def state_dict(self) -> dict:
        return {
            "q": torch.tensor(self.rows, dtype=torch.float64),
            "rng": self.random.getstate(),
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict) -> None:
        self.rows = state["q"].tolist()
        self.random.setstate(state["rng"])
        self.updates = int(state["updates"])


TABULAR_SPACES = (gym.spaces.Discrete,)


# What the three methods do the same way, written once and attached to each class (there is no base class):
def table_act(self, obs, explore: bool) -> np.ndarray:
    return self.table.act(obs, explore)


def table_choose(self, state: int, explore: bool) -> int:
    return self.table.choose(state, explore)


def table_state(self) -> dict:
    return self.table.state_dict()


def load_table(self, state: dict) -> None:
    self.table.load_state_dict(state)


class Sarsa:
    kind = "tabular"
    observation_spaces = action_spaces = TABULAR_SPACES

    def __init__(
        self, observation_space, action_space, seed: int, alpha: float = 0.2, gamma: float = 1.0, epsilon: float = 0.1
    ):
        self.table = QTable(observation_space, action_space, seed, epsilon)
        self.alpha, self.gamma = alpha, gamma

    def update(self, batch: dict) -> dict:
        """One transition: obs, actions, rewards, next_obs, terminated, next_actions (the action taken next)."""
        rows, a = self.table.rows, batch["actions"]
        target = batch["rewards"]
        if not batch["terminated"]:
            target += self.gamma * rows[batch["next_obs"]][batch["next_actions"]]
        row = rows[batch["obs"]]
        row[a] += self.alpha * (target - row[a])
        self.table.updates += 1
        return {}

    act, choose, state_dict, load_state_dict = table_act, table_choose, table_state, load_table


class QLearning:
    kind = "tabular"
    observation_spaces = action_spaces = TABULAR_SPACES

    def __init__(
        self, observation_space, action_space, seed: int, alpha: float = 0.2, gamma: float = 1.0, epsilon: float = 0.1
    ):
        self.table = QTable(observation_space, action_space, seed, epsilon)
        self.alpha, self.gamma = alpha, gamma

    def update(self, batch: dict) -> dict:
        rows, a = self.table.rows, batch["actions"]
        target = batch["rewards"]
        if not batch["terminated"]:
            target += self.gamma * max(rows[batch["next_obs"]])
        row = rows[batch["obs"]]
        row[a] += self.alpha * (target - row[a])
        self.table.updates += 1
        return {}

    act, choose, state_dict, load_state_dict = table_act, table_choose, table_state, load_table


class DynaQ:
    kind = "tabular"
    observation_spaces = action_spaces = TABULAR_SPACES

    def __init__(
        self,
        observation_space,
        action_space,
        seed: int,
        alpha: float = 0.2,
        gamma: float = 1.0,
        epsilon: float = 0.1,
        planning_steps: int = 20,
    ):
        self.table = QTable(observation_space, action_space, seed, epsilon)
        self.alpha, self.gamma, self.planning_steps = alpha, gamma, planning_steps
        self.model: dict[tuple[int, int], tuple[float, int, bool]] = {}
        self.seen: list[tuple[int, int]] = []  # the keys of `model`, for uniform sampling

    def _q_learning(self, s: int, a: int, r: float, next_s: int, terminated: bool) -> None:
        rows = self.table.rows
        target = r if terminated else r + self.gamma * max(rows[next_s])
        rows[s][a] += self.alpha * (target - rows[s][a])

    def update(self, batch: dict) -> dict:
        s, a = batch["obs"], batch["actions"]
        r, next_s, terminated = batch["rewards"], batch["next_obs"], bool(batch["terminated"])
        self._q_learning(s, a, r, next_s, terminated)
        if (s, a) not in self.model:
            self.seen.append((s, a))
        self.model[(s, a)] = (r, next_s, terminated)
        for _ in range(self.planning_steps):
            key = self.seen[self.table.random.randrange(len(self.seen))]
            self._q_learning(*key, *self.model[key])
        self.table.updates += 1
        return {}

    act, choose = table_act, table_choose

    def state_dict(self) -> dict:
        keys = torch.tensor(self.seen, dtype=torch.long).reshape(-1, 2)
        outcomes = [self.model[k] for k in self.seen]
        return {
            **self.table.state_dict(),
            "model_keys": keys,
            "model_rewards": torch.tensor([o[0] for o in outcomes], dtype=torch.float64),
            "model_next": torch.tensor([o[1] for o in outcomes], dtype=torch.long),
            "model_terminated": torch.tensor([o[2] for o in outcomes], dtype=torch.bool),
        }

    def load_state_dict(self, state: dict) -> None:
        self.table.load_state_dict(state)
        self.seen = [tuple(k) for k in state["model_keys"].tolist()]
        self.model = {
            k: (r, n, t)
            for k, r, n, t in zip(
                self.seen,
                state["model_rewards"].tolist(),
                state["model_next"].tolist(),
                state["model_terminated"].tolist(),
            )
        }
