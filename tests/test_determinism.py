"""The same seed twice on CPU gives identical eval returns and identical logged losses."""

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import compose_config, tiny
from rltrain.trainer import Trainer


def losses(run_dir):
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return {
        tag: [e.value for e in events.Scalars(tag)] for tag in events.Tags()["scalars"] if tag.startswith("losses/")
    }


@pytest.mark.parametrize(
    "algo,env",
    [("ppo", "cartpole"), ("trpo", "pendulum"), ("reinforce", "cartpole"), ("dqn", "cartpole"), ("sac", "pendulum")],
)
def test_same_seed_same_numbers(algo, env, tmp_path):
    results = []
    for name in ("a", "b"):
        config = tiny(compose_config(f"algo={algo}", f"env={env}", "seed=3"), total_steps=600)
        summary = Trainer(config, tmp_path / name).run()
        results.append((summary["eval_return_mean"], summary["eval_return_std"], losses(tmp_path / name)))
    assert results[0][2], "no losses were logged"
    assert results[0] == results[1]


def test_different_seeds_differ(tmp_path):
    curves = []
    for seed in (0, 1):
        config = tiny(compose_config("algo=ppo", "env=cartpole", f"seed={seed}"), total_steps=600)
        Trainer(config, tmp_path / str(seed)).run()
        curves.append(losses(tmp_path / str(seed)))
    assert curves[0] != curves[1]
