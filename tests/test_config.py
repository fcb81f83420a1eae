"""Config composition: every algo x env pair composes; fitting pairs build, the others fail with one clear sentence."""

import re

import pytest

from conftest import ALGOS, ENVS, compose_config, tiny
from rltrain.cli import config_dir
from rltrain.errors import RltrainError
from rltrain.loops import LOOPS
from rltrain.trainer import Trainer

GRIDS = ("cliffwalking", "frozenlake", "taxi")
DISCRETE_CONTROL = ("cartpole", "acrobot", "mountaincar", "lunarlander")
BOX_CONTROL = ("pendulum", "mountaincar_continuous", "lunarlander_continuous", "halfcheetah", "hopper")
FITS = {
    (policy_gradient, env)
    for policy_gradient in ("ppo", "a2c", "trpo", "reinforce")
    for env in (*DISCRETE_CONTROL, *BOX_CONTROL)
}
FITS |= {(value_based, env) for value_based in ("dqn", "c51") for env in DISCRETE_CONTROL}
FITS |= {(actor_critic, env) for actor_critic in ("sac", "ddpg", "td3", "mpc") for env in BOX_CONTROL}
FITS |= {(bandit, "bandit") for bandit in ("egreedy", "decaying_egreedy", "ucb", "thompson")}
FITS |= {(planner, env) for planner in ("policy_iteration", "value_iteration") for env in GRIDS}
FITS |= {(td, env) for td in ("sarsa", "q_learning", "dyna_q") for env in (*GRIDS, "bandit")}
# fit the env's spaces, but learn from a dataset: without dataset= they say so (tests/test_datasets.py trains them)
NEED_DATASET = {
    (algo, env) for algo in ("bc", "gail", "iql", "awr", "cql") for env in (*DISCRETE_CONTROL, *BOX_CONTROL)
}
NEED_DATASET |= {(box_only, env) for box_only in ("edac", "sac_n") for env in BOX_CONTROL}


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("env", ENVS)
def test_every_pair_composes_and_builds_or_names_the_mismatch(algo, env, tmp_path):
    config = tiny(compose_config(f"algo={algo}", f"env={env}"))
    assert config["algo"]["name"] == algo
    if (algo, env) in FITS:
        trainer = Trainer(config, tmp_path, algo_dir=config_dir() / "algo")
        assert trainer.agent.kind in LOOPS
        trainer.close()
    elif (algo, env) in NEED_DATASET:
        with pytest.raises(RltrainError, match=f"algo={algo} learns from a dataset: give dataset="):
            Trainer(config, tmp_path, algo_dir=config_dir() / "algo")
    else:
        with pytest.raises(RltrainError) as error:
            Trainer(config, tmp_path, algo_dir=config_dir() / "algo")
        message = str(error.value)
        assert message.startswith(f"algo={algo} needs ") and ("space" in message or "this env lacks" in message)
        assert "Algorithms that fit" in message


def test_tuned_preset_is_picked_and_overrides_still_win():
    tuned = compose_config("algo=sac", "env=pendulum")
    assert tuned["total_steps"] == 20000 and tuned["algo"]["critic_lr"] == 1e-3
    overridden = compose_config("algo=sac", "env=pendulum", "algo.critic_lr=0.01", "total_steps=123")
    assert overridden["algo"]["critic_lr"] == 0.01 and overridden["total_steps"] == 123
    untuned = compose_config("algo=sac", "env=gym", "env.id=MountainCarContinuous-v0")
    assert untuned["algo"]["critic_lr"] == 3e-4 and untuned["env"]["name"] == "MountainCarContinuous-v0"


def test_any_registered_env_id_reads_its_spaces_at_runtime(tmp_path):
    config = tiny(compose_config("algo=ppo", "env=gym", "env.id=Acrobot-v1"))
    trainer = Trainer(config, tmp_path)
    assert trainer.envs.single_observation_space.shape == (6,)
    summary = trainer.run()
    assert summary["env"] == "Acrobot-v1" and summary["env_steps"] >= 256


def test_every_algorithm_hyperparameter_has_a_comment():
    for path in (config_dir() / "algo").glob("*.yaml"):
        for line in path.read_text().splitlines():
            if re.match(r"^[a-z_]+:", line) and not line.startswith(("_target_", "name:")):
                assert "#" in line, f"{path.name}: '{line}' has no comment"


def test_unknown_hyperparameter_is_named(tmp_path):
    config = tiny(compose_config("algo=ppo"))
    config["algo"]["learning_rate"] = 0.1
    with pytest.raises(RltrainError, match="no hyperparameter learning_rate"):
        Trainer(config, tmp_path)


def test_async_vector_env_trains(tmp_path):
    config = tiny(compose_config("algo=sac", "env=pendulum", "env.vectorization=async", "num_envs=2"))
    summary = Trainer(config, tmp_path).run()
    assert summary["env_steps"] >= 256


def test_native_vector_env_without_same_step_autoreset_is_refused_clearly(tmp_path):
    config = tiny(compose_config("algo=ppo", "env=cartpole", "env.vectorization=vector_entry_point"))
    with pytest.raises(RltrainError, match="same-step autoreset.*env.vectorization=sync or async"):
        Trainer(config, tmp_path)


def test_final_observation_of_a_truncated_episode_is_the_real_one():
    """Same-step autoreset: the obs after a truncation is a reset obs; final_obs holds the true last one."""
    import numpy as np

    from rltrain.envs import final_observations, make_vector_env

    envs = make_vector_env({"id": "Pendulum-v1", "kwargs": {"max_episode_steps": 3}}, 2)
    obs, _ = envs.reset(seed=0)
    for _ in range(3):
        next_obs, _, terminated, truncated, infos = envs.step(np.zeros((2, 1), dtype=np.float32))
    assert truncated.all() and not terminated.any()
    real = final_observations(next_obs, infos)
    assert not np.allclose(real, next_obs)  # next_obs already belongs to the new episodes
    np.testing.assert_allclose(real, np.stack(infos["final_obs"]))
    envs.close()


@pytest.mark.parametrize(
    "algo,env,named,not_named",
    [
        ("ppo", "cartpole", ("algo.lr", "algo.max_grad_norm"), ("_lr",)),
        ("sac", "pendulum", ("algo.actor_lr", "algo.critic_lr", "algo.alpha_lr"), ("algo.lr", "max_grad_norm")),
        ("trpo", "cartpole", ("algo.value_lr",), ("algo.lr", "max_grad_norm")),
    ],
)
def test_divergence_message_names_only_keys_the_algorithm_has(algo, env, named, not_named, tmp_path):
    trainer = Trainer(tiny(compose_config(f"algo={algo}", f"env={env}")), tmp_path)
    with pytest.raises(RltrainError, match="training diverged at step 0: critic became nan") as error:
        trainer.check_finite({"critic": float("nan")})
    trainer.close()
    message = str(error.value)
    assert all(key in message for key in named), message
    assert not any(key in message for key in not_named), message


def test_an_env_whose_extra_is_missing_names_the_extra(tmp_path, monkeypatch):
    import gymnasium as gym

    def make_without_box2d(env_id, **kwargs):
        raise gym.error.DependencyNotInstalled("Box2D is not installed, you can install it by run `pip install swig`")

    monkeypatch.setattr(gym, "make", make_without_box2d)
    with pytest.raises(RltrainError) as error:
        Trainer(tiny(compose_config("algo=ppo", "env=lunarlander")), tmp_path)
    assert str(error.value).startswith("env.id=LunarLander-v3 needs a package that is missing (Box2D is not")
    assert str(error.value).endswith("; pip install 'rltrain[box2d]' (make installs it).")
