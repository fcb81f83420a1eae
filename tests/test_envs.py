"""env.discretize: the action grid it builds, where it applies, and the errors that say how to use it;
env.flatten_observation: image, Tuple and Discrete observations as the networks' flat float input."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from conftest import compose_config, run_cli, tiny
from rltrain.envs import DiscretizedActions, action_wrappers, as_observation, make_env, make_vector_env
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


@pytest.mark.parametrize(
    "overrides,folder",
    [
        (("algo=dqn", "env=pendulum", "env.discretize=5", "algo.learning_starts=100"), "dqn-pendulum"),
        (("algo=ppo", "env=gym", "env.id=Blackjack-v1", "env.flatten_observation=true"), "ppo-Blackjack-v1"),
    ],
)
def test_a_wrapped_env_run_evaluates_and_records_video_through_the_cli(workdir, overrides, folder):
    train = run_cli(*overrides, "total_steps=400", "eval.episodes=1", "log.progress=false", cwd=workdir)
    assert train.returncode == 0, train.stderr
    [run] = (workdir / "outputs" / folder).iterdir()
    result = run_cli(f"run={run}", "episodes=2", "video=true", script="rltrain-eval", cwd=workdir)
    assert result.returncode == 0 and "over 2 episodes" in result.stdout, result.stderr
    assert list(run.glob("**/*.mp4"))


# --- env.flatten_observation ----------------------------------------------------------------------------------
class Pixels(gym.Env):
    """Five steps of 3x4x4 uint8 images; reward 1 for action 1."""

    observation_space = gym.spaces.Box(0, 255, (3, 4, 4), np.uint8)
    action_space = gym.spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.np_random.integers(0, 256, (3, 4, 4), dtype=np.uint8), {}

    def step(self, action):
        self.t += 1
        return self.np_random.integers(0, 256, (3, 4, 4), dtype=np.uint8), float(action), False, self.t == 5, {}


gym.register("rltrain-test/Pixels-v0", entry_point=Pixels)


def test_image_observations_are_refused_with_the_fix_then_flattened_for_training_and_eval(tmp_path):
    with pytest.raises(RltrainError) as error:
        Trainer(tiny(compose_config("algo=ppo", "env=gym", "env.id=rltrain-test/Pixels-v0")), tmp_path / "a")
    assert str(error.value) == (
        "algo=ppo needs a flat Box observation space, but the env has shape (3, 4, 4); add "
        "env.flatten_observation=true to feed it to the networks as one flat vector."
    )
    config = compose_config("algo=ppo", "env=gym", "env.id=rltrain-test/Pixels-v0", "env.flatten_observation=true")
    trainer = Trainer(tiny(config), tmp_path / "b")
    flat = gym.spaces.Box(0, 255, (48,), np.float32)
    assert trainer.envs.single_observation_space == flat and trainer.eval_envs.single_observation_space == flat
    summary = trainer.run()
    assert summary["env_steps"] >= 256 and 0 <= summary["eval_return_mean"] <= 5


def test_tuple_and_discrete_observations_flatten_to_one_hot_vectors():
    blackjack = make_env({"id": "Blackjack-v1", "flatten_observation": True})
    obs, _ = blackjack.reset(seed=0)
    assert blackjack.observation_space.shape == (32 + 11 + 2,) and obs.dtype == np.float32
    assert obs.sum() == 3 and set(obs.tolist()) == {0.0, 1.0}  # one hot per part of the Tuple
    lake = make_vector_env({"id": "FrozenLake-v1", "flatten_observation": True}, 2)
    obs, _ = lake.reset(seed=0)
    np.testing.assert_array_equal(obs, np.eye(16, dtype=np.float32)[[0, 0]])  # both start in state 0
    lake.close()
    with pytest.raises(RltrainError, match="env.flatten_observation=yes must be true or false"):
        make_env({"id": "FrozenLake-v1", "flatten_observation": "yes"})
    with pytest.raises(RltrainError, match="env.flatten_observation wraps each env, so it needs env.vectorization"):
        make_vector_env({"id": "CartPole-v1", "flatten_observation": True}, 2, "vector_entry_point")


def test_integer_box_observations_reach_the_networks_as_floats_and_discrete_states_stay_integers():
    pixels = np.zeros((2, 5), np.uint8)
    assert as_observation(pixels, gym.spaces.Box(0, 255, (5,), np.uint8), torch.device("cpu")).dtype == torch.float32
    states = np.array([3, 7])
    assert as_observation(states, gym.spaces.Discrete(16), torch.device("cpu")).dtype == torch.int64


# --- unbounded actions ------------------------------------------------------------------------------------------
class Unbounded(gym.Env):
    """Twenty steps of a Box(-inf, inf) action penalized by its square."""

    observation_space = gym.spaces.Box(-1, 1, (3,), np.float32)
    action_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(3, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.zeros(3, np.float32), -float(np.square(action).sum()), False, self.t == 20, {}


gym.register("rltrain-test/Unbounded-v0", entry_point=Unbounded)


@pytest.mark.parametrize("algo", ["sac", "td3", "ddpg", "mpc"])
def test_tanh_bounded_algorithms_refuse_infinite_action_bounds_and_name_those_that_fit(algo, tmp_path):
    config = tiny(compose_config(f"algo={algo}", "env=gym", "env.id=rltrain-test/Unbounded-v0"))
    with pytest.raises(RltrainError, match=r"infinite bounds, .*or train on it with algo=ppo, a2c, trpo or reinforce"):
        Trainer(config, tmp_path)


def test_gaussian_policies_train_on_infinite_action_bounds(tmp_path):
    config = tiny(compose_config("algo=ppo", "env=gym", "env.id=rltrain-test/Unbounded-v0"))
    summary = Trainer(config, tmp_path).run()
    assert np.isfinite(summary["eval_return_mean"])


# --- Discrete spaces that do not start at 0 ---------------------------------------------------------------------
class Labelled(gym.Env):
    """States 10..20 (10 + the step) and actions -1, 0, 1 (Discrete with start): reward = the action; ten steps."""

    observation_space = gym.spaces.Discrete(11, start=10)
    action_space = gym.spaces.Discrete(3, start=-1)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return 10, {}

    def step(self, action):
        assert self.action_space.contains(action), f"action {action} is not one of the env's labels"
        self.t += 1
        return 10 + self.t, float(action), self.t == 10, False, {}


gym.register("rltrain-test/Labelled-v0", entry_point="test_envs:Labelled")  # a string: Minari records it


def test_discrete_spaces_with_a_start_are_counted_from_zero_and_the_env_still_gets_its_labels():
    env = make_env({"id": "rltrain-test/Labelled-v0"})
    assert env.observation_space == gym.spaces.Discrete(11) and env.action_space == gym.spaces.Discrete(3)
    assert env.reset(seed=0)[0] == 0
    obs, reward, *_ = env.step(2)  # the last action, labelled 1 by the env
    assert obs == 1 and reward == 1.0
    envs = make_vector_env({"id": "rltrain-test/Labelled-v0"}, 2)
    assert envs.single_action_space == gym.spaces.Discrete(3)
    envs.reset(seed=0)
    assert envs.step(np.array([0, 1]))[1].tolist() == [-1.0, 0.0]
    envs.close()


@pytest.mark.parametrize("overrides", [("algo=ppo", "env.flatten_observation=true"), ("algo=q_learning",)])
def test_algorithms_learn_the_best_labelled_action(overrides, tmp_path):
    config = compose_config(*overrides, "env=gym", "env.id=rltrain-test/Labelled-v0", "total_steps=3000")
    summary = Trainer(tiny(config, 3000), tmp_path).run()
    assert summary["eval_return_mean"] == 10.0  # action 1 at each of the ten steps


class Combination(gym.Env):
    """States 0..10 (the step; Discrete, or a Box of one float with box_states); MultiDiscrete actions with starts,
    or MultiBinary ones: reward 1 for one combination, ten steps."""

    def __init__(self, binary: bool = False, box_states: bool = False):
        if binary:
            self.action_space, self.best = gym.spaces.MultiBinary(3), [1, 0, 1]
        else:
            self.action_space, self.best = gym.spaces.MultiDiscrete([3, 2], start=[-1, 5]), [1, 6]
        self.box_states = box_states
        self.observation_space = gym.spaces.Box(0.0, 10.0, (1,), np.float32) if box_states else gym.spaces.Discrete(11)

    def state(self):
        return np.array([self.t], np.float32) if self.box_states else self.t

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.state(), {}

    def step(self, action):
        assert self.action_space.contains(np.asarray(action)), f"action {action} is not one of the env's"
        self.t += 1
        return self.state(), float(list(action) == self.best), self.t == 10, False, {}


gym.register("rltrain-test/Combination-v0", entry_point="test_envs:Combination")
gym.register("rltrain-test/BoxCombination-v0", entry_point="test_envs:Combination", kwargs={"box_states": True})
gym.register("rltrain-test/BinaryCombination-v0", entry_point="test_envs:Combination", kwargs={"binary": True})


def test_multidiscrete_and_multibinary_actions_are_one_discrete_space_of_their_combinations():
    env = make_env({"id": "rltrain-test/Combination-v0"})
    assert env.action_space == gym.spaces.Discrete(6)
    env.reset(seed=0)
    assert env.step(5)[1] == 1.0  # index 5 = (2, 1), the last dimension fastest: the env's labels [1, 6]
    assert env.env_action(0).tolist() == [-1, 5] and env.env_action(4).tolist() == [1, 5]
    binary = make_vector_env({"id": "rltrain-test/BinaryCombination-v0"}, 2)
    assert binary.single_action_space == gym.spaces.Discrete(8)
    binary.reset(seed=0)
    assert binary.step(np.array([5, 4]))[1].tolist() == [1.0, 0.0]  # 5 = [1, 0, 1], 4 = [1, 0, 0]
    binary.close()


@pytest.mark.parametrize("env_id", ["rltrain-test/Combination-v0", "rltrain-test/BinaryCombination-v0"])
@pytest.mark.parametrize("overrides", [("algo=ppo", "env.flatten_observation=true"), ("algo=q_learning",)])
def test_algorithms_learn_the_best_combination(env_id, overrides, tmp_path):
    steps = 3000 if "algo=ppo" in overrides else 20000  # Q-learning's epsilon-greedy visits 8 actions x 11 states
    config = compose_config(*overrides, "env=gym", f"env.id={env_id}", f"total_steps={steps}")
    summary = Trainer(tiny(config, steps), tmp_path).run()
    assert summary["eval_return_mean"] == 10.0  # the one rewarded combination at each of the ten steps


# --- envs of other packages: env.id=<module>:<id> ----------------------------------------------------------------
PACKAGE = '''
import gymnasium as gym
import numpy as np


class Walk(gym.Env):
    """Ten steps on a line; reward 1 for action 1."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.full(2, self.t / 10, np.float32), float(action == 1), False, self.t == 10, {}


gym.register("Walk-v0", entry_point=Walk)
'''


def test_an_env_another_package_registers_trains_and_evaluates_by_module_and_id(workdir):
    (workdir / "walk_envs").mkdir()
    (workdir / "walk_envs" / "__init__.py").write_text(PACKAGE)
    path = {"PYTHONPATH": str(workdir)}
    train = run_cli(
        "algo=ppo",
        "env=gym",
        "env.id=walk_envs:Walk-v0",
        "total_steps=256",
        "eval.episodes=2",
        "algo.rollout_steps=16",
        "log.progress=false",
        cwd=workdir,
        env=path,
    )
    assert train.returncode == 0, train.stderr
    [run] = (workdir / "outputs" / "ppo-Walk-v0").iterdir()  # the folder is named by the id alone
    result = run_cli(f"run={run}", "episodes=2", script="rltrain-eval", cwd=workdir, env=path)
    assert result.returncode == 0 and "ppo on walk_envs:Walk-v0" in result.stdout, result.stderr
    # a dataset of it records the id alone; the train line rltrain-collect prints names the module again
    minari_root = {**path, "MINARI_DATASETS_PATH": str(workdir / "minari")}
    collect = run_cli(
        f"run={run}", "id=test/walk/ppo-v0", "episodes=2", script="rltrain-collect", cwd=workdir, env=minari_root
    )
    assert collect.returncode == 0, collect.stderr
    [train] = [line.split("train:")[1].split() for line in collect.stdout.splitlines() if "train:" in line]
    assert train == ["rltrain", "algo=bc", "dataset=test/walk/ppo-v0", "env=gym", "env.id=walk_envs:Walk-v0"]
    bc = run_cli(*train[1:], "total_steps=20", "eval.episodes=1", "log.progress=false", cwd=workdir, env=minari_root)
    assert bc.returncode == 0 and "Done: bc on walk_envs:Walk-v0, 20 updates" in bc.stdout, bc.stderr


@pytest.mark.parametrize(
    "env_id,problem",
    [
        ("no_such_package:Walk-v0", r"names the module no_such_package, which is not installed here; pip install"),
        ("antigravity:Walk-v0", r"names antigravity, a module of Python's standard library, which registers no envs"),
        ("rltrain.envs:Walk-v0", r"importing rltrain.envs registered no env Walk-v0"),
        ("not a module:Walk-v0", r"must be a gymnasium id or <module>:<id>"),
    ],
)
def test_env_ids_with_a_module_that_cannot_register_them_are_one_sentence(env_id, problem, tmp_path):
    with pytest.raises(RltrainError, match=rf"^env.id={env_id}.*{problem}"):
        make_env({"id": env_id})


def test_env_kwargs_the_env_does_not_take_are_one_sentence():
    problem = r"^env.kwargs \{'bogus': 1\} do not fit Pendulum-v1 \(PendulumEnv.__init__\(\) got an unexpected keyword"
    with pytest.raises(RltrainError, match=problem):
        make_env({"id": "Pendulum-v1", "kwargs": {"bogus": 1}})


TIME_AWARE = {"entry_point": "gymnasium.wrappers:TimeAwareObservation", "kwargs": {"normalize_time": True}}


def test_env_wrappers_wrap_every_env_in_order_before_rltrains_own(tmp_path):
    rescale = {"entry_point": "gymnasium.wrappers:RescaleObservation", "kwargs": {"min_obs": -1.0, "max_obs": 1.0}}
    pendulum = {"id": "Pendulum-v1", "wrappers": [TIME_AWARE, rescale]}
    env = make_env(pendulum)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.shape == (4,) and obs[-1] == -1.0  # the time (0 of [0, 1]), then rescaled
    assert env.step(env.action_space.sample())[0][-1] == pytest.approx(-1 + 2 / 200)  # time normalized by the limit
    vector = make_vector_env({**pendulum, "discretize": 3}, 2)
    assert vector.single_observation_space.shape == (4,) and vector.single_action_space.n == 3
    vector.close()
    config = tiny(
        compose_config(
            "algo=ppo", "env=pendulum", "env.wrappers=[{entry_point:gymnasium.wrappers:TimeAwareObservation}]"
        ),
        64,
    )
    assert Trainer(config, tmp_path / "run").run()["env_steps"] == 64


@pytest.mark.parametrize(
    "wrappers,problem",
    [
        ([{"entry_point": "os:system"}], r"env.wrappers\[0\] names os, a module of Python's standard library"),
        ([{"entry_point": "gymnasium.wrappers:Nope"}], r"env.wrappers\[0\]: gymnasium.wrappers has no wrapper Nope"),
        ([{**TIME_AWARE, "kwargs": {"bogus": 1}}], r"env.wrappers could not wrap Pendulum-v1: TypeError: .*bogus"),
        ([{"class": "TimeAwareObservation"}], r"env.wrappers\[0\]=.* must be \{entry_point: <module>:<class>"),
        (5, r"env.wrappers=5 must be a list"),
    ],
)
def test_env_wrappers_that_cannot_wrap_are_one_sentence(wrappers, problem):
    with pytest.raises(RltrainError, match=rf"^{problem}"):
        make_env({"id": "Pendulum-v1", "wrappers": wrappers})


class NoEnd(gym.Env):
    """Never terminates nor truncates, and is registered without a time limit."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        return np.zeros(2, np.float32), 1.0, False, False, {}


def test_an_episode_that_never_ends_stops_evaluation_and_recording_with_the_fix(monkeypatch):
    from rltrain import datasets, envs
    from rltrain.evaluate import evaluate_policy

    monkeypatch.setattr(envs, "EPISODE_STEP_CAP", 300)  # instead of 100,000 steps
    gym.register("test/NoEnd-v0", entry_point=NoEnd)
    try:

        class Always1:
            def act(self, obs, explore=False):
                return np.ones(len(obs), dtype=np.int64)

        vector = make_vector_env({"id": "test/NoEnd-v0"}, 2)
        fix = r"ran 300 steps without ending.*give the env a time limit: \+env.kwargs.max_episode_steps=N"
        with pytest.raises(RltrainError, match=rf"^an episode of test/NoEnd-v0 {fix}"):
            evaluate_policy(Always1(), vector, 2, 0, torch.device("cpu"))
        with pytest.raises(RltrainError, match=fix):
            datasets.record_policy(Always1(), make_env({"id": "test/NoEnd-v0"}), 1, None, 0)
        limited = make_vector_env({"id": "test/NoEnd-v0", "kwargs": {"max_episode_steps": 40}}, 2)
        assert evaluate_policy(Always1(), limited, 3, 0, torch.device("cpu")).tolist() == [40.0, 40.0, 40.0]
    finally:
        del gym.registry["test/NoEnd-v0"]


class SquareActions(gym.Env):
    """A 2x2 Box action space: no algorithm takes it, and env.discretize cannot split it."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (2, 2), np.float32)


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_a_refusal_suggests_discretize_only_for_a_flat_box(algo, tmp_path):
    gym.register("test/SquareActions-v0", entry_point=SquareActions)
    try:
        with pytest.raises(RltrainError, match=r"action space, but the env has .*\(2, 2\)[^;]*$"):
            Trainer(tiny(compose_config(f"algo={algo}", "env=gym", "env.id=test/SquareActions-v0")), tmp_path)
    finally:
        del gym.registry["test/SquareActions-v0"]


class WideActions(gym.Env):
    """A flat Box of `dims` actions."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)

    def __init__(self, dims: int):
        self.action_space = gym.spaces.Box(-1.0, 1.0, (dims,), np.float32)


@pytest.mark.parametrize("dims,bins", [(3, 11), (8, 2), (17, None)])  # 11 ** 3, 2 ** 8 <= 4,096 < 2 ** 17
def test_the_suggested_discretize_fits_the_limit_of_combinations(dims, bins, tmp_path):
    gym.register("test/WideActions-v0", entry_point=WideActions, kwargs={"dims": dims})
    try:
        with pytest.raises(RltrainError) as refusal:
            Trainer(tiny(compose_config("algo=dqn", "env=gym", "env.id=test/WideActions-v0")), tmp_path)
    finally:
        del gym.registry["test/WideActions-v0"]
    if bins is None:
        assert "discretize" not in str(refusal.value)
    else:
        assert f"(e.g. env.discretize={bins})" in str(refusal.value)


def test_flattening_is_not_offered_where_the_actions_do_not_fit_either(tmp_path):
    # CliffWalking: Discrete observations (flattening would fix those) and Discrete actions, which SAC cannot take
    with pytest.raises(RltrainError) as error:
        Trainer(tiny(compose_config("algo=sac", "env=cliffwalking")), tmp_path)
    assert str(error.value) == "algo=sac needs a Box action space, but the env has Discrete(4)."


def test_a_tabular_algorithm_on_a_flattened_env_is_told_to_drop_the_flag(tmp_path):
    config = tiny(compose_config("algo=q_learning", "env=frozenlake", "env.flatten_observation=true"))
    with pytest.raises(RltrainError, match=r"needs a Discrete observation space.*drop env.flatten_observation=true"):
        Trainer(config, tmp_path)
