"""Minari datasets: the collector (episodes, truncation flags, N+1 observations, reference scores, replay buffers),
datasets written by Minari itself, the offline loop's checkpoints and resume, and every error as one sentence."""

import json
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from conftest import BIN, compose_config, run_cli, tiny
from rltrain import datasets
from rltrain.collect import main as collect_main
from rltrain.envs import make_env
from rltrain.errors import RltrainError
from rltrain.schema import config_dir
from rltrain.trainer import Trainer

CPU = torch.device("cpu")
minari = pytest.importorskip("minari")
from minari.data_collector import EpisodeBuffer  # noqa: E402


@pytest.fixture(autouse=True)
def minari_root(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    return root


def collect(*args: str) -> None:
    collect_main(list(args))


def collect_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """rltrain-collect as a user types it (the installed script, or the module where it is not installed yet)."""
    script = BIN / "rltrain-collect"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "rltrain.collect"]
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


def one_line_error(capsys, *args: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        collect(*args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def load(dataset_id: str, env_id: str) -> datasets.Dataset:
    env = gym.make(env_id)
    try:
        return datasets.load(dataset_id, env.observation_space, env.action_space, env_id, torch.device("cpu"))
    finally:
        env.close()


def train_tiny(tmp_path: Path, *overrides: str, total_steps: int = 256) -> Path:
    run = tmp_path / "run"
    Trainer(tiny(compose_config(*overrides), total_steps), run).run()
    return run


# --- the collector --------------------------------------------------------------------------------------------
def test_random_policy_on_pendulum_truncates_never_terminates_and_keeps_n_plus_one_observations(capsys):
    collect("id=test/pendulum/random-v0", "env=Pendulum-v1", "episodes=2", "seed=3", "ref_episodes=4")
    assert "Wrote test/pendulum/random-v0: 2 episodes, 400 steps" in capsys.readouterr().out
    data = minari.load_dataset("test/pendulum/random-v0")
    assert data.total_episodes == 2 and data.env_spec.id == "Pendulum-v1"
    env = gym.make("Pendulum-v1")
    for episode_seed, episode in zip((3, 4), data.iterate_episodes()):
        assert episode.observations.shape == (201, 3) and episode.actions.shape == (200, 1)
        assert not episode.terminations.any()
        assert episode.truncations[-1] and not episode.truncations[:-1].any()
        # replaying the recorded actions reproduces every observation, the last one included (no reset obs)
        obs, _ = env.reset(seed=episode_seed)
        replayed = [obs] + [env.step(a)[0] for a in episode.actions]
        np.testing.assert_allclose(np.stack(replayed), episode.observations, rtol=1e-6)
    env.close()
    metadata = data.storage.metadata
    assert metadata["ref_min_score"] < -600 and "ref_max_score" not in metadata


def test_steps_budget_cuts_the_last_episode_as_a_truncation():
    collect("id=test/cartpole/random-v0", "env=CartPole-v1", "steps=100", "ref_episodes=2")
    data = load("test/cartpole/random-v0", "CartPole-v1")
    assert len(data) == 100
    ends = torch.nonzero(data.terminated + data.truncated).squeeze(-1).tolist()
    assert ends[-1] == 99
    # every whole episode of a random CartPole policy ends by falling over, the cut one by truncation
    assert data.terminated[ends[:-1]].all() and not data.truncated[ends[:-1]].any()
    assert data.truncated[99] == 1 and data.terminated[99] == 0
    # next_obs is observation t + 1 of the same episode
    inside = (data.terminated + data.truncated) == 0
    torch.testing.assert_close(data.next_obs[:-1][inside[:-1]], data.obs[1:][inside[:-1]])


def test_policy_dataset_records_reference_scores_and_noise_changes_actions(tmp_path, capsys):
    run = train_tiny(tmp_path, "algo=ppo", "env=cartpole", "algo.rollout_steps=16")
    collect(f"run={run}", "id=test/cartpole/ppo-v0", "episodes=3", "ref_episodes=3")
    collect(f"run={run}", "id=test/cartpole/ppo-noisy-v0", "episodes=3", "ref_episodes=3", "noise=1.0")
    out = capsys.readouterr().out
    assert "ref_max_score" in out
    clean = minari.load_dataset("test/cartpole/ppo-v0")
    metadata = clean.storage.metadata
    assert metadata["ref_min_score"] < 40 and metadata["ref_max_score"] > 0 and metadata["algorithm_name"] == "ppo"
    noisy = minari.load_dataset("test/cartpole/ppo-noisy-v0")
    assert noisy.storage.metadata["algorithm_name"] == "ppo+noise1"
    # noise=1: every action is uniform random, so the actions no longer follow the (deterministic) policy
    first_clean, first_noisy = next(clean.iterate_episodes()), next(noisy.iterate_episodes())
    assert not np.array_equal(first_clean.actions[:10], first_noisy.actions[:10])
    dataset = load("test/cartpole/ppo-v0", "CartPole-v1")
    score = dataset.normalized_score(metadata["ref_max_score"])
    assert score == pytest.approx(100.0)


def test_replay_buffer_episodes_keep_their_order_and_flags(tmp_path, capsys):
    run = train_tiny(
        tmp_path,
        "algo=sac",
        "env=pendulum",
        "num_envs=2",
        "checkpoint.replay_buffer=true",
        total_steps=600,
    )
    collect(f"run={run}", "source=replay", "id=test/pendulum/replay-v0", "ref_episodes=2")
    replay = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["replay"]
    data = minari.load_dataset("test/pendulum/replay-v0")
    episodes = list(data.iterate_episodes())
    # each env played one whole 200-step episode and then 100 steps of a second, cut by the end of training
    assert [len(e) for e in episodes] == [200, 200, 100, 100]
    for env_index, episode in zip((0, 1, 0, 1), episodes):
        offset = 0 if len(episode) == 200 else 400
        entries = slice(offset + env_index, offset + env_index + 2 * len(episode), 2)
        np.testing.assert_allclose(episode.observations[:-1], replay["obs"][entries].numpy())
        np.testing.assert_allclose(episode.observations[1:], replay["next_obs"][entries].numpy())
        np.testing.assert_allclose(episode.rewards, replay["rewards"][entries].numpy(), rtol=1e-6)
        assert not episode.terminations.any() and episode.truncations[-1] and not episode.truncations[:-1].any()


def test_collector_through_a_subprocess_and_minari_lists_the_dataset(tmp_path, minari_root):
    result = collect_cli("id=test/cartpole/cli-v0", "env=CartPole-v1", "episodes=2", "ref_episodes=2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (minari_root / "test" / "cartpole" / "cli-v0" / "data").is_dir()
    listing = subprocess.run(
        [str(BIN / "minari"), "list", "local"], capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}
    )
    assert "test/cartpole/cli-v0" in listing.stdout


# --- datasets that Minari itself wrote ------------------------------------------------------------------------
def minari_cartpole_episodes(n: int, seed: int = 0, observation_dtype=np.float64, env: gym.Env | None = None) -> list:
    """n episodes of random actions on CartPole-v1 (or on `env`) as Minari's episode buffers."""
    env = env or gym.make("CartPole-v1")
    env.action_space.seed(seed)
    buffers = []
    for k in range(n):
        obs, _ = env.reset(seed=seed + k)
        observations, actions, rewards, terminations, truncations = [obs], [], [], [], []
        done = False
        while not done:
            action = env.action_space.sample()
            obs, reward, terminated, truncated, _ = env.step(action)
            observations.append(obs)
            actions.append(action)
            rewards.append(reward)
            terminations.append(terminated)
            truncations.append(truncated)
            done = terminated or truncated
        buffers.append(
            EpisodeBuffer(
                observations=np.asarray(observations, dtype=observation_dtype),
                actions=np.asarray(actions),
                rewards=np.asarray(rewards),
                terminations=np.asarray(terminations),
                truncations=np.asarray(truncations),
                infos={"step": np.arange(len(actions))},
            )
        )
    env.close()
    return buffers


def test_dataset_written_by_minari_with_its_own_reference_scores_trains_bc(tmp_path):
    # Minari computes both reference scores itself, running its random policy and the given expert policy
    minari.create_dataset_from_buffers(
        "others/cartpole/random-v1",
        minari_cartpole_episodes(5),
        env="CartPole-v1",
        expert_policy=lambda obs: int(obs[2] > 0),
        num_episodes_average_score=3,
        algorithm_name="random",
    )
    data = load("others/cartpole/random-v1", "CartPole-v1")
    assert data.num_episodes == 5 and data.ref_min_score is not None and data.ref_max_score is not None
    config = tiny(compose_config("algo=bc", "dataset=others/cartpole/random-v1"), 50)
    summary = Trainer(config, tmp_path / "bc").run()
    assert summary["dataset"] == "others/cartpole/random-v1" and summary["env_steps"] == 50
    assert summary["normalized_score"] is not None


def test_dataset_without_env_spec_needs_env_and_is_checked_against_it(tmp_path):
    env = gym.make("CartPole-v1")
    minari.create_dataset_from_buffers(
        "others/cartpole/nospec-v0",
        minari_cartpole_episodes(3),
        observation_space=env.observation_space,
        action_space=env.action_space,
    )
    with pytest.raises(RltrainError, match="records no env spec; name the env it was recorded on with env="):
        datasets.env_overrides("others/cartpole/nospec-v0", Path("conf/env"))
    data = load("others/cartpole/nospec-v0", "CartPole-v1")
    assert data.env_spec is None and data.obs.dtype == torch.float32 and data.actions.dtype == torch.long
    with pytest.raises(RltrainError, match="does not fit Acrobot-v1: its observation space has shape"):
        load("others/cartpole/nospec-v0", "Acrobot-v1")


def test_dataset_of_an_env_registered_by_another_package_names_its_entry_point_and_the_module_form():
    gym.register(
        "Elsewhere-v0", entry_point="gymnasium.envs.classic_control.cartpole:CartPoleEnv", max_episode_steps=500
    )
    try:
        minari.create_dataset_from_buffers(
            "others/elsewhere/random-v0", minari_cartpole_episodes(2), env="Elsewhere-v0"
        )
        module_form = "gymnasium.envs.classic_control:Elsewhere-v0"  # gymnasium.make imports the module first
        assert load("others/elsewhere/random-v0", module_form).num_episodes == 2  # matches the id recorded
    finally:
        del gym.registry["Elsewhere-v0"]  # as in a process that has not imported the package
    entry_point = r"\(its entry point: gymnasium.envs.classic_control.cartpole:CartPoleEnv\)"
    recorded = "^dataset=others/elsewhere/random-v0 was recorded on Elsewhere-v0, which is not registered here"
    with pytest.raises(RltrainError, match=rf"{recorded} {entry_point}; add env=gym env.id=<module>:Elsewhere-v0"):
        datasets.env_overrides("others/elsewhere/random-v0", Path("conf/env"))


def test_labelled_and_combined_actions_are_recorded_in_the_envs_labels_and_loaded_as_the_agents_indices(tmp_path):
    import test_envs  # noqa: F401  registers rltrain-test/Labelled-v0 and rltrain-test/Combination-v0

    collect("id=test/labelled/random-v0", "env=rltrain-test/Labelled-v0", "episodes=3", "ref_episodes=1")
    raw = next(minari.load_dataset("test/labelled/random-v0").iterate_episodes())
    assert set(raw.actions.tolist()) <= {-1, 0, 1} and raw.observations.tolist() == list(range(10, 21))
    env = make_env({"id": "rltrain-test/Labelled-v0", "flatten_observation": True})
    data = datasets.load(
        "test/labelled/random-v0", env.observation_space, env.action_space, "rltrain-test/Labelled-v0", CPU
    )
    assert data.actions[:10].tolist() == (raw.actions + 1).tolist()  # indices 0..2 for the labels -1..1
    assert data.obs[:10].argmax(1).tolist() == list(range(10))  # state 10 + t is one-hot at t

    collect("id=test/combination/random-v0", "env=rltrain-test/Combination-v0", "episodes=3", "ref_episodes=1")
    raw = next(minari.load_dataset("test/combination/random-v0").iterate_episodes())
    assert raw.actions.shape == (10, 2) and set(raw.actions[:, 1].tolist()) <= {5, 6}  # the env's own labels
    env = make_env({"id": "rltrain-test/Combination-v0", "flatten_observation": True})
    data = datasets.load(
        "test/combination/random-v0", env.observation_space, env.action_space, "rltrain-test/Combination-v0", CPU
    )
    expected = (raw.actions[:, 0] + 1) * 2 + (raw.actions[:, 1] - 5)  # the last dimension fastest
    assert data.actions[:10].tolist() == expected.tolist()
    env_overrides = ["env=gym", "env.id=rltrain-test/Combination-v0", "env.flatten_observation=true"]
    config = tiny(compose_config("algo=bc", "dataset=test/combination/random-v0", *env_overrides), 50)
    assert Trainer(config, tmp_path).run()["env_steps"] == 50  # and a policy acts in the env's labels


def test_a_replay_of_combined_actions_is_recorded_in_the_envs_labels(tmp_path):
    import test_envs  # noqa: F401  registers rltrain-test/BoxCombination-v0

    env = ["env=gym", "env.id=rltrain-test/BoxCombination-v0"]
    run = train_tiny(tmp_path, "algo=dqn", *env, "num_envs=1", "checkpoint.replay_buffer=true", total_steps=300)
    collect(f"run={run}", "source=replay", "id=test/combination/replay-v0", "ref_episodes=1")
    replay = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["replay"]
    first = next(minari.load_dataset("test/combination/replay-v0").iterate_episodes())
    indices = replay["actions"][:10].long().numpy()  # one env: the first episode's ten steps
    np.testing.assert_array_equal(first.actions, np.stack([indices // 2 - 1, indices % 2 + 5], axis=1))
    env = make_env({"id": "rltrain-test/BoxCombination-v0"})  # as agents see it: Discrete(6) actions
    data = datasets.load("test/combination/replay-v0", env.observation_space, env.action_space, env.spec.id, CPU)
    assert data.actions[:10].tolist() == indices.tolist()  # and read back as the agent's indices


def test_an_env_registered_with_a_class_is_recorded_with_its_entry_point_as_text(capsys):
    from gymnasium.envs.classic_control.cartpole import CartPoleEnv

    gym.register("test/ClassEntry-v0", entry_point=CartPoleEnv, max_episode_steps=30)  # a class: JSON cannot hold it
    try:
        collect("id=test/classentry/random-v0", "env=test/ClassEntry-v0", "episodes=2", "ref_episodes=1")
        spec = minari.load_dataset("test/classentry/random-v0").env_spec
        assert spec.id == "test/ClassEntry-v0" and spec.max_episode_steps == 30
        assert spec.entry_point == "gymnasium.envs.classic_control.cartpole:CartPoleEnv"
        assert "train:  rltrain algo=bc dataset=test/classentry/random-v0\n" in capsys.readouterr().out
        assert load("test/classentry/random-v0", "test/ClassEntry-v0").num_episodes == 2
    finally:
        del gym.registry["test/ClassEntry-v0"]


# --- errors ------------------------------------------------------------------------------------------------------
def test_collector_errors_are_one_sentence_and_write_nothing(tmp_path, capsys, minari_root):
    collect("id=test/cartpole/a-v0", "env=CartPole-v1", "episodes=1", "ref_episodes=1")
    before = sorted(p.relative_to(minari_root) for p in minari_root.rglob("*"))
    assert "already exists" in one_line_error(capsys, "id=test/cartpole/a-v0", "env=CartPole-v1")
    assert "malformed" in one_line_error(capsys, "id=not an id", "env=CartPole-v1")
    assert "not both" in one_line_error(capsys, "id=test/cartpole/b-v0", "env=CartPole-v1", f"run={tmp_path}")
    assert "not an option" in one_line_error(capsys, "id=test/cartpole/b-v0", "episode=3")
    assert "not a registered" in one_line_error(capsys, "id=test/cartpole/b-v0", "env=CartPole-v9")
    run = train_tiny(tmp_path, "algo=ppo", "env=cartpole", "algo.rollout_steps=16")
    message = one_line_error(capsys, "id=test/cartpole/b-v0", f"run={run}", "source=replay")
    assert "holds no replay buffer" in message and "checkpoint.replay_buffer=true" in message
    assert sorted(p.relative_to(minari_root) for p in minari_root.rglob("*")) == before
    collect("id=test/cartpole/a-v0", "env=CartPole-v1", "episodes=2", "ref_episodes=1", "overwrite=true")
    assert minari.load_dataset("test/cartpole/a-v0").total_episodes == 2


def trainer_error(tmp_path, *overrides: str) -> str:
    with pytest.raises(RltrainError) as error:
        Trainer(tiny(compose_config(*overrides)), tmp_path / "run")
    return str(error.value)


def test_training_errors_name_the_problem(tmp_path, minari_root):
    collect("id=test/cartpole/random-v0", "env=CartPole-v1", "episodes=2", "ref_episodes=1")
    message = trainer_error(tmp_path, "algo=bc", "dataset=test/cartpole/randm-v0")
    assert "is not in the Minari root" in message and "Did you mean test/cartpole/random-v0" in message
    assert message.endswith("(`minari download test/cartpole/randm-v0` fetches one of Minari's public datasets).")
    assert "algo=bc learns from a dataset: give dataset=" in trainer_error(tmp_path, "algo=bc")
    assert "algo=gail learns from a dataset" in trainer_error(tmp_path, "algo=gail")
    message = trainer_error(tmp_path, "algo=ppo", "dataset=test/cartpole/random-v0")
    assert "algo=ppo learns from its own env steps and takes no dataset=" in message
    # as the CLI builds it (with the shipped algorithms for a hint): those that take this dataset, not the online ones
    with pytest.raises(RltrainError) as error:
        config = tiny(compose_config("algo=sac_n", "dataset=test/cartpole/random-v0"))
        Trainer(config, tmp_path / "run", algo_dir=config_dir() / "algo")
    assert str(error.value).startswith("algo=sac_n needs a Box action space, but the env has Discrete(2).")
    assert str(error.value).endswith(" Algorithms that fit CartPole-v1 with a dataset: awr, bc, cql, gail, iql.")
    with pytest.raises(RltrainError, match=r"takes no dataset=.* with a dataset: awr, bc, cql, gail, iql\.$"):
        Trainer(
            tiny(compose_config("algo=dqn", "dataset=test/cartpole/random-v0")), tmp_path / "run", config_dir() / "algo"
        )
    message = trainer_error(tmp_path, "algo=bc", "env=pendulum", "dataset=test/cartpole/random-v0")
    assert "was recorded on CartPole-v1, but the env is Pendulum-v1" in message
    # an empty dataset, and one whose file is garbage
    env = gym.make("CartPole-v1")
    minari.create_dataset_from_buffers("test/cartpole/empty-v0", [], env="CartPole-v1")
    assert "holds no episodes" in trainer_error(tmp_path, "algo=bc", "dataset=test/cartpole/empty-v0")
    collect("id=test/cartpole/broken-v0", "env=CartPole-v1", "episodes=1", "ref_episodes=1")
    [data_file] = (minari_root / "test" / "cartpole" / "broken-v0" / "data").glob("*.hdf5")
    data_file.write_bytes(b"\x00not hdf5")
    assert "is unreadable" in trainer_error(tmp_path, "algo=bc", "dataset=test/cartpole/broken-v0")
    env.close()
    assert not (tmp_path / "run").exists()


def test_cli_takes_the_env_from_the_dataset_and_fails_in_one_sentence(tmp_path, minari_root):
    collect("id=test/pendulum/random-v0", "env=Pendulum-v1", "episodes=2", "ref_episodes=1", "ref_max=-150")
    env = {"MINARI_DATASETS_PATH": str(minari_root)}
    tiny_offline = ["total_steps=64", "eval.episodes=1", "eval.every=32", "log.every=16", "hydra.run.dir=bc"]
    result = run_cli("algo=bc", "dataset=test/pendulum/random-v0", *tiny_offline, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "64 updates in" in result.stdout and "updates/s)" in result.stdout and "normalized score" in result.stdout
    summary = json.loads((tmp_path / "bc" / "summary.json").read_text())
    assert summary["env"] == "Pendulum-v1" and summary["step_unit"] == "updates" and summary["env_steps"] == 64
    assert summary["dataset"]
    # resume continues the offline run on its update axis; rltrain-eval replays the cloned policy
    result = run_cli("resume=bc", "total_steps=96", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "bc" / "summary.json").read_text())["env_steps"] == 96
    result = run_cli("run=bc", "episodes=2", script="rltrain-eval", cwd=tmp_path, env=env)
    assert result.returncode == 0 and "over 2 episodes" in result.stdout, result.stderr
    (tmp_path / "elsewhere").mkdir()
    result = run_cli("algo=bc", "dataset=test/pendulum/nothing-v0", cwd=tmp_path / "elsewhere", env=env)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "dataset=test/pendulum/nothing-v0 is not in the Minari root" in line
    assert not list((tmp_path / "elsewhere").glob("outputs/*")), "a failed command must not leave a run folder"
    # the run folder is named by the env the run trains on, the dataset's, not the default env's
    result = run_cli(
        "algo=bc", "dataset=test/pendulum/random-v0", *tiny_offline[:-1], cwd=tmp_path / "elsewhere", env=env
    )
    assert result.returncode == 0, result.stderr
    assert [p.name for p in (tmp_path / "elsewhere" / "outputs").iterdir()] == ["bc-pendulum"]


def test_the_env_is_made_as_the_dataset_recorded_it_and_the_users_kwargs_win(tmp_path, minari_root):
    recorded_on = gym.make("Pendulum-v1", max_episode_steps=50, g=5.0)  # another tool's time limit and gravity
    minari.create_dataset_from_buffers(
        "others/pendulum/short-v0", minari_cartpole_episodes(2, env=recorded_on), env=recorded_on
    )
    assert datasets.env_overrides("others/pendulum/short-v0", config_dir() / "env") == [
        "env=pendulum",
        "++env.kwargs.g=5.0",
        "++env.kwargs.max_episode_steps=50",
    ]
    env = {"MINARI_DATASETS_PATH": str(minari_root)}
    tiny_offline = ["total_steps=8", "eval.episodes=1", "eval.every=0", "log.every=4"]
    for run, users in (("as-recorded", []), ("users", ["++env.kwargs.max_episode_steps=80"])):
        result = run_cli(
            "algo=bc",
            "dataset=others/pendulum/short-v0",
            *tiny_offline,
            f"hydra.run.dir={run}",
            *users,
            cwd=tmp_path,
            env=env,
        )
        assert result.returncode == 0, result.stderr
    from rltrain import checkpoint

    def kwargs_of(run: str) -> dict:  # the config the run trained and evaluated with
        return checkpoint.load(tmp_path / run / "checkpoints" / "last.pt")["config"]["env"]["kwargs"]

    assert kwargs_of("as-recorded") == {"g": 5.0, "max_episode_steps": 50}
    assert kwargs_of("users") == {"g": 5.0, "max_episode_steps": 80}
    for value, text in ((None, "null"), (True, "true"), ("a b", '"a b"'), ([1, 0.5], "[1,0.5]"), ({"x": 1}, "{x:1}")):
        assert datasets.override_value(value) == text
    # Minari's eval_env, on which it computed the reference scores, is the env the run evaluates on
    minari.create_dataset_from_buffers(
        "others/pendulum/eval100-v0",
        minari_cartpole_episodes(2, env=gym.make("Pendulum-v1")),
        env="Pendulum-v1",
        eval_env=gym.make("Pendulum-v1", max_episode_steps=100),
    )
    overrides = datasets.env_overrides("others/pendulum/eval100-v0", config_dir() / "env")
    assert overrides == ["env=pendulum", "++env.kwargs.max_episode_steps=100"]


def test_a_dataset_recorded_through_wrappers_gets_them_back_and_env_without_them_names_them(tmp_path):
    recorded_on = gym.wrappers.TimeAwareObservation(gym.make("Pendulum-v1"))  # one more observation: the time
    minari.create_dataset_from_buffers(
        "others/pendulum/timed-v0", minari_cartpole_episodes(2, env=recorded_on), env=recorded_on
    )
    overrides = datasets.env_overrides("others/pendulum/timed-v0", config_dir() / "env")
    assert overrides[0] == "env=pendulum" and overrides[1].startswith(
        '++env.wrappers=[{entry_point:"gymnasium.wrappers.stateful_observation:TimeAwareObservation",kwargs:{'
    )
    run = train_tiny(tmp_path, "algo=iql", "dataset=others/pendulum/timed-v0", *overrides, total_steps=32)
    assert json.loads((run / "summary.json").read_text())["env_steps"] == 32
    with pytest.raises(RltrainError, match=r"shape \(4,\), but the env's has \(3,\) \(it was recorded through Time"):
        load("others/pendulum/timed-v0", "Pendulum-v1")


def test_tuple_and_discrete_observations_are_recorded_and_loaded_flat_as_the_env_flattens_them(tmp_path, minari_root):
    collect("id=test/blackjack/random-v0", "env=Blackjack-v1", "episodes=20", "ref_episodes=2")
    raw = minari.load_dataset("test/blackjack/random-v0")
    first = next(raw.iterate_episodes())
    assert isinstance(first.observations, tuple) and len(first.observations) == 3  # Minari's layout for a Tuple
    env = make_env({"id": "Blackjack-v1", "flatten_observation": True})
    data = datasets.load("test/blackjack/random-v0", env.observation_space, env.action_space, "Blackjack-v1", CPU)
    assert data.obs.shape == (raw.total_steps, 32 + 11 + 2)
    start = tuple(int(part[0]) for part in first.observations)
    np.testing.assert_array_equal(data.obs[0].numpy(), gym.spaces.flatten(raw.observation_space, start))
    # not flattened: one sentence with the fix, before anything is built
    message = trainer_error(tmp_path, "algo=bc", "dataset=test/blackjack/random-v0", "env=gym", "env.id=Blackjack-v1")
    assert message.endswith("add env.flatten_observation=true to feed it to the networks as one flat vector.")
    # through the CLI: the dataset's env, flattened; offline training, then rltrain-eval on the flattened env
    collect("id=test/frozenlake/random-v0", "env=FrozenLake-v1", "episodes=20", "ref_episodes=2")
    env_vars = {"MINARI_DATASETS_PATH": str(minari_root)}
    flags = ["env.flatten_observation=true", "total_steps=64", "eval.episodes=2", "hydra.run.dir=cql"]
    result = run_cli("algo=cql", "dataset=test/frozenlake/random-v0", *flags, cwd=tmp_path, env=env_vars)
    assert result.returncode == 0 and "cql on FrozenLake-v1" in result.stdout, result.stderr
    result = run_cli("run=cql", "episodes=2", script="rltrain-eval", cwd=tmp_path, env=env_vars)
    assert result.returncode == 0 and "over 2 episodes" in result.stdout, result.stderr


def test_dict_observations_as_minari_returns_them_flatten_like_gymnasium_step_by_step():
    space = gym.spaces.Dict(
        {"position": gym.spaces.Box(-1, 1, (2,)), "goal": gym.spaces.Discrete(3), "image": gym.spaces.Box(0, 9, (2, 2))}
    )
    steps = [space.sample() for _ in range(4)]
    batch = {key: np.stack([step[key] for step in steps]) for key in space.spaces}  # Minari's layout: arrays per key
    expected = np.stack([gym.spaces.flatten(space, step) for step in steps])
    np.testing.assert_array_equal(datasets.flat_observations(space, batch, 4), expected)
    assert datasets.needs_flattening(space, gym.spaces.Box(-np.inf, np.inf, (2 + 3 + 4,)))
    assert not datasets.needs_flattening(gym.spaces.Box(-1, 1, (4,)), gym.spaces.Box(-1, 1, (4,)))


def test_offline_checkpoint_round_trip_gives_the_same_actions(tmp_path):
    collect("id=test/pendulum/random-v0", "env=Pendulum-v1", "episodes=1", "ref_episodes=1")
    config = tiny(
        compose_config("algo=bc", "env=pendulum", "dataset=test/pendulum/random-v0", "algo.policy=gaussian"), 40
    )
    trainer = Trainer(config, tmp_path / "run")
    trainer.run()
    from rltrain.evaluate import load_agent

    agent, *_ = load_agent(tmp_path / "run" / "checkpoints" / "last.pt", "cpu")
    obs = torch.randn(5, 3)
    torch.testing.assert_close(agent.act(obs, explore=False), trainer.agent.act(obs, explore=False))
