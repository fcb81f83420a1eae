"""Learning thresholds of the tuned presets: final deterministic eval over >= 10 episodes, seeds 0 and 1."""

import pytest

from conftest import compose_config
from rltrain.trainer import Trainer

# (algo, env, threshold, budget in env steps the preset must stay within, extra overrides)
CASES = [
    ("ppo", "cartpole", 475.0, 100_000),
    ("dqn", "cartpole", 475.0, 50_000),
    ("sac", "pendulum", -200.0, 20_000),
    ("ppo", "pendulum", -250.0, 100_000),
    ("ddpg", "pendulum", -200.0, 20_000),
    ("td3", "pendulum", -200.0, 20_000),
    ("reinforce", "cartpole", 450.0, 300_000),
    ("a2c", "cartpole", 475.0, 200_000),
    ("trpo", "cartpole", 475.0, 100_000),
    ("trpo", "pendulum", -250.0, 100_000),
    ("c51", "cartpole", 475.0, 100_000),
    ("dqn", "cartpole", 475.0, 50_000, "algo.dueling=true", "algo.double=true"),
    ("dqn", "pendulum", -250.0, 50_000, "env.discretize=11"),
]
IDS = [f"{a}-{e}" + "".join(f"-{o.split('.')[-1]}" for o in extra) for a, e, _, _, *extra in CASES]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_tuned_preset_reaches_its_threshold(case, seed, tmp_path):
    algo, env, threshold, budget, *extra = case
    config = compose_config(f"algo={algo}", f"env={env}", f"seed={seed}", "log.progress=false", *extra)
    assert config["total_steps"] <= budget
    assert config["eval"]["episodes"] >= 10
    summary = Trainer(config, tmp_path).run()
    assert summary["env_steps"] <= budget
    assert summary["eval_return_mean"] >= threshold, summary
