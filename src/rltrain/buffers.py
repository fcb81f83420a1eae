"""Tensor buffers: an on-policy rollout with GAE, whole episodes with returns-to-go, and a circular replay buffer."""

from __future__ import annotations

import numpy as np
import torch


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    last_values: torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimation over a [T, N] rollout.

    `dones[t]` marks that the episode ended at step t (terminated or truncated): nothing is bootstrapped across it.
    A time-limit truncation is not a termination: its bootstrap gamma * V(final obs) is already added to
    `rewards[t]` by the loop, so here both kinds of ending simply stop the recursion.
    Returns (advantages, returns), both [T, N].
    """
    steps = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    next_advantage = torch.zeros_like(last_values)
    next_value = last_values
    for t in reversed(range(steps)):
        not_done = 1.0 - dones[t]
        delta = rewards[t] + gamma * next_value * not_done - values[t]
        next_advantage = delta + gamma * gae_lambda * not_done * next_advantage
        advantages[t] = next_advantage
        next_value = values[t]
    return advantages, advantages + values


class RolloutBuffer:
    """One rollout of `steps` x `num_envs` transitions, filled in place by the on-policy loop."""

    def __init__(self, steps: int, num_envs: int, obs_shape, action_shape, action_dtype, device):
        def zeros(*shape, dtype=torch.float32):
            return torch.zeros(steps, num_envs, *shape, dtype=dtype, device=device)

        self.obs = zeros(*obs_shape)
        self.actions = zeros(*action_shape, dtype=action_dtype)
        self.log_probs = zeros()
        self.values = zeros()
        self.rewards = zeros()
        self.dones = zeros()  # the episode ended at this step: terminated or truncated
        self.terminated = zeros()  # ... and really ended (not a time limit): imitation's absorbing states
        self.steps = steps

    def batch(self, last_values: torch.Tensor, gamma: float, gae_lambda: float) -> dict[str, torch.Tensor]:
        """Flatten the rollout into one batch with advantages and returns."""
        advantages, returns = compute_gae(self.rewards, self.values, self.dones, last_values, gamma, gae_lambda)

        def flat(x):
            return x.reshape(-1, *x.shape[2:])

        return {
            "obs": flat(self.obs),
            "actions": flat(self.actions),
            "log_probs": flat(self.log_probs),
            "values": flat(self.values),
            "advantages": flat(advantages),
            "returns": flat(returns),
            "terminated": flat(self.terminated),
        }


class EpisodeBuffer:
    """Steps of each env kept until its episode ends; finished episodes wait for the next update.

    A time-limit truncation is not a real end: the loop adds gamma * V(final obs) to the last reward (zero for
    agents without a value function), so the return-to-go of the truncated steps does not pretend the episode
    stopped there.
    """

    def __init__(self, num_envs: int):
        self.open: list[list[tuple]] = [[] for _ in range(num_envs)]  # per env: (obs, action, reward) rows
        self.finished: list[list[tuple]] = []

    def add(self, obs, actions, rewards, ended) -> None:
        """One vector step: numpy rows of obs and actions, rewards [N], ended [N] (terminated or truncated)."""
        obs, actions = np.array(obs), np.array(actions)  # own copies: the caller's arrays may be reused
        for i, steps in enumerate(self.open):
            steps.append((obs[i], actions[i], float(rewards[i])))
            if ended[i]:
                self.finished.append(steps)
                self.open[i] = []

    def batch(self, gamma: float, device: torch.device) -> dict[str, torch.Tensor]:
        """The finished episodes as one flat batch with the discounted return-to-go of each step; empties them."""
        episodes, self.finished = self.finished, []
        longest = max(len(e) for e in episodes)
        # episodes side by side, padded: the reward-to-go is GAE with lambda 1 and V = 0, ending at each last step
        rewards = torch.zeros(longest, len(episodes))
        dones = torch.zeros(longest, len(episodes))
        valid = torch.zeros(longest, len(episodes), dtype=torch.bool)
        for j, episode in enumerate(episodes):
            rewards[: len(episode), j] = torch.tensor([r for _, _, r in episode])
            dones[len(episode) - 1, j] = 1.0
            valid[: len(episode), j] = True
        zeros = torch.zeros_like(rewards)
        returns, _ = compute_gae(rewards, zeros, dones, zeros[0], gamma, 1.0)
        steps = [step for episode in episodes for step in episode]
        return {
            "obs": torch.as_tensor(np.stack([o for o, _, _ in steps]), device=device),
            "actions": torch.as_tensor(np.stack([a for _, a, _ in steps]), device=device),
            "returns": returns.T[valid.T].to(device),  # episode by episode, like `steps`
            "episodes": torch.tensor(len(episodes)),
        }


class ReplayBuffer:
    """A circular buffer of transitions in preallocated tensors on the training device.

    Transitions arrive one vector step at a time, so the transition that follows entry i of the same env is
    entry i + num_envs; sample(n_step=n) uses that to build n-step returns without a second buffer.
    """

    def __init__(self, capacity: int, obs_shape, action_shape, action_dtype, device, num_envs: int = 1):
        self.num_envs = int(num_envs)
        self.capacity = -(-int(capacity) // self.num_envs) * self.num_envs  # a multiple of num_envs
        self.device = device
        self.obs = torch.zeros(self.capacity, *obs_shape, dtype=torch.float32, device=device)
        self.next_obs = torch.zeros_like(self.obs)
        self.actions = torch.zeros(self.capacity, *action_shape, dtype=action_dtype, device=device)
        self.rewards = torch.zeros(self.capacity, dtype=torch.float32, device=device)
        self.terminated = torch.zeros(self.capacity, dtype=torch.float32, device=device)
        self.dones = torch.zeros(self.capacity, dtype=torch.bool, device=device)  # terminated or truncated
        self.position = 0
        self.size = 0

    def add(self, obs, actions, rewards, next_obs, terminated, dones=None) -> None:
        """Add one transition per env; `next_obs` is the true next observation, never a reset one, and `dones`
        marks episode ends of either kind (defaults to `terminated`)."""
        n = obs.shape[0]
        if self.position + n <= self.capacity:  # the common case: one contiguous slice, no index tensor
            index = slice(self.position, self.position + n)
        else:
            index = (torch.arange(n, device=self.device) + self.position) % self.capacity
        self.obs[index] = obs
        self.next_obs[index] = next_obs
        self.actions[index] = actions.to(self.actions.dtype).reshape(n, *self.actions.shape[1:])
        self.rewards[index] = rewards
        self.terminated[index] = terminated
        self.dones[index] = (terminated if dones is None else dones).bool()
        self.position = (self.position + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, n_step: int = 1, gamma: float = 1.0) -> dict[str, torch.Tensor]:
        """A uniform batch. With n_step > 1, rewards are n-step returns sum_k gamma^k r_{t+k} cut at the episode's
        end, next_obs is the observation they lead to, and `discounts` holds gamma^k * (1 - terminated)."""
        if n_step > 1:
            return self._sample_n_step(batch_size, n_step, gamma)
        index = torch.randint(0, self.size, (batch_size,), device=self.device)
        return {
            "obs": self.obs[index],
            "actions": self.actions[index],
            "rewards": self.rewards[index],
            "next_obs": self.next_obs[index],
            "terminated": self.terminated[index],
        }

    def _sample_n_step(self, batch_size: int, n_step: int, gamma: float) -> dict[str, torch.Tensor]:
        span = (n_step - 1) * self.num_envs  # the newest entries do not have n - 1 successors yet
        oldest = 0 if self.size < self.capacity else self.position
        offsets = torch.randint(0, max(self.size - span, 1), (batch_size,), device=self.device)
        index = (oldest + offsets) % self.capacity
        returns = torch.zeros(batch_size, device=self.device)
        discount = torch.ones(batch_size, device=self.device)
        alive = torch.ones(batch_size, dtype=torch.bool, device=self.device)
        last = index
        for k in range(n_step):
            step = (index + k * self.num_envs) % self.capacity
            returns += torch.where(alive, discount * self.rewards[step], 0.0)
            last = torch.where(alive, step, last)
            discount = torch.where(alive, discount * gamma, discount)
            alive = alive & ~self.dones[step]
        terminated = self.terminated[last]
        return {
            "obs": self.obs[index],
            "actions": self.actions[index],
            "rewards": returns,
            "next_obs": self.next_obs[last],
            "terminated": terminated,
            "discounts": discount * (1.0 - terminated),
        }

    def contents(self) -> dict[str, torch.Tensor]:
        """Every stored transition (in storage order, not time order once the buffer has wrapped)."""
        keep = slice(0, self.size)
        return {
            "obs": self.obs[keep],
            "actions": self.actions[keep],
            "rewards": self.rewards[keep],
            "next_obs": self.next_obs[keep],
            "terminated": self.terminated[keep],
        }

    def state_dict(self) -> dict:
        keep = slice(0, self.size)
        return {
            "obs": self.obs[keep].cpu(),
            "next_obs": self.next_obs[keep].cpu(),
            "actions": self.actions[keep].cpu(),
            "rewards": self.rewards[keep].cpu(),
            "terminated": self.terminated[keep].cpu(),
            "dones": self.dones[keep].cpu(),
            "position": self.position,
            "size": self.size,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a saved buffer; a damaged or truncated one raises ValueError saying what is wrong with it and
        leaves this buffer as it was.

        The saved buffer may have had another capacity (a run resumed with a longer total_steps gets a larger
        buffer): its entries are then laid out oldest first and the newest `capacity` of them kept, so that new
        transitions overwrite the oldest ones and never leave empty slots behind. The envs start new episodes on
        resume, so each env's newest saved transition is marked as an episode end (dones; `terminated` is kept):
        n-step returns and episodes read back from the buffer do not run across the cut."""
        tensors = ("obs", "next_obs", "actions", "rewards", "terminated", "dones")
        missing = [key for key in (*tensors, "position", "size") if key not in state]
        if missing:
            raise ValueError(f"it has no {', '.join(missing)}")
        size, position = int(state["size"]), int(state["position"])
        if size < 0 or not 0 <= position <= size:
            raise ValueError(f"its position {position} does not fit its size {size}")
        for key in tensors:
            saved, own = state[key], getattr(self, key)
            expected = (size, *own.shape[1:])
            if not isinstance(saved, torch.Tensor) or tuple(saved.shape) != expected or saved.dtype != own.dtype:
                found = (
                    f"{tuple(saved.shape)} {saved.dtype}" if isinstance(saved, torch.Tensor) else type(saved).__name__
                )
                raise ValueError(f"its {key} is {found} where {expected} {own.dtype} belongs")
            if saved.is_floating_point() and not bool(torch.isfinite(saved).all()):
                raise ValueError(f"its {key} holds NaN or infinite values")
        if size <= self.capacity and (size == self.capacity or position == size):  # the saved layout fits as it is
            order, position = torch.arange(size), position % self.capacity
        else:  # oldest first (a wrapped buffer's oldest entry is at `position`), the newest `capacity` kept
            order = ((position + torch.arange(size)) % size)[-self.capacity :]
            size, position = order.shape[0], order.shape[0] % self.capacity
        for key in tensors:
            getattr(self, key)[:size] = state[key][order].to(self.device)
        self.size = size
        self.position = position
        newest = (position - 1 - torch.arange(min(self.num_envs, size))) % self.capacity
        self.dones[newest.to(self.device)] = True
