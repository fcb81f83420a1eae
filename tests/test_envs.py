"""env.discretize: the action grid it builds, where it applies, and the errors that say how to use it."""

import gymnasium as gym
import numpy as np
import pytest

from conftest import compose_config, run_cli, tiny
from rltrain.envs import DiscretizedActions, action_wrappers, make_env, make_vector_env
from rltrain.errors import RltrainError
from rltrain.trainer import Trainer


def test_pendulum_with_11_bins_maps_indices_to_evenly_spaced_torques():
    env = make_env({"id": "Pendulum-v1", "discretize": 11})
    assert env.action_space == gym.spaces.Discrete(11)
    torques = [float(env.action(k)[0]) for k in range(11)]
    np.testing.assert_allclose(torques, np.linspace(-2, 2, 11), atol=1e-6)
    assert env.action(5).dtype == np.float32 and env.action(5).shape == (1,)
    env.close()


def test_several_dimensions_enumerate_every_combination_last_dimension_fastest():
    box = gym.make("Pendulum-v1")
    box.action_space = gym.spaces.Box(np.array([0.0, -1.0], np.float32), np.array([1.0, 1.0], np.float32))
    env = DiscretizedActions(box, 3)
    assert env.action_space.n == 9
    assert env.action(0).tolist() == [0.0, -1.0]
    assert env.action(1).tolist() == [0.0, 0.0]
    assert env.action(5).tolist() == [0.5, 1.0]
    assert env.action(8).tolist() == [1.0, 1.0]


def test_vector_and_eval_envs_are_discretized_too(tmp_path):
    envs = make_vector_env({"id": "Pendulum-v1", "discretize": 5}, 2)
    assert envs.single_action_space == gym.spaces.Discrete(5)
    envs.close()
    trainer = Trainer(tiny(compose_config("algo=dqn", "env=pendulum", "env.discretize=5")), tmp_path)
    assert trainer.eval_envs.single_action_space == gym.spaces.Discrete(5)
    assert trainer.run()["env_steps"] >= 256


@pytest.mark.parametrize(
    "bins,action_space,problem",
    [
        (3, gym.spaces.Discrete(2), "needs a flat Box action space, but X-v0 has Discrete"),
        (1, gym.spaces.Box(-1, 1, (1,)), "must be a whole number of bins >= 2"),
        (2.5, gym.spaces.Box(-1, 1, (1,)), "must be a whole number of bins >= 2"),
        (11, gym.spaces.Box(-1, 1, (4,)), "makes 14641 actions, more than 4096; use fewer bins"),
        (11, gym.spaces.Box(-np.inf, np.inf, (1,)), "needs finite action bounds"),
    ],
)
def test_discretize_that_cannot_apply_says_why(bins, action_space, problem):
    with pytest.raises(RltrainError, match=problem):
        action_wrappers({"id": "X-v0", "discretize": bins}, action_space)


def test_discretize_on_a_discrete_env_fails_before_training(tmp_path):
    with pytest.raises(RltrainError, match="env.discretize=3 needs a flat Box action space, but CartPole-v1"):
        Trainer(tiny(compose_config("algo=dqn", "env=cartpole", "env.discretize=3")), tmp_path)


def test_dqn_on_a_box_env_suggests_discretize(tmp_path):
    with pytest.raises(RltrainError, match=r"add env.discretize=N .*env.discretize=11"):
        Trainer(tiny(compose_config("algo=dqn", "env=pendulum")), tmp_path)


def test_a_discretized_run_evaluates_and_records_video_through_the_cli(workdir):
    train = run_cli(
        "algo=dqn", "env=pendulum", "env.discretize=5", "total_steps=400", "algo.learning_starts=100",
        "eval.episodes=1", "log.progress=false", cwd=workdir,
    )  # fmt: skip
    assert train.returncode == 0, train.stderr
    [run] = (workdir / "outputs" / "dqn-pendulum").iterdir()
    result = run_cli(f"run={run}", "episodes=2", "video=true", script="rltrain-eval", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert list(run.glob("**/*.mp4"))
