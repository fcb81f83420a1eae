"""The parts of `make bench-d3rlpy` that need no d3rlpy: the .npz the d3rlpy side reads (terminals and timeouts apart,
episode boundaries as the dataset's, the statistics rltrain trains with), the mapping of rltrain's presets onto d3rlpy's
configs, and the peer's evaluation against rltrain's."""

import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from conftest import compose_config
from rltrain import datasets
from rltrain.algos.iql import IQL
from rltrain.envs import make_vector_env
from rltrain.evaluate import evaluate_policy
from rltrain.networks import RegressionPolicy

pytest.importorskip("minari")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import vs_d3rlpy  # noqa: E402
import vs_d3rlpy_peer  # noqa: E402

DATASET = "test/pendulum/mixed-v0"


@pytest.fixture
def dataset(tmp_path, monkeypatch):
    """Pendulum episodes of at most 30 steps: 30 and 30 cut by the time limit, the middle one marked terminated,
    and a last one of 15 cut by the step budget (truncated)."""
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    env = gym.make("Pendulum-v1", max_episode_steps=30)
    buffers = datasets.record_policy(datasets.RandomPolicy(env.action_space, 0), env, None, 75, seed=0)
    middle = buffers[1]
    middle.terminations[-1], middle.truncations[-1] = True, False
    datasets.write(
        DATASET, buffers, env.spec, env.observation_space, env.action_space, "random", "test", -1200.0, -100.0, False
    )
    env.close()
    data, env_id = vs_d3rlpy.load_dataset(DATASET)
    path = tmp_path / "data.npz"
    vs_d3rlpy.export_npz(data, env_id, path)
    return data, dict(np.load(path))


def d3rlpy_episodes(npz: dict) -> list[tuple[int, float, bool]]:
    """(length, return, terminated) of each episode as d3rlpy's MDPDataset cuts the flat arrays: after every row
    that is a terminal or a timeout (d3rlpy.dataset.EpisodeGenerator)."""
    episodes, start = [], 0
    for i, (terminal, timeout) in enumerate(zip(npz["terminals"], npz["timeouts"])):
        if terminal or timeout:
            episodes.append((i + 1 - start, float(npz["rewards"][start : i + 1].sum()), bool(terminal)))
            start = i + 1
    assert start == len(npz["rewards"]), "rows after the last episode end would be dropped"
    return episodes


def test_npz_keeps_terminals_and_timeouts_apart_on_the_datasets_episode_boundaries(dataset):
    data, npz = dataset
    assert data.episode_lengths.tolist() == [30, 30, 15]
    np.testing.assert_array_equal(npz["terminals"], data.terminated.numpy())
    np.testing.assert_array_equal(npz["timeouts"], data.truncated.numpy())
    assert not np.logical_and(npz["terminals"], npz["timeouts"]).any()
    assert npz["terminals"].tolist().count(1.0) == 1 and npz["terminals"][59] == 1.0  # the middle episode's end
    assert np.nonzero(npz["timeouts"])[0].tolist() == [29, 74]
    assert d3rlpy_episodes(npz) == [
        (int(n), pytest.approx(float(r), rel=1e-5), t)
        for n, r, t in zip(data.episode_lengths, data.episode_returns, [False, True, False])
    ]
    # the transitions as rltrain samples them, and next observations that are observation t + 1 inside episodes
    np.testing.assert_array_equal(npz["observations"], data.obs.numpy())
    np.testing.assert_array_equal(npz["next_observations"], data.next_obs.numpy())
    np.testing.assert_array_equal(npz["actions"], data.actions.numpy())
    np.testing.assert_array_equal(npz["rewards"], data.rewards.numpy())
    inside = (npz["terminals"] + npz["timeouts"])[:-1] == 0
    np.testing.assert_array_equal(npz["next_observations"][:-1][inside], npz["observations"][1:][inside])
    assert (float(npz["ref_min_score"]), float(npz["ref_max_score"])) == (-1200.0, -100.0)
    assert str(npz["env_id"]) == "Pendulum-v1"
    assert npz["action_low"].tolist() == [-2.0] and npz["action_high"].tolist() == [2.0]


def test_npz_holds_the_statistics_rltrain_trains_with(dataset):
    data, npz = dataset
    policy = RegressionPolicy(data.observation_space, data.action_space, [8], "relu", "gaussian", data.obs)
    np.testing.assert_allclose(npz["obs_mean"], policy.obs_mean.numpy(), rtol=1e-6)
    np.testing.assert_allclose(npz["obs_std"], policy.obs_std.numpy(), rtol=1e-6)
    network = {"hidden": [8], "activation": "relu"}
    iql = IQL(data.observation_space, data.action_space, network, torch.device("cpu"), 10, dataset=data)
    assert float(npz["reward_scale"]) == pytest.approx(iql.reward_scale)


@pytest.mark.parametrize("algo", ["bc", "cql", "iql", "awr"])
def test_presets_map_onto_d3rlpy_configs(algo):
    config = compose_config(f"algo={algo}", "env=pendulum", "seed=3", *vs_d3rlpy.CASE_OVERRIDES.get(algo, []))
    settings = vs_d3rlpy.d3rlpy_settings(config, 3)
    kwargs, preset = settings["kwargs"], config["algo"]
    assert settings["config"] == vs_d3rlpy.CASES[algo][1]
    assert settings["updates"] == config["total_steps"] and kwargs["batch_size"] == preset["batch_size"]
    assert (
        settings["hidden"] == config["network"]["hidden"] and settings["activation"] == config["network"]["activation"]
    )
    assert settings["eval_seed"] == 10003 and settings["eval_episodes"] == config["eval"]["episodes"]
    assert settings["observation_scaler"] is True
    if algo == "bc":
        assert kwargs == {"batch_size": 256, "learning_rate": preset["lr"], "policy_type": "deterministic"}
    if algo == "cql":  # a fixed penalty weight: no optimizer for d3rlpy's alpha, which stays 1
        assert kwargs["conservative_weight"] == preset["cql_alpha"] == 3.0
        assert (kwargs["alpha_learning_rate"], kwargs["initial_alpha"], kwargs["alpha_threshold"]) == (0.0, 1.0, 0.0)
        assert kwargs["n_action_samples"] == preset["n_actions"] and kwargs["soft_q_backup"] is False
        assert kwargs["temp_learning_rate"] == preset["alpha_lr"]
        assert kwargs["initial_temperature"] == preset["init_alpha"]
        assert (kwargs["actor_learning_rate"], kwargs["critic_learning_rate"]) == (
            preset["actor_lr"],
            preset["critic_lr"],
        )
    if algo == "iql":
        assert (kwargs["expectile"], kwargs["weight_temp"], kwargs["max_weight"]) == (0.9, 3.0, 100.0)
        assert settings["actor_cosine_steps"] == config["total_steps"] and settings["reward_scaler"] is True
        assert len(settings["encoders"]) == 3
        normed = "critic_encoder_factory", "value_encoder_factory"
        assert settings["layer_norm_encoders"] == (list(normed) if preset["layer_norm"] else [])
        plain = vs_d3rlpy.d3rlpy_settings(
            compose_config("algo=iql", "env=pendulum", "algo.layer_norm=false", *vs_d3rlpy.CASE_OVERRIDES["iql"]), 0
        )
        assert plain["layer_norm_encoders"] == []
    if algo == "awr":
        assert kwargs["lam"] == preset["beta"] and kwargs["critic_learning_rate"] == preset["value_lr"]
    lagrange = vs_d3rlpy.d3rlpy_settings(compose_config("algo=cql", "env=pendulum", "algo.lagrange=true"), 0)
    assert lagrange["kwargs"]["alpha_learning_rate"] == 1e-3 and lagrange["kwargs"]["alpha_threshold"] == 0.8


@pytest.mark.parametrize(
    "overrides",
    [["algo=bc", "algo.policy=gaussian"], ["algo=cql", "algo.temperature=2"], ["algo=iql", "algo.value_lr=1e-4"]],
)
def test_settings_without_a_d3rlpy_counterpart_are_refused(overrides):
    with pytest.raises(vs_d3rlpy.Unmapped, match="has no d3rlpy counterpart"):
        vs_d3rlpy.d3rlpy_settings(compose_config(*overrides, "env=pendulum"), 0)


def test_peer_evaluation_replays_rltrains_episodes():
    """The same deterministic policy gets the same returns from the peer's evaluation as from rltrain's."""

    def controller(obs: np.ndarray) -> np.ndarray:
        return np.clip(-2.0 * obs[:, 1:2] - 0.5 * obs[:, 2:3], -2.0, 2.0).astype(np.float32)

    class Agent:
        def act(self, obs, explore):
            return torch.as_tensor(controller(obs.cpu().numpy()))

    class Peer:
        def predict(self, obs):
            return controller(obs)

    envs = make_vector_env({"id": "Pendulum-v1", "kwargs": {}}, 2, vectorization="sync")
    ours = evaluate_policy(Agent(), envs, 3, 10_005, torch.device("cpu"))
    envs.close()
    theirs = vs_d3rlpy_peer.evaluate(Peer(), "Pendulum-v1", 3, 10_005)
    assert len(set(np.round(ours, 3))) == 3
    np.testing.assert_allclose(theirs, ours, rtol=1e-6)
