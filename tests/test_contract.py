"""The agent contract: every shipped algorithm, built the way a run builds it, has every member its kind's Protocol
lists, so an algorithm that forgets one fails here and not in a user's run."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from conftest import ALGOS, compose_config, tiny
from rltrain.agent import (
    PROTOCOLS,
    Agent,
    Algorithm,
    build_agent,
    missing_members,
    protocol_members,
    resolve_algorithm,
)
from rltrain.cli import config_dir
from rltrain.errors import RltrainError
from rltrain.loops import LOOPS, Loop
from rltrain.trainer import Trainer

CANDIDATE_ENVS = ("cartpole", "pendulum", "cliffwalking", "frozenlake", "bandit")
CPU = torch.device("cpu")


def built(algo: str, *overrides: str):
    """The agent of `rltrain algo=<algo>` on the first shipped env it fits, through the run's own build path."""
    for env in CANDIDATE_ENVS:
        config = compose_config(f"algo={algo}", f"env={env}", *overrides)
        try:
            algorithm = resolve_algorithm(config, config_dir() / "algo")
        except RltrainError:
            continue
        return build_agent(algorithm, config, CPU, num_envs=int(config["num_envs"]))
    raise AssertionError(f"algo={algo} fits none of {CANDIDATE_ENVS}")


def test_every_kind_has_a_loop_entry_and_a_protocol():
    assert set(PROTOCOLS) == set(LOOPS)
    assert all(isinstance(loop, Loop) and loop.env in ("vector", "single", "eval_only") for loop in LOOPS.values())
    common = protocol_members(Agent)
    assert {"kind", "act", "update", "state_dict", "load_state_dict"} <= set(common)
    for protocol in PROTOCOLS.values():
        assert set(common) <= set(protocol_members(protocol))


@pytest.mark.parametrize("algo", ALGOS)
def test_every_shipped_algorithm_keeps_the_protocol_of_its_kind(algo):
    agent = built(algo)
    assert agent.kind in PROTOCOLS
    members = protocol_members(PROTOCOLS[agent.kind])
    for name, is_method in members.items():
        assert hasattr(agent, name), f"{algo} lacks {name}"
        if is_method:
            assert callable(getattr(agent, name)), f"{algo}.{name} is not callable"
    assert missing_members(agent) == []


def test_the_check_names_an_attribute_an_algorithm_lost():
    agent = built("dqn")
    assert missing_members(agent) == []
    del agent.batch_size  # the off-policy loop reads it for every sample
    assert missing_members(agent) == ["batch_size"]


def test_the_check_names_a_method_that_is_not_callable():
    agent = built("ppo")
    agent.policy_step = None
    assert missing_members(agent) == ["policy_step"]


class ForgetfulTabular:
    """A tabular algorithm without choose(), which the tabular loop calls every step."""

    kind = "tabular"
    observation_spaces = action_spaces = (gym.spaces.Discrete,)

    def __init__(self, observation_space, action_space):
        pass

    def act(self, obs, explore):
        return obs

    def update(self, batch):
        return {}

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def test_building_an_algorithm_that_breaks_the_contract_is_one_clear_error():
    config = compose_config("algo=q_learning", "env=cliffwalking")
    config["algo"] = {"_target_": "test_contract.ForgetfulTabular", "name": "forgetful"}
    algorithm = resolve_algorithm(config)
    assert isinstance(algorithm, Algorithm) and algorithm.cls is ForgetfulTabular
    with pytest.raises(RltrainError, match=r"algo=forgetful \(ForgetfulTabular\) lacks choose, .*TabularAgent"):
        build_agent(algorithm, config, CPU, num_envs=1)


class EvalOnly:
    """An agent of a kind that trains without stepping an env (as offline learning from a dataset will)."""

    kind = "eval_only_test"
    observation_spaces = action_spaces = (gym.spaces.Discrete,)

    def __init__(self, observation_space, action_space):
        self.updates = 0

    def act(self, obs, explore):
        return np.zeros(len(obs), dtype=np.int64)

    def update(self, batch):
        self.updates += 1
        return {"loss": 0.0}

    def state_dict(self):
        return {"updates": self.updates}

    def load_state_dict(self, state):
        self.updates = state["updates"]


def test_a_new_kind_needs_a_loop_row_and_a_protocol_but_no_trainer_change(monkeypatch, tmp_path):
    seen = []

    def by_updates(trainer):
        seen.append((trainer.env, trainer.envs, trainer.replay))
        while trainer.advance(1, trainer.agent.update({})):
            pass

    monkeypatch.setitem(LOOPS, EvalOnly.kind, Loop(by_updates, env="eval_only", step_unit="updates"))
    monkeypatch.setitem(PROTOCOLS, EvalOnly.kind, Agent)
    config = tiny(compose_config("algo=q_learning", "env=frozenlake"), total_steps=50)
    config["algo"] = {"_target_": "test_contract.EvalOnly", "name": "eval_only"}
    trainer = Trainer(config, tmp_path)
    summary = trainer.run()
    assert seen == [(None, None, None)]  # no training env, no replay buffer: only the eval env
    assert trainer.agent.updates == 50 and summary["env_steps"] == 50 and summary["step_unit"] == "updates"
    assert summary["eval_return_mean"] is not None


def test_the_imitation_algorithms_keep_their_protocols_too():
    assert {"bc", "gail"} <= set(ALGOS)  # so the parametrized check above covers them
    assert LOOPS["offline"].env == "eval_only" and LOOPS["offline"].step_unit == "updates"
    bc, gail = built("bc"), built("gail")  # built without a dataset, as rltrain-eval builds them to act
    assert bc.kind == "offline" and missing_members(bc) == []
    assert gail.kind == "onpolicy" and missing_members(gail) == []
    assert "relabel_rewards" in protocol_members(PROTOCOLS["onpolicy"])
    del bc.transitions
    assert missing_members(bc) == ["transitions"]


@pytest.mark.parametrize("num_envs", [1, 8])
def test_offpolicy_updates_per_env_step_do_not_depend_on_num_envs(tmp_path, num_envs):
    """train_every counts env steps summed over the envs: 256 env steps with a warm-up of 32 and train_every 2
    make one round as the warm-up ends and one per 2 env steps after it, 1 + 224 / 2 = 113 updates, with 1 env
    (225 vector steps from step 31) as with 8 (29 vector steps from step 24: 1 + 8 * 28 / 2)."""
    config = tiny(compose_config("algo=sac", "env=pendulum", f"num_envs={num_envs}", "algo.train_every=2"))
    trainer = Trainer(config, tmp_path)
    updates = []
    update = trainer.agent.update
    trainer.agent.update = lambda batch: updates.append(1) or update(batch)
    trainer.run()
    assert trainer.agent.learning_starts == 32 and len(updates) == 113


def test_off_policy_actor_critics_default_to_one_env_and_256x256_relu_and_the_dqn_family_to_relu():
    """The papers' defaults where no preset applies; a command-line network= or num_envs= still wins."""
    for algo in ("sac", "td3", "ddpg"):
        config = compose_config(f"algo={algo}", "env=gym", "env.id=MountainCarContinuous-v0")
        assert config["num_envs"] == 1 and config["network"] == {"hidden": [256, 256], "activation": "relu"}
    for algo in ("dqn", "c51"):
        config = compose_config(f"algo={algo}", "env=gym", "env.id=Acrobot-v1")
        assert config["network"] == {"hidden": [64, 64], "activation": "relu"}
    config = compose_config("algo=sac", "env=gym", "env.id=MountainCarContinuous-v0", "network=mlp", "num_envs=4")
    assert config["num_envs"] == 4 and config["network"] == {"hidden": [64, 64], "activation": "tanh"}
    assert compose_config("algo=ppo", "env=gym", "env.id=Acrobot-v1")["network"]["activation"] == "tanh"
