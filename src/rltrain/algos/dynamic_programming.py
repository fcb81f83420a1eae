"""Dynamic programming on a known model: policy iteration and value iteration (Sutton & Barto, ch. 4).

The model is gymnasium's toy-text transition table env.unwrapped.P[s][a] = [(p, s', r, terminated), ...],
turned into arrays: T[s, a, s'] (probability of s' with the episode going on) and R[s, a] (expected reward).
    Value iteration:   V(s) <- max_a R(s, a) + gamma * sum_s' T(s, a, s') V(s')          until ||dV||inf < theta
    Policy iteration:  evaluate pi by sweeps of V(s) <- R(s, pi(s)) + gamma * T(s, pi(s)) . V  until ||dV||inf < theta,
                       then pi(s) <- argmax_a R(s, a) + gamma * T(s, a) . V; stop when pi is stable.
"""

from __future__ import annotations

from collections.abc import Iterator

import gymnasium as gym
import numpy as np
import torch


def model_arrays(table: dict, states: int, actions: int) -> tuple[np.ndarray, np.ndarray]:
    """(T, R) from a transition table; no value flows past a terminating transition."""
    transitions = np.zeros((states, actions, states))
    rewards = np.zeros((states, actions))
    for s in range(states):
        for a in range(actions):
            for probability, next_state, reward, terminated in table[s][a]:
                rewards[s, a] += probability * reward
                if not terminated:
                    transitions[s, a, next_state] += probability
    return transitions, rewards


class TabularSolution:
    """V, the greedy policy and the sweep count: what a planner computes, acts with and checkpoints."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space):
        self.states, self.actions = int(observation_space.n), int(action_space.n)
        self.values = np.zeros(self.states)
        self.policy = np.zeros(self.states, dtype=np.int64)
        self.sweeps = 0

    def act(self, obs) -> np.ndarray:
        return self.policy[np.asarray(obs, dtype=np.int64)]

    def state_dict(self) -> dict:
        return {
            "values": torch.from_numpy(self.values.copy()),
            "policy": torch.from_numpy(self.policy.copy()),
            "sweeps": self.sweeps,
        }

    def load_state_dict(self, state: dict) -> None:
        self.values = state["values"].numpy().copy()
        self.policy = state["policy"].numpy().copy()
        self.sweeps = int(state["sweeps"])


# What both planners do the same way, written once and attached to each class (there is no base class):
def solution_act(self, obs, explore: bool) -> np.ndarray:
    return self.solution.act(obs)


def no_sample_update(self, batch: dict) -> dict:
    return {}  # a planner learns in plan(), from the model, not from sampled transitions


def solution_state(self) -> dict:
    return self.solution.state_dict()


def load_solution(self, state: dict) -> None:
    self.solution.load_state_dict(state)


class ValueIteration:
    kind = "dynamic_programming"
    observation_spaces = (gym.spaces.Discrete,)
    action_spaces = (gym.spaces.Discrete,)
    needs_env_attributes = {"P": "the env's transition table (env.unwrapped.P, as gymnasium's toy-text envs have)"}

    def __init__(
        self, observation_space, action_space, gamma: float = 0.99, theta: float = 1e-10, max_sweeps: int = 100_000
    ):
        self.solution = TabularSolution(observation_space, action_space)
        self.gamma, self.theta, self.max_sweeps = gamma, theta, max_sweeps

    def plan(self, table: dict) -> Iterator[float]:
        """Bellman optimality sweeps until the largest change is below theta; yields ||dV||inf per sweep."""
        sol = self.solution
        transitions, rewards = model_arrays(table, sol.states, sol.actions)
        for _ in range(self.max_sweeps):
            new_values = (rewards + self.gamma * transitions @ sol.values).max(1)
            delta = float(np.abs(new_values - sol.values).max())
            sol.values = new_values
            sol.sweeps += 1
            yield delta
            if delta < self.theta:
                break
        sol.policy = (rewards + self.gamma * transitions @ sol.values).argmax(1)

    act, update, state_dict, load_state_dict = solution_act, no_sample_update, solution_state, load_solution


class PolicyIteration:
    kind = "dynamic_programming"
    observation_spaces = (gym.spaces.Discrete,)
    action_spaces = (gym.spaces.Discrete,)
    needs_env_attributes = {"P": "the env's transition table (env.unwrapped.P, as gymnasium's toy-text envs have)"}

    def __init__(
        self, observation_space, action_space, gamma: float = 0.99, theta: float = 1e-10, max_sweeps: int = 100_000
    ):
        self.solution = TabularSolution(observation_space, action_space)
        self.gamma, self.theta, self.max_sweeps = gamma, theta, max_sweeps

    def plan(self, table: dict) -> Iterator[float]:
        """Alternate policy evaluation sweeps and greedy improvement until the policy is stable."""
        sol = self.solution
        transitions, rewards = model_arrays(table, sol.states, sol.actions)
        states = np.arange(sol.states)
        while sol.sweeps < self.max_sweeps:
            policy_transitions, policy_rewards = transitions[states, sol.policy], rewards[states, sol.policy]
            while sol.sweeps < self.max_sweeps:  # evaluation of the current policy
                new_values = policy_rewards + self.gamma * policy_transitions @ sol.values
                delta = float(np.abs(new_values - sol.values).max())
                sol.values = new_values
                sol.sweeps += 1
                yield delta
                if delta < self.theta:
                    break
            q = rewards + self.gamma * transitions @ sol.values
            # keep the current action where it is still (numerically) greedy, so ties cannot cycle forever
            current = q[states, sol.policy]
            improved = np.where(q.max(1) > current + 1e-12, q.argmax(1), sol.policy)
            if np.array_equal(improved, sol.policy):
                break
            sol.policy = improved

    act, update, state_dict, load_state_dict = solution_act, no_sample_update, solution_state, load_solution
