"""Bandits, dynamic programming and tabular TD: exact values and the textbook behaviours, fast."""

import json

import gymnasium as gym
import numpy as np
import pytest

from conftest import compose_config, run_cli
from rltrain.algos.bandits import UCB, DecayingEpsilonGreedy, EpsilonGreedy, Thompson
from rltrain.algos.dynamic_programming import PolicyIteration, ValueIteration, model_arrays
from rltrain.algos.tabular_td import DynaQ, QLearning
from rltrain.envs.bandit import BernoulliBandit
from rltrain.errors import RltrainError
from rltrain.evaluate import evaluate_policy
from rltrain.trainer import Trainer


def solve(planner_class, env, gamma=0.99):
    planner = planner_class(env.observation_space, env.action_space, gamma=gamma, theta=1e-12)
    deltas = list(planner.plan(env.unwrapped.P))
    return planner, deltas


@pytest.mark.parametrize("slippery", [True, False])
def test_value_and_policy_iteration_agree_with_the_linear_bellman_solution(slippery):
    env = gym.make("FrozenLake-v1", map_name="4x4", is_slippery=slippery)
    vi, vi_deltas = solve(ValueIteration, env)
    pi, _ = solve(PolicyIteration, env)
    assert vi_deltas[-1] < 1e-12 and all(d >= 0 for d in vi_deltas)
    np.testing.assert_allclose(vi.solution.values, pi.solution.values, atol=1e-6)
    # independent reference: V = (I - gamma T_pi)^-1 R_pi for the final greedy policy
    transitions, rewards = model_arrays(env.unwrapped.P, 16, 4)
    states = np.arange(16)
    policy = vi.solution.policy
    exact = np.linalg.solve(np.eye(16) - 0.99 * transitions[states, policy], rewards[states, policy])
    np.testing.assert_allclose(vi.solution.values, exact, atol=1e-6)
    np.testing.assert_allclose(pi.solution.values, exact, atol=1e-6)


def test_greedy_policy_on_slippery_frozenlake_succeeds_in_70_percent_of_2000_episodes():
    env = gym.make("FrozenLake-v1", map_name="4x4", is_slippery=True)
    planner, _ = solve(ValueIteration, env)
    envs = gym.make_vec("FrozenLake-v1", num_envs=16, map_name="4x4", is_slippery=True)
    returns = evaluate_policy(planner, envs, 2000, seed=123, device=None)
    assert returns.mean() >= 0.70, returns.mean()


def test_dp_on_an_env_without_transition_table_is_a_clear_error(tmp_path):
    config = compose_config("algo=value_iteration", "env=bandit")
    with pytest.raises(RltrainError, match="transition table"):
        Trainer(config, tmp_path)


def test_tabular_td_on_continuous_observations_is_a_clear_error(tmp_path):
    config = compose_config("algo=q_learning", "env=cartpole")
    with pytest.raises(RltrainError, match="needs a Discrete observation space"):
        Trainer(config, tmp_path)


def cliff_config(algo: str, seed: int) -> dict:
    config = compose_config(
        f"algo={algo}",
        "env=cliffwalking",
        f"seed={seed}",
        "total_steps=20000",
        "eval.every=0",
        "eval.episodes=1",
        "log.progress=false",
    )
    return config


@pytest.mark.parametrize("seed", [0, 1])
def test_cliffwalking_q_learning_walks_the_cliff_edge_and_sarsa_takes_the_safe_path(seed, tmp_path):
    q_learning = Trainer(cliff_config("q_learning", seed), tmp_path / "q").run()
    sarsa = Trainer(cliff_config("sarsa", seed), tmp_path / "s").run()
    assert q_learning["eval_return_mean"] == -13  # the optimal path along the cliff
    assert sarsa["eval_return_mean"] in (-15, -17)  # one or two rows away from the cliff (S&B Example 6.6)


def episodes_until_optimal(agent, seed: int, limit: int = 500) -> int:
    """Train episode by episode; the first episode after which the greedy path returns -13."""
    env = gym.make("CliffWalking-v1", max_episode_steps=1000)
    state, _ = env.reset(seed=seed)
    for episode in range(1, limit + 1):
        done = False
        while not done:
            action = agent.choose(state, True)
            next_state, reward, terminated, truncated, _ = env.step(action)
            agent.update(
                {
                    "obs": state,
                    "actions": action,
                    "rewards": reward,
                    "next_obs": next_state,
                    "terminated": terminated,
                    "next_actions": None,
                }
            )
            state, done = next_state, terminated or truncated
        state, _ = env.reset()
        greedy_env = gym.make("CliffWalking-v1", max_episode_steps=100)
        greedy_state, _ = greedy_env.reset()
        total, done = 0.0, False
        while not done:
            greedy_state, reward, terminated, truncated, _ = greedy_env.step(agent.choose(greedy_state, False))
            total, done = total + reward, terminated or truncated
        if total == -13:
            return episode
    return limit


def test_dyna_q_reaches_the_optimal_return_in_fewer_episodes_than_q_learning():
    env = gym.make("CliffWalking-v1")
    for seed in (0, 1, 2):
        q_learning = episodes_until_optimal(QLearning(env.observation_space, env.action_space, seed=seed), seed)
        dyna = episodes_until_optimal(
            DynaQ(env.observation_space, env.action_space, seed=seed, planning_steps=20), seed
        )
        assert dyna < q_learning, (seed, dyna, q_learning)


def bandit_regret(agent_class, seed: int, steps: int = 5000, **kwargs) -> np.ndarray:
    env = BernoulliBandit(arms=10, seed=seed)
    env.reset(seed=seed)
    agent = agent_class(env.observation_space, env.action_space, seed=seed, **kwargs)
    regret = np.empty(steps)
    observation = np.zeros(1, dtype=np.int64)
    for t in range(steps):
        arm = int(agent.act(observation, True)[0])
        _, reward, *_ = env.step(arm)
        agent.update({"actions": arm, "rewards": reward})
        regret[t] = env.probabilities.max() - env.probabilities[arm]
    return regret


def test_ucb_and_thompson_beat_constant_epsilon_and_thompson_regret_shrinks():
    seeds = range(20)
    egreedy = np.mean([bandit_regret(EpsilonGreedy, s, epsilon=0.1).sum() for s in seeds])
    ucb = np.mean([bandit_regret(UCB, s).sum() for s in seeds])
    thompson_runs = [bandit_regret(Thompson, s) for s in seeds]
    thompson = np.mean([r.sum() for r in thompson_runs])
    assert ucb < egreedy and thompson < egreedy, (ucb, thompson, egreedy)
    first, last = np.mean([r[:1000].sum() for r in thompson_runs]), np.mean([r[-1000:].sum() for r in thompson_runs])
    assert last < first


def test_decaying_epsilon_follows_one_over_t():
    env = BernoulliBandit(arms=3, seed=0)
    agent = DecayingEpsilonGreedy(env.observation_space, env.action_space, seed=0)
    assert agent.epsilon() == 1.0
    for _ in range(9):
        agent.update({"actions": 0, "rewards": 1.0})
    assert agent.epsilon() == pytest.approx(1 / 10)


def test_bandit_probabilities_from_seed_or_given():
    assert np.array_equal(BernoulliBandit(seed=3).probabilities, BernoulliBandit(seed=3).probabilities)
    env = BernoulliBandit(probabilities=[0.1, 0.9, 0.3])
    assert env.arms == 3 and env.optimal_arm == 1


def test_bandit_comparison_sweep_just_works(workdir):
    result = run_cli(
        "-m", "algo=egreedy,decaying_egreedy,ucb,thompson", "env=bandit", "seed=0,1", "total_steps=500", cwd=workdir
    )
    assert result.returncode == 0, result.stderr
    summaries = [json.loads(p.read_text()) for p in workdir.glob("outputs/multirun/*/*/summary.json")]
    assert len(summaries) == 8
    assert all(s["cumulative_regret"] >= 0 and 0 <= s["optimal_arm_fraction"] <= 1 for s in summaries)
    assert {s["algo"] for s in summaries} == {"egreedy", "decaying_egreedy", "ucb", "thompson"}


def test_eval_prints_the_policy_as_arrows_and_values_as_a_grid(workdir):
    train = run_cli("algo=q_learning", "env=cliffwalking", "total_steps=20000", "hydra.run.dir=run", cwd=workdir)
    assert train.returncode == 0, train.stderr
    result = run_cli("run=run", "episodes=1", script="rltrain-eval", cwd=workdir)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    policy_rows = lines[lines.index("greedy policy:") + 1 : lines.index("greedy policy:") + 5]
    assert all(len(row.split()) == 12 and set(row.split()) <= set("↑→↓←") for row in policy_rows)
    assert "state values V:" in result.stdout


@pytest.mark.parametrize(
    "algo,env", [("dyna_q", "cliffwalking"), ("thompson", "bandit"), ("policy_iteration", "frozenlake")]
)
def test_tabular_runs_write_checkpoints_that_resume(algo, env, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from rltrain import checkpoint

    config = compose_config(
        f"algo={algo}", f"env={env}", "total_steps=600", "eval.every=0", "eval.episodes=2", "log.progress=false"
    )
    first = Trainer(config, tmp_path).run()
    payload = checkpoint.load(tmp_path / "checkpoints" / "last.pt")
    config["total_steps"] = 1200
    resumed = Trainer(config, tmp_path, resume=payload)
    assert resumed.agent.state_dict().keys() == payload["agent"].keys()
    second = resumed.run()
    assert second["env_steps"] >= first["env_steps"]
    if env != "bandit":
        events = EventAccumulator(str(tmp_path))
        events.Reload()
        assert "tables/value_and_policy" in events.Tags()["images"]
