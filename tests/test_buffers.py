"""GAE against a hand computation (with a truncated and a terminated episode), rollout, episode and replay buffers."""

import numpy as np
import pytest
import torch

from rltrain.buffers import EpisodeBuffer, ReplayBuffer, RolloutBuffer, compute_gae


def test_gae_matches_a_hand_computation_with_termination_and_truncation():
    gamma, lam = 0.9, 0.8
    # one env, 4 steps: the episode terminates at t=1; a new one is truncated by its time limit at t=3.
    # The loop adds gamma * V(final obs) = 0.9 * 2.0 to the truncated step's reward before GAE.
    v_final = 2.0
    rewards = torch.tensor([[1.0], [1.0], [1.0], [1.0 + gamma * v_final]])
    values = torch.tensor([[0.5], [0.4], [0.3], [0.2]])
    dones = torch.tensor([[0.0], [1.0], [0.0], [1.0]])
    last_value = torch.tensor([7.0])  # must be ignored: the last step ended an episode
    adv, ret = compute_gae(rewards, values, dones, last_value, gamma, lam)

    d3 = 1.0 + gamma * v_final - 0.2  # truncated: bootstrap from the final observation only
    d2 = 1.0 + gamma * 0.2 - 0.3
    d1 = 1.0 - 0.4  # terminated: no bootstrap
    d0 = 1.0 + gamma * 0.4 - 0.5
    a3 = d3
    a2 = d2 + gamma * lam * a3
    a1 = d1
    a0 = d0 + gamma * lam * a1
    expected = torch.tensor([[a0], [a1], [a2], [a3]])
    torch.testing.assert_close(adv, expected)
    torch.testing.assert_close(ret, expected + values)


def test_gae_bootstraps_from_last_value_when_the_rollout_cuts_an_episode():
    rewards = torch.zeros(2, 1)
    values = torch.zeros(2, 1)
    dones = torch.zeros(2, 1)
    adv, _ = compute_gae(rewards, values, dones, torch.tensor([1.0]), gamma=0.5, gae_lambda=1.0)
    torch.testing.assert_close(adv, torch.tensor([[0.25], [0.5]]))


def test_rollout_batch_flattens_time_and_envs():
    buffer = RolloutBuffer(3, 2, (4,), (), torch.long, torch.device("cpu"))
    buffer.obs[:] = torch.arange(24, dtype=torch.float32).reshape(3, 2, 4)
    batch = buffer.batch(torch.zeros(2), 0.99, 0.95)
    assert batch["obs"].shape == (6, 4) and batch["actions"].shape == (6,)
    torch.testing.assert_close(batch["obs"][1], torch.tensor([4.0, 5, 6, 7]))


def test_replay_wraps_around_and_keeps_the_newest_transitions():
    buffer = ReplayBuffer(5, (2,), (), torch.long, torch.device("cpu"))
    for i in range(4):
        obs = torch.full((2, 2), float(i))
        buffer.add(obs, torch.tensor([i, i]), torch.tensor([i, i], dtype=torch.float32), obs + 1, torch.zeros(2))
    assert buffer.size == 5 and buffer.position == 3
    # 8 transitions (rewards 0,0,1,1,2,2,3,3) into 5 slots: the 5 newest stay, written in circular order
    assert buffer.rewards.tolist() == [2.0, 3.0, 3.0, 1.0, 2.0]
    batch = buffer.sample(16)
    torch.testing.assert_close(batch["next_obs"], batch["obs"] + 1)
    assert batch["actions"].dtype == torch.long


def test_replay_state_dict_round_trip():
    buffer = ReplayBuffer(10, (3,), (2,), torch.float32, torch.device("cpu"))
    buffer.add(torch.randn(4, 3), torch.randn(4, 2), torch.randn(4), torch.randn(4, 3), torch.ones(4))
    copy = ReplayBuffer(10, (3,), (2,), torch.float32, torch.device("cpu"))
    copy.load_state_dict(buffer.state_dict())
    assert copy.size == 4 and copy.position == 4
    torch.testing.assert_close(copy.obs[:4], buffer.obs[:4])


def chronological_rewards(buffer: ReplayBuffer) -> list[float]:
    oldest = 0 if buffer.size < buffer.capacity else buffer.position
    return [buffer.rewards[(oldest + i) % buffer.capacity].item() for i in range(buffer.size)]


@pytest.mark.parametrize("new_capacity", [4, 6, 12])
def test_a_wrapped_buffer_restored_into_another_capacity_keeps_time_order_and_no_empty_slots(new_capacity):
    """A run resumed with a longer total_steps gets a larger buffer (min(buffer_size, total_steps)): the saved
    entries come back oldest first, new ones follow them, and no slot of zeros is ever sampled."""
    cpu = torch.device("cpu")
    buffer = ReplayBuffer(6, (1,), (), torch.long, cpu)
    for t in range(9):  # rewards 1..9 into 6 slots: 4..9 stay, the oldest (4) at position 3
        buffer.add(torch.ones(1, 1), torch.zeros(1), torch.tensor([t + 1.0]), torch.ones(1, 1), torch.zeros(1))
    assert buffer.position == 3 and chronological_rewards(buffer) == [4.0, 5, 6, 7, 8, 9]
    resumed = ReplayBuffer(new_capacity, (1,), (), torch.long, cpu)
    resumed.load_state_dict(buffer.state_dict())
    assert chronological_rewards(resumed) == [4.0, 5, 6, 7, 8, 9][-new_capacity:]
    for t in range(9, 12):
        resumed.add(torch.ones(1, 1), torch.zeros(1), torch.tensor([t + 1.0]), torch.ones(1, 1), torch.zeros(1))
    assert chronological_rewards(resumed) == [4.0, 5, 6, 7, 8, 9, 10, 11, 12][-new_capacity:]
    assert float(resumed.rewards[: resumed.size].min()) >= 4.0  # no empty slot among the stored entries


@pytest.mark.parametrize("new_capacity", [3, 5])
def test_a_buffer_not_yet_wrapped_restored_into_a_smaller_or_exact_capacity_keeps_the_newest(new_capacity):
    cpu = torch.device("cpu")
    buffer = ReplayBuffer(8, (1,), (), torch.long, cpu)
    for t in range(5):
        buffer.add(torch.ones(1, 1), torch.zeros(1), torch.tensor([t + 1.0]), torch.ones(1, 1), torch.zeros(1))
    resumed = ReplayBuffer(new_capacity, (1,), (), torch.long, cpu)
    resumed.load_state_dict(buffer.state_dict())
    assert 0 <= resumed.position < resumed.capacity
    assert chronological_rewards(resumed) == [1.0, 2, 3, 4, 5][-new_capacity:]


def test_a_restored_buffer_ends_each_env_episode_at_the_checkpoint():
    """The envs start new episodes on resume: n-step returns must not run from the old episode into the next."""
    cpu = torch.device("cpu")
    buffer = ReplayBuffer(20, (1,), (), torch.long, cpu, num_envs=2)
    for t in range(3):
        buffer.add(torch.full((2, 1), float(t)), torch.zeros(2), torch.ones(2), torch.ones(2, 1), torch.zeros(2))
    resumed = ReplayBuffer(20, (1,), (), torch.long, cpu, num_envs=2)
    resumed.load_state_dict(buffer.state_dict())
    assert resumed.dones[:6].tolist() == [False, False, False, False, True, True]
    assert resumed.terminated[:6].sum() == 0  # a cut, not a terminal state: TD targets still bootstrap
    for _ in range(3):
        resumed.add(torch.full((2, 1), 9.0), torch.zeros(2), torch.full((2,), 100.0), torch.ones(2, 1), torch.zeros(2))
    batch = resumed.sample(500, n_step=3, gamma=1.0)
    last_before_cut = batch["obs"][:, 0] == 2.0
    assert last_before_cut.any() and bool((batch["rewards"][last_before_cut] == 1.0).all())


def test_n_step_returns_follow_each_env_and_stop_at_episode_ends():
    gamma = 0.5
    buffer = ReplayBuffer(100, (1,), (), torch.long, torch.device("cpu"), num_envs=2)
    # env 0: rewards 1, 2, 3, 4 with a truncation after the 2nd step; env 1: rewards 10, 20, 30, 40, terminated at 3rd
    env0 = [(1.0, False, False), (2.0, False, True), (3.0, False, False), (4.0, False, False)]
    env1 = [(10.0, False, False), (20.0, False, False), (30.0, True, False), (40.0, False, False)]
    for t in range(4):
        rewards = torch.tensor([env0[t][0], env1[t][0]])
        terminated = torch.tensor([env0[t][1], env1[t][1]], dtype=torch.float32)
        truncated = torch.tensor([env0[t][2], env1[t][2]])
        obs = torch.tensor([[t], [100.0 + t]])
        buffer.add(obs, torch.zeros(2), rewards, obs + 0.5, terminated, terminated.bool() | truncated)
    batch = buffer.sample(2000, n_step=3, gamma=gamma)
    starts = batch["obs"][:, 0].tolist()
    expected = {
        # start: (n-step return, next obs it bootstraps from, discount)
        0.0: (1 + 0.5 * 2, 1.5, 0.25),  # truncated after 2 rewards: bootstrap from the true final obs
        1.0: (2.0, 1.5, 0.5),
        100.0: (10 + 0.5 * 20 + 0.25 * 30, 102.5, 0.0),  # terminated: no bootstrap
        101.0: (20 + 0.5 * 30, 102.5, 0.0),
    }
    assert set(starts) == set(expected), "only entries with n - 1 successors written may start an n-step return"
    for i, start in enumerate(starts):
        ret, nxt, discount = expected[start]
        assert batch["rewards"][i].item() == ret
        assert batch["next_obs"][i, 0].item() == nxt
        assert batch["discounts"][i].item() == discount


def test_episode_buffer_returns_to_go_per_finished_episode_and_keeps_unfinished_ones():
    episodes = EpisodeBuffer(num_envs=2)
    # env 0 ends after rewards 1, 2, 4; env 1 gets rewards 10, 20, 30, 40 and is still running
    env0, env1 = [1.0, 2.0, 4.0, 8.0], [10.0, 20.0, 30.0, 40.0]
    for t in range(4):
        obs = np.array([[t], [100 + t]], dtype=np.float32)
        episodes.add(obs, np.array([t, 100 + t]), np.array([env0[t], env1[t]]), np.array([t == 2, False]))
    assert len(episodes.finished) == 1 and len(episodes.open[1]) == 4 and len(episodes.open[0]) == 1
    batch = episodes.batch(gamma=0.5, device=torch.device("cpu"))
    assert batch["obs"][:, 0].tolist() == [0, 1, 2] and batch["actions"].tolist() == [0, 1, 2]
    assert batch["returns"].tolist() == [1 + 0.5 * 2 + 0.25 * 4, 2 + 0.5 * 4, 4.0]
    assert episodes.finished == [] and len(episodes.open[1]) == 4


def test_episode_buffer_pads_episodes_of_different_lengths_without_mixing_them():
    episodes = EpisodeBuffer(num_envs=2)
    ended = [np.array([True, False]), np.array([False, False]), np.array([True, True])]
    for t in range(3):
        episodes.add(np.zeros((2, 1)), np.zeros(2), np.array([1.0, 1.0]), ended[t])
    batch = episodes.batch(gamma=1.0, device=torch.device("cpu"))
    # in the order they ended: env 0's 1-step episode, env 0's 2-step one, env 1's 3-step one
    assert batch["returns"].tolist() == [1.0, 2.0, 1.0, 3.0, 2.0, 1.0]
    assert int(batch["episodes"]) == 3
